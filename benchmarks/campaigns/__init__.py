"""Many runs: sweeps over grids (claimed cells, cluster launchers), tuning studies and the regression
baselines. Imports `spec`, `execution` and `reports`."""


def cli(*arguments: str) -> bool:
    """Run `cmhb <arguments>` in a process of its own (a reference campaign's step: one failure does not stop the
    rest). Returns whether it succeeded."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "benchmarks.cli", *arguments]).returncode == 0

"""The label protocols' reference (make label-reference; docs/protocol.md, "Beyond the closed set").

Unseen classes: every method, 30% of the labels held out, split seeds 0 and 1, run seed 0. Noisy labels: every
supervised method at noise 0.2, 0.5 and 0.8, run seeds 0 and 1, split seed 0; noise 0 is the closed set's committed
runs (on Wikipedia those have run seed 0 only). Runs of noise 0 are not repeated: their rows would carry the new
options' keys, so their settings would differ from the committed rows' and the tables would take them for the
method's new settings and leave the others out (benchmarks.reports.tables.selected). Both on MIRFlickr-730 and
Wikipedia at 32 bits, each method at its tuned preset (tuned on clean labels: results/tuned has no study under a
protocol) or, with nothing to tune, its common one. Sweeps resume, so
an interrupted reference is finished by running it again; then the tables and figures of every committed row (as
`make reference` writes them: the protocols' rows have tables of their own) and the protocols' report
(benchmarks.reports.label_protocols).
"""

from pathlib import Path

from benchmarks.campaigns import cli

DATASETS = ("mirflickr25k_mini", "wikipedia")
BITS = 32
UNSEEN_SHARE = 0.3
NOISE_RATES = (0.2, 0.5, 0.8)


def sweeps(methods: list[str], tunable: set[str], supervised: set[str]) -> list[list[str]]:
    """The `cmhb sweep` argument lists of the reference, in the order they run."""
    out = []
    for preset, chosen in (("tuned", [m for m in methods if m in tunable]),
                           ("common", [m for m in methods if m not in tunable])):
        if not chosen:
            continue
        common = ["--datasets", ",".join(DATASETS), "--bits", str(BITS), "--presets", preset]
        out.append(["--methods", ",".join(chosen), *common, "--seeds", "0", "--split_seeds", "0,1",
                    f"--data.unseen_labels={UNSEEN_SHARE}"])
        noisy = [m for m in chosen if m in supervised]
        out += [["--methods", ",".join(noisy), *common, "--seeds", "0,1", "--split_seeds", "0",
                 f"--data.label_noise={rate}"] for rate in NOISE_RATES if noisy]
    return out


def reference(methods: list[str], results: Path, tuned: Path, out: Path, plots: Path, jobs: int = 1,
              say=print) -> int:
    """Run the reference's sweeps (each in a process of its own), then the tables (results' folder and its
    README.md), the figures and the report.

    Returns:
        The number of commands that failed (the report is written from what finished either way).
    """
    from benchmarks.reports.label_protocols import write
    from benchmarks.spec.registry import declared

    tunable = {m for m in methods if declared("methods", m).config().get("search")}
    supervised = {m for m in methods if getattr(declared("methods", m).load(), "supervised", False)}
    failed = 0
    for arguments in sweeps(methods, tunable, supervised):
        say("cmhb sweep " + " ".join(arguments), flush=True)
        failed += not cli("sweep", *arguments, "--tuned", str(tuned), "--jobs", str(jobs), "--results", str(results),
                          "--logger.kind=none")
    for command in (["table", "--out", str(results.parent), "--readme", str(results.parent / "README.md")],
                    ["plot", "--out", str(plots), "--bits", "64"]):  # as `make reference` ends
        failed += not cli(*command, "--results", str(results))
    for path in write(results, out, plots, BITS):
        say(f"wrote {path}")
    return failed


if __name__ == "__main__":
    import argparse

    from benchmarks.spec.registry import names

    parser = argparse.ArgumentParser(description="The label protocols' reference (make label-reference): unseen "
                                                 "classes and noisy labels, resumable, then their report.")
    parser.add_argument("--methods", help="comma-separated (default: every method of the suite)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--results", type=Path, default=Path("results/runs.jsonl.gz"))
    parser.add_argument("--tuned", type=Path, default=Path("results/tuned"))
    parser.add_argument("--out", type=Path, default=Path("results/label_protocols.md"))
    parser.add_argument("--plots", type=Path, default=Path("results/plots"))
    args = parser.parse_args()
    raise SystemExit(reference(args.methods.split(",") if args.methods else names("methods", own=True), args.results,
                               args.tuned, args.out, args.plots, args.jobs) and 1)

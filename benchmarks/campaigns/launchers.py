"""Runs on a cluster through submitit: a sweep's cells as one SLURM array (each task the same claimed `cmhb bench`
process a local sweep runs), a study's workers as another (each the same tuning worker). `submitit-local` runs
the same jobs through submitit's local executor on this machine: a SLURM setup tried without a cluster, and how
the suite tests that path."""

from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError

LAUNCHERS = ("local", "slurm", "submitit-local")


@dataclass(frozen=True)
class Cluster:
    """Where and how big each task is.

    Attributes:
        kind: `slurm`, or `submitit-local` (submitit's local executor: the same jobs on this machine).
        partition: the SLURM partition (the cluster's default when None).
        gpus: GPUs per task.
        cpus: CPUs per task.
        minutes: a task's time limit.
        parallel: array tasks running at once.
        folder: where submitit keeps its job files and the tasks' logs.
    """

    kind: str
    partition: str | None = None
    gpus: int = 0
    cpus: int = 2
    minutes: int = 240
    parallel: int = 8
    folder: Path = Path("runs/submitit")


def add_options(parser) -> None:
    """The launcher options of `cmhb sweep` and `cmhb tune`."""
    parser.add_argument("--launcher", choices=LAUNCHERS, default="local",
                        help="local (processes here), slurm (an array job through submitit), or submitit-local "
                             "(the same jobs through submitit on this machine)")
    parser.add_argument("--slurm_partition", help="SLURM partition (default: the cluster's)")
    parser.add_argument("--slurm_gpus", type=int, default=0, help="GPUs per task")
    parser.add_argument("--slurm_cpus", type=int, default=2, help="CPUs per task")
    parser.add_argument("--slurm_minutes", type=int, default=240, help="time limit of a task, in minutes")
    parser.add_argument("--slurm_parallel", type=int, default=8, help="array tasks running at once")


def cluster_of(args) -> Cluster | None:
    """The Cluster the command's options ask for, or None to run here."""
    if args.launcher == "local":
        return None
    return Cluster(args.launcher, args.slurm_partition, args.slurm_gpus, args.slurm_cpus, args.slurm_minutes,
                   args.slurm_parallel)


def run_array(cluster: Cluster, function, arguments: list[tuple], say=print) -> list:
    """Run `function(*a)` for each tuple `a` of `arguments` as one array job; wait for them and return their
    results in order.

    Raises:
        ConfigError: SLURM was asked for where there is none.
    """
    import submitit

    try:
        executor = submitit.AutoExecutor(folder=cluster.folder / "%j",
                                         cluster="slurm" if cluster.kind == "slurm" else "local")
    except (RuntimeError, ValueError) as error:
        raise ConfigError(f"--launcher {cluster.kind}: {error} (`--launcher submitit-local` runs the same jobs "
                          "on this machine)") from error
    parameters = {"timeout_min": cluster.minutes, "gpus_per_node": cluster.gpus, "cpus_per_task": cluster.cpus}
    if cluster.kind == "slurm":
        parameters.update(slurm_partition=cluster.partition, slurm_array_parallelism=cluster.parallel)
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    jobs = executor.map_array(function, *zip(*arguments))
    say(f"submitted {len(jobs)} tasks as array job {jobs[0].job_id.split('_')[0]} ({cluster.kind}; job files and "
        f"logs in {cluster.folder})")
    return [job.result() for job in jobs]

"""A grid of runs (methods x datasets x code lengths x seeds), each cell one `cmhb bench` process.

Cells whose row already exists (same config hash) are skipped, so an interrupted sweep resumes where
it stopped: every finished cell has appended its row, an unfinished one nothing. A cell is claimed
before it runs and dies with the runner (see run_cell), so no cell ever gets two rows.
"""

import fcntl
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from benchmarks.config import DEFAULT_PRESET, ConfigError, config_hash, resolve
from benchmarks.console import PARENT, Stopped
from benchmarks.results import read_rows


@dataclass(frozen=True)
class Cell:
    method: str
    dataset: str
    bits: int
    seed: int
    preset: str = DEFAULT_PRESET

    @property
    def name(self) -> str:
        suffix = "" if self.preset == DEFAULT_PRESET else f"-{self.preset}"
        return f"{self.method}-{self.dataset}-{self.bits}b-s{self.seed}{suffix}"

    def config(self, overrides: list[str]) -> dict:
        return resolve(self.method, self.dataset, self.bits, self.seed, cell_overrides(overrides, self), self.preset)


def grid(methods: list[str], datasets: list[str], bits: list[int], seeds: list[int],
         preset: str = DEFAULT_PRESET) -> list[Cell]:
    return [Cell(m, d, b, s, preset) for d, m, b, s in itertools.product(datasets, methods, bits, seeds)]


def cell_overrides(overrides: list[str], cell: Cell) -> list[str]:
    """`--section.key=value` applies to every cell, `--NAME:section.key=value` to the cells of one dataset
    or one method."""
    out = []
    for item in overrides:
        scope, sep, rest = item.lstrip("-").partition(":")
        if not sep:
            out.append(item)
        elif scope in (cell.dataset, cell.method):
            out.append(f"--{rest}")
    return out


def plan(cells: list[Cell], overrides: list[str], results: Path) -> tuple[dict[Cell, str], list[Cell]]:
    """({cell to run: its config hash}, cells already done), by config hash against the rows in `results`.
    Every cell's configuration is checked here, before anything runs."""
    done_hashes = done_configs(results)
    todo, done = {}, []
    for cell in cells:
        digest = config_hash(cell.config(overrides))
        if digest in done_hashes:
            done.append(cell)
        else:
            todo[cell] = digest
    return todo, done


def done_configs(results: Path) -> set[str]:
    return {row["config_hash"] for row in read_rows(results)}


def bench_command(cell: Cell, overrides: list[str], group: str, results: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.cli", "bench", "--method", cell.method, "--dataset", cell.dataset,
            "--bits", str(cell.bits), "--seed", str(cell.seed), "--preset", cell.preset, "--results", str(results),
            *cell_overrides(overrides, cell), f"--logger.group={group}"]


def run_cell(cell: Cell, digest: str, overrides: list[str], group: str, results: Path, log_dir: Path,
             threads: int, running: set) -> str:
    """One cell in its own process (its own memory and seeds; stdout and stderr to a log file). Returns
    "done", "elsewhere" (another process holds the cell's claim), or why it failed.

    The cell is claimed first with a lock on `<results>.claims/<config hash>.lock` that the cell's process
    inherits and holds until it ends, whatever happens to this runner: two runners, or a rerun while an
    orphan still runs, never run one cell twice. A cell whose process ends without its row has failed."""
    claims = results.with_name(results.name + ".claims")
    claims.mkdir(parents=True, exist_ok=True)
    claim = os.open(claims / f"{digest}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "elsewhere"
        if digest in done_configs(results):  # finished by another runner since this one planned
            return "done"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "NUMBA_NUM_THREADS": str(threads), "WANDB_SILENT": "true", PARENT: str(os.getpid())}
        with open(log_dir / f"{cell.name}.log", "w") as log:
            # A session of its own: Ctrl-C reaches only the runner, which then stops the running cells.
            process = subprocess.Popen(bench_command(cell, overrides, group, results), stdout=log,
                                       stderr=subprocess.STDOUT, env=env, start_new_session=True, pass_fds=(claim,))
            running.add(process)
            try:
                status = process.wait()
            finally:
                running.discard(process)
        if status != 0:
            return f"failed (exit {status})"
        return "done" if digest in done_configs(results) else "failed (ended without its result row)"
    finally:
        os.close(claim)


def write_wandb_sweep(path: Path, cells: list[Cell], overrides: list[str], results: Path) -> None:
    """A wandb grid sweep of the same cells: `wandb sweep FILE` once, then `wandb agent ID` on each machine."""
    scoped = [o for o in overrides if ":" in o.split("=")[0]]
    if scoped:
        raise ValueError(f"per-dataset overrides {scoped} cannot be passed by a wandb agent; "
                         "put them in the dataset's config file")
    values = {key: sorted({getattr(c, key) for c in cells}) for key in ("method", "dataset", "bits", "seed")}
    config = {
        "name": path.stem, "method": "grid", "metric": {"name": "test/map_i2t", "goal": "maximize"},
        "parameters": {key: {"values": v} for key, v in values.items()},
        "command": ["${env}", "${interpreter}", "-m", "benchmarks.cli", "bench", "${args}",
                    "--results", str(results), *overrides],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def sweep(cells: list[Cell], overrides: list[str], results: Path, jobs: int = 1, group: str | None = None,
          log_dir: Path = Path("runs/sweep-logs")) -> int:
    """Run every missing cell; return the number of cells left without a row (failed, or running in another
    process). Stopped (SIGTERM, SIGINT) stops the running cells, keeps the finished rows, and propagates."""
    grid = json.dumps([[c.name for c in cells], overrides]).encode()
    group = group or f"sweep-{hashlib.sha256(grid).hexdigest()[:8]}"
    todo, done = plan(cells, overrides, results)
    print(f"{len(cells)} cells: {len(done)} already in {results}, {len(todo)} to run, {jobs} at a time "
          f"(wandb group {group}, logs in {log_dir})")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    outcomes, running = {}, set()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns) as progress, ThreadPoolExecutor(max_workers=jobs) as pool:
        task = progress.add_task("cells", total=len(todo))
        futures = {pool.submit(run_cell, c, digest, overrides, group, results, log_dir, threads, running): c
                   for c, digest in todo.items()}
        try:
            for future in as_completed(futures):
                cell = futures[future]
                outcomes[cell] = outcome = future.result()
                if outcome.startswith("failed"):
                    progress.console.print(f"[red]{cell.name} {outcome}; see {log_dir / cell.name}.log", soft_wrap=True)
                elif outcome == "elsewhere":
                    progress.console.print(f"{cell.name} is being run by another process; not run here", soft_wrap=True)
                progress.advance(task)
        except Stopped:
            for future in futures:
                future.cancel()
            for process in list(running):
                os.killpg(process.pid, signal.SIGTERM)
            for process in list(running):
                process.wait()
            progress.console.print(f"stopped: finished rows are kept in {results}; run the same command to resume")
            raise
    failed = [c for c, o in outcomes.items() if o.startswith("failed")]
    elsewhere = [c for c, o in outcomes.items() if o == "elsewhere"]
    print(f"done: {len(outcomes) - len(failed) - len(elsewhere)} ran, {len(done)} skipped, {len(failed)} failed, "
          f"{len(elsewhere)} running in another process")
    logger = cells[0].config(overrides)["logger"]
    if logger.get("kind") == "wandb":
        log_summary(cells, results, group, logger)
    return len(failed) + len(elsewhere)


def log_summary(cells: list[Cell], results: Path, group: str, logger: dict) -> None:
    """One more run in the sweep's wandb group holding the comparison table (mean, std over seeds)."""
    import wandb

    from benchmarks.run import wandb_offline
    from benchmarks.tables import load, selected, summarize

    wanted = {(c.method, c.dataset, c.bits, c.seed) for c in cells}
    rows = [r for r in read_rows(results) if (r["method"], r.get("dataset_config"), r["bits"], r["seed"]) in wanted]
    if not rows:
        return
    Path(logger.get("save_dir", ".")).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=logger.get("project"), dir=logger.get("save_dir"), group=group, name=f"{group}-summary",
                     job_type="summary", mode="offline" if wandb_offline() else "online")
    run.log({"summary": wandb.Table(dataframe=summarize(load(selected(rows, variants=True))))})
    run.finish()


def parse_list(text: str, kind=str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError as error:
        raise ConfigError(f"{text!r} is not a comma-separated list of {kind.__name__} ({error})") from error


def main_sweep(args, overrides: list[str]) -> int:
    cells = grid(parse_list(args.methods), parse_list(args.datasets), parse_list(args.bits, int),
                 parse_list(args.seeds, int), args.preset)
    if args.wandb_sweep:
        write_wandb_sweep(args.wandb_sweep, cells, overrides, args.results)
        print(f"wandb sweep config written to {args.wandb_sweep}: `wandb sweep {args.wandb_sweep}`, "
              "then `wandb agent <sweep id>` on each machine")
        return 0
    start = time.perf_counter()
    unfinished = sweep(cells, overrides, args.results, args.jobs, args.group)
    print(f"sweep took {time.perf_counter() - start:.0f} s")
    return 1 if unfinished else 0

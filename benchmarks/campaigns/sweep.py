"""A grid of runs (methods x datasets x code lengths x seeds), each cell one `cmhb bench` process.

Cells whose row already exists (same config hash) are skipped, so an interrupted sweep resumes where
it stopped: every finished cell has appended its row, an unfinished one nothing. Each distinct dataset
setting is prepared once (downloads, features) before any cell runs, so a data problem stops the sweep at
once with its own error instead of failing every cell. A cell is claimed before it runs and dies with the
runner (see run_cell), so no cell ever gets two rows.
"""

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

from benchmarks.campaigns.claims import claimed
from benchmarks.campaigns.launchers import cluster_of, run_array
from benchmarks.execution.console import PARENT, Stopped
from benchmarks.execution.record import DIRECTIONS, RunRecord
from benchmarks.execution.results import read_records, writable
from benchmarks.spec.config import PRESETS, RunSpec, class_schema, resolve
from common.errors import ConfigError, DataError


@dataclass(frozen=True)
class Cell:
    """One run of a grid: method, dataset, code length, run seed, split seed and preset."""

    method: str
    dataset: str
    bits: int
    seed: int
    preset: str = PRESETS[0]
    split_seed: int = 0
    tuned: Path | None = None  # the folder of tuned presets

    @property
    def name(self) -> str:
        suffix = ("" if self.preset == PRESETS[0] else f"-{self.preset}") + \
            (f"-split{self.split_seed}" if self.split_seed else "")
        return f"{self.method}-{self.dataset}-{self.bits}b-s{self.seed}{suffix}"

    def arguments(self, overrides: list[str]) -> list[str]:
        """The cell's overrides: the grid's that apply to it (cell_overrides), and its split seed."""
        return [*cell_overrides(overrides, self), *([f"--data.split_seed={self.split_seed}"] if self.split_seed else [])]

    def spec(self, overrides: list[str]) -> RunSpec:
        return resolve(self.method, self.dataset, self.bits, self.seed, self.arguments(overrides), self.preset,
                       tuned=self.tuned)


def grid(methods: list[str], datasets: list[str], bits: list[int], seeds: list[int], presets=(PRESETS[0],),
         split_seeds: list[int] = (0,), tuned: Path | None = None) -> list[Cell]:
    """Every cell of the grid, dataset by dataset (a method with nothing to tune has no tuned cells)."""
    from benchmarks.spec.registry import declared

    tunable = {m for m in methods if declared("methods", m).config().get("search")}
    return [Cell(m, d, b, s, preset, split, tuned) for d, preset, m, b, split, s in
            itertools.product(datasets, presets, methods, bits, split_seeds, seeds)
            if preset != "tuned" or m in tunable]


def cell_overrides(overrides: list[str], cell: Cell) -> list[str]:
    """`--section.key=value` applies to every cell, `--NAME:section.key=value` to the cells of one dataset
    or one method."""
    out = []
    for item in overrides:
        scope, rest = scoped(item)
        if scope is None:
            out.append(item)
        elif scope in (cell.dataset, cell.method):
            out.append(f"--{rest}")
    return out


def scoped(item: str) -> tuple[str | None, str]:
    """(the method or dataset an override is scoped to, or None, the override without its scope)."""
    scope, sep, rest = item.lstrip("-").partition(":")
    return (scope, rest) if sep else (None, item)


def check_scopes(overrides: list[str], cells: list[Cell]) -> None:
    """Refuse an override scoped to no method or dataset of the grid (a typo would otherwise apply to nothing).

    Raises:
        ConfigError: such an override.
    """
    methods, datasets = sorted({c.method for c in cells}), sorted({c.dataset for c in cells})
    for item in overrides:
        scope, _ = scoped(item)
        if scope is not None and scope not in methods + datasets:
            raise ConfigError(f"{item}: {scope!r} is none of this sweep's methods ({', '.join(methods)}) or datasets "
                              f"({', '.join(datasets)}); scope an override with one of them, or drop `{scope}:`")


def plan(cells: list[Cell], overrides: list[str], results: Path) -> tuple[dict[Cell, RunSpec], list[Cell]]:
    """({cell to run: its spec}, cells already done), by config hash against the rows in `results`. Every
    cell's configuration is checked here, before anything runs."""
    check_scopes(overrides, cells)
    done_hashes = done_configs(results)
    todo, done = {}, []
    for cell in cells:
        spec = cell.spec(overrides)
        if spec.hash in done_hashes:
            done.append(cell)
        else:
            todo[cell] = spec
    return todo, done


def done_configs(results: Path) -> set[str]:
    return {record.config_hash for record in read_records(results)}


def bench_command(cell: Cell, overrides: list[str], group: str, results: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.cli", "bench", "--method", cell.method, "--dataset", cell.dataset,
            "--bits", str(cell.bits), "--seed", str(cell.seed), "--preset", cell.preset, "--results", str(results),
            *(["--tuned", str(cell.tuned)] if cell.tuned else []), *cell.arguments(overrides),
            f"--logger.group={group}"]


def last_error(log: Path) -> str:
    """The last `error:` line of a cell's log (or its last line)."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return next((line for line in reversed(lines) if line.startswith("error:")), lines[-1] if lines else "")


def prepare_data(todo: dict[Cell, RunSpec], overrides: list[str]) -> None:
    """Prepare each distinct data setting of the cells to run once, in a process of its own (downloads and
    features land in the caches every cell then reads); datasets with nothing to download or encode are left
    to the cells.

    Raises:
        DataError: a preparation failed (its error line says why): every cell of it would fail the same way.
    """
    prepared = set()
    for cell, spec in todo.items():
        key = json.dumps([cell.dataset, spec.settings["data"]], sort_keys=True, default=str)
        if key in prepared or not class_schema("datasets", cell.dataset).facts.get("prepares"):
            continue
        prepared.add(key)
        command = [sys.executable, "-m", "benchmarks.cli", "prepare", "--method", cell.method, "--dataset",
                   cell.dataset, "--preset", cell.preset, *(["--tuned", str(cell.tuned)] if cell.tuned else []),
                   *cell.arguments(overrides)]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, PARENT: str(os.getpid())})
        print(done.stdout, end="", flush=True)
        if done.returncode:
            error = next((line for line in reversed(done.stderr.splitlines()) if line.startswith("error:")),
                         done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
            raise DataError(f"preparing {cell.dataset} failed, so every cell of it would: "
                            f"{error.removeprefix('error: ')}")


def run_cell(cell: Cell, digest: str, overrides: list[str], group: str, results: Path, log_dir: Path,
             threads: int, running: set | None = None) -> str:
    """One cell in its own process (its own memory and seeds; stdout and stderr to a log file). Returns
    "done", "skipped" (another runner finished it meanwhile), "elsewhere" (another process holds the cell's
    claim), or why it failed.

    The cell is claimed first (benchmarks.campaigns.claims): two runners, on one machine or several, never run one cell
    twice. A cell whose process ends without its row has failed. This is also what each task of a SLURM array
    runs (benchmarks.campaigns.launchers)."""
    with claimed(results.with_name(results.name + ".claims"), digest) as claim:
        if claim is None:
            return "elsewhere"
        if digest in done_configs(results):  # finished by another runner since this one planned
            return "skipped"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "NUMBA_NUM_THREADS": str(threads), "WANDB_SILENT": "true", PARENT: str(os.getpid())}
        log = log_dir / f"{cell.name}.log"
        running = set() if running is None else running
        with open(log, "w") as stream:
            # A session of its own: Ctrl-C reaches only the runner, which then stops the running cells.
            process = subprocess.Popen(bench_command(cell, overrides, group, results), stdout=stream,
                                       stderr=subprocess.STDOUT, env=env, start_new_session=True)
            claim.add(process.pid)
            running.add(process)
            try:
                status = process.wait()
            finally:
                running.discard(process)
        if status != 0:
            return f"failed (exit {status}): {last_error(log)}"
        return "done" if digest in done_configs(results) else "failed (ended without its result row)"


def write_wandb_sweep(path: Path, cells: list[Cell], overrides: list[str], results: Path) -> None:
    """A wandb grid sweep of the same cells: `wandb sweep FILE` once (on a wandb server), then `wandb agent ID`
    on each machine. Its metric is the validation mAP (never a test number).

    Raises:
        ConfigError: an override scoped to one dataset or method (a wandb agent passes the same to every cell).
    """
    narrowed = [o for o in overrides if scoped(o)[0] is not None]
    if narrowed:
        raise ConfigError(f"per-dataset or per-method overrides {narrowed} cannot be passed by a wandb agent; put "
                          "them in the dataset's or the method's config file")
    values = {key: sorted({getattr(c, key) for c in cells}) for key in ("method", "dataset", "bits", "seed")}
    config = {
        "name": path.stem, "method": "grid", "metric": {"name": "val/map", "goal": "maximize"},
        "parameters": {key: {"values": v} for key, v in values.items()},
        "command": ["${env}", "${interpreter}", "-m", "benchmarks.cli", "bench", "${args}",
                    "--results", str(results), *overrides],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def print_grid(cells: list[Cell], rows: dict[Cell, RunRecord], results: Path) -> None:
    """The grid's numbers, one line per cell (both directions' mAP@all of the codes)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"mAP@all of the grid's cells (rows in {results})")
    for column in ("method", "dataset", "preset", "bits", "seed", "split seed", *DIRECTIONS.values()):
        table.add_column(column, justify="right")
    for cell in cells:
        record = rows.get(cell)
        maps = [f"{record.map(d):.4f}" for d in DIRECTIONS] if record else ["-", "-"]
        table.add_row(cell.method, cell.dataset, cell.preset, str(cell.bits), str(cell.seed), str(cell.split_seed), *maps)
    Console().print(table)


def folders_size(rows: dict[Cell, RunRecord]) -> str:
    """How many run folders the grid's rows have on this machine, and their size."""
    folders = [Path(r.run_dir) for r in rows.values() if r.run_dir and Path(r.run_dir).is_dir()]
    size = sum(f.stat().st_size for folder in folders for f in folder.iterdir() if f.is_file())
    return (f"{len(folders)} run folders, {size / 1e6:,.1f} MB (--logger.save_weights=false keeps only codes and "
            "rows; features are kept only with --logger.save_features=true)")


def sweep(cells: list[Cell], overrides: list[str], results: Path, jobs: int = 1, group: str | None = None,
          log_dir: Path = Path("runs/sweep-logs"), cluster=None) -> int:
    """Run every missing cell, here (`jobs` at a time) or as a cluster array job (`cluster`,
    benchmarks.campaigns.launchers); return the number of cells left without a row (failed, or running in another
    process). Stopped (SIGTERM, SIGINT) stops the running cells, keeps the finished rows, and propagates."""
    grid_key = json.dumps([[c.name for c in cells], overrides]).encode()
    group = group or f"sweep-{hashlib.sha256(grid_key).hexdigest()[:8]}"
    todo, done = plan(cells, overrides, results)
    print(f"{len(cells)} cells: {len(done)} already in {results}, {len(todo)} to run, {jobs} at a time "
          f"(wandb group {group}, logs in {log_dir})", flush=True)
    prepare_data(todo, overrides)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    if cluster is not None:
        arguments = [(c, spec.hash, overrides, group, results, log_dir, cluster.cpus) for c, spec in todo.items()]
        outcomes = dict(zip(todo, run_array(cluster, run_cell, arguments))) if todo else {}
        for cell, outcome in outcomes.items():
            if outcome != "done":
                print(f"{cell.name} {outcome} (log: {log_dir / cell.name}.log)")
        return report(cells, todo, done, outcomes, results, group, overrides)
    outcomes, running = {}, set()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns) as progress, ThreadPoolExecutor(max_workers=jobs) as pool:
        task = progress.add_task("cells", total=len(todo))
        futures = {pool.submit(run_cell, c, spec.hash, overrides, group, results, log_dir, threads, running): c
                   for c, spec in todo.items()}
        try:
            for future in as_completed(futures):
                cell = futures[future]
                outcomes[cell] = outcome = future.result()
                if outcome.startswith("failed"):
                    progress.console.print(f"[red]{cell.name} {outcome}[/red] (log: {log_dir / cell.name}.log)",
                                           soft_wrap=True, markup=True, highlight=False)
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
    return report(cells, todo, done, outcomes, results, group, overrides)


def report(cells: list[Cell], todo: dict, done: list, outcomes: dict, results: Path, group: str,
           overrides: list[str]) -> int:
    """Print the grid's numbers and what ran; log the wandb summary; return the cells left without a row."""
    failed = [c for c, o in outcomes.items() if o.startswith("failed")]
    by_hash = {r.config_hash: r for r in read_records(results)}
    rows = {c: by_hash[h] for c in cells if (h := c.spec(overrides).hash) in by_hash}
    # A cell another process held is done once its row is there (two identical sweeps started together).
    elsewhere = [c for c, o in outcomes.items() if o == "elsewhere" and c not in rows]
    skipped = len(done) + sum(o == "skipped" or (o == "elsewhere" and c in rows) for c, o in outcomes.items())
    print_grid(cells, rows, results)
    print(f"done: {sum(o == 'done' for o in outcomes.values())} ran, {skipped} skipped (done by another process "
          f"or before), {len(failed)} failed, {len(elsewhere)} still running in another process"
          f"{' (run the same command when it ends)' if elsewhere else ''}; {folders_size(rows)}; tables and "
          "figures: `make table`, `make plot`")
    logger = cells[0].spec(overrides).logger
    if logger.get("kind") == "wandb":
        log_summary(cells, overrides, results, group, logger)
    return len(failed) + len(elsewhere)


def log_summary(cells: list[Cell], overrides: list[str], results: Path, group: str, logger: dict) -> None:
    """One more run in the sweep's wandb group holding the comparison table (mean, std over seeds)."""
    import wandb

    from benchmarks.execution.tracking import wandb_offline
    from benchmarks.reports.tables import frame_of, selected, summarize

    wanted = {c.spec(overrides).hash for c in cells}
    records = [r for r in read_records(results) if r.config_hash in wanted]
    if not records:
        return
    Path(logger.get("save_dir", ".")).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=logger.get("project"), dir=logger.get("save_dir"), group=group, name=f"{group}-summary",
                     job_type="summary", mode="offline" if wandb_offline() else "online")
    summary = summarize(frame_of(selected(records, variants=True).labelled)).drop(columns="ap")
    run.log({"summary": wandb.Table(dataframe=summary)})
    run.finish()


def main_sweep(cells: list[Cell], overrides: list[str], args) -> int:
    """`cmhb sweep`: write the grid as a wandb sweep, or run it here."""
    if args.wandb_sweep:
        write_wandb_sweep(args.wandb_sweep, cells, overrides, args.results)
        print(f"wandb sweep config written to {args.wandb_sweep}: `wandb sweep {args.wandb_sweep}` (needs a wandb "
              "server and a login), then `wandb agent <sweep id>` on each machine")
        return 0
    writable(args.results)
    start = time.perf_counter()
    unfinished = sweep(cells, overrides, args.results, args.jobs, args.group, cluster=cluster_of(args))
    print(f"sweep took {time.perf_counter() - start:.0f} s")
    return 1 if unfinished else 0

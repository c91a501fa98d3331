"""One run, built one way: `build(spec)` makes the datamodule, the method and the Trainer with one seeding
policy; `execute(run)` trains, tests and records. Benchmark runs, sweep cells, regression checks, tuning
trials, the perf scripts and the tests all build their runs here.

Seeding: the run seed is set before the data is built and again before the method is, so a method's
initialisation depends on the run seed only, never on whether the features came from a cache.
"""

import logging
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lightning as L
import torch

from benchmarks.execution import artifacts, gallery
from benchmarks.execution.console import row_written
from benchmarks.execution.evaluation import RetrievalEvaluation
from benchmarks.execution.progress import EpochLines
from benchmarks.execution.record import DIRECTIONS, GroupScores, RunRecord, Scores
from benchmarks.execution.results import append_row, code_revision
from benchmarks.execution.serving import serving_cost
from benchmarks.spec.config import RunSpec
from benchmarks.spec.registry import declared
from common.errors import ConfigError, DataError, TrainingDiverged

COLLAPSED_BELOW = 8  # fewer distinct database codes than this (or than the classes) flag a collapsed run
log = logging.getLogger("cmhb")


@dataclass
class Run:
    """A built run: its spec, set-up datamodule, untrained method, Trainer and evaluation callback, and the
    constructor arguments the method took from the data."""

    spec: RunSpec
    data: object
    method: object
    trainer: L.Trainer
    evaluation: RetrievalEvaluation
    given: dict


def silent(line: str) -> None:
    """An announce that says nothing."""


def seed(value: int) -> None:
    L.seed_everything(value, workers=True, verbose=False)


def _barrier(trainer: L.Trainer):
    """A barrier of all processes without a timeout (preparing a dataset may take hours), or None in one
    process."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    group = torch.distributed.new_group(backend="gloo", timeout=timedelta(days=365))
    return lambda: (group.monitored_barrier(), torch.distributed.destroy_process_group(group))


def prepare(data, trainer: L.Trainer, check=lambda dims: None) -> None:
    """Downloads and feature extraction where Lightning puts them (prepare_data: local rank 0 of each node, or
    global rank 0 with prepare_data_per_node=False), then `setup` on every process. Processes a cluster
    launcher started together (torchrun, SLURM) meet at a barrier first; Lightning's own launcher starts its
    other processes only after this one has prepared. `check` sees the feature widths the run will have
    (data.planned_dims) after the download and before any extraction."""
    if trainer.world_size > 1 and trainer.strategy.cluster_environment.creates_processes_externally \
            and type(trainer.strategy.cluster_environment).__name__ != "LightningEnvironment":
        trainer.strategy.setup_environment()  # the process group, so that ranks can wait for each other
    barrier = _barrier(trainer)
    if (trainer.local_rank == 0 and data.prepare_data_per_node) or trainer.global_rank == 0:
        data.prepare_data(check)
    if barrier:
        barrier()
    data.setup()


def make_trainer(spec: RunSpec, callbacks=(), logger=False) -> L.Trainer:
    """The Trainer of a run: the spec's settings (one process for a closed-form method: spec.config.settings_of),
    the evaluation and progress callbacks, no checkpoints (a run ends with its test)."""
    settings = {"enable_progress_bar": sys.stderr.isatty(), **spec.settings["trainer"]}
    return L.Trainer(logger=logger, callbacks=list(callbacks), enable_checkpointing=False, enable_model_summary=False,
                     num_sanity_val_steps=0, default_root_dir=spec.logger.get("save_dir"), **settings)


def instantiate(make, arguments, who: str):
    """`make(**arguments)` (or `make(arguments)` for one that is not a dict); settings that do not fit (a value a
    class refuses, more CCA bits than feature dimensions) become a ConfigError naming `who`."""
    try:
        return make(**arguments) if isinstance(arguments, dict) else make(arguments)
    except DataError:
        raise
    except ValueError as error:
        raise ConfigError(f"{who}: {error}") from error


def build(spec: RunSpec, datamodule=None, callbacks=(), logger=False, announce=print) -> Run:
    """Build a run.

    Args:
        spec: the run's resolved specification (benchmarks.spec.config.resolve).
        datamodule: data to use instead of the spec's dataset (synthetic data in a benchmark's shape, for the
            speed scripts; never recorded).
        callbacks: more Lightning callbacks (a tuning trial's pruning).
        logger: a Lightning logger, or False.
        announce: receives one line naming the data the run sees, one naming what the method took from it, and,
            when the output is not a terminal, one line per epoch.

    Returns:
        The Run, with its data set up and its method untrained.

    Raises:
        ConfigError: options that do not fit this data (e.g. more CCA bits than feature dimensions).
        DataError: missing or damaged data.
    """
    method_cls = declared("methods", spec.method).load()
    seed(spec.seed)
    data = datamodule or instantiate(declared("datasets", spec.dataset).load(), spec.settings["data"],
                                     f"{spec.dataset}")
    evaluation = RetrievalEvaluation()
    lines = [] if sys.stdout.isatty() else [EpochLines(announce)]
    trainer = make_trainer(spec, [evaluation, *lines, *callbacks], logger)
    who = f"{spec.method} on {spec.dataset}"
    prepare(data, trainer, lambda dims: instantiate(
        method_cls.check_widths, {"bits": spec.bits, **{f"{m}_dim": w for m, w in dims.items()}}, who))
    if data.drop_last and len(data.split.train) < data.batch_size:  # no batch: the run would never train
        raise ConfigError(f"{who}: {len(data.split.train)} training items make no batch of --data.batch_size="
                          f"{data.batch_size} when the short last batch is dropped (drop_last); give a smaller "
                          "batch size or more data")
    if not len(data.split.val):
        trainer.limit_val_batches = 0
    if not trainer.is_global_zero:  # one process speaks for a run on several
        announce = silent
    announce(f"{spec.method} | {spec.bits} bits | seed {spec.seed} | {data.summary()}")
    seed(spec.seed)
    given = instantiate(method_cls.data_arguments, data, who)
    method = instantiate(method_cls, {"bits": spec.bits, **given, **spec.settings["method"]}, who)
    if choices := data_choices(given):
        announce(f"{spec.method} took from the data: " + ", ".join(f"{k} {v}" for k, v in choices.items()))
    return Run(spec, data, method, trainer, evaluation, given)


def prepare_only(spec: RunSpec, announce=print) -> None:
    """Prepare a run's data (downloads, features into the caches) in this one process, and say what it holds."""
    data = instantiate(declared("datasets", spec.dataset).load(), spec.settings["data"], spec.dataset)
    data.prepare_data()
    data.setup()
    announce(f"prepared {data.summary()}")


def execute(run: Run, results: Path | None = None, announce=print) -> RunRecord:
    """Train, test and record a built run.

    Args:
        run: from `build`.
        results: the results file to append the row to (and save the run's folder for), or None.
        announce: receives a line for each thing written.

    Returns:
        The run's record.

    Raises:
        TrainingDiverged: a loss, gradient or fit stopped being finite (nothing is written).
        IncompleteEvaluation: fewer items were scored than the split holds (nothing is written).
    """
    start = time.perf_counter()
    try:
        run.trainer.fit(run.method, datamodule=run.data)
    except TrainingDiverged as error:
        raise TrainingDiverged(f"{run.spec.method}: {error}") from error
    middle = time.perf_counter()
    run.trainer.test(run.method, datamodule=run.data, verbose=False)
    record = finished_record(run, middle - start, time.perf_counter() - middle)
    writes = results is not None and run.trainer.is_global_zero
    folder = artifacts.run_folder(run.spec.logger["save_dir"], record) if writes else None
    try:
        if writes:
            record = replace(record, run_dir=str(folder))
            artifacts.save(folder, record, run.method, run.given, run.evaluation.collected, run.data.split,
                           run.spec.logger.get("save_features", False), run.spec.logger.get("save_weights", True))
            if run.data.has_photos:
                try:
                    record = replace(record, gallery=str(gallery.write(folder)))
                except DataError as error:  # a figure that cannot be drawn does not undo a finished run
                    log.warning(f"no retrieval gallery: {error}")
        if run.trainer.logger:
            from benchmarks.execution.tracking import log_record, sync_hint

            wandb_folder = log_record(run.trainer.logger.experiment, record)
            if results is not None:
                announce(sync_hint(wandb_folder))
        if writes:
            append_row(results, record)
    except BaseException:
        if folder is not None:  # a run folder without its row (a full disk, a stop) is a failed run's leftover
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if writes:
        row_written()
        announce(f"run folder {record.run_dir}")
        announce(f"result row appended to {results}")
    return record


def scores_of(kind: str, direction: str, result) -> Scores:
    """A direction's numbers as the record keeps them."""
    ap = [round(float(v), 6) for v in result.ap]
    if kind != "hamming":
        return Scores(kind, direction, result.map, ap=ap, empty_queries=result.empty_queries)
    return Scores(kind, direction, result.map, ap=ap, map_at={str(k): v for k, v in result.map_at.items()},
                  map_tie=result.map_tie, empty_queries=result.empty_queries, distinct_codes=result.distinct_codes,
                  precision_at={str(k): v for k, v in result.precision_at.items()},
                  pr_precision=result.pr_precision.tolist(), pr_recall=result.pr_recall.tolist(),
                  pr_empty=result.pr_empty.tolist())


def group_scores(run: Run) -> list[GroupScores]:
    """Under unseen classes, the test's scores per group of queries (seen@all, unseen@all, seen@seen,
    unseen@unseen); nothing in the closed set."""
    view = run.data.label_view
    if not len(view.unseen):
        return []
    return [GroupScores(group, queries, database, chance={d: r.chance for d, r in results["hamming"].items()},
                        scores=[scores_of(kind, d, r) for kind, by_direction in results.items()
                                for d, r in by_direction.items()])
            for group, queries, database, results in run.evaluation.score_groups(view.unseen_items)]


def data_choices(given: dict) -> dict:
    """The choices among the arguments a method took from the data (a text similarity, a batch size), which a run
    announces and its row records; feature widths, label counts and arrays are not choices."""
    return {k: v for k, v in given.items() if k not in ("image_dim", "text_dim", "num_classes")
            and isinstance(v, (str, int, float, bool))}


def finished_record(run: Run, train_seconds: float, eval_seconds: float) -> RunRecord:
    """The record of a tested run (docs/protocol.md, "Result rows")."""
    spec, results = run.spec, run.evaluation.results
    test = results["test"]
    described = run.data.describe()
    floor = min(COLLAPSED_BELOW, run.data.num_classes)
    collapsed = [d for d, r in test["hamming"].items() if r.distinct_codes < floor]
    if collapsed:
        log.warning(f"{spec.method}: collapsed codes, " + ", ".join(
            f"{test['hamming'][d].distinct_codes} distinct database codes for {DIRECTIONS[d]}" for d in collapsed)
            + f" (flagged below {floor}); its mAP measures a near-constant ranking")
    return RunRecord(
        method=spec.method, dataset=described["dataset"], dataset_config=spec.dataset, bits=spec.bits, seed=spec.seed,
        supervised=bool(getattr(run.method, "supervised", False)), config=spec.config(), config_hash=spec.hash,
        protocol=described["protocol"], backbone=described["backbone"], n_query=described["n_query"],
        n_database=described["n_database"], preset=spec.preset, variant=spec.variant,
        scores=[scores_of(kind, d, r) for kind, by_direction in test.items() for d, r in by_direction.items()],
        chance={d: r.chance for d, r in test["hamming"].items()}, split_seed=described["split_seed"],
        subset=described["subset"], n_train=described["n_train"], n_val=described["n_val"],
        data_fingerprint=described["data_fingerprint"],
        validation={d: r.map for d, r in results.get("val", {}).get("hamming", {}).items()},
        epochs=run.trainer.current_epoch, train_seconds=round(train_seconds, 3), eval_seconds=round(eval_seconds, 3),
        collapsed=collapsed, choices=data_choices(run.given), paper_metric=spec.paper_metric, study=spec.study,
        revision=code_revision(), declared_by={kind: declared(f"{kind}s", name).package for kind, name in
                                               (("method", spec.method), ("dataset", spec.dataset))},
        label_protocol=described["label_protocol"], groups=group_scores(run),
        serving=serving_cost(run.method, next(iter(run.data.test_dataloader()[0]))),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))

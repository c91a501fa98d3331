"""Weights & Biases for runs: one wandb run per bench run (config, training curves, final numbers, precision-recall
charts), written offline under the save folder when there is no API key."""

import os
from pathlib import Path

from benchmarks.execution.record import DIRECTIONS, RunRecord
from benchmarks.spec.config import RunSpec


def wandb_offline() -> bool:
    """Runs are written offline (for `wandb sync`) without an API key, or when WANDB_MODE says so."""
    return not os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "offline"


def make_logger(spec: RunSpec):
    """A WandbLogger for `logger.kind: wandb` (offline without an API key), else False (no logger)."""
    settings = dict(spec.logger)
    if settings.pop("kind") == "none":
        return False
    from lightning.pytorch.loggers import WandbLogger

    for folder_only in ("save_features", "save_weights"):  # what the run folder keeps, not wandb's business
        settings.pop(folder_only, None)
    Path(settings["save_dir"]).mkdir(parents=True, exist_ok=True)
    logger = WandbLogger(name=f"{spec.method}-{spec.dataset}-{spec.bits}b-s{spec.seed}", group=settings.pop("group"),
                         offline=wandb_offline(), config=spec.config(), **settings)
    logger._wandb_init.pop("anonymous")  # Lightning always passes it; wandb warns that it has no effect
    return logger


def log_record(experiment, record: RunRecord) -> str:
    """Final numbers into the run's summary (a dashboard's columns), each direction's precision-recall curve as a
    chart and the gallery; closes the run. Returns the run's local folder."""
    import wandb

    experiment.summary.update(record.scalars())
    for direction in DIRECTIONS:
        scores = record.score("hamming", direction)
        table = wandb.Table(columns=["radius", "recall", "precision"],
                            data=[[r, rec, prec] for r, (rec, prec) in enumerate(zip(scores.pr_recall,
                                                                                     scores.pr_precision))])
        experiment.log({f"test/pr_curve_{direction}": wandb.plot.line(table, "recall", "precision",
                                                                     title=f"precision-recall {direction}")})
    if record.gallery:
        experiment.log({"test/gallery": wandb.Image(record.gallery)})
    folder = str(Path(experiment.dir).parent)
    experiment.finish()
    return folder


def sync_hint(folder: str) -> str:
    """How to upload an offline run."""
    return f"wandb offline run {folder}; upload it with `.venv/bin/wandb sync {folder}` (after `wandb login`)"

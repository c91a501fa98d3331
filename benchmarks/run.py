"""One run: train a method on a dataset at one code length, evaluate it, record one result row."""

import logging
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import lightning as L

from benchmarks import artifacts, gallery
from benchmarks.config import ConfigError, config_hash
from benchmarks.console import quiet
from benchmarks.results import DIRECTION_NAMES, append_row
from common.errors import DataError
from datamodules import DATAMODULES
from methods import METHODS, ClosedFormHashing

COLLAPSED_BELOW = 8
log = logging.getLogger("cmhb")


def code_revision() -> str:
    """The git revision of the checkout the suite runs from, else the installed package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        revision = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return revision + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        try:
            return version("graph-cmh-bench")
        except PackageNotFoundError:
            return "unknown"


def wandb_offline() -> bool:
    """Runs are written offline (for `wandb sync`) without an API key, or when WANDB_MODE says so."""
    return not os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "offline"


def make_logger(settings: dict, config: dict):
    """A WandbLogger for `logger.kind: wandb` (offline without an API key), else no logger."""
    settings = dict(settings)
    if settings.pop("kind") == "none":
        return False
    from lightning.pytorch.loggers import WandbLogger

    run = config["run"]
    Path(settings.get("save_dir", ".")).mkdir(parents=True, exist_ok=True)
    logger = WandbLogger(name=f"{run['method']}-{run['dataset']}-{run['bits']}b-s{run['seed']}",
                         group=settings.pop("group", None), offline=wandb_offline(),
                         config={k: v for k, v in config.items() if k != "results"}, **settings)
    logger._wandb_init.pop("anonymous")  # Lightning always passes it; wandb warns that it has no effect
    return logger


def log_to_wandb(experiment, row: dict) -> None:
    """Final metrics into the run summary (a dashboard's columns) and each direction's PR curve as a chart."""
    import wandb

    experiment.summary.update({k: v for k, v in row.items() if not isinstance(v, (list, dict))})
    for direction in ("i2t", "t2i"):
        curves = row[f"curves_{direction}"]
        table = wandb.Table(columns=["radius", "recall", "precision"],
                            data=[[r, rec, prec] for r, (rec, prec) in enumerate(zip(curves["pr_recall"], curves["pr_precision"]))])
        experiment.log({f"test/pr_curve_{direction}": wandb.plot.line(table, "recall", "precision",
                                                                     title=f"precision-recall {direction}")})
    if "gallery" in row:
        experiment.log({"test/gallery": wandb.Image(row["gallery"])})
    experiment.finish()


def run(config: dict, results_path: Path | None, announce=print) -> dict:
    """Train and test as `config` says (benchmarks.config.resolve); return the row, appended to `results_path`.
    `announce` receives one line naming the data the run sees (its real sizes) before training starts."""
    quiet()
    spec = config["run"]
    method_cls, data_cls = METHODS[spec["method"]], DATAMODULES[spec["datamodule"]]
    L.seed_everything(spec["seed"], workers=True, verbose=False)
    data = data_cls(**config["data"])
    data.setup()
    announce(f"{spec['method']} | {spec['bits']} bits | seed {spec['seed']} | {data.summary()}")
    # Again: loading data may draw random numbers (a backbone built to compute features), or not (cached).
    L.seed_everything(spec["seed"], workers=True, verbose=False)
    try:
        model = method_cls.from_datamodule(data, spec["bits"], **config["method"])
    except ValueError as error:  # options that do not fit this data (e.g. more CCA bits than feature dimensions)
        raise ConfigError(f"{spec['method']} on {spec['dataset']}: {error}") from error
    for setting, choice in model.choices.items():
        announce(f"{spec['method']} chose {setting}: {choice}")
    logger = make_logger(config["logger"], config)
    trainer_settings = {"limit_val_batches": 0 if len(data.split.val) == 0 else None,
                        "enable_progress_bar": sys.stderr.isatty(), **config["trainer"]}
    if isinstance(model, ClosedFormHashing) and (str(trainer_settings.get("devices", 1)) != "1"
                                                 or trainer_settings.get("num_nodes", 1) != 1):
        # A closed-form fit has nothing for DDP to synchronise (torch refuses a model without gradients).
        announce(f"{spec['method']} is solved in closed form in one process: running on one device")
        trainer_settings.update(devices=1, num_nodes=1, strategy="auto")
    trainer = L.Trainer(logger=logger, enable_checkpointing=False, enable_model_summary=False,
                        num_sanity_val_steps=0, default_root_dir=config["logger"].get("save_dir"),
                        **trainer_settings)
    train_seconds, eval_seconds = fit_and_test(trainer, model, data)
    row = result_row(config, data, model, trainer.current_epoch)
    row.update(train_seconds=round(train_seconds, 3), eval_seconds=round(eval_seconds, 3))
    keep = results_path is not None and trainer.is_global_zero
    if keep:
        folder = artifacts.run_folder(config["logger"]["save_dir"], row)
        row["run_dir"] = str(folder)
        artifacts.save(folder, model, data, row)
        if data.has_photos:
            try:
                row["gallery"] = str(gallery.write(folder))
            except DataError as error:  # a figure that cannot be drawn does not undo a finished run
                log.warning(f"no retrieval gallery: {error}")
    if logger:
        log_to_wandb(logger.experiment, row)
    if keep:
        append_row(results_path, row)
    return row


def result_row(config: dict, data, model, epochs: int) -> dict:
    """The row of a finished run (docs/protocol.md, "Result rows"), timings aside."""
    spec, results = config["run"], model.results["test"]
    row = {**spec, "supervised": model.supervised, **data.describe(), "dataset_config": spec["dataset"],
           "epochs": epochs, "config_hash": config_hash(config), "revision": code_revision(),
           "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "config": {k: v for k, v in config.items() if k not in ("logger", "results")}, "choices": model.choices}
    for direction, result in results.items():
        row.update(result.scalars(suffix=f"_{direction}"))
        row[f"chance_{direction}"] = result.chance
        row[f"ap_{direction}"] = per_query(result.ap)  # for paired significance tests over the queries
        row[f"curves_{direction}"] = {
            "precision_at": {str(k): v for k, v in result.precision_at.items()},
            "pr_precision": result.pr_precision.tolist(), "pr_recall": result.pr_recall.tolist()}
    if "val" in model.results:  # the last epoch's validation mAP: what settings may be chosen on, never the queries
        row.update({f"val_map_{direction}": result.map for direction, result in model.results["val"].items()})
    if model.real_valued:  # labelled: cosine mAP@all of the real-valued features, not of the codes
        for direction, result in model.cosine_results["test"].items():
            row.update({f"cosine_map_{direction}": result.map, f"cosine_ap_{direction}": per_query(result.ap)})
    # Collapsed codes: fewer distinct database codes than a handful (or than the classes, for few classes).
    floor = min(COLLAPSED_BELOW, data.num_classes)
    row["collapsed_codes"] = [d for d, result in results.items() if result.distinct_codes < floor]
    if row["collapsed_codes"]:
        log.warning(f"{spec['method']}: collapsed codes, " + ", ".join(
            f"{results[d].distinct_codes} distinct database codes for {DIRECTION_NAMES[d]}"
            for d in row["collapsed_codes"]) + f" (flagged below {floor}); its mAP measures a near-constant ranking")
    return row


def fit_and_test(trainer: L.Trainer, model, data) -> tuple[float, float]:
    """Train, then evaluate on the test split; (training seconds, evaluation seconds)."""
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    middle = time.perf_counter()
    trainer.test(model, datamodule=data, verbose=False)
    return middle - start, time.perf_counter() - middle


def per_query(ap) -> list[float]:
    return [round(float(v), 6) for v in ap]

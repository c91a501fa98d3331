"""`cmhb oracle`: what choosing the epoch on the test queries adds (docs/protocol.md, "The oracle diagnostic").

The field's code scores the test queries after every epoch and reports each direction's best epoch. This
diagnostic trains each run exactly as `cmhb bench` would and, after every epoch's validation, scores the test
queries against the database too, with the random state put back afterwards, so the run's course and its last
epoch's numbers are those `bench` records. It never appends a result row and never saves a run folder.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from lightning import Callback

from benchmarks.execution.evaluation import RetrievalEvaluation
from benchmarks.execution.record import DIRECTIONS
from benchmarks.execution.results import code_revision
from benchmarks.spec.config import under_label_protocol
from benchmarks.reports.epoch_selection import CSV_NAME, EPOCHS_NAME, SUMMARY_NAME


class EpochTestScores(Callback):
    """After every validation, scores the test queries against the database with an evaluation of its own and
    keeps each epoch's validation and test mAP (of the codes) per direction in `epochs`."""

    def __init__(self):
        self.scorer = RetrievalEvaluation(map_ks=())
        self.epochs: list[dict] = []

    def on_validation_epoch_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return
        own = next(c for c in trainer.callbacks if isinstance(c, RetrievalEvaluation))
        with torch.random.fork_rng(devices=[]):  # loaders draw a seed: the run's own batches must not change
            self.scorer.evaluate(trainer, module, "oracle", trainer.datamodule.test_dataloader())
        self.epochs.append({f"{stage}_{d}": results["hamming"][d].map for d in DIRECTIONS
                            for stage, results in (("val", own.results["val"]), ("test", self.scorer.results["oracle"]))})


def identity(spec) -> dict:
    """What names a run in the diagnostic's files (the dataset under a label protocol, e.g. `wikipedia-noise0.5`,
    keeps its runs apart from the closed set's)."""
    return {"method": spec.method, "dataset": under_label_protocol(spec.dataset, spec.settings), "bits": spec.bits, "seed": spec.seed,
            "split_seed": spec.settings["data"]["split_seed"], "preset": spec.preset, "config_hash": spec.hash,
            "variant": bool(spec.variant)}


@dataclass
class OracleRow:
    """One run and direction of the diagnostic: the test mAP at the last epoch (what `bench` records), at the epoch
    the validation mAP picks, and at the best test epoch (the field's number)."""

    method: str
    dataset: str
    bits: int
    seed: int
    split_seed: int
    preset: str
    config_hash: str  # as the result row of the same run names it
    variant: bool  # settings that differ from the config files' (as a result row's `variant`)
    direction: str
    epochs: int
    last: float
    validation_selected: float
    validation_epoch: int
    test_selected: float
    test_epoch: int
    revision: str = ""  # the code's git revision, as result rows name it


def oracle_rows(spec, epochs: list[dict], last: dict, revision: str = "") -> list[OracleRow]:
    """The rows of one run from its per-epoch scores (epochs counted from 1) and its final test mAP per direction.

    Raises:
        RuntimeError: the last epoch's score differs from the final test's (the two must be one evaluation).
    """
    rows = []
    for direction in DIRECTIONS:
        test = [epoch[f"test_{direction}"] for epoch in epochs]
        validation = [epoch[f"val_{direction}"] for epoch in epochs]
        if abs(test[-1] - last[direction]) > 1e-9:
            raise RuntimeError(f"{spec.method}: the last epoch's test mAP {test[-1]} is not the final test's "
                               f"{last[direction]}; the diagnostic measured something else")
        chosen = max(range(len(validation)), key=validation.__getitem__)
        best = max(range(len(test)), key=test.__getitem__)
        rows.append(OracleRow(**identity(spec), direction=direction, epochs=len(epochs), last=last[direction],
                              validation_selected=test[chosen], validation_epoch=chosen + 1,
                              test_selected=test[best], test_epoch=best + 1, revision=revision))
    return rows


def run_oracle(spec, announce=print) -> tuple[list[OracleRow], list[dict]]:
    """Train and test one run as `bench` would, scoring the test queries after every epoch.

    Returns:
        (its rows, its per-epoch scores: one dict per epoch, with the run's identity).

    Raises:
        ConfigError: the run has no validation split (the diagnostic compares with the validation-selected epoch),
            or runs on several processes (its per-epoch test loaders are not split between them).
    """
    from benchmarks.execution.pipeline import build
    from common.errors import ConfigError

    per_epoch = EpochTestScores()
    run = build(spec, callbacks=[per_epoch], announce=announce)
    if run.trainer.world_size > 1:
        raise ConfigError("the oracle runs in one process: drop --trainer.devices / --trainer.num_nodes")
    if not len(run.data.split.val):
        raise ConfigError(f"{spec.dataset} ({run.data.protocol.name}): no validation split; the oracle compares the "
                          "test-selected epoch with the validation-selected one (use a protocol with one)")
    run.trainer.fit(run.method, datamodule=run.data)
    run.trainer.test(run.method, datamodule=run.data, verbose=False)
    last = {d: r.map for d, r in run.evaluation.results["test"]["hamming"].items()}
    return oracle_rows(spec, per_epoch.epochs, last, code_revision()), [{**identity(spec), "epoch": i + 1, **scores}
                                                        for i, scores in enumerate(per_epoch.epochs)]


def write(out: Path, rows: list[OracleRow], epochs: list[dict]) -> list[Path]:
    """DIR/oracle.csv, DIR/oracle_epochs.csv (one line per run and epoch) and DIR/oracle.md (means per
    method, dataset, bits, preset and direction).

    Returns:
        The three files' paths.
    """
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame.to_csv(out / CSV_NAME, index=False)
    pd.DataFrame(epochs).to_csv(out / EPOCHS_NAME, index=False)
    frame["test - last"] = frame.test_selected - frame["last"]
    frame["test - validation"] = frame.test_selected - frame.validation_selected
    summary = frame.groupby(["method", "dataset", "bits", "preset", "direction"], sort=False).agg(
        runs=("last", "size"), last=("last", "mean"), validation_selected=("validation_selected", "mean"),
        test_selected=("test_selected", "mean"), **{c: (c, "mean") for c in ("test - last", "test - validation")})
    single = sorted(set(frame.method[frame.epochs == 1]))
    note = (f"\n{', '.join(single)}: trained in one epoch (closed form), no epoch to choose: the three numbers are "
            "one.\n") if single else ""
    (out / SUMMARY_NAME).write_text(
        "# What choosing the epoch on the test queries adds (`cmhb oracle`; a diagnostic, never a result)\n\n"
        "Means over runs of the test mAP@all: at the last epoch (what `cmhb bench` records), at the epoch with the "
        "best validation mAP, and at the best test epoch of each direction (the field's habit).\n\n"
        + summary.reset_index().to_markdown(index=False, floatfmt=".4f") + "\n" + note)
    return [out / name for name in (CSV_NAME, EPOCHS_NAME, SUMMARY_NAME)]


# The oracle reference (docs/protocol.md): each dataset with the runs the question needs.
REFERENCE = {"mirflickr25k_mini": ("--seeds", "0,1", "--split_seeds", "0,1"), "wikipedia": ("--seeds", "0",)}


def reference(root: Path, plots: Path, methods: list[str], bits: int = 32, tuned: Path = Path("results/tuned"),
              say=print) -> int:
    """The oracle reference, resumable: for each dataset of REFERENCE, method and preset (common, and tuned where
    the method declares a search), `cmhb oracle` in a process of its own into root/<method>-<dataset>-<preset>;
    folders that finished are skipped. Then the report of every finished folder (benchmarks.reports.
    epoch_selection).

    Returns:
        The number of cells that failed.
    """
    from benchmarks.campaigns import cli
    from benchmarks.reports.epoch_selection import write as report
    from benchmarks.spec.registry import declared

    failed = 0
    for dataset, runs in REFERENCE.items():
        for method in methods:
            presets = ("common", "tuned") if declared("methods", method).config().get("search") else ("common",)
            for preset in presets:
                out = root / f"{method}-{dataset}-{preset}"
                if (out / CSV_NAME).is_file():
                    continue
                say(f"oracle {method} {dataset} {preset}", flush=True)
                failed += not cli("oracle", "--method", method, "--dataset", dataset, "--preset", preset, "--bits",
                                  str(bits), *runs, "--tuned", str(tuned), "--out", str(out), "--logger.kind=none")
    for path in report(sorted(p for p in root.iterdir() if p.is_dir()), root, plots, Path("results/runs.jsonl.gz")):
        say(f"wrote {path}")
    return failed


if __name__ == "__main__":
    import argparse

    from benchmarks.spec.registry import names

    parser = argparse.ArgumentParser(description="The oracle reference (make oracle-reference): every method's "
                                                 "`cmhb oracle` on the reference datasets, resumable, then its report.")
    parser.add_argument("--methods", help="comma-separated (default: every method of the suite)")
    parser.add_argument("--root", type=Path, default=Path("results/oracle"))
    parser.add_argument("--plots", type=Path, default=Path("results/plots"))
    args = parser.parse_args()
    raise SystemExit(reference(args.root, args.plots, args.methods.split(",") if args.methods else
                               names("methods", own=True)) and 1)

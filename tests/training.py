"""Train a method through the suite's one build path and return its test mAP per direction (learning tests)."""

from benchmarks.execution.pipeline import build
from benchmarks.spec.config import resolve


def fit_and_test(method: str, dataset: str = "toy", bits: int = 32, epochs: int = 1, seed: int = 0,
                 overrides: tuple = (), data=None) -> dict:
    """mAP@all per direction after `epochs` epochs (0: the untrained method) of a run as the config files give it,
    shrunk by `overrides` (no validation, to be quick); real-valued methods add the cosine mAP of their features as
    `cosine_i2t` / `cosine_t2i`. `data`: a datamodule to use instead of the dataset's own."""
    spec = resolve(method, dataset, bits, seed, ["--logger.kind=none", f"--trainer.max_epochs={max(epochs, 1)}",
                                                 "--trainer.check_val_every_n_epoch=1000", *overrides])
    run = build(spec, datamodule=data, announce=lambda line: None)
    if epochs:
        run.trainer.fit(run.method, datamodule=run.data)
    run.trainer.test(run.method, datamodule=run.data, verbose=False)
    results = run.evaluation.results["test"]
    maps = {direction: result.map for direction, result in results["hamming"].items()}
    maps.update({f"cosine_{direction}": result.map for direction, result in results.get("cosine", {}).items()})
    return maps


def chance(datamodule) -> float:
    """Expected mAP of a random ranking: the mean fraction of relevant database items per query."""
    q = datamodule.data.labels[datamodule.split.query].astype(float)
    d = datamodule.data.labels[datamodule.split.database].astype(float)
    return float(((q @ d.T) > 0).mean())

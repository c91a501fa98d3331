"""Train a registered method on a datamodule and return its test mAP per direction (for learning tests)."""

import lightning as L

from methods import METHODS


def fit_and_test(name: str, datamodule, bits: int = 32, epochs: int = 1, seed: int = 0, **hparams) -> dict:
    """mAP@all per direction after `epochs` epochs (0: the untrained model); real-valued methods add the
    cosine mAP of their features as `cosine_i2t` / `cosine_t2i`."""
    L.seed_everything(seed, verbose=False)
    datamodule.setup()
    model = METHODS[name].from_datamodule(datamodule, bits, **hparams)
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False, limit_val_batches=0)
    if epochs:
        trainer.fit(model, datamodule=datamodule)
    trainer.test(model, datamodule=datamodule, verbose=False)
    maps = {direction: result.map for direction, result in model.results["test"].items()}
    if model.real_valued:
        maps.update({f"cosine_{direction}": result.map for direction, result in model.cosine_results["test"].items()})
    return maps


def chance(datamodule) -> float:
    """Expected mAP of a random ranking: the mean fraction of relevant database items per query."""
    q = datamodule.data.labels[datamodule.split.query].astype(float)
    d = datamodule.data.labels[datamodule.split.database].astype(float)
    return float(((q @ d.T) > 0).mean())

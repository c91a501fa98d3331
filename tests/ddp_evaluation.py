"""Evaluate one seeded, untrained DAGNN on a toy set with N CPU processes (gloo); rank 0 writes the numbers.

Run as a script by test_distributed.py: `python ddp_evaluation.py DEVICES CACHE_DIR OUT.json`.
"""

import json
import sys

import lightning as L

from datamodules import ToyDataModule
from methods import METHODS


def main(devices: int, cache_dir: str, out: str) -> None:
    L.seed_everything(0, verbose=False)
    # 301 items: 30 queries and 271 database items, odd counts, so the samplers pad the last shard.
    data = ToyDataModule(cache_dir=cache_dir, subset=301, batch_size=16, eval_batch_size=16)
    data.setup()
    model = METHODS["dagnn"].from_datamodule(data, 16, label_embeddings_from="random")
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", logger=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.test(model, datamodule=data, verbose=False)
    if trainer.is_global_zero:
        results = model.results["test"]
        numbers = {f"{name}_{d}": value for d, r in results.items() for name, value in r.scalars().items()}
        numbers.update({f"cosine_{d}": result.map for d, result in model.cosine_results["test"].items()})
        numbers.update(world_size=trainer.world_size, n_query=len(data.split.query), n_database=len(data.split.database))
        with open(out, "w") as f:
            json.dump(numbers, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])

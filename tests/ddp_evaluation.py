"""Evaluate one seeded, untrained DAGNN on a toy set with N CPU processes (gloo); rank 0 writes the numbers.

Run as a script by test_distributed.py: `python ddp_evaluation.py DEVICES CACHE_DIR OUT.json`.
"""

import json
import sys

from benchmarks.execution.pipeline import build
from benchmarks.spec.config import resolve


def main(devices: int, cache_dir: str, out: str) -> None:
    # 301 items: 30 queries and 271 database items, odd counts, so the samplers pad the last shard.
    spec = resolve("dagnn", "toy", 16, 0, ["--logger.kind=none", "--data.subset=301", "--data.batch_size=16",
                                           "--data.eval_batch_size=16", f"--data.cache_dir={cache_dir}",
                                           "--data.label_vectors=none", "--trainer.accelerator=cpu",
                                           f"--trainer.devices={devices}",
                                           f"--trainer.strategy={'ddp' if devices > 1 else 'auto'}"])
    run = build(spec, announce=lambda line: None)
    run.trainer.test(run.method, datamodule=run.data, verbose=False)
    if run.trainer.is_global_zero:
        results = run.evaluation.results["test"]
        numbers = {f"{name}_{d}": value for d, r in results["hamming"].items() for name, value in r.scalars().items()}
        numbers.update({f"cosine_{d}": result.map for d, result in results["cosine"].items()})
        collected = run.evaluation.collected["hamming_i2t"]
        numbers.update(world_size=run.trainer.world_size, n_query=len(run.data.split.query),
                       n_database=len(run.data.split.database), saved_database_codes=len(collected["database_codes"]),
                       codes_checksum=float(abs(collected["database_codes"]).sum()))
        with open(out, "w") as f:
            json.dump(numbers, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])

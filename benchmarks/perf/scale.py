"""Every method at the real benchmarks' sizes: speed and memory on SYNTHETIC data of each benchmark's exact shape.

For each method x shape (MIRFlickr-25K, NUS-WIDE, MS-COCO; datamodules/scale.py) at 64 bits, in a fresh
process: one training epoch at the method's configured settings for that dataset (items/s), the
evaluation of both directions (encoding the queries and the database, then the Hamming metrics, and
the cosine ones for a real-valued method), the peak resident memory, and the projected time of the
method's full configured run (its epochs x one epoch + one evaluation; feature extraction not included).

    python benchmarks/perf/scale.py [--methods lsh,cagan] [--shapes nuswide] [--markdown FILE]

Speeds only: the synthetic data never gives a result row.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

from benchmarks.execution.console import quiet
from benchmarks.execution.pipeline import build
from benchmarks.spec.config import resolve
from benchmarks.spec.registry import names
from datamodules.scale import SHAPES, ScaleDataModule

SHAPE_NAMES = {"mirflickr25k": "MIRFlickr-25K", "nuswide": "NUS-WIDE", "coco": "MS-COCO"}
LOADER_KEYS = ("batch_size", "eval_batch_size", "drop_last", "num_workers")


def measure(method: str, shape: str, bits: int) -> dict:
    """One method on one shape, in this process."""
    quiet()
    spec = resolve(method, shape, bits, 0, ["--logger.kind=none"])
    epochs = spec.settings["trainer"].get("max_epochs", 1)
    one_epoch = resolve(method, shape, bits, 0, ["--logger.kind=none", "--trainer.max_epochs=1",
                                                 "--trainer.check_val_every_n_epoch=2"])
    with tempfile.TemporaryDirectory() as cache:
        data = ScaleDataModule(shape=shape, cache_dir=cache, **{k: spec.settings["data"][k] for k in LOADER_KEYS})
        start = time.perf_counter()
        run = build(one_epoch, datamodule=data, announce=lambda line: None)
        setup_seconds = time.perf_counter() - start
        run.trainer.fit(run.method, datamodule=data)
        middle = time.perf_counter()
        run.trainer.test(run.method, datamodule=data, verbose=False)
        epoch_seconds, eval_seconds = middle - start - setup_seconds, time.perf_counter() - middle
    return {"method": method, "shape": shape, "items": SHAPES[shape].items, "n_train": len(data.split.train),
            "n_query": len(data.split.query), "n_database": len(data.split.database), "setup_seconds": setup_seconds,
            "epoch_seconds": epoch_seconds, "items_per_second": len(data.split.train) / epoch_seconds,
            "eval_seconds": eval_seconds, "hamming_seconds": run.evaluation.seconds["hamming"],
            "cosine_seconds": run.evaluation.seconds.get("cosine"), "epochs": epochs,
            "projected_seconds": epochs * epoch_seconds + eval_seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def machine() -> str:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), no GPU" if not torch.cuda.is_available() else
            f"{cpu}, {os.cpu_count()} cores, {torch.cuda.get_device_name()}")


def minutes(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def table(rows: list[dict]) -> str:
    lines = ["| method | shape (train / query x database) | one epoch | items/s | evaluation, both directions "
             "(of it: Hamming / cosine metrics) | peak RSS | full run (epochs) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        metrics = f"{r['hamming_seconds']:.1f} s" + (f" / {r['cosine_seconds']:.1f} s" if r["cosine_seconds"] else "")
        lines.append(f"| {r['method']} | {SHAPE_NAMES.get(r['shape'], r['shape'])} ({r['n_train']:,} / "
                     f"{r['n_query']:,} x {r['n_database']:,}) | {r['epoch_seconds']:.1f} s | "
                     f"{r['items_per_second']:,.0f} | {r['eval_seconds']:.1f} s ({metrics}) | "
                     f"{r['peak_rss_mb'] / 1024:.1f} GB | {minutes(r['projected_seconds'])} ({r['epochs']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(names("methods")))
    parser.add_argument("--shapes", default=",".join(SHAPE_NAMES))
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--markdown", help="also write the table, with the machine, to this file")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.bits)))
        return
    rows = []
    for shape in args.shapes.split(","):
        for method in args.methods.split(","):
            done = subprocess.run([sys.executable, __file__, "--one", method, shape, "--bits", str(args.bits)],
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{method} on the {shape} shape failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = f"Machine: {machine()}. {args.bits} bits.\n\n{table(rows)}\n"
    print("\n" + text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()

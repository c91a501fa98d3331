"""Console entry point of the suite (`cmhb`). Only `bench` for now: one method, dataset, code length, seed."""

import argparse
import sys
from pathlib import Path

from benchmarks.config import resolve
from benchmarks.results import print_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cmhb", description="Graph-based cross-modal hashing benchmark suite.")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "bench", allow_abbrev=False, help="train and evaluate one method on one dataset at one code length",
        epilog="Any config key can be overridden: --method.lr=0.01 --data.subset=500 --trainer.max_epochs=3")
    bench.add_argument("--method", required=True)
    bench.add_argument("--dataset", required=True)
    bench.add_argument("--bits", type=int, required=True)
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--results", type=Path, default=Path("results/runs.jsonl"),
                       help="JSON-lines file the result row is appended to")
    args, overrides = parser.parse_known_args(argv)
    bad = [o for o in overrides if not (o.startswith("--") and "." in o.split("=")[0])]
    if bad:
        parser.error(f"unrecognised arguments {bad}; overrides look like --section.key=value")

    from benchmarks.run import run  # heavy imports only once the arguments are known good

    config = resolve(args.method, args.dataset, args.bits, args.seed, overrides)
    row = run(config, args.results)
    print_summary(row)
    print(f"result row appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

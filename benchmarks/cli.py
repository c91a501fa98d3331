"""Console entry point of the suite (`cmhb`): bench (one run), sweep (a grid of runs), table, plot, regress."""

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
    sweep = commands.add_parser(
        "sweep", allow_abbrev=False, help="run a grid of cells, skipping those already in the results",
        epilog="Overrides apply to every cell (--method.lr=0.01) or to one dataset (--wikipedia:data.data_dir=DIR).")
    sweep.add_argument("--methods", required=True, help="comma-separated, e.g. cagan,sgrn,egath,dagnn")
    sweep.add_argument("--datasets", required=True, help="comma-separated dataset config names")
    sweep.add_argument("--bits", default="16,32,64,128")
    sweep.add_argument("--seeds", default="0")
    sweep.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes")
    sweep.add_argument("--group", help="wandb group of the cells' runs (default: derived from the grid)")
    sweep.add_argument("--results", type=Path, default=Path("results/runs.jsonl"))
    sweep.add_argument("--wandb-sweep", type=Path, help="only write a wandb sweep config of the grid to this file")
    table = commands.add_parser("table", help="Markdown, LaTeX and CSV tables from the result rows")
    table.add_argument("--results", type=Path, default=Path("results/runs.jsonl"))
    table.add_argument("--out", type=Path, default=Path("results"))
    table.add_argument("--readme", type=Path, default=Path("results/README.md"),
                       help="Markdown file whose tables section is rewritten")
    plot = commands.add_parser("plot", help="PNG plots from the result rows")
    plot.add_argument("--results", type=Path, default=Path("results/runs.jsonl"))
    plot.add_argument("--out", type=Path, default=Path("results/plots"))
    plot.add_argument("--bits", type=int, default=64, help="code length of the precision-recall and P@K curves")
    regress = commands.add_parser("regress", help="re-run the CI regression baselines and compare")
    regress.add_argument("baselines", nargs="*", type=Path, help="baseline files (default: results/regression/*.json)")
    regress.add_argument("--update", action="store_true", help="rewrite the baselines with the new numbers")
    args, overrides = parser.parse_known_args(argv)
    bad = [o for o in overrides if not (o.startswith("--") and "." in o.split("=")[0])]
    if bad or (overrides and args.command not in ("bench", "sweep")):
        parser.error(f"unrecognised arguments {bad or overrides}; overrides look like --section.key=value (bench and sweep only)")

    if args.command == "sweep":
        from benchmarks.sweep import main_sweep

        return main_sweep(args, overrides)
    if args.command == "regress":
        from benchmarks.regress import REGRESSION_DIR, regress

        return 1 if regress(args.baselines or sorted(REGRESSION_DIR.glob("*.json")), args.update) else 0
    if args.command in ("table", "plot"):
        from benchmarks import plots, tables

        written = (tables.build(args.results, args.out, args.readme) if args.command == "table"
                   else plots.build(args.results, args.out, args.bits))
        print("\n".join(f"wrote {path}" for path in written))
        return 0

    from benchmarks.run import run  # heavy imports only once the arguments are known good

    config = resolve(args.method, args.dataset, args.bits, args.seed, overrides)
    row = run(config, args.results)
    print_summary(row)
    print(f"result row appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

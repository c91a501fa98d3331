"""Console entry point of the suite (`cmhb`): bench, sweep, table, plot, regress, list.

Expected user errors (unknown method or dataset, a bad or misspelt option, missing or damaged data, a
failed download) end in one line `error: ...` and a non-zero status, never a traceback.
"""

import argparse
import sys
from pathlib import Path
from typing import Literal

from jsonargparse import ActionYesNo, ArgumentParser

from benchmarks.config import (
    DEFAULT_DATASET,
    DEFAULT_PRESET,
    RESULTS,
    ConfigError,
    check_name,
    explain,
    flatten,
    known,
    preset_layer,
    resolve,
)
from benchmarks.console import Stopped, die_with_parent, quiet, stop_on_signals
from common.errors import DataError, TrainingDiverged

SECTIONS = ("--method.", "--data.", "--trainer.", "--logger.")


def bench(argv: list[str]) -> int:
    """Train and evaluate one method on one dataset at one code length; append its result row."""
    selector = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    selector.add_argument("--method")
    selector.add_argument("--dataset", default=DEFAULT_DATASET)
    selector.add_argument("--preset", default=DEFAULT_PRESET)
    chosen, rest = selector.parse_known_args(argv)
    if chosen.method is None:
        if {"-h", "--help"} & set(rest):
            print("usage: cmhb bench --method METHOD [--dataset DATASET] [--preset common|paper] --bits BITS\n"
                  "                  [--seed SEED] [--config FILE] [--print_config] [--section.key=value ...]\n\n"
                  f"methods: {', '.join(known('methods'))}\ndatasets: {', '.join(known('datasets'))} "
                  f"(default {DEFAULT_DATASET})\npresets: common (default: one backbone and protocol for all), "
                  "paper (each method as its authors ran it)\n"
                  "`cmhb bench --method METHOD --help` lists that method's options.")
            return 0
        raise ConfigError(f"--method is required; one of {', '.join(known('methods'))} (`cmhb list`)")
    if "--print_config" in rest and chosen.preset != DEFAULT_PRESET:
        changes, report = preset_layer(chosen.method, chosen.dataset, chosen.preset)
        print(f"# preset {chosen.preset} of {chosen.method} on {chosen.dataset} changes, against the common preset:")
        print("\n".join(f"#   {key}: {value}" for key, value in flatten(changes).items()) or "#   nothing")
        print(f"#   the authors report: {report}" if report else "", end="\n" if report else "")
    config = resolve(chosen.method, chosen.dataset, args=rest, preset=chosen.preset)
    results = writable(Path(config["results"]))

    from benchmarks.results import print_summary
    from benchmarks.run import run  # heavy imports only once the arguments are known good

    row = run(config, results)
    print_summary(row)
    print(f"result row appended to {results}")
    return 0


def writable(path: Path) -> Path:
    """`path` if a result row can be appended there (checked before any work starts)."""
    if path.is_dir():
        raise ConfigError(f"--results {path} is a directory; give a file such as {path / 'results.jsonl'}")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not (path.exists() or _can_create(parent)):
        raise ConfigError(f"--results {path}: cannot write there ({parent} is not a writable folder)")
    return path


def _can_create(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the command's own arguments, config overrides `--section.key=value` or `--scope:section.key=value`)."""
    overrides = [a for a in argv if a.startswith(SECTIONS) or (a.startswith("--") and ":" in a.split("=")[0])]
    return [a for a in argv if a not in overrides], overrides


def sweep(argv: list[str]) -> int:
    """A grid of runs, each cell its own `cmhb bench` process; cells already in the results are skipped."""
    own, overrides = split_overrides(argv)
    parser = ArgumentParser(prog="cmhb sweep", exit_on_error=False, default_meta=False,
                            description="Run a grid of cells, skipping those already in the results. Overrides "
                                        "apply to every cell (--method.lr=0.01), to one dataset "
                                        "(--wikipedia:data.subset=500) or to one method (--cagan:method.lr=0.001).")
    parser.add_argument("--methods", type=str, required=True, help="comma-separated, e.g. cagan,sgrn,egath,dagnn")
    parser.add_argument("--datasets", type=str, default=DEFAULT_DATASET, help="comma-separated dataset config names")
    parser.add_argument("--bits", type=str, default="16,32,64,128")
    parser.add_argument("--seeds", type=str, default="0")
    parser.add_argument("--preset", type=str, default=DEFAULT_PRESET, help="common, or paper (the authors' settings)")
    parser.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes")
    parser.add_argument("--group", type=str | None, default=None, help="wandb group of the cells' runs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--wandb_sweep", type=Path | None, default=None,
                        help="only write a wandb sweep config of the grid to this file")
    args = parse(parser, own)
    from benchmarks.sweep import main_sweep

    return main_sweep(args, overrides)


def report_parser(prog: str, description: str, out: Path) -> ArgumentParser:
    parser = ArgumentParser(prog=prog, exit_on_error=False, default_meta=False, description=description)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the result rows (JSON lines)")
    parser.add_argument("--out", type=Path, default=out, help="folder the files are written to")
    parser.add_argument("--datasets", type=str | None, default=None, help="comma-separated; default: all in the rows")
    parser.add_argument("--methods", type=str | None, default=None, help="comma-separated; default: all in the rows")
    parser.add_argument("--variants", action=ActionYesNo, default=False,
                        help="also show rows whose settings differ from the config files")
    return parser


def table(argv: list[str]) -> int:
    parser = report_parser("cmhb table", "Markdown, LaTeX and CSV tables from the result rows.", Path("runs/tables"))
    parser.add_argument("--readme", type=Path | None, default=None,
                        help="a Markdown file whose marked tables section is rewritten")
    args = parse(parser, argv)
    from benchmarks import tables

    written = tables.build(args.results, args.out, args.readme, selection(args))
    print("\n".join(f"wrote {path}" for path in written))
    return 0


def plot(argv: list[str]) -> int:
    parser = report_parser("cmhb plot", "Figures from the result rows.", Path("runs/plots"))
    parser.add_argument("--bits", type=int, default=64, help="code length of the precision-recall and P@K curves")
    args = parse(parser, argv)
    from benchmarks import plots

    written = plots.build(args.results, args.out, args.bits, selection(args))
    print("\n".join(f"wrote {path}" for path in written))
    return 0


def selection(args) -> dict:
    def names(text, kind):
        chosen = [x.strip() for x in text.split(",") if x.strip()] if text else None
        for name in chosen or ():
            check_name(kind, name)
        return chosen

    return {"datasets": names(args.datasets, "datasets"), "methods": names(args.methods, "methods"),
            "variants": args.variants}


def regress(argv: list[str]) -> int:
    parser = ArgumentParser(prog="cmhb regress", exit_on_error=False, default_meta=False,
                            description="Re-run the CI regression baselines (results/regression) and compare mAP.")
    parser.add_argument("baselines", type=Path, nargs="*", default=[],
                        help="baseline files (default: results/regression/*.json)")
    # Not --update: jsonargparse's Namespace has an update() method, which args.update would return.
    parser.add_argument("--rewrite", action=ActionYesNo, default=False, help="rewrite the baselines with the new numbers")
    args = parse(parser, argv)
    from benchmarks.regress import REGRESSION_DIR
    from benchmarks.regress import regress as check

    return 1 if check(args.baselines or sorted(REGRESSION_DIR.glob("*.json")), args.rewrite) else 0


def run_parser(prog: str, description: str) -> ArgumentParser:
    parser = ArgumentParser(prog=prog, exit_on_error=False, default_meta=False, description=description)
    parser.add_argument("run", type=Path, help="a run folder (a result row's run_dir)")
    return parser


def evaluate(argv: list[str]) -> int:
    """Recompute every metric of a saved run from its codes; compare with its result row."""
    args = parse(run_parser("cmhb evaluate", "Recompute a saved run's metrics from its codes."), argv)
    from benchmarks import artifacts
    from benchmarks.results import print_summary

    numbers, row = artifacts.evaluate(args.run)
    print_summary({**row, **numbers})
    differ = {k: (v, row.get(k)) for k, v in numbers.items() if row.get(k) != v}
    if differ:
        print(f"{len(differ)} of {len(numbers)} numbers differ from the run's row: {differ}")
        return 1
    print(f"all {len(numbers)} numbers equal the run's row")
    return 0


def encode(argv: list[str]) -> int:
    """Hash new features with a saved run's trained method."""
    parser = run_parser("cmhb encode", "Hash new features (a .npy matrix, one row per item) with a run's method.")
    parser.add_argument("--features", type=Path, required=True, help=".npy file, (items, dimensions)")
    parser.add_argument("--modality", type=Literal["image", "text"], required=True)
    parser.add_argument("--out", type=Path, required=True, help=".npy file for the +-1 codes (int8)")
    args = parse(parser, argv)
    import numpy as np

    from benchmarks import artifacts

    try:
        features = np.load(args.features)
    except (OSError, ValueError) as error:
        raise DataError(f"{args.features}: not a readable .npy matrix ({error})") from error
    codes = artifacts.encode(args.run, features, args.modality)
    np.save(args.out, codes)
    print(f"wrote {args.out}: {codes.shape[0]} codes of {codes.shape[1]} bits")
    return 0


def gallery(argv: list[str]) -> int:
    """A saved run's retrieval gallery (PNG in the run folder)."""
    parser = run_parser("cmhb gallery", "Fixed queries with their top 10 results, relevant ones marked.")
    parser.add_argument("--photos", type=Path | None, default=None,
                        help="folder of photos named <item id>.jpg, for a dataset that carries image features")
    args = parse(parser, argv)
    from benchmarks import gallery as galleries

    print(f"wrote {galleries.write(args.run, args.photos)}")
    return 0


def listing(argv: list[str]) -> int:
    """Methods and datasets by name, with what each is."""
    parse(ArgumentParser(prog="cmhb list", exit_on_error=False, description="Name the methods and datasets."), argv)
    from benchmarks.config import CONFIG_DIR
    from methods import METHODS

    print("methods:")
    for name in known("methods"):
        method = METHODS[name]
        print(f"  {name:<12} {'supervised' if method.supervised else 'unsupervised':<13}"
              f"{method.__doc__.strip().splitlines()[0]}")
    print("datasets:")
    for name in known("datasets"):
        head = (CONFIG_DIR / "datasets" / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ")
        print(f"  {name:<18} {head}")
    return 0


def parse(parser: ArgumentParser, argv: list[str]):
    try:
        return parser.parse_args(argv)
    except Exception as error:  # jsonargparse raises several types; all are a bad argument here
        raise ConfigError(f"{explain(error, parser)} (see `{parser.prog} --help`)") from error


COMMANDS = {"bench": bench, "sweep": sweep, "table": table, "plot": plot, "regress": regress, "evaluate": evaluate,
            "encode": encode, "gallery": gallery, "list": listing}


def main(argv: list[str] | None = None) -> int:
    quiet()
    stop_on_signals()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: cmhb {" + ",".join(COMMANDS) + "} ...   (`cmhb COMMAND --help` for each)\n"
              "  bench    train and evaluate one method on one dataset at one code length\n"
              "  sweep    a grid of runs, resumable\n  table    comparison tables from result rows\n"
              "  plot     figures from result rows\n  regress  re-run the CI regression baselines\n"
              "  evaluate recompute a saved run's metrics from its codes\n"
              "  encode   hash new features with a saved run's method\n"
              "  gallery  a saved run's retrieval gallery\n  list     the methods and datasets")
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    try:
        die_with_parent()
        if command is None:
            raise ConfigError(f"unknown command {argv[0]!r}; one of {', '.join(COMMANDS)}")
        return command(argv[1:])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (DataError, TrainingDiverged) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Stopped as stop:
        print(f"{stop}: nothing more was written", file=sys.stderr)
        return stop.status


if __name__ == "__main__":
    sys.exit(main())

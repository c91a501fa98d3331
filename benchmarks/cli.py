"""Console entry point of the suite: `cmhb COMMAND ...` (`cmhb --help` lists the commands).

Arguments are checked before anything heavy is imported: a misspelt name, option or value is one line
`error: ...` within a second. Every error a user can cause (a bad argument, missing or damaged data, a failed
download, a diverged run) is one `error:` line and a non-zero status, never a traceback: 2 for arguments and
config files, 1 for data and runs that failed.
"""

import argparse
import signal
import sys
import textwrap
from pathlib import Path

from benchmarks.campaigns.launchers import add_options, cluster_of
from benchmarks.campaigns.tuning import STORAGE, Study, search_space, study_name, work
from benchmarks.campaigns.tuning import budget as tuning_budget
from benchmarks.execution.console import (
    Stopped,
    die_with_parent,
    pass_on,
    quiet,
    stop_on_signals,
    stop_within,
)
from benchmarks.spec.config import (
    DEFAULT_DATASET,
    MAX_BITS,
    MAX_SEED,
    PRESETS,
    RESULTS,
    SECTIONS,
    parse_list,
    print_config,
    read_config_file,
    resolve,
    whole,
)
from benchmarks.spec.registry import declared, names
from common.errors import ConfigError, DataError, IncompleteEvaluation, TrainingDiverged


class CommandParser(argparse.ArgumentParser):
    """A command's parser whose errors are raised (main prints them as one line), never printed with a usage."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see `{self.prog} --help`)")


def command_parser(prog: str, description: str, add_help: bool = True) -> CommandParser:
    return CommandParser(prog=prog, description=description, allow_abbrev=False, add_help=add_help)


def add_method_and_dataset(parser) -> None:
    """The --method (required) and --dataset arguments of the commands about one method's runs."""
    parser.add_argument("--method", required=True, help="a method (`cmhb list`)")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="a dataset (`cmhb list`)")


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the command's own arguments, `--section.key=value` overrides, optionally scoped `--NAME:section.key=v`).
    An override may also be given as two words, `--section.key value`."""
    own, overrides, items = [], [], iter(argv)
    for item in items:
        key = item.removeprefix("--").split("=")[0]
        if item.startswith("--") and (key.split(":")[-1].split(".")[0] in SECTIONS and "." in key):
            overrides.append(item if "=" in item else f"{item}={next(items, '')}")
        else:
            own.append(item)
    return own, overrides


def bench_parser() -> CommandParser:
    parser = command_parser("cmhb bench", "Train and evaluate one method on one dataset at one code length; "
                                          "append its result row.", add_help=False)
    parser.add_argument("--method", help="a method (`cmhb list`); or the `run` section of --config")
    parser.add_argument("--dataset", help=f"a dataset (`cmhb list`; default {DEFAULT_DATASET})")
    parser.add_argument("--preset", choices=PRESETS, help="common (default: one backbone and protocol for all) or "
                                                          "paper (the method as its authors ran it)")
    parser.add_argument("--bits", help="code length")
    parser.add_argument("--seed", help="run seed (initialisation, batch order; default 0)")
    parser.add_argument("--config", type=Path, help="a YAML file of settings, as --print_config writes it")
    parser.add_argument("--print_config", action="store_true", help="print the run's settings as YAML and stop")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file the row is appended to")
    parser.add_argument("--tuned", type=Path, help="the folder of tuned presets (default runs/tune, where `cmhb tune` "
                                                   "writes; the committed reference's: results/tuned)")
    parser.add_argument("-h", "--help", action="store_true", help="show this help (with a method: its options)")
    return parser


def type_text(tree) -> str:
    """An option's type, short: `float`, `int | null`, `{'a', 'b'}`, `list[float]`."""
    if isinstance(tree, str):
        return tree
    (kind, inner), = tree.items()
    if kind == "literal":
        return "{" + ", ".join(map(repr, inner)) + "}"
    if kind == "union":
        return " | ".join(map(type_text, inner))
    return f"{kind}[{', '.join(map(type_text, inner if isinstance(inner, list) else [inner]))}]"


def options_help(method: str, dataset: str) -> str:
    """Every option of a run of `method` on `dataset`, one line of prose each, by section."""
    from benchmarks.spec.config import section_options

    blocks = []
    for section, options in section_options(method, dataset).items():
        owner = {"method": method, "data": dataset, "trainer": "Lightning's Trainer", "logger": "outputs"}[section]
        lines = [f"{section} options ({owner}):"]
        for key, option in options.items():
            detail = f"(type: {type_text(option.type)}, default: {option.default})"
            text = f"{option.help} {detail}" if option.help else detail
            lines.append(f"  --{section}.{key} {key.split('.')[-1].upper()}")
            lines.extend(textwrap.wrap(text, 110, initial_indent=" " * 8, subsequent_indent=" " * 8))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def bench(argv: list[str]) -> int:
    """Train and evaluate one method on one dataset at one code length; append its result row."""
    own, overrides = split_overrides(argv)
    parser = bench_parser()
    args = parser.parse_args(own)
    identity = {}  # the `run` section of --config: what the file's run is
    if args.config is not None:
        identity = read_config_file(args.config).get("run") or {}
    method = args.method or identity.get("method")
    dataset = args.dataset or identity.get("dataset") or DEFAULT_DATASET
    preset = args.preset or identity.get("preset") or PRESETS[0]
    if args.help:
        parser.print_help()
        if method:
            declared("methods", method), declared("datasets", dataset)
            print(f"\n{options_help(method, dataset)}")
        else:
            print(f"\nmethods: {', '.join(names('methods'))}\ndatasets: {', '.join(names('datasets'))}\n"
                  "`cmhb bench --method METHOD [--dataset DATASET] --help` lists that run's options.")
        return 0
    if method is None:
        raise ConfigError(f"--method is required; one of {', '.join(names('methods'))} (`cmhb list`)")
    tuned = args.tuned or (Path(identity["tuned"]) if identity.get("tuned") else None)

    spec = resolve(method, dataset, args.bits, args.seed, overrides, preset, args.config, tuned)
    if args.print_config:
        print(print_config(spec), end="")
        return 0
    from benchmarks.execution.results import writable

    results = writable(args.results)
    from benchmarks.execution.pipeline import build, execute  # heavy imports only once the arguments are known good
    from benchmarks.execution.results import print_summary
    from benchmarks.execution.tracking import make_logger

    notes = []
    run = build(spec, logger=make_logger(spec))
    record = execute(run, results, announce=notes.append)
    if run.trainer.is_global_zero:
        print_summary(record)
        print("\n".join(notes))
    return 0


def oracle(argv: list[str]) -> int:
    """Measure what choosing the epoch on the test queries adds (a diagnostic: it writes no result row)."""
    own, overrides = split_overrides(argv)
    parser = command_parser("cmhb oracle", "Train runs as `cmhb bench` would and, after every epoch, score the test "
                            "queries too, as the field's code does; write DIR/oracle.csv (the last epoch, the "
                            "validation-selected and the test-selected epoch's test mAP per run and direction), "
                            "DIR/oracle_epochs.csv and DIR/oracle.md. A diagnostic: no result row, no run folder.")
    add_method_and_dataset(parser)
    parser.add_argument("--preset", choices=PRESETS, default=PRESETS[0], help="common, paper or tuned")
    parser.add_argument("--bits", default="32", help="code length")
    parser.add_argument("--seeds", default="0", help="comma-separated run seeds")
    parser.add_argument("--split_seeds", default="0", help="comma-separated split seeds")
    parser.add_argument("--tuned", type=Path, help="the folder of tuned presets (default runs/tune)")
    parser.add_argument("--out", type=Path, required=True, help="the folder of the diagnostic's files")
    args = parser.parse_args(own)
    print("oracle: a diagnostic of test-selected epochs; it never appends a result row or saves a run folder")
    specs = [resolve(args.method, args.dataset, args.bits, seed, [*overrides, f"--data.split_seed={split_seed}",
                                                                  "--trainer.check_val_every_n_epoch=1"],
                     args.preset, tuned=args.tuned)
             for split_seed in parse_list(args.split_seeds, int) for seed in parse_list(args.seeds, int)]
    from benchmarks.campaigns.oracle import run_oracle, write

    rows, epochs = [], []
    for spec in specs:
        run_rows, run_epochs = run_oracle(spec)
        rows += run_rows
        epochs += run_epochs
        for row in run_rows:
            print(f"{spec.method} seed {row.seed} split {row.split_seed} {row.direction}: last {row.last:.4f}, "
                  f"validation-selected {row.validation_selected:.4f} (epoch {row.validation_epoch}), test-selected "
                  f"{row.test_selected:.4f} (epoch {row.test_epoch}) of {row.epochs}")
    print("wrote " + ", ".join(map(str, write(args.out, rows, epochs))))
    return 0


def prepare(argv: list[str]) -> int:
    """Download and encode a dataset into the caches once (before a sweep, or runs on several machines)."""
    own, overrides = split_overrides(argv)
    parser = command_parser("cmhb prepare", "Download, extract and encode a dataset into the caches, as a run of "
                            "METHOD would (a method's config and preset may change the backbone), so that later runs "
                            "only load.")
    add_method_and_dataset(parser)
    parser.add_argument("--preset", choices=PRESETS, default=PRESETS[0], help="common, paper or tuned")
    parser.add_argument("--tuned", type=Path, help="the folder of tuned presets (default runs/tune)")
    args = parser.parse_args(own)
    spec = resolve(args.method, args.dataset, 1, 0, overrides, args.preset, tuned=args.tuned)
    from benchmarks.execution.pipeline import prepare_only

    prepare_only(spec)
    return 0


def sweep(argv: list[str]) -> int:
    """A grid of runs, each cell its own `cmhb bench` process; cells already in the results are skipped."""
    own, overrides = split_overrides(argv)
    parser = command_parser("cmhb sweep", "Run a grid of cells, skipping those already in the results. Overrides "
                            "apply to every cell (--method.lr=0.01), to one dataset (--wikipedia:data.subset=500) "
                            "or to one method (--cagan:method.lr=0.001).")
    parser.add_argument("--methods", required=True, help="comma-separated, e.g. cagan,sgrn,egath,dagnn")
    parser.add_argument("--datasets", default=DEFAULT_DATASET, help="comma-separated dataset names")
    parser.add_argument("--bits", default="16,32,64,128", help="comma-separated code lengths")
    parser.add_argument("--seeds", default="0", help="comma-separated run seeds")
    parser.add_argument("--split_seeds", default="0", help="comma-separated split seeds (other queries, training "
                                                           "and validation items, database order)")
    parser.add_argument("--presets", default=PRESETS[0], help="comma-separated: common, paper (the authors' settings), "
                                                              "tuned (a study's; methods with nothing to tune have none)")
    parser.add_argument("--tuned", type=Path, help="the folder of tuned presets (default runs/tune)")
    parser.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes")
    parser.add_argument("--group", help="wandb group of the cells' runs")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file of the rows")
    parser.add_argument("--wandb_sweep", type=Path, help="only write a wandb sweep config of the grid to this file")
    add_options(parser)
    args = parser.parse_args(own)
    if args.jobs < 1:
        raise ConfigError(f"--jobs: expected a positive integer, got {args.jobs}")
    from benchmarks.campaigns.sweep import grid, main_sweep

    presets = parse_list(args.presets)
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ConfigError(f"--presets: unknown {unknown[0]!r}; presets: {', '.join(PRESETS)}")
    cells = grid(parse_list(args.methods), parse_list(args.datasets), parse_list(args.bits, int),
                 parse_list(args.seeds, int), presets, parse_list(args.split_seeds, int), args.tuned)
    return main_sweep(cells, overrides, args)


def tune(argv: list[str]) -> int:
    """Search a method's settings on a dataset's validation split (Optuna); write its tuned preset."""
    own, overrides = split_overrides(argv)
    parser = command_parser("cmhb tune", "Search a method's declared settings on a dataset's validation split with "
                            "the dataset's budget (the same for every method; Optuna, TPE, median pruning), then write "
                            "the best as the method's tuned preset there (`--preset tuned`). The test queries are never "
                            "encoded. Several workers, here or on other machines, can share one study.")
    add_method_and_dataset(parser)
    parser.add_argument("--bits", type=int, help="the code length of the study (default: the dataset's, 32)")
    parser.add_argument("--trials", type=int, help="the study's total number of trials (default: the dataset's)")
    parser.add_argument("--epochs", type=int, help="the epoch cap of a trial (default: the dataset's)")
    parser.add_argument("--study", help="the study's name (default: METHOD-DATASET-BITSb)")
    parser.add_argument("--storage", default=str(STORAGE), help="a journal file (default) or an Optuna database URL "
                                                                "(postgresql://..., mysql://..., sqlite:///...)")
    parser.add_argument("--tuned", type=Path, help="the folder the tuned preset is written to, whatever the storage "
                                                   "(default runs/tune, where `--preset tuned` looks)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (local) or array tasks (slurm)")
    parser.add_argument("--trials_only", action="store_true", help="run trials only; another command (the one that "
                                                                   "started this worker) writes the tuned preset")
    add_options(parser)
    args = parser.parse_args(own)
    declared("methods", args.method), declared("datasets", args.dataset)
    budget = tuning_budget(args.dataset)
    # An option given as 0 is refused below, never taken for "the default".
    bits, trials, epochs = (budget_value if given is None else given for given, budget_value in
                            ((args.bits, budget.bits), (args.trials, budget.trials), (args.epochs, budget.epochs)))
    whole("--bits", bits, 1, MAX_BITS), whole("--seed", args.seed, 0, MAX_SEED)
    for option, value in (("--trials", trials), ("--epochs", epochs), ("--workers", args.workers)):
        whole(option, value, 1)
    name = args.study or study_name(args.method, args.dataset, bits, overrides)
    study = Study(args.method, args.dataset, bits, trials, epochs, name, args.storage, args.seed, tuple(overrides),
                  args.tuned)

    if not search_space(args.method, args.dataset, bits):
        print(f"{args.method} declares nothing to tune: its tuned preset is its common one")
        return 0
    study.trial_spec({})  # the trials' settings are checked before any trial runs
    cluster = cluster_of(args)
    if cluster is not None:
        from benchmarks.campaigns.launchers import run_array

        run_array(cluster, work, [(study,)] * args.workers)
    elif args.workers > 1:
        from benchmarks.execution.console import run_together

        run_together([[sys.executable, "-m", "benchmarks.cli", "tune", *without(argv, "--workers"), "--workers=1",
                        "--trials_only"]] * args.workers)
    else:
        study.work()
    if not args.trials_only:
        study.finish(study.load())
    return 0


def without(argv: list[str], option: str) -> list[str]:
    """The arguments without one option (as `--option=value` or `--option value`)."""
    out, items = [], iter(argv)
    for item in items:
        if item == option:
            next(items, None)
        elif not item.startswith(option + "="):
            out.append(item)
    return out


def report_parser(prog: str, description: str, out: Path) -> CommandParser:
    parser = command_parser(prog, description)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the result rows (JSON lines)")
    parser.add_argument("--out", type=Path, default=out, help="folder the files are written to")
    parser.add_argument("--datasets", help="comma-separated; default: all in the rows")
    parser.add_argument("--methods", help="comma-separated; default: all in the rows")
    parser.add_argument("--variants", action="store_true",
                        help="also show rows whose settings differ from the config files")
    return parser


def selection(args) -> dict:
    """The rows a table or a plot is asked for: datasets and methods (names known to the suite), variants."""
    def chosen(text, kind):
        found = parse_list(text) if text else None
        for name in found or ():
            declared(kind, name)
        return found

    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file; give a folder")
    return {"datasets": chosen(args.datasets, "datasets"), "methods": chosen(args.methods, "methods"),
            "variants": args.variants}


def table(argv: list[str]) -> int:
    """Markdown, LaTeX and CSV tables of the result rows."""
    parser = report_parser("cmhb table", "Markdown, LaTeX and CSV tables of the result rows: per dataset, "
                           "methods x code lengths, mean ± std over seeds, significance marked.", Path("runs/tables"))
    parser.add_argument("--readme", type=Path, help="also rewrite the marked tables section of this Markdown file")
    parser.add_argument("--lookup", action="store_true",
                        help="also write each table's hash lookup: precision within Hamming radius 2 and the share "
                             "of queries that find nothing there (<table>_lookup.md, .tex)")
    args = parser.parse_args(argv)
    chosen = selection(args)
    from benchmarks.reports import tables

    for line in tables.build(args.results, args.out, args.readme, chosen, lookup=args.lookup):
        print(line)
    return 0


def plot(argv: list[str]) -> int:
    """Figures of the result rows."""
    parser = report_parser("cmhb plot", "Figures of the result rows: mAP vs code length, precision-recall and "
                           "precision@K at one code length.", Path("runs/plots"))
    parser.add_argument("--bits", type=int, help="code length of the precision-recall and P@K curves (default: "
                                                 "each one the rows have)")
    parser.add_argument("--presets", help="comma-separated presets to draw (default: each method once, at its tuned "
                                          "preset where the rows have one)")
    args = parser.parse_args(argv)
    chosen = selection(args)
    presets = parse_list(args.presets) if args.presets else None
    if unknown := [p for p in presets or () if p not in PRESETS]:
        raise ConfigError(f"--presets: unknown {unknown[0]!r}; presets: {', '.join(PRESETS)}")
    from benchmarks.reports import plots

    for line in plots.build(args.results, args.out, args.bits, chosen, presets):
        print(line)
    return 0


def regress(argv: list[str]) -> int:
    """Re-run the CI regression baselines and compare their mAP."""
    parser = command_parser("cmhb regress", "Re-run the CI regression baselines (results/regression) and compare "
                                            "their mAP.")
    parser.add_argument("baselines", type=Path, nargs="*", help="baseline files (default: results/regression/*.json)")
    parser.add_argument("--rewrite", action="store_true", help="rewrite the baselines with the new numbers")
    parser.add_argument("--methods", help="only these methods (comma-separated; default: all): a rewrite after a "
                                          "change to some methods leaves the others' baselines as they were")
    parser.add_argument("--out", type=Path, help="with --rewrite: write the baselines to files of the same names in "
                                                 "this folder, not in place (a plug-in's method: its own baselines)")
    args = parser.parse_args(argv)
    if args.out is not None and not args.rewrite:
        raise ConfigError("--out goes with --rewrite (to check baselines elsewhere, name their files)")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file; give a folder")
    from benchmarks.campaigns.regress import REGRESSION_DIR
    from benchmarks.campaigns.regress import regress as check

    paths = args.baselines or sorted(REGRESSION_DIR.glob("*.json"))
    if not paths:
        raise ConfigError(f"no regression baselines: {REGRESSION_DIR} holds no *.json file")
    only = parse_list(args.methods) if args.methods else None
    if only and (unknown := sorted(set(only) - set(names("methods")))):
        raise ConfigError(f"--methods: unknown {unknown}; known: {names('methods')}")
    return 1 if check(paths, args.rewrite, only, args.out) else 0


def check(argv: list[str]) -> int:
    """Check a method against the suite's contract (CONTRIBUTING.md): one line per clause, status 1 if one fails."""
    parser = command_parser("cmhb check", "Check that a method meets the suite's contract on small data, in under a "
                            "minute: its class and config file load, options have help lines, its search space names "
                            "real options, encoders give (batch, bits), a float64 training step is finite with "
                            "gradients, and a short run evaluates and writes nothing.")
    parser.add_argument("--method", required=True, help="a method (`cmhb list`)")
    parser.add_argument("--dataset", default="toy", help="the data to check it on (default: the synthetic toy set)")
    parser.add_argument("--bits", type=int, default=32, help="the code length (default 32)")
    parser.add_argument("--learn", action="store_true", help="also train it on all of that data for its configured "
                                                             "epochs and require it to beat its untrained self and "
                                                             "chance (slower)")
    args = parser.parse_args(argv)
    declared("methods", args.method), declared("datasets", args.dataset), whole("--bits", args.bits, 1, MAX_BITS)
    from benchmarks.contract import check as contract
    from benchmarks.contract import passed

    clauses = contract(args.method, args.dataset, args.bits, args.learn)

    for clause in clauses:
        print(clause.line(), flush=True)
    print(f"{args.method} {'meets' if passed(clauses) else 'does not meet'} the contract")
    return 0 if passed(clauses) else 1


def run_parser(prog: str, description: str) -> CommandParser:
    parser = command_parser(prog, description)
    parser.add_argument("run", type=Path, help="a run folder (a result row's run_dir)")
    return parser


def evaluate(argv: list[str]) -> int:
    """Recompute every metric of a saved run from its codes; compare with its result row."""
    args = run_parser("cmhb evaluate", "Recompute a saved run's metrics from its codes and compare them with "
                                       "its row.").parse_args(argv)
    from benchmarks.execution import artifacts
    from benchmarks.execution.results import print_summary

    found, record = artifacts.evaluate(args.run)
    print_summary(record)
    differ, compared = [], 0
    for scores in found:
        saved = record.score(scores.kind, scores.direction)
        for name in ("map", "map_tie", "empty_queries", "distinct_codes", *(f"map@{k}" for k in scores.map_at)):
            value = scores.value(name)
            if value is None:
                continue
            compared += 1
            if saved.value(name) != value:
                differ.append(f"{scores.kind} {scores.direction} {name}: {value} (row: {saved.value(name)})")
    if differ:
        print(f"{len(differ)} of {compared} numbers differ from the run's row: " + "; ".join(differ))
        return 1
    print(f"all {compared} numbers equal the run's row")
    return 0


def encode(argv: list[str]) -> int:
    """Hash new items with a saved run's trained method: features, or images and texts it encodes first."""
    parser = run_parser("cmhb encode", "Hash new items with a saved run's method: a .npy matrix of features of the "
                                       "run's own backbone (one row per item; a wrong width is named with the width "
                                       "and backbone expected), or a folder of images or a file of texts (one per "
                                       "line), which the run's own backbone encodes first.")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--features", type=Path, help=".npy file, (items, width)")
    given.add_argument("--images", type=Path, help="a folder of images (.jpg, .png), hashed in file-name order")
    given.add_argument("--texts", type=Path, help="a text file, one item per line (tags or a caption)")
    parser.add_argument("--modality", choices=("image", "text"), help="with --features: image or text")
    parser.add_argument("--out", type=Path, required=True, help=".npy file for the +-1 codes (int8)")
    args = parser.parse_args(argv)
    if args.features is not None and args.modality is None:
        raise ConfigError("--features needs --modality image or text")
    if args.out.is_dir() or args.out.suffix != ".npy":
        raise ConfigError(f"--out {args.out}: give a .npy file (NumPy names what it saves so)")
    import numpy as np

    from benchmarks.execution import artifacts
    from common.files import atomic_write

    if args.features is not None:
        modality = args.modality
        try:
            features = np.load(args.features, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"{args.features}: not a readable .npy matrix ({error})") from error
        codes = artifacts.encode(args.run, features, modality, source=str(args.features))
    else:
        modality = "image" if args.images is not None else "text"
        codes = artifacts.encode(args.run, artifacts.featurize(args.run, args.images or args.texts, modality), modality)
    atomic_write(args.out, lambda f: np.save(f, codes))
    print(f"wrote {args.out}: {codes.shape[0]} codes of {codes.shape[1]} bits")
    return 0


def gallery(argv: list[str]) -> int:
    """A saved run's retrieval gallery (PNG in the run folder)."""
    parser = run_parser("cmhb gallery", "Fixed queries with their top 10 results, relevant ones marked.")
    parser.add_argument("--photos", type=Path, help="folder of photos named <item id>.jpg, for a dataset that "
                                                    "carries image features")
    args = parser.parse_args(argv)
    from benchmarks.execution import gallery as galleries

    print(f"wrote {galleries.write(args.run, args.photos)}")
    return 0


def listing(argv: list[str]) -> int:
    """The methods and datasets, with what each is."""
    parser = command_parser("cmhb list", "Name the methods and datasets, with what each is, and the plug-ins that "
                                         "were skipped (each with why and the fix).")
    parser.add_argument("--names", choices=("methods", "datasets"),
                        help="only the names of one kind that can be used, comma-separated (for scripts and the "
                             "Makefile)")
    args = parser.parse_args(argv)
    from benchmarks.spec.config import loadable, usable
    from benchmarks.spec.registry import skipped

    if args.names:
        print(",".join(usable(args.names)))
        return 0
    for kind in ("methods", "datasets"):
        print(f"{kind}:")
        found = loadable(kind)
        broken = {**skipped(kind), **{n: why for n, why in found.items() if isinstance(why, str)}}
        for name, schema in found.items():
            if not isinstance(schema, str):
                group = "" if kind == "datasets" else \
                    f"{'supervised' if schema.facts.get('supervised') else 'unsupervised':<13}" \
                    f"{declared(kind, name).family:<10} "
                print(textwrap.fill(f"{group}{schema.summary}", 118, initial_indent=f"  {name:<18} ",
                                    subsequent_indent=" " * 21))
        for name, why in sorted(broken.items()):
            print(f"  {name:<18} BROKEN, skipped: {why}")
    return 0


COMMANDS = {"bench": bench, "prepare": prepare, "sweep": sweep, "tune": tune, "table": table, "plot": plot, "regress": regress, "evaluate": evaluate,
            "oracle": oracle,
            "encode": encode, "gallery": gallery, "check": check, "list": listing}


def stopped(stop: Stopped, previous: dict) -> int:
    """Say what a stop keeps, hand it on to a caller's own handler, and give the signal's status."""
    print(f"{stop}: no result row for the unfinished run; what finished (earlier rows, feature chunks, partial "
          "downloads) is kept, and a rerun resumes from it", file=sys.stderr)
    pass_on(stop, previous)
    return stop.status


def main(argv: list[str] | None = None, own_process: bool = False) -> int:
    """Run one command; return its exit status.

    Args:
        argv: the command line (default: sys.argv[1:]).
        own_process: the command is its process's whole work (the `cmhb` script, `python -m benchmarks.cli`):
            once it has returned, SIGTERM and SIGINT are ignored while the interpreter shuts down, so that a signal
            after the command finished (its row written) cannot make its status 143. Called from other Python
            code, the caller's handlers are put back instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, COMMANDS))
        print("usage: cmhb COMMAND ...   (`cmhb COMMAND --help` for each)\n" + "\n".join(
            f"  {name:<{width}}  {command.__doc__.splitlines()[0]}" for name, command in COMMANDS.items()))
        return 0 if argv else 2
    quiet()
    previous = stop_on_signals()
    try:
        die_with_parent()
        if argv[0] not in COMMANDS:
            raise ConfigError(f"unknown command {argv[0]!r}; one of {', '.join(COMMANDS)}")
        return COMMANDS[argv[0]](argv[1:])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (DataError, TrainingDiverged, IncompleteEvaluation) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        if error.errno is None:  # not the environment's refusal: a fault of the suite, shown whole
            raise
        print(f"error: {error.filename or ''}{': ' if error.filename else ''}{error.strerror}", file=sys.stderr)
        return 1
    except Exception as error:  # a signal inside compiled code (the evaluator's numba kernels) comes wrapped
        if (stop := stop_within(error)) is None:
            raise
        return stopped(stop, previous)
    except Stopped as stop:
        return stopped(stop, previous)
    finally:
        stop_on_signals(dict.fromkeys(previous, signal.SIG_IGN) if own_process else previous)


def command() -> int:
    """The `cmhb` script: `main` as its process's own command."""
    return main(own_process=True)


if __name__ == "__main__":
    sys.exit(command())

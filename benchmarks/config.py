"""Run configuration: YAML layers per method and per dataset, checked against the signatures of the
method, the datamodule and the Trainer by jsonargparse (the parser under LightningCLI) before anything runs.

Layers, later ones win: configs/defaults.yaml <- configs/datasets/<dataset>.yaml <- configs/methods/<method>.yaml
<- that file's `datasets: {<dataset>: ...}` section <- `--config FILE` <- `--section.key=value` overrides.
"""

import copy
import difflib
import hashlib
import inspect
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser
from jsonargparse.typing import PositiveInt

CONFIG_DIR = Path(__file__).parent / "configs"
RESULTS = Path("runs/results.jsonl")  # user runs; the committed reference rows are written by `make reference`
DEFAULT_DATASET = "mirflickr25k_mini"
DEFAULT_PRESET = "common"  # one backbone and one protocol for every method: the fair comparison
# Keys that change where things are or how fast they run, never the numbers: not part of the config hash.
NOT_HASHED = {"data": ("data_dir", "cache_dir", "num_workers", "eval_batch_size", "feature_batch_size",
                       "feature_workers", "feature_device", "image_dir", "download", "base_url", "checksums"),
              "logger": None,
              "trainer": ("accelerator", "devices", "num_nodes", "strategy", "enable_progress_bar")}
# Trainer arguments the runner sets itself.
TRAINER_SKIP = {"logger", "callbacks", "plugins", "enable_checkpointing", "enable_model_summary", "default_root_dir",
                "num_sanity_val_steps", "model_registry", "enable_autolog_hparams"}


class ConfigError(ValueError):
    """An expected user error in a run's configuration; its message names the fault and the fix."""


@dataclass
class LoggerSettings:
    """Where a run logs: Weights & Biases (offline without WANDB_API_KEY) or nowhere."""

    kind: Literal["wandb", "none"] = "wandb"
    project: str = "graph-cmh-bench"
    save_dir: str = "runs"
    group: str | None = None


def _read(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from error


def known(kind: str) -> list[str]:
    """Names of the method or dataset config files (`kind`: methods or datasets)."""
    return sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.yaml"))


def check_name(kind: str, name: str) -> None:
    names = known(kind)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown {kind[:-1]} {name!r}; {hint}known: {', '.join(names)} (`cmhb list`)")


def merge(base: dict, update: dict) -> dict:
    """Recursive dictionary merge; `update` wins."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def preset_layer(method: str, dataset: str, preset: str) -> tuple[dict, str | None]:
    """(the settings a preset changes for a method on a dataset, the metric the authors report) from the method
    file's `presets: {<preset>: {..., datasets: {<dataset>: ...}, report: METRIC}}`; `common` changes nothing."""
    if preset == DEFAULT_PRESET:
        return {}, None
    presets = _read(CONFIG_DIR / "methods" / f"{method}.yaml").get("presets", {})
    if preset not in presets:
        raise ConfigError(f"{method} has no preset {preset!r}; presets: {', '.join([DEFAULT_PRESET, *presets])}")
    layer = dict(presets[preset])
    report = layer.pop("report", None)
    layer.pop("note", None)
    return merge(layer, layer.pop("datasets", {}).get(dataset, {})), report


def layered(method: str, dataset: str, preset: str = "common") -> tuple[str, dict]:
    """(datamodule name, the merged YAML layers) for a method on a dataset under a preset."""
    check_name("methods", method)
    check_name("datasets", dataset)
    method_file = _read(CONFIG_DIR / "methods" / f"{method}.yaml")
    method_file.pop("presets", None)
    per_dataset = method_file.pop("datasets", {}).get(dataset, {})
    config: dict = {}
    for layer in (_read(CONFIG_DIR / "defaults.yaml"), _read(CONFIG_DIR / "datasets" / f"{dataset}.yaml"),
                  method_file, per_dataset, preset_layer(method, dataset, preset)[0]):
        config = merge(config, layer)
    # A dataset file may name the datamodule it configures (several files can share one datamodule).
    return config.pop("datamodule", dataset), config


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key in ("method", "data", "trainer", "logger") and not prefix:
            out.update(flatten(value, f"{key}."))
        else:
            out[prefix + key] = value
    return out


def bench_parser(method: str, dataset: str, preset: str = "common") -> ArgumentParser:
    """The parser of `cmhb bench --method M --dataset D`: the method's options (constructor parameters with a
    default; those without are taken from the data), the datamodule's, the Trainer's and the logger's, with
    the YAML layers as defaults."""
    import lightning as L

    from datamodules import DATAMODULES
    from methods import METHODS

    datamodule, defaults = layered(method, dataset, preset)
    method_cls, data_cls = METHODS[method], DATAMODULES[datamodule]
    parser = ArgumentParser(prog="cmhb bench", exit_on_error=False, default_meta=False, allow_abbrev=False,
                            description=f"Train and evaluate {method} on {dataset} at one code length.")
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of settings (as --print_config writes)")
    parser.add_argument("--bits", type=PositiveInt, required=True, help="code length")
    parser.add_argument("--seed", type=int, default=0, help="run seed (initialisation, batch order)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON-lines file the result row is appended to")
    parser.add_class_arguments(method_cls, "method", skip=data_given(method_cls) | {"map_ks"}, instantiate=False)
    parser.add_class_arguments(data_cls, "data", instantiate=False)
    parser.add_class_arguments(L.Trainer, "trainer", skip=TRAINER_SKIP, instantiate=False)
    parser.add_class_arguments(LoggerSettings, "logger", instantiate=False)
    for action in parser._actions:  # the groups' own "load a config file" options read as the selectors' names
        if action.option_strings in (["--method"], ["--data"]):
            action.help = "(the method and dataset are chosen by --method NAME and --dataset NAME)"
    try:
        parser.set_defaults(flatten(defaults))
    except (KeyError, ValueError) as error:
        raise ConfigError(f"{CONFIG_DIR}: the {method} / {dataset} config files set a key the code does not take "
                          f"({one_line(error)})") from error
    return parser


def data_given(method_cls) -> set[str]:
    """Constructor parameters without a default: the method's `from_datamodule` takes them from the data."""
    return {name for name, p in inspect.signature(method_cls).parameters.items()
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def one_line(error: BaseException) -> str:
    """An error message on one line: jsonargparse's explanations are indented over several."""
    text = " ".join(str(error).split())
    return text.replace("<class '", "").replace("'>", "")


def explain(error: BaseException, parser: ArgumentParser) -> str:
    """jsonargparse's message as one line that names the option, what it takes and what it got, with the
    closest option for a misspelt key."""
    text = one_line(error)
    if match := re.search(r"arguments are required: (\S+)", text):
        return f"--{match.group(1).rstrip(',')} is required"
    if match := re.search(r"unrecognized arguments: (\S+)", text):
        key = match.group(1).split("=")[0]
        options = [s for a in parser._actions for s in a.option_strings if "." in s]
        close = difflib.get_close_matches(key, options, n=1)
        return f"unknown option {key}" + (f"; did you mean {close[0]}?" if close else "")
    if match := re.match(r'Parser key "([^"]+)": (.*)', text):
        key, rest = match.groups()
        got = re.search(r"(?:Given value|Got value): (.*?)(?: Given value type.*)?$", rest) or \
            re.search(r"literal for \w+\(\) with base 10: (.*)$", rest) or re.search(r"PositiveInt: (\S+)", rest)
        return f"--{key}: expected {expected_type(rest)}, got {got.group(1) if got else rest}"
    return text


def expected_type(message: str) -> str:
    """What jsonargparse says an option takes, in words."""
    if "PositiveInt" in message:
        return "a positive integer"
    if match := re.search(r"Literal\[(.*?)\]", message):
        return f"one of {match.group(1)}"
    if match := re.search(r"Subtypes: \[(.*?)\]", message):
        return " or ".join(t.replace("NoneType", "null") for t in match.group(1).split(", "))
    if match := re.search(r"Expected an? ([\w.]+)", message):
        return match.group(1).rstrip(".")
    return "another value"


def resolve(method: str, dataset: str, bits: int | None = None, seed: int | None = None, args: list[str] = (),
            preset: str = "common") -> dict:
    """The checked configuration of one run: {"run": {...}, "method", "data", "trainer", "logger", "results"}.
    `args` are the command line's other arguments (--bits, overrides, --config FILE, --print_config, --help)."""
    parser = bench_parser(method, dataset, preset)
    given = [f"--{name}={value}" for name, value in (("bits", bits), ("seed", seed)) if value is not None]
    try:
        namespace = parser.parse_args([*given, *args])
    except Exception as error:  # jsonargparse raises several types; all are a bad argument here
        raise ConfigError(f"{explain(error, parser)} (options: cmhb bench --method {method} --dataset {dataset} "
                          "--help)") from error
    config = {"method": {}, **namespace.as_dict()}  # a method without options has no section
    config.pop("config", None)
    datamodule, _ = layered(method, dataset, preset)
    run = {"method": method, "dataset": dataset, "datamodule": datamodule, "bits": config.pop("bits"),
           "seed": config.pop("seed"), "preset": preset, "paper_metric": preset_layer(method, dataset, preset)[1]}
    results = config.pop("results")
    data_dir = config["data"].get("data_dir")
    if data_dir and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise ConfigError(f"--data.data_dir {data_dir} is a file; give the folder that holds the dataset's files")
    return {"run": run, **config, "trainer": trainer_settings(method, config["trainer"]), "results": str(results)}


def trainer_settings(method: str, trainer: dict) -> dict:
    """The Trainer arguments that differ from Lightning's defaults. A closed-form method is solved in one
    pass, so it gets one epoch whatever was asked (its epochs must not make a variant)."""
    from methods import METHODS, ClosedFormHashing

    settings = {k: v for k, v in trainer.items() if v != lightning_defaults().get(k, object())}
    if issubclass(METHODS[method], ClosedFormHashing):
        settings["max_epochs"] = 1
    return settings


@cache
def lightning_defaults() -> dict:
    import lightning as L

    return {name: p.default for name, p in inspect.signature(L.Trainer).parameters.items()}


def config_hash(config: dict) -> str:
    """Short hash of everything that decides a run's numbers."""
    kept = {}
    for section, values in config.items():
        dropped = NOT_HASHED.get(section, ())
        if dropped is None or section == "results":
            continue
        kept[section] = {k: v for k, v in values.items() if k not in dropped}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]

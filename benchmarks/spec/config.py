"""Run configuration: settings in layers, checked against the classes' options before anything runs.

Layers, later ones win: the classes' own defaults (their signatures; nothing repeats them) <-
configs/defaults.yaml <- the dataset's config file <- the method's config file <- its `datasets: {<dataset>:
...}` section <- the preset's changes <- `--config FILE` <- `--section.key=value` on the command line. Every
key is checked against the options of the method, the datamodule, the Trainer and the logger
(benchmarks.spec.schema), so a misspelt key or a wrong type is one `error:` line before any data is read.
"""

import copy
import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from benchmarks.spec.registry import CONFIG_DIR, declared, names, read_yaml
from benchmarks.spec.schema import Option, Schema, read_class, schema
from common.errors import ConfigError

log = logging.getLogger("cmhb")
_WARNED: set[str] = set()  # the broken classes warned about in this process

RESULTS = Path("runs/results.jsonl")  # user runs; the committed reference rows are written by `make reference`
DEFAULT_DATASET = "mirflickr25k_mini"
# common: one backbone and one protocol for every method, the fair comparison; paper: each method as its authors
# ran it; tuned: the best settings of an equal-budget study on validation data (benchmarks.campaigns.tuning).
PRESETS = ("common", "paper", "tuned")
MAX_BITS = 4096  # far beyond the field's 16 to 128: a typo must not ask for petabytes of weights
MAX_SEED = 2**32 - 1  # the largest seed numpy and Lightning take
TUNED_SECTIONS = ("method", "trainer", "data")  # what a tuned preset may set, beside its `study`
TUNED = Path("runs/tune")  # your studies' tuned presets; the committed reference's are in results/tuned
SECTIONS = ("method", "data", "trainer", "logger")
# Keys that change where things are or how fast they run, never the numbers: not part of the config hash.
NOT_HASHED = {"data": ("data_dir", "cache_dir", "num_workers", "eval_batch_size", "extraction.batch_size",
                       "extraction.num_workers", "extraction.device", "image_dir", "download", "base_url",
                       "checksums"),
              "logger": None,
              "trainer": ("accelerator", "devices", "num_nodes", "strategy")}
# What repeats a run rather than changing it (as the run seed does): never makes a variant.
REPETITIONS = ("data.split_seed",)
# Label protocols (docs/protocol.md): protocols of the data, never a variant of a method; their rows have tables of
# their own.
LABEL_PROTOCOLS = ("data.unseen_labels", "data.label_noise")
# Trainer arguments the runner sets itself, and why a user cannot.
TRAINER_OWNED = {
    **dict.fromkeys(("logger", "callbacks", "plugins", "enable_checkpointing", "enable_model_summary",
                     "enable_progress_bar", "default_root_dir", "num_sanity_val_steps", "model_registry",
                     "enable_autolog_hparams", "profiler", "barebones"), "is set by the runner"),
    **dict.fromkeys(("limit_val_batches", "limit_test_batches", "limit_predict_batches", "fast_dev_run",
                     "overfit_batches", "val_check_interval"),
                    "would evaluate less than the protocol: a run scores every validation, query and database item"),
}


@dataclass
class LoggerSettings:
    """Where a run writes what is not its result row.

    Args:
        kind: `wandb` (offline without WANDB_API_KEY) or `none`.
        project: the wandb project.
        save_dir: the folder of run folders, wandb runs and other outputs.
        group: the wandb group (a sweep sets its own).
        save_features: also keep a real-valued method's features in the run folder (float32; about 4 KB per
            item at 1,024-d).
        save_weights: keep the trained method's weights in the run folder (needed to hash new items with
            `cmhb encode`); without them a folder keeps its codes and row (`cmhb evaluate`, galleries), under
            1 MB at MIRFlickr-25K's size: for sweeps that need only their numbers.
    """

    kind: Literal["wandb", "none"] = "wandb"
    project: str = "graph-cmh-bench"
    save_dir: str = "runs"
    group: str | None = None
    save_features: bool = False
    save_weights: bool = True


@dataclass(frozen=True)
class RunSpec:
    """Everything one run is, resolved and checked: which method on which dataset, the code length, the seed,
    the preset, and every option of each section.

    Attributes:
        method: the method's declared name.
        dataset: the dataset's declared name (its config file).
        bits: code length.
        seed: run seed (initialisation, batch order).
        preset: common or paper.
        settings: {"method": {...}, "data": {...}, "trainer": {...}}, every option of the method and the
            datamodule, and the Trainer arguments that differ from Lightning's defaults.
        logger: the logger settings (never part of the run's identity).
        paper_metric: the metric the method's authors report (paper preset).
        study: where the tuned preset's settings come from (its study, trials and best validation mAP).
        tuned: the folder the tuned preset was read from (None: the default); not part of the run's identity.
        variant: {"section.key": value} of the settings that differ from the config files' (`--config FILE` and
            the command line's; empty: none): a row of a variant is labelled by it, apart from the others.
    """

    method: str
    dataset: str
    bits: int
    seed: int = 0
    preset: str = "common"
    settings: dict = field(default_factory=dict)
    logger: dict = field(default_factory=dict)
    paper_metric: str | None = None
    study: dict | None = None
    tuned: Path | None = None
    variant: dict = field(default_factory=dict)

    def config(self) -> dict:
        """What a result row stores: the run's identity and its settings."""
        run = {"method": self.method, "dataset": self.dataset, "bits": self.bits, "seed": self.seed,
               "preset": self.preset, "paper_metric": self.paper_metric}
        return {"run": run, **copy.deepcopy(self.settings)}

    @property
    def hash(self) -> str:
        """Short hash of everything that decides the run's numbers (benchmarks.spec.config.config_hash)."""
        return config_hash(self.config())


def config_hash(config: dict) -> str:
    """Short hash of what decides a run's numbers: a config as RunSpec.config gives it, without the keys
    of NOT_HASHED (where data lives, how fast it runs)."""
    kept = {}
    for section, values in config.items():
        dropped = NOT_HASHED.get(section, ())
        if dropped is None or section == "results":
            continue
        kept[section] = {k: v for k, v in flatten(values).items()
                         if not any(k == d or k.startswith(d + ".") for d in dropped)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1} (every level)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def flatten_sections(tree: dict, options: dict[str, dict[str, Option]]) -> dict:
    """{section: {key: value}} -> {"section.key": value}: a group of options (`extraction: {batch_size: ...}`)
    is joined with dots, the value of a dict-typed option (`checksums`) kept whole."""
    out = {}
    for section, values in tree.items():
        if not isinstance(values, dict):
            out[section] = values
            continue
        for key, value in values.items():
            known = options.get(section, {})
            if isinstance(value, dict) and value and key not in known:
                out.update({f"{section}.{key}.{k}": v for k, v in value.items()})
            else:
                out[f"{section}.{key}"] = value
    return out


def nest(flat: dict) -> dict:
    """{"a.b": 1} -> {"a": {"b": 1}}."""
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return out


def merge(base: dict, update: dict) -> dict:
    """Recursive dictionary merge; `update` wins."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_list(text: str, kind=str) -> list:
    """A comma-separated command-line list, e.g. "16,32,64" with kind int.

    Raises:
        ConfigError: an item is not of `kind`, or the list is empty.
    """
    try:
        items = [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError as error:
        raise ConfigError(f"{text!r} is not a comma-separated list of {kind.__name__} ({error})") from error
    if not items:
        raise ConfigError(f"{text!r} names nothing; give a comma-separated list")
    return items


def class_schema(kind: str, name: str) -> Schema:
    """The option schema of a declared method or dataset (benchmarks.spec.schema).

    Raises:
        ConfigError: no such name, or its class cannot be loaded (registry.Declaration.load).
    """
    declaration = declared(kind, name)
    return schema(declaration.target, declaration.load)


def loadable(kind: str, own: bool = False) -> dict[str, Schema | str]:
    """{name: its schema, or why its class cannot be loaded} of every declared method or dataset (`own`: the
    suite's own only). A broken plug-in is warned about once per process and skipped by the callers; nothing else
    depends on it."""
    out = {}
    for name in names(kind, own):
        try:
            out[name] = class_schema(kind, name)
        except ConfigError as error:
            out[name] = str(error)
            if str(error) not in _WARNED:
                _WARNED.add(str(error))
                log.warning(f"skipped {error}")
    return out


def usable(kind: str, own: bool = False) -> list[str]:
    """The declared names of a kind whose class loads (broken plug-ins skipped, with a warning)."""
    return [name for name, found in loadable(kind, own).items() if isinstance(found, Schema)]


def trainer_schema() -> Schema:
    def trainer():
        import lightning

        return lightning.Trainer

    return schema("lightning.pytorch.trainer.trainer.Trainer", trainer, frozenset(TRAINER_OWNED))


@cache
def logger_schema() -> Schema:
    return read_class(LoggerSettings)


def section_options(method: str, dataset: str) -> dict[str, dict[str, Option]]:
    """{section: {key: option}} of a run of `method` on `dataset`."""
    schemas = {"method": class_schema("methods", method), "data": class_schema("datasets", dataset),
               "trainer": trainer_schema(), "logger": logger_schema()}
    return {section: {o.key: o for o in s.options} for section, s in schemas.items()}


def label_protocol_tag(settings: dict) -> str:
    """The label protocols (LABEL_PROTOCOLS) among flat settings as names carry them: "" for the closed set,
    else e.g. "unseen0.3", "noise0.5" or "unseen0.3-noise0.5" (tuned presets and studies are kept per protocol)."""
    words = {"data.unseen_labels": "unseen", "data.label_noise": "noise"}
    return "-".join(f"{words[key]}{float(settings[key]):g}" for key in LABEL_PROTOCOLS if settings.get(key))


def under_label_protocol(name: str, settings: dict) -> str:
    """`name` followed by the label protocol of a run's settings ({section: {key: value}}) where it has one: what
    keeps a study, an oracle's dataset or a tuned preset of a protocol apart from the closed set's."""
    labels = label_protocol_tag(flatten(settings))
    return f"{name}-{labels}" if labels else name


def tuned_file(method: str, dataset: str, folder: Path | None = None, labels: str = "") -> Path:
    """The tuned preset of a method on a dataset in a folder of them (default runs/tune, where `cmhb tune`
    writes; the committed reference's are in results/tuned), of a label protocol (label_protocol_tag; "": the
    closed set)."""
    return Path(folder or TUNED) / f"{method}-{dataset}{'-' if labels else ''}{labels}.yaml"


def tuned_preset(method: str, dataset: str, folder: Path | None = None, labels: str = "") -> tuple[dict, dict]:
    """(the settings of the tuned preset of a method on a dataset, its study's provenance with the file). Under a
    label protocol, the preset tuned under that protocol where one exists, else the closed set's (the
    provenance names the file read).

    Raises:
        ConfigError: no study of the method on the dataset has finished (in that folder).
    """
    path = tuned_file(method, dataset, folder, labels)
    if labels and not path.is_file():
        path = tuned_file(method, dataset, folder)
    if not path.is_file():
        raise ConfigError(f"no tuned preset of {method} on {dataset} in {path.parent}: run `cmhb tune --method "
                          f"{method} --dataset {dataset}` first (the committed reference's: --tuned results/tuned)")
    layer = read_yaml(path)
    study = layer.pop("study", None) if isinstance(layer, dict) else None
    if not (isinstance(study, dict) and "name" in study and layer and set(layer) <= set(TUNED_SECTIONS)
            and all(isinstance(section, dict) for section in layer.values())):
        # A torn or emptied file must not run as the common settings under the tuned preset's name.
        raise ConfigError(f"{path}: not a tuned preset (it needs the `study:` and the settings `cmhb tune` writes; "
                          f"damaged?): run the same `cmhb tune --method {method} --dataset {dataset}` again, which "
                          "writes it again from its study, or delete the file")
    return layer, {**study, "file": str(path)}


def preset_layer(method: str, dataset: str, preset: str, tuned: Path | None = None, labels: str = ""
                 ) -> tuple[dict, str | None]:
    """(the settings a preset changes for a method on a dataset, the metric the authors report) from the
    method file's `presets: {<preset>: {..., datasets: {<dataset>: ...}, report: METRIC}}`, or for `tuned` from
    its study's file (tuned_preset, of the label protocol `labels`). `common` changes nothing, and so does a preset the method's file does not
    name (no setting of its authors differs)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    if preset == "tuned":
        return tuned_preset(method, dataset, tuned, labels)[0], None
    layer = declared("methods", method).config().get("presets", {}).get(preset, {})
    report = layer.pop("report", None)
    return merge(layer, layer.pop("datasets", {}).get(dataset, {})), report


def file_layers(method: str, dataset: str, preset: str, tuned: Path | None = None, labels: str = ""
                ) -> tuple[list[tuple[dict, str]], str | None]:
    """([(settings, where they come from)] in order, the metric the authors report) of the config files."""
    method_file = declared("methods", method).config()
    for key in ("presets", "search"):  # not settings: the presets' layer comes below; search spaces are tuning's
        method_file.pop(key, None)
    per_dataset = method_file.pop("datasets", {}).get(dataset, {})
    dataset_file = declared("datasets", dataset).config()
    dataset_file.pop("tuning", None)  # the dataset's tuning budget (benchmarks.campaigns.tuning), not a run setting
    changes, report = preset_layer(method, dataset, preset, tuned, labels)
    method_path = declared("methods", method).path
    return [(read_yaml(CONFIG_DIR / "defaults.yaml"), str(CONFIG_DIR / "defaults.yaml")),
            (dataset_file, str(declared("datasets", dataset).path)),
            (method_file, str(method_path)), (per_dataset, f"{method_path} (datasets: {dataset})"),
            (changes, f"{method_path} (presets: {preset})")], report


def data_option_anywhere(key: str) -> bool:
    """Whether some declared datamodule has the data option `key` (a method's file may set one that the
    dataset at hand lacks: a backbone on a set of fixed features)."""
    return any(found.option(key) for found in loadable("datasets").values() if isinstance(found, Schema))


def read_config_file(path: Path) -> dict:
    """The settings of a `--config` file: a YAML mapping of a `run` section and settings sections, as
    `--print_config` writes it.

    Raises:
        ConfigError: no such file, a folder, not YAML, or not such a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: {'a folder' if path.is_dir() else 'no such file'}; give a YAML file of "
                          "settings, as `cmhb bench ... --print_config` writes it")
    loaded = read_yaml(path)
    if not isinstance(loaded, dict) or not all(isinstance(v, dict | None) for v in loaded.values()):
        raise ConfigError(f"--config {path}: not a file of settings (a YAML mapping of sections such as run: and "
                          "method: to their settings, as `cmhb bench ... --print_config` writes it)")
    return loaded


def user_layer(path: Path | None, overrides: list[str], options: dict[str, dict[str, Option]]
               ) -> tuple[dict, dict[str, str], dict]:
    """(the settings of `--config FILE` then the `--section.key=value` overrides, where each key comes from,
    the file's `run` section)."""
    settings, origin, run = {}, {}, {}
    if path is not None:
        loaded = read_config_file(path)
        run = loaded.pop("run", None) or {}
        unknown = [k for k in loaded if k not in SECTIONS]
        if unknown:
            raise ConfigError(f"{path}: unknown section {unknown[0]!r}; sections: run, {', '.join(SECTIONS)}")
        for key, value in flatten_sections(loaded, options).items():
            settings[key], origin[key] = value, str(path)
    for item in overrides:
        key, sep, value = item.removeprefix("--").partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"{item}: expected --section.key=value (sections: {', '.join(SECTIONS)})")
        settings[key], origin[key] = value, "the command line"
    return settings, origin, run


def check_keys(flat: dict, origin: dict, options: dict[str, dict[str, Option]]) -> None:
    """Refuse a key that is no option of its section (naming the closest one, or why the runner owns it)."""
    import difflib

    for key in flat:
        section, _, name = key.partition(".")
        where = f" ({origin[key]})" if origin.get(key, "the command line") != "the command line" else ""
        if section not in options:
            raise ConfigError(f"unknown option --{key}{where}; sections: {', '.join(SECTIONS)}")
        if section == "trainer" and name in TRAINER_OWNED:
            raise ConfigError(f"--{key}{where} {TRAINER_OWNED[name]}")
        if name not in options[section]:
            known = [f"{section}.{k}" for k in options[section]]
            close = difflib.get_close_matches(key, known, n=1)
            raise ConfigError(f"unknown option --{key}{where}" + (f"; did you mean --{close[0]}?" if close else ""))


@cache
def _parser(options_key: str):
    """A jsonargparse parser of every option (their types check and convert values), built once per set of
    options (`options_key`: their keys and types as JSON)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    for key, tree in json.loads(options_key):
        parser.add_argument(f"--{key}", type=Option(key, tree, None).annotation, default=None)
    return parser


def coerce(flat: dict, origin: dict, options: dict[str, dict[str, Option]]) -> dict:
    """The values checked against their options' types and converted (text from the command line too).

    Raises:
        ConfigError: a value of the wrong type, naming the option, what it takes and where it was set.
    """
    parser = _parser(json.dumps(sorted([f"{s}.{k}", o.type] for s, opts in options.items() for k, o in opts.items())))
    try:
        parsed = flatten_sections(parser.parse_object(nest(flat)).as_dict(), options)
        return {key: plain(parsed[key]) for key in flat}  # in the options' order
    except Exception:  # jsonargparse raises several types; find the value at fault, one key at a time
        for name, value in flat.items():
            try:
                parser.parse_object(nest({name: value}))
            except Exception:
                section, _, option = name.partition(".")
                where = origin.get(name, "the config files")
                raise ConfigError(f"--{name}: expected {options[section][option].words}, got {value!r} "
                                  f"(from {where})") from None
        raise


def plain(value):
    """A value as JSON and YAML write it: constrained numbers (PositiveInt) as numbers, tuples as lists."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, str)):
        return type(value).__mro__[-2](value) if type(value) not in (int, float, str) else value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@cache
def lightning_defaults() -> dict:
    return trainer_schema().defaults()


def resolve(method: str, dataset: str, bits: int | None = None, seed: int | None = None, args: list[str] = (),
            preset: str = "common", config_file: Path | None = None, tuned: Path | None = None) -> RunSpec:
    """The checked specification of one run.

    Args:
        method: a declared method's name.
        dataset: a declared dataset's name.
        bits: code length (or from `config_file`'s run section).
        seed: run seed (default 0, or from `config_file`).
        args: `--section.key=value` overrides.
        preset: common or paper.
        config_file: a YAML file of settings, as `--print_config` writes it.
        tuned: the folder of tuned presets (default runs/tune; the committed reference's: results/tuned).

    Returns:
        The RunSpec.

    Raises:
        ConfigError: an unknown name, key or preset, a value of the wrong type, or no code length.
    """
    options = section_options(method, dataset)
    user, user_origin, run = user_layer(config_file, list(args), options)
    labels = label_protocol_tag(coerce({k: user[k] for k in LABEL_PROTOCOLS if k in user}, user_origin, options))
    layers, report = file_layers(method, dataset, preset, tuned, labels)
    bits = bits if bits is not None else run.get("bits")
    seed = seed if seed is not None else run.get("seed", 0)
    if bits is None:
        raise ConfigError("--bits is required (the code length, e.g. --bits 32)")
    flat = {f"{section}.{key}": option.default for section in SECTIONS for key, option in options[section].items()}
    origin = {}
    for layer, where in layers:
        for key, value in flatten_sections(layer, options).items():
            section, _, name = key.partition(".")
            if section == "data" and name not in options["data"] and data_option_anywhere(name):
                continue  # a setting for datasets that have it (a backbone, on a set of fixed features)
            check_keys({key: value}, {key: where}, options)
            flat[key] = value
            origin[key] = where
    origin.update(user_origin)
    check_keys(user, origin, options)
    sections, logger = settings_of(coerce({**flat, **user}, origin, options), method)
    # A variant: settings that differ from the config files' (decided here, once, and stored in its row).
    files = settings_of(coerce(flat, origin, options), method)[0] if user else sections
    variant = differences(sections, files)
    study = tuned_preset(method, dataset, tuned, labels)[1] if preset == "tuned" else None
    return RunSpec(method, dataset, whole("--bits", bits, 1, MAX_BITS), whole("--seed", seed, 0, MAX_SEED), preset,
                   sections, logger, report, study, tuned, variant)


def whole(option: str, value, least: int, most: int | None = None) -> int:
    """`value` as an integer from `least` to `most` (no bound: None).

    Raises:
        ConfigError: it is not.
    """
    if isinstance(value, bool) or not str(value).strip().isdigit() or not least <= int(value) <= (most or int(value)):
        expected = f"an integer from {least} to {most}" if most else \
            f"{'a positive' if least else 'a non-negative'} integer"
        raise ConfigError(f"{option}: expected {expected}, got {value!r}")
    return int(value)


def settings_of(values: dict, method: str) -> tuple[dict, dict]:
    """({"method", "data", "trainer"} sections, logger settings) of checked `section.key` values: the Trainer's
    reduced to what differs from Lightning's defaults and, for a closed-form method, one epoch in one process (its
    epochs must not make a variant; nothing for DDP to synchronise). The data folder is checked to be a folder."""
    settings = {section: {k.partition(".")[2]: v for k, v in values.items() if k.startswith(section + ".")}
                for section in SECTIONS}
    trainer = {k: v for k, v in settings["trainer"].items() if v != lightning_defaults().get(k, object())}
    if class_schema("methods", method).facts.get("closed_form"):
        trainer = {k: v for k, v in trainer.items() if k not in ("num_nodes", "strategy")} | \
            {"max_epochs": 1, "devices": 1}
    epochs = trainer.get("max_epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ConfigError(f"--trainer.max_epochs={epochs}: give at least 1 (an untrained method is no result, and "
                          "Lightning's -1 never ends)")
    data_dir = settings["data"].get("data_dir")
    if data_dir and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise ConfigError(f"--data.data_dir {data_dir} is a file; give the folder that holds the dataset's files")
    return {"method": settings["method"], "data": nest(settings["data"]), "trainer": trainer}, settings["logger"]


def print_config(spec: RunSpec) -> str:
    """The YAML of a run that `cmhb bench --config FILE` reproduces alone."""
    identity = {"method": spec.method, "dataset": spec.dataset, "preset": spec.preset, "bits": spec.bits,
                "seed": spec.seed, **({"tuned": str(spec.tuned)} if spec.tuned else {})}
    return yaml.safe_dump({"run": identity, **spec.settings, "logger": spec.logger}, sort_keys=False)


def differences(config: dict, reference: dict) -> dict:
    """{"section.key": value} of a run's settings that differ from `reference`'s (both as RunSpec.config gives
    them; the reference is usually the run as its config files give it: what makes the run a variant). Keys of
    NOT_HASHED, REPETITIONS and LABEL_PROTOCOLS never count; Trainer keys the reference leaves out are Lightning's defaults; keys
    the reference does not know (an option renamed or removed since a row was written) are left out."""
    out = {}
    for section in ("method", "data", "trainer"):
        ignored = NOT_HASHED.get(section) or ()
        known = {**(lightning_defaults() if section == "trainer" else {}), **flatten(reference.get(section, {}))}
        for key, value in sorted(flatten(config.get(section, {})).items()):
            if key in known and known[key] != value and not any(key == d or key.startswith(d + ".") for d in ignored) \
                    and f"{section}.{key}" not in REPETITIONS + LABEL_PROTOCOLS:
                out[f"{section}.{key}"] = value
    return out


def variant_label(variant: dict) -> str:
    """`lr=0.001, batch_norm=True` for {"method.lr": 0.001, "method.batch_norm": True}."""
    return ", ".join(f"{key.rpartition('.')[2]}={value}" for key, value in variant.items())

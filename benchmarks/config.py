"""Run configuration: YAML per method and per dataset, overridable from the command line."""

import copy
import hashlib
import json
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"
# Keys that change where things are or how fast they run, never the numbers: not part of the config hash.
NOT_HASHED = {"data": ("data_dir", "cache_dir", "num_workers", "eval_batch_size", "feature_batch_size", "image_dir",
                       "download", "base_url", "checksums"), "logger": None,
              "trainer": ("accelerator", "devices", "num_nodes", "strategy")}


def _read(path: Path) -> dict:
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"{path}: no such config; known: {known}")
    return yaml.safe_load(path.read_text()) or {}


def merge(base: dict, update: dict) -> dict:
    """Recursive dictionary merge; `update` wins."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_overrides(items: list[str]) -> dict:
    """`section.key=value` items (values parsed as YAML) as a nested dictionary."""
    out: dict = {}
    for item in items:
        key, sep, value = item.lstrip("-").partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        *parents, leaf = key.split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return out


def resolve(method: str, dataset: str, bits: int, seed: int, overrides: list[str] = (),
            config_dir: Path = CONFIG_DIR) -> dict:
    """defaults <- dataset file <- method file <- the method file's section for this dataset <- overrides."""
    method_file = _read(config_dir / "methods" / f"{method}.yaml")
    per_dataset = method_file.pop("datasets", {}).get(dataset, {})
    config = {"method": {}, "data": {}}
    for layer in (_read(config_dir / "defaults.yaml"), _read(config_dir / "datasets" / f"{dataset}.yaml"),
                  method_file, per_dataset, parse_overrides(list(overrides))):
        config = merge(config, layer)
    # A dataset file may name the datamodule it configures (several files can share one datamodule).
    datamodule = config.pop("datamodule", dataset)
    return {"run": {"method": method, "dataset": dataset, "datamodule": datamodule, "bits": bits, "seed": seed},
            **config}


def config_hash(config: dict) -> str:
    """Short hash of everything that decides a run's numbers."""
    kept = {}
    for section, values in config.items():
        dropped = NOT_HASHED.get(section, ())
        if dropped is None:
            continue
        kept[section] = {k: v for k, v in values.items() if k not in dropped}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]

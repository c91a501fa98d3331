"""Where methods and datasets are declared: each is one YAML config file whose `class:` names its class.

The suite's own are the files of benchmarks/configs/methods and benchmarks/configs/datasets, named by their
file names. A package installed beside the suite adds its own through the entry-point groups
`graph_cmh_bench.methods` and `graph_cmh_bench.datasets`: the entry `mymethod = "mypackage"` declares the
config file `mypackage/mymethod.yaml` (README, "Adding a method or a dataset"). Names and config files are
found without importing any class, so listing them and refusing a misspelt name are instant.
"""

import copy
import difflib
import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from common.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
KINDS = ("methods", "datasets")
GROUP = "graph_cmh_bench."  # + kind: the entry-point groups of installed packages


@cache
def _parsed(path: Path, absolute: Path, version: tuple) -> dict:
    try:
        return yaml.safe_load(absolute.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read this config file ({error})") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from error


def read_yaml(path: Path) -> dict:
    """A YAML config file as a dict (read once per process while the file is unchanged; each call returns a
    fresh copy).

    Raises:
        ConfigError: the file cannot be read or is not valid YAML.
    """
    absolute = Path(path).resolve()
    try:  # the memo is keyed by the file's absolute path, size and time: an edited or other file is read again
        version = ((stat := absolute.stat()).st_size, stat.st_mtime_ns)
    except OSError:
        version = ()  # _parsed names the problem
    return copy.deepcopy(_parsed(Path(path), absolute, version))


@dataclass(frozen=True)
class Declaration:
    """A method or dataset as its config file declares it.

    Attributes:
        name: what commands call it (`--method NAME`, `--dataset NAME`).
        kind: `methods` or `datasets`.
        path: its config file.
    """

    name: str
    kind: str
    path: Path

    def config(self) -> dict:
        """The config file's settings (a fresh copy), without the `class:` declaration."""
        config = read_yaml(self.path)
        config.pop("class", None)
        return config

    @property
    def target(self) -> str:
        """The dotted path of the declared class, e.g. `methods.cagan.CAGAN`."""
        target = read_yaml(self.path).get("class")
        if not isinstance(target, str) or "." not in target:
            raise ConfigError(f"{self.path}: no `class: package.module.Class` line naming the {self.kind[:-1]}'s class")
        return target

    def load(self) -> type:
        """The declared class (this imports its module).

        Raises:
            ConfigError: the module or the class named by `class:` does not exist.
        """
        module, _, attribute = self.target.rpartition(".")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"{self.path}: class {self.target} cannot be imported ({error})") from error


def _installed(kind: str) -> dict[str, Declaration]:
    """The declarations of installed packages' entry points (`name = "package"` -> package/name.yaml)."""
    found = {}
    for entry in importlib.metadata.entry_points(group=GROUP + kind):
        spec = importlib.util.find_spec(entry.value)
        folders = list(spec.submodule_search_locations or []) if spec else []
        path = next((Path(f) / f"{entry.name}.yaml" for f in folders if (Path(f) / f"{entry.name}.yaml").is_file()), None)
        if path is None:
            raise ConfigError(f"entry point {entry.name} = {entry.value!r} in group {GROUP + kind}: no config file "
                              f"{entry.name}.yaml in the package {entry.value}")
        found[entry.name] = Declaration(entry.name, kind, path)
    return found


@cache
def declarations(kind: str) -> dict[str, Declaration]:
    """Every declared method or dataset (`kind`), by name: the suite's own, then installed packages'.

    Raises:
        ConfigError: an installed package declares a name the suite (or another package) already uses.
    """
    own = {p.stem: Declaration(p.stem, kind, p) for p in sorted((CONFIG_DIR / kind).glob("*.yaml"))}
    for name, declaration in _installed(kind).items():
        if name in own:
            raise ConfigError(f"{declaration.path} declares the {kind[:-1]} {name!r}, which {own[name].path} "
                              "declares already; rename one")
        own[name] = declaration
    return dict(sorted(own.items()))


def names(kind: str) -> list[str]:
    """The declared names of a kind, sorted."""
    return list(declarations(kind))


def declared(kind: str, name: str) -> Declaration:
    """The declaration of one method or dataset.

    Raises:
        ConfigError: no such name (the message suggests the closest one and lists the known names).
    """
    known = declarations(kind)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown {kind[:-1]} {name!r}; {hint}known: {', '.join(known)} (`cmhb list`)")
    return known[name]

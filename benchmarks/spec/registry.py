"""Where methods and datasets are declared: each is one YAML config file whose `class:` names its class.

The suite's own are the files of benchmarks/configs/methods and benchmarks/configs/datasets, named by their
file names. A package installed beside the suite adds its own through the entry-point groups
`graph_cmh_bench.methods` and `graph_cmh_bench.datasets`: the entry `mymethod = "mypackage"` declares the
config file `mypackage/mymethod.yaml` (README, "Adding a method or a dataset"). Names and config files are
found without importing any class, so listing them and refusing a misspelt name are instant.

A plug-in fails alone: an entry point whose package cannot be found, whose config file is missing, or whose
name another declaration already has is skipped with one warning line naming it, its package and the fix
(on a clash the suite's own declaration wins; two packages declaring one name are both skipped), and so is a
class that cannot be imported or is not a method's or a dataset's (Declaration.load, and
benchmarks.spec.config.loadable). Using a skipped name is one `error:` line saying why.
"""

import copy
import difflib
import importlib
import importlib.metadata
import importlib.util
import logging
import traceback
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from common.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
KINDS = ("methods", "datasets")
GROUP = "graph_cmh_bench."  # + kind: the entry-point groups of installed packages
SUITE = "graph-cmh-bench"  # the suite's own distribution
# What a method is, for reading the tables: a graph method (what the suite exists to compare), a method of the field
# that builds no graph (the baselines papers measure themselves by), or a floor (nothing learned, a closed form, or
# labels alone). A method's config file declares it (`family:`); a plug-in that does not is `unspecified`.
FAMILIES = ("graph", "non-graph", "floor", "unspecified")
# The class every declared class of a kind must be: (module, class name).
BASES = {"methods": ("methods.base", "HashingModule"), "datasets": ("datamodules.base", "RetrievalDataModule")}
log = logging.getLogger("cmhb")


@cache
def _parsed(path: Path, absolute: Path, version: tuple) -> dict:
    try:
        return yaml.safe_load(absolute.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read this config file ({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text file (byte {error.start} is not UTF-8); give a YAML file") from error
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
        entry_point: for a plug-in, its entry point (`name = package`); None for the suite's own.
        distribution: a plug-in's distribution and version, e.g. `myhash 0.1` (the suite's own: `package`).
    """

    name: str
    kind: str
    path: Path
    entry_point: str | None = None
    distribution: str | None = None

    @property
    def package(self) -> str:
        """The distribution and version that declares it: the suite's (`graph-cmh-bench 0.1.0`) or a plug-in's."""
        if self.distribution:
            return self.distribution
        try:
            return f"{SUITE} {importlib.metadata.version(SUITE)}"
        except importlib.metadata.PackageNotFoundError:
            return f"{SUITE} (not installed)"

    @property
    def own(self) -> bool:

        """Whether the suite declares it (not an installed package)."""
        return self.entry_point is None

    @property
    def source(self) -> str:
        """Where it is declared, for messages: its config file, and a plug-in's entry point and package."""
        if self.own:
            return str(self.path)
        return f"entry point `{self.entry_point}` of package {self.distribution} ({self.path})"

    def config(self) -> dict:
        """The config file's settings (a fresh copy), without the `class:` and `family:` declarations."""
        config = read_yaml(self.path)
        config.pop("class", None)
        config.pop("family", None)
        return config

    @property
    def family(self) -> str:
        """A method's family (FAMILIES): its config file's `family:`, or `unspecified`.

        Raises:
            ConfigError: the file names another family.
        """
        family = read_yaml(self.path).get("family")
        if family is None:
            return FAMILIES[-1]
        if family not in FAMILIES[:-1]:
            raise ConfigError(f"{self.path}: family {family!r}; one of {', '.join(FAMILIES[:-1])}")
        return family

    @property
    def target(self) -> str:
        """The dotted path of the declared class, e.g. `methods.cagan.CAGAN`."""
        target = read_yaml(self.path).get("class")
        if not isinstance(target, str) or "." not in target:
            raise ConfigError(f"{self.path}: no `class: package.module.Class` line naming the {self.kind[:-1]}'s class")
        return target

    def load(self) -> type:
        """The declared class (this imports its module), checked to be a method's or a dataset's class.

        Raises:
            ConfigError: the module or the class named by `class:` cannot be imported (a plug-in's module may fail
                in any way: a syntax error, an import of its own), it is no subclass of the kind's base class, or a
                method's `family:` is none of FAMILIES.
        """
        module, _, attribute = self.target.rpartition(".")
        caught = (ImportError, AttributeError) if self.own else Exception  # the suite's own faults show whole
        try:
            found = getattr(importlib.import_module(module), attribute)
        except caught as error:
            where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
            at = f" at {where.filename}:{where.lineno}" if where and not isinstance(error, SyntaxError) else ""
            raise ConfigError(f"{self.source}: class {self.target} cannot be imported ({type(error).__name__}: "
                              f"{' '.join(str(error).split())}{at}); fix the module or its `class:` line") from error
        if self.kind == "methods":
            _ = self.family  # raises on a family the tables cannot place: the declaration is unusable
        base_module, base_name = BASES[self.kind]
        base = getattr(importlib.import_module(base_module), base_name)
        if not (isinstance(found, type) and issubclass(found, base)):
            raise ConfigError(f"{self.source}: {self.target} is not a {self.kind[:-1]}: `class:` must name a subclass "
                              f"of {base_module}.{base_name} (CONTRIBUTING.md)")
        return found


def _distribution(entry) -> str:
    dist = getattr(entry, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unnamed package"


def _config_file(entry) -> tuple[Path | None, str]:
    """(the config file an entry point declares, or None, and why not)."""
    try:
        spec = importlib.util.find_spec(entry.value)
    except (ImportError, ValueError) as error:
        return None, f"its package {entry.value!r} cannot be found ({error})"
    if spec is None:
        return None, f"its package {entry.value!r} is not installed"
    folders = list(spec.submodule_search_locations or [])
    path = next((Path(f) / f"{entry.name}.yaml" for f in folders if (Path(f) / f"{entry.name}.yaml").is_file()), None)
    if path is None:
        return None, (f"no config file {entry.name}.yaml in the package {entry.value} (a plain `pip install` leaves "
                      "it out unless the package lists it as package data: CONTRIBUTING.md)")
    return path, ""


@cache
def _discovered(kind: str) -> tuple[dict[str, Declaration], dict[str, str]]:
    """({name: declaration} of the sound declarations of a kind, {name: why it was skipped}); each skipped
    entry point is warned about once, here."""
    found = {p.stem: Declaration(p.stem, kind, p) for p in sorted((CONFIG_DIR / kind).glob("*.yaml"))}
    skipped, claims = {}, {}
    for entry in importlib.metadata.entry_points(group=GROUP + kind):
        claims.setdefault(entry.name, []).append(entry)
    for name, entries in sorted(claims.items()):
        where = "; ".join(f"entry point `{e.name} = {e.value}` of package {_distribution(e)}" for e in entries)
        if name in found:
            skipped[name] = (f"{where}: the suite declares the {kind[:-1]} {name!r} already ({found[name].path}), "
                             "and its own wins; rename the entry point")
        elif len(entries) > 1:
            skipped[name] = f"{where}: {len(entries)} packages declare the {kind[:-1]} {name!r}; rename all but one"
        elif (path := _config_file(entries[0]))[0] is None:
            skipped[name] = f"{where}: {path[1]}"
        else:
            found[name] = Declaration(name, kind, path[0], f"{name} = {entries[0].value}", _distribution(entries[0]))
    for problem in skipped.values():
        log.warning(f"skipped {problem}")
    return dict(sorted(found.items())), skipped


def rediscover() -> None:
    """Forget the declarations found so far (a package was installed or removed in this process)."""
    _discovered.cache_clear()


def declarations(kind: str) -> dict[str, Declaration]:
    """Every sound declared method or dataset (`kind`), by name: the suite's own, then installed packages'
    (those that clash, or lack a package or a config file, are skipped with a warning)."""
    return _discovered(kind)[0]


def skipped(kind: str) -> dict[str, str]:
    """{name: why it was skipped} of the entry points of a kind that declare nothing usable."""
    return _discovered(kind)[1]


def names(kind: str, own: bool = False) -> list[str]:
    """The declared names of a kind, sorted (`own`: the suite's own only, not installed packages')."""
    return [name for name, d in declarations(kind).items() if d.own or not own]


def declared(kind: str, name: str) -> Declaration:
    """The declaration of one method or dataset.

    Raises:
        ConfigError: no such name (the message suggests the closest one and lists the known names), or the name
            was skipped (the message says why).
    """
    known = declarations(kind)
    if name in skipped(kind) and name not in known:
        raise ConfigError(f"{kind[:-1]} {name!r} was skipped: {skipped(kind)[name]}")
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown {kind[:-1]} {name!r}; {hint}known: {', '.join(known)} (`cmhb list`)")
    return known[name]

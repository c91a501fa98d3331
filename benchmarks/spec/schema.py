"""What the command line knows of a class without importing it: its options and a few facts.

An option is a constructor parameter with a default (one without is given by the data, never by the user);
a parameter whose type is a dataclass gives one option per field (`extraction.batch_size`). Each option has a
type that the command line can express (classes such as a Lightning `Accelerator` are left out), its default,
and one line of help from the Args section of the class's docstring. Facts are the class attributes the suite
reads before building anything (`supervised`, `closed_form`, a datamodule's `name` and whether it `prepares`
anything).

Reading a class needs its import (torch, Lightning: seconds), so the schema is cached as JSON under
$CMH_CACHE/schema, keyed by the class, the files of its top-level package (sizes and times) and the Python
version: `cmhb list`, `--help` and every argument error answer without importing torch once the cache is
warm. The JSON holds types as plain trees rebuilt from a fixed list of names; nothing read from it executes.
"""

import dataclasses
import hashlib
import importlib.util
import inspect
import json
import os
import sys
import typing
from collections import abc
from dataclasses import dataclass
from pathlib import Path
from types import UnionType

from common.files import atomic_write_bytes, default_cache_dir

FACTS = ("supervised", "closed_form", "name", "prepares")
# Type leaves the command line can express, by the name the cache stores.
LEAVES = {"int": int, "float": float, "str": str, "bool": bool, "null": type(None)}
WORDS = {"int": "an integer", "float": "a number", "str": "text", "bool": "true or false", "null": "null",
         "PositiveInt": "a positive integer", "NonNegativeInt": "a non-negative integer",
         "PositiveFloat": "a positive number", "NonNegativeFloat": "a non-negative number"}


def _constrained() -> dict[str, type]:
    from jsonargparse import typing as constrained

    return {name: getattr(constrained, name) for name in ("PositiveInt", "NonNegativeInt", "PositiveFloat",
                                                          "NonNegativeFloat")}


def type_tree(annotation) -> str | dict | None:
    """An annotation as a JSON tree of what the command line can give (None: nothing it can give)."""
    names = {v: k for k, v in {**LEAVES, **_constrained()}.items()}
    if annotation in names:
        return names[annotation]
    if annotation is Path:
        return "str"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return {"literal": list(args)}
    if origin in (typing.Union, UnionType):
        parts = []
        for part in map(type_tree, args):
            if part is not None and part not in parts:
                parts.append(part)
        return parts[0] if len(parts) == 1 else {"union": parts} if parts else None
    if origin in (list, abc.Sequence) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        inner = type_tree(args[0])
        return {"list": inner} if inner is not None else None
    if origin is tuple:
        inner = [type_tree(a) for a in args]
        return {"tuple": inner} if None not in inner else None
    if origin is dict:
        inner = [type_tree(a) for a in args]
        return {"dict": inner} if None not in inner else None
    return None


def annotation(tree):
    """The Python type of a JSON type tree (only the names this module writes).

    Raises:
        ValueError: the tree holds something else (a damaged cache).
    """
    if isinstance(tree, str):
        known = {**LEAVES, **_constrained()}
        if tree not in known:
            raise ValueError(f"unknown type name {tree!r}")
        return known[tree]
    (kind, inner), = tree.items()
    if kind == "literal":
        return typing.Literal[tuple(inner)]
    if kind == "union":
        return typing.Union[tuple(annotation(t) for t in inner)]
    if kind == "list":
        return list[annotation(inner)]
    if kind == "tuple":
        return tuple[tuple(annotation(t) for t in inner)]
    if kind == "dict":
        return dict[annotation(inner[0]), annotation(inner[1])]
    raise ValueError(f"unknown type tree {kind!r}")


def words(tree) -> str:
    """What an option takes, in words: `a number`, `one of 'a', 'b'`, `an integer or null`."""
    if isinstance(tree, str):
        return WORDS.get(tree, tree)
    (kind, inner), = tree.items()
    if kind == "literal":
        return "one of " + ", ".join(map(repr, inner))
    if kind == "union":
        return " or ".join(map(words, inner))
    if kind == "list":
        return f"a list of {words(inner)} values"
    return f"a {kind} of {', '.join(map(words, inner))}"


@dataclass(frozen=True)
class Option:
    """One command-line option of a class: `key` (`lr`, or `extraction.batch_size` for a dataclass field), its
    type as a JSON tree, its default and one line of help."""

    key: str
    type: str | dict
    default: object
    help: str = ""

    @property
    def annotation(self):
        return annotation(self.type)

    @property
    def words(self) -> str:
        return words(self.type)


@dataclass(frozen=True)
class Schema:
    """A class as the command line sees it.

    Attributes:
        target: the class's dotted path.
        summary: the first paragraph of its docstring.
        options: its options, in signature order.
        facts: the class attributes of FACTS it has.
        given: the constructor parameters without a default (given by the data).
    """

    target: str
    summary: str
    options: tuple[Option, ...]
    facts: dict
    given: tuple[str, ...]

    def defaults(self) -> dict:
        """{option key: default}."""
        return {o.key: o.default for o in self.options}

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _constructors(cls: type) -> list[type]:
    """The classes whose constructor parameters `cls` takes: its own, then each parent's while the previous one
    passes `**kwargs` on (as jsonargparse follows them)."""
    found = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        found.append(klass)
        if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(klass.__init__).parameters.values()):
            break
    return found


def _parameter_help(classes: list[type]) -> dict[str, str]:
    """{parameter: its one line of help} from the Args sections of the classes' and their __init__s'
    docstrings (a paragraph joined into one line)."""
    import docstring_parser

    found = {}
    for klass in classes:
        for doc in (vars(klass).get("__init__").__doc__, klass.__doc__):
            for param in docstring_parser.parse(doc or "").params:
                found.setdefault(param.arg_name, " ".join((param.description or "").split()))
    return found


def read_class(cls: type, skip: frozenset = frozenset()) -> Schema:
    """The schema of a class, read from its signature and docstrings (parameters in `skip` are left out)."""
    classes = _constructors(cls)
    helps, options, given, parameters = _parameter_help(classes), [], [], {}
    for klass in classes:
        for name, parameter in list(inspect.signature(klass.__init__).parameters.items())[1:]:
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                parameters.setdefault(name, parameter)
    for name, parameter in parameters.items():
        if name in skip:
            continue
        if parameter.default is parameter.empty:
            given.append(name)
        elif dataclasses.is_dataclass(parameter.annotation):
            field_help = _parameter_help([parameter.annotation])
            for field in dataclasses.fields(parameter.annotation):
                tree = type_tree(field.type)
                if tree is not None:
                    options.append(Option(f"{name}.{field.name}", tree, _jsonable(getattr(parameter.default, field.name)),
                                          field_help.get(field.name, "")))
        elif (tree := type_tree(parameter.annotation)) is not None:
            options.append(Option(name, tree, _jsonable(parameter.default), helps.get(name, "")))
    summary = " ".join(inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].split())
    facts = {fact: getattr(cls, fact) for fact in FACTS if isinstance(getattr(cls, fact, None), (bool, str))}
    return Schema(f"{cls.__module__}.{cls.__qualname__}", summary, tuple(options), facts, tuple(given))


def _source_key(target: str) -> str:
    """Names the sources a class's schema is read from: the files of its top-level package (sizes and times)."""
    top = target.split(".")[0]
    spec = importlib.util.find_spec(top)
    roots = list(spec.submodule_search_locations or []) if spec else []
    reader = os.stat(__file__)  # how schemas are read is part of what they are
    digest = hashlib.sha256(f"{target}|{sys.version}|{reader.st_size}:{reader.st_mtime_ns}".encode())
    for root in roots:
        for folder, _, files in sorted(os.walk(root)):
            for name in sorted(f for f in files if f.endswith(".py")):
                stat = os.stat(os.path.join(folder, name))
                digest.update(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _encode(schema: Schema) -> bytes:
    return json.dumps(dataclasses.asdict(schema), sort_keys=True).encode()


def _decode(text: bytes) -> Schema:
    raw = json.loads(text)
    options = tuple(Option(**o) for o in raw.pop("options"))
    for option in options:
        annotation(option.type)  # a damaged tree raises here, not later
    return Schema(options=options, **{k: tuple(v) if k == "given" else v for k, v in raw.items()})


def schema(target: str, load, skip: frozenset = frozenset()) -> Schema:
    """The schema of the class at `target`, from the cache or read with `load()` (which imports the class).

    Args:
        target: the class's dotted path.
        load: returns the class (called only when the cache has no current schema).
        skip: parameters that are not options (set by the runner).
    """
    path = default_cache_dir() / "schema" / f"{target}-{_source_key(target)}-{hashlib.sha256(repr(sorted(skip)).encode()).hexdigest()[:8]}.json"
    try:
        return _decode(path.read_bytes())
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass  # no cache yet, or a damaged one: read the class
    found = read_class(load(), skip)
    try:
        atomic_write_bytes(path, _encode(found))
    except OSError:
        pass  # a cache that cannot be written only costs time
    return found


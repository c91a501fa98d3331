"""The documentation names only options the suite accepts: every `--method.X`, `--data.X`, `--trainer.X` and
`--logger.X` in the READMEs, CONTRIBUTING.md and docs/ is a parameter of some declared method or dataset, of
Lightning's Trainer, or of the logger settings (a renamed option leaves no stale instruction behind)."""

import dataclasses
import inspect
import re
from pathlib import Path

import lightning as L

from benchmarks.config import LoggerSettings
from benchmarks.registry import declared, names
from datamodules.extraction import Extraction

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "results" / "README.md", *(ROOT / "docs").glob("*.md")]
OPTION = re.compile(r"--(method|data|trainer|logger)\.([a-z_]+)(?:\.([a-z_]+))?")


def parameters(cls: type) -> set[str]:
    """Every keyword a class's constructors along its MRO take."""
    return {name for klass in inspect.getmro(cls) if "__init__" in vars(klass)
            for name in inspect.signature(klass.__init__).parameters if name not in ("self", "args", "kwargs")}


def accepted() -> dict[str, set[str]]:
    return {"method": set().union(*(parameters(declared("methods", n).load()) for n in names("methods"))),
            "data": set().union(*(parameters(declared("datasets", n).load()) for n in names("datasets")))
            | {f"extraction.{f.name}" for f in dataclasses.fields(Extraction)},
            "trainer": parameters(L.Trainer),
            "logger": {f.name for f in dataclasses.fields(LoggerSettings)}}


def test_every_option_the_docs_name_exists():
    known, stale = accepted(), []
    for path in DOCS:
        for line_number, line in enumerate(path.read_text().splitlines(), 1):
            for section, key, sub in OPTION.findall(line):
                name = f"{key}.{sub}" if sub and key == "extraction" else key
                if name not in known[section]:
                    stale.append(f"{path.relative_to(ROOT)}:{line_number}: --{section}.{name}")
    assert not stale, stale

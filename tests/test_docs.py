"""The documentation names only options the suite accepts: every `--method.X`, `--data.X`, `--trainer.X` and
`--logger.X` in the READMEs, CONTRIBUTING.md and docs/ is an option of some declared method or dataset, of
Lightning's Trainer (or one the runner refuses by name), or of the logger settings, as the command line reads
them (a renamed option leaves no stale instruction behind)."""

import re
from pathlib import Path

from benchmarks.spec.config import TRAINER_OWNED, class_schema, logger_schema, trainer_schema
from benchmarks.spec.registry import names

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "results" / "README.md", *(ROOT / "docs").glob("*.md")]
OPTION = re.compile(r"--(method|data|trainer|logger)\.([a-z_]+)(?:\.([a-z_]+))?")


def accepted() -> dict[str, set[str]]:
    """{section: the option keys the command line accepts in it for some method and dataset}."""
    return {"method": {o.key for name in names("methods", own=True) for o in class_schema("methods", name).options},
            "data": {o.key for name in names("datasets", own=True) for o in class_schema("datasets", name).options},
            "trainer": {o.key for o in trainer_schema().options} | set(TRAINER_OWNED),
            "logger": {o.key for o in logger_schema().options}}


def test_every_option_the_docs_name_exists():
    known, stale = accepted(), []
    for path in DOCS:
        for line_number, line in enumerate(path.read_text().splitlines(), 1):
            for section, key, sub in OPTION.findall(line):
                name = f"{key}.{sub}" if sub else key  # a dataclass field: --data.extraction.precision
                if name not in known[section]:
                    stale.append(f"{path.relative_to(ROOT)}:{line_number}: --{section}.{name}")
    assert not stale, stale

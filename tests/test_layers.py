"""The import order of the suite's packages, checked over every import statement (those inside functions
included): a layer imports only the layers below it, so none can be pulled into a cycle.

Top-level packages: `common` <- `metrics`, `datamodules`, `methods` (independent of each other) <- `benchmarks`.
Inside `benchmarks`: `spec` (what a run is) <- `execution` (one run) <- `reports` <- `campaigns` (many runs) <-
the modules at its top (`cli`, `contract`) <- `perf` (scripts).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"common": 0, "metrics": 1, "datamodules": 1, "methods": 1, "benchmarks": 2}
BENCHMARKS = {"spec": 0, "execution": 1, "reports": 2, "campaigns": 3, None: 4, "perf": 5}
MAX_TOP_MODULES = 6  # benchmarks/ keeps at most this many modules beside its role subpackages


def layer(module: str) -> tuple[int, int] | None:
    """(package layer, layer inside benchmarks) of a dotted module name of the suite, or None for another's."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    inner = parts[1] if parts[0] == "benchmarks" and len(parts) > 1 and parts[1] in BENCHMARKS else None
    return PACKAGES[parts[0]], BENCHMARKS[inner] if parts[0] == "benchmarks" else 0


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import of a file (`from benchmarks import tables` gives benchmarks.tables)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def offences(root: Path) -> list[str]:
    """Each import of a module under `root` that reaches a higher layer (or a sibling package of layer 1)."""
    out = []
    for path in sorted(p for package in PACKAGES for p in (root / package).rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module.removesuffix(".__init__") + ".x"  # a package's own layer
        own = layer(module)
        for line, target in imported(path):
            theirs = layer(target)
            if theirs is None or target.split(".")[0] == module.split(".")[0] and own[0] < 2:
                continue  # another library, or a package's own modules
            if theirs > own or (theirs[0] == own[0] == 1 and target.split(".")[0] != module.split(".")[0]):
                out.append(f"{path.relative_to(root)}:{line} imports {target}")
    return out


def test_no_layer_imports_a_higher_one():
    assert offences(ROOT) == []


def test_the_check_catches_an_upward_import(tmp_path):
    """The rule itself: a module of `spec` that imports `execution`, and `methods` importing `datamodules`, fail."""
    (tmp_path / "benchmarks" / "spec").mkdir(parents=True)
    (tmp_path / "methods").mkdir()
    (tmp_path / "benchmarks" / "spec" / "config.py").write_text("def f():\n    from benchmarks.execution import record\n")
    (tmp_path / "benchmarks" / "cli.py").write_text("from benchmarks.campaigns.sweep import grid\n")  # downward: fine
    (tmp_path / "methods" / "m.py").write_text("import datamodules.base\nfrom common.errors import ConfigError\n")
    assert offences(tmp_path) == ["benchmarks/spec/config.py:2 imports benchmarks.execution.record",
                                                        "methods/m.py:1 imports datamodules.base"]


def test_benchmarks_keeps_few_modules_at_its_top():
    top = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
    assert {p.name for p in (ROOT / "benchmarks").iterdir() if p.is_dir() and (p / "__init__.py").exists()} == \
        {name for name in BENCHMARKS if name not in (None, "perf")}

"""The tier that guards the committed reference (`reference` marker; `make test` runs it, `make test-fast` leaves it
out): every method the suite itself declares has its regression baselines, its section in docs/methods.md (with
its `paper` preset tabled as the config file has it) and its rows in results/runs.jsonl.gz, and the committed rows
give the committed tables exactly. A method added to the suite enters the reference through these; a plug-in
package's methods are never asked to (CONTRIBUTING.md)."""

import json
import re
from pathlib import Path

import pytest

from benchmarks.campaigns.regress import REGRESSION_DIR
from benchmarks.execution.results import read_records
from benchmarks.reports import plots, tables
from benchmarks.spec.config import flatten, preset_layer
from benchmarks.spec.registry import FAMILIES, declared, names

from layout import overlapping

pytestmark = pytest.mark.reference

ROOT = Path(__file__).resolve().parents[1]
METHODS_DOC = ROOT / "docs" / "methods.md"
REFERENCE_SETS = ("mirflickr25k_mini", "wikipedia", "toy")  # what `make reference` runs


def test_every_method_has_regression_baselines():
    for path in sorted(REGRESSION_DIR.glob("*.json")):
        baseline = json.loads(path.read_text())
        assert set(baseline["methods"]) == set(names("methods", own=True)), path
        assert all({"map_i2t", "map_t2i", "seconds"} <= set(v) for v in baseline["methods"].values()), path
        assert baseline["dataset"] in REFERENCE_SETS, path  # embedded or generated data


def documented_presets() -> dict[tuple[str, str], dict[str, str]]:
    """{(method, scope): {setting: value}} from the preset tables of docs/methods.md."""
    found, method = {}, None
    for line in METHODS_DOC.read_text().splitlines():
        if heading := re.match(r"#+ .*\(`(\w+)`", line):
            method = heading.group(1)
        if row := re.match(r"\| (all datasets|`\w+`) \| `([\w.]+)` \| `([^`]*)` \|", line):
            scope = row.group(1).strip("`")
            found.setdefault((method, scope), {})[row.group(2)] = row.group(3)
    return found


def test_every_method_has_its_section_and_its_paper_preset_is_what_docs_methods_md_states():
    headings = [line for line in METHODS_DOC.read_text().splitlines() if line.startswith("#")]
    documented = documented_presets()
    for method in names("methods", own=True):
        assert any(f"`{method}`" in heading for heading in headings), f"docs/methods.md has no section on {method}"
        for dataset in names("datasets", own=True):
            changes = {k: str(v) for k, v in flatten(preset_layer(method, dataset, "paper")[0]).items()}
            expected = {**documented.get((method, "all datasets"), {}), **documented.get((method, dataset), {})}
            assert changes == expected, (method, dataset)


def test_every_method_declares_its_family():
    assert {m: declared("methods", m).family for m in names("methods", own=True)
            if declared("methods", m).family not in FAMILIES[:-1]} == {}


def test_every_method_has_reference_rows_on_every_reference_set():
    present = {(r.method, r.dataset_config) for r in read_records(ROOT / "results" / "runs.jsonl.gz")}
    missing = [(m, d) for m in names("methods", own=True) for d in REFERENCE_SETS if (m, d) not in present]
    assert not missing, f"no rows in results/runs.jsonl.gz for {missing}: `make reference METHODS=...`"


def test_the_committed_rows_give_the_committed_tables(tmp_path):
    """`cmhb table` on results/runs.jsonl.gz as committed reproduces results/README.md's tables and the LaTeX
    files exactly (rows of the record's first schema included)."""
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "results" / "README.md").read_text())
    tables.build(ROOT / "results" / "runs.jsonl.gz", tmp_path, readme)
    assert readme.read_text() == (ROOT / "results" / "README.md").read_text()
    for tex in (ROOT / "results").glob("*.tex"):
        assert (tmp_path / tex.name).read_text() == tex.read_text(), tex.name


def test_the_committed_rows_give_the_committed_figures_and_nothing_in_them_overlaps(tmp_path):
    """`cmhb plot --bits 64` (as `make reference` runs it) on the committed rows draws exactly the points of the
    committed figures' CSVs, and in every figure no text, legend or panel overlaps another."""
    committed = ROOT / "results" / "plots"
    drawn, _ = plots.figures(tables.selected(read_records(ROOT / "results" / "runs.jsonl.gz")).labelled, bits=64)
    assert sorted(drawn) == sorted(p.stem for p in committed.glob("*.csv"))
    for stem, (figure, points) in drawn.items():
        assert overlapping(figure) == [], stem
        plots.save(figure, points, tmp_path / stem)
        assert (tmp_path / f"{stem}.csv").read_text() == (committed / f"{stem}.csv").read_text(), stem

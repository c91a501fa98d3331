"""The contract every method meets (`cmhb check`, benchmarks/contract.py): the suite's own methods meet it, and a
broken method fails it clause by clause, one line per problem."""

import pytest

from benchmarks.cli import main
from benchmarks.contract import check, passed
from benchmarks.spec.registry import names

from plugins import LINEAR_HASH, LINEAR_HASH_YAML, install

# GPU readiness without a GPU is part of the contract: a float64 step in which every floating tensor stays float64.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*self.log.*")]


@pytest.mark.parametrize("name", names("methods", own=True))
def test_every_method_of_the_suite_meets_the_contract(name):
    clauses = check(name)
    assert passed(clauses) and not any(c.skipped for c in clauses), "\n".join(c.line() for c in clauses)


NAN_LOSS = (LINEAR_HASH.replace("        lr: Adam learning rate.\n", "")  # no help line for lr
            .replace('return {"loss": similarity_mse(h_i, h_t, shared)}',
                     'return {"loss": similarity_mse(h_i, h_t, shared) * float("nan")}'))  # a loss that is not finite
WIDE_CODES = LINEAR_HASH.replace("return self.text(text)", "return self.text(text).repeat(1, 2)")  # 2 x bits wide


def test_a_broken_method_fails_each_clause_it_breaks_in_one_line(site, capsys):
    install(site, "myhash", {"myhash/__init__.py": "", "myhash/nan.py": NAN_LOSS, "myhash/wide.py": WIDE_CODES,
                             "myhash/nanhash.yaml": LINEAR_HASH_YAML.replace("linhash", "nan") +
                             "search:\n  method.nosuch: {factor: 3}\n",
                             "myhash/widehash.yaml": LINEAR_HASH_YAML.replace("linhash", "wide")},
            {"methods": {"nanhash": "myhash", "widehash": "myhash"}})
    assert main(["check", "--method", "nanhash", "--bits", "16"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ok    the class and config file load" and lines[-1] == "nanhash does not meet the contract"
    failed = {line.split(":")[0].removeprefix("FAIL  "): line for line in lines if line.startswith("FAIL")}
    assert "--method.lr has no help line" in failed["every option has a help line"]
    assert "names 'method.nosuch', which is no option of nanhash" in failed["the search space names real options"]
    assert "loss term 'loss' is not finite" in failed["one float64 training step is finite and has gradients"]
    assert "loss term 'loss' is nan" in failed["a run of 2 epochs evaluates everything and writes nothing"]
    assert len(failed) == 4 and len(lines) == 7  # one line per clause
    assert main(["check", "--method", "widehash", "--bits", "16"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "FAIL  the encoders give (batch, 16): hamming output of the text batch has shape (32, 32), expected " \
           "(32, 16)" in lines
    assert any(line.startswith("FAIL  one float64 training step") and "shapes cannot be multiplied" in line
               for line in lines), lines


def test_a_method_that_does_not_load_skips_the_rest(site, capsys):
    install(site, "myhash", {"myhash/__init__.py": "", "myhash/linhash.py": "class LinearHash:\n    pass\n",
                             "myhash/linhash.yaml": LINEAR_HASH_YAML}, {"methods": {"linhash": "myhash"}})
    clauses = check("linhash")
    assert "is not a method" in clauses[0].problems[0] and all(c.skipped for c in clauses[1:])

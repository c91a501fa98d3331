"""The contract a method meets to run in the suite (`cmhb check`), as one function its author runs in under a
minute and the suite's own tests call for every method it declares.

Each clause is checked on small data (the toy set unless another is named) and gives its problems, one line
each: the class and config file load; every option has a help line; the search space names real options with
values they accept; both encoders give (batch, bits); one training step in float64 gives finite loss terms
and gradients and keeps every floating tensor in float64 (the CPU stand-in for a tensor made off the module's
device or in a fixed dtype); a short run evaluates every query and database item and writes nothing; and, on
request, that training beats the untrained method and chance. Clauses that need a built method are skipped
when the class does not load.
"""

import logging
import traceback
from dataclasses import dataclass, field

from benchmarks.spec.config import class_schema, resolve
from common.errors import ConfigError, DataError, IncompleteEvaluation, TrainingDiverged

# Small and fast: 300 items in batches of 32, complete batches only.
SMALL = ["--data.subset=300", "--data.batch_size=32", "--data.eval_batch_size=64", "--data.drop_last=true",
         "--data.label_vectors=none", "--logger.kind=none"]
BITS = 32  # the default code length
SHORT_EPOCHS = 2  # the short run's epoch cap
LEARNS_BY = 0.02  # --learn: trained mAP above the untrained method's and chance by at least this, both directions


@dataclass
class Clause:
    """One clause of the contract and what checking it found.

    Attributes:
        title: what the clause asks.
        problems: one line per problem (empty: met).
        skipped: why it was not checked (empty: it was).
    """

    title: str
    problems: list[str] = field(default_factory=list)
    skipped: str = ""

    def line(self) -> str:
        """How `cmhb check` prints it: `ok`, `FAIL` with the first problem, or `skip` with why."""
        if self.skipped:
            return f"skip  {self.title}: {self.skipped}"
        if self.problems:
            return "\n".join(f"FAIL  {self.title}: {p}" for p in self.problems)
        return f"ok    {self.title}"


def float64_dispatch():
    """A torch dispatch mode that raises on any operation whose floating result is not float64."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class OnlyFloat64(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in tree_flatten(out)[0]:
                if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.dtype != torch.float64:
                    raise AssertionError(f"{func} gave a {tensor.dtype} tensor inside a float64 module")
            return out

    return OnlyFloat64()


def in_float64(batch: dict) -> dict:
    """A batch with its floating tensors in float64."""
    return {key: value.double() if value.is_floating_point() else value for key, value in batch.items()}


def loads(method: str, dataset: str, bits: int) -> None:
    class_schema("methods", method)
    resolve(method, dataset, bits, 0, SMALL)


def options_have_help(method: str) -> list[str]:
    return [f"--method.{o.key} has no help line: describe it in the Args section of the class docstring"
            for o in class_schema("methods", method).options if not o.help]


def search_space_is_real(method: str, dataset: str, bits: int) -> list[str]:
    from benchmarks.campaigns.tuning import search_space

    problems = []
    for key, entry in search_space(method, dataset, bits).items():
        for value in entry.get("choices") or (entry["low"], entry["high"]):
            try:
                resolve(method, dataset, bits, 0, [*SMALL, f"--{key}={value}"])
            except ConfigError as error:
                problems.append(f"search {key} = {value}: {error}")
    return problems


def encoders_and_step(run) -> tuple[list[str], list[str]]:
    """(problems of the encoders' shapes, problems of one float64 training step) of a built run."""
    import torch

    from methods.base import ClosedFormHashing, GradientHashing

    model, bits = run.method.double(), run.spec.bits
    batch = in_float64(next(iter(run.data.train_dataloader())))
    shapes, step = [], []
    model.eval()
    with torch.no_grad(), float64_dispatch():  # encoding, too, keeps the module's dtype
        outputs = model.evaluation_outputs(batch)
    for kind, (image, text) in outputs.items():
        n = len(batch["index"])
        width = bits if kind == "hamming" else image.shape[-1]
        for modality, out in (("image", image), ("text", text)):
            if tuple(out.shape) != (n, width):
                shapes.append(f"{kind} output of the {modality} batch has shape {tuple(out.shape)}, expected "
                              f"({n}, {width})")
    model.train()
    try:
        with float64_dispatch():
            if isinstance(model, ClosedFormHashing):
                model._collected.append(batch)
                model.fit_collected()
            elif isinstance(model, GradientHashing):
                terms = model.losses(batch)
                if "loss" not in terms:
                    step.append("losses() gives no total under 'loss'")
                step += [f"loss term {k!r} is not finite" for k, v in terms.items() if not torch.isfinite(v).all()]
                if step:
                    return shapes, step  # the gradients of a loss that is not finite say nothing more
                terms["loss"].backward()
                grads = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
                if not grads:
                    step.append("the loss gives no parameter a gradient")
                if broken := [n for n, g in grads if not g.isfinite().all()]:
                    step.append(f"the gradient of {broken[0]} is not finite (and of {len(broken) - 1} more)")
            else:
                return shapes, [f"{type(model).__name__} extends neither GradientHashing nor ClosedFormHashing: its "
                                "training step is not checked"]
    except Exception as error:  # an operation in another dtype, a failing loss: the author's to see
        step.append(described(error))
    return shapes, step


def evaluates(run) -> list[str]:
    from benchmarks.execution.pipeline import execute

    quiet = logging.getLogger("cmhb")
    level, quiet.level = quiet.level, logging.ERROR  # codes of a 2-epoch run on 300 items may collapse: no warning
    try:
        record = execute(run, results=None, announce=lambda line: None)
    finally:
        quiet.level = level
    return [f"{d}: mAP {record.map(d)} is not a number in [0, 1]" for d in ("i2t", "t2i")
            if not 0 <= record.map(d) <= 1]


def learns(method: str, dataset: str, bits: int) -> list[str]:
    """Trained (the config files' epochs, all of the dataset) against untrained (the same method tested before any
    training) and chance, both directions."""
    from benchmarks.execution.pipeline import build, execute

    spec = resolve(method, dataset, bits, 0, ["--logger.kind=none"])
    untrained = build(spec, announce=lambda line: None)
    untrained.trainer.test(untrained.method, datamodule=untrained.data, verbose=False)
    before = {d: r.map for d, r in untrained.evaluation.results["test"]["hamming"].items()}
    record = execute(build(spec, announce=lambda line: None), announce=lambda line: None)
    problems = []
    for direction in ("i2t", "t2i"):
        after, floor = record.map(direction), max(before[direction], record.chance[direction])
        if not after >= floor + LEARNS_BY:
            problems.append(f"{direction}: trained mAP {after:.4f} is not {LEARNS_BY} above the untrained method's "
                            f"{before[direction]:.4f} and chance {record.chance[direction]:.4f}")
    return problems


def described(error: Exception) -> str:
    """An error in one line: its message, and for an unexpected one its type and where it was raised."""
    if isinstance(error, (ConfigError, DataError, TrainingDiverged, IncompleteEvaluation)):
        return str(error)
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ else []
    # the deepest frame in the method's code: not in torch or Lightning, nor in this checker
    own = [f for f in frames if not any(part in f.filename for part in ("/torch/", "/lightning/", __file__))]
    frame = (own or frames or [None])[-1]
    where = f" at {frame.filename}:{frame.lineno}" if frame else ""

    return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}{where}"


def check(method: str, dataset: str = "toy", bits: int = BITS, learn: bool = False) -> list[Clause]:
    """Check a method against the contract.

    Args:
        method: a declared method's name.
        dataset: the data to check it on (small: 300 items; the toy set by default).
        bits: the code length.
        learn: also train it on all of the dataset for its configured epochs and compare with its untrained self
            and chance (slower).

    Returns:
        The clauses in order, each with its problems (none: met) or why it was skipped.
    """
    from benchmarks.execution.pipeline import build

    def built():
        return build(resolve(method, dataset, bits, 0, [*SMALL, f"--trainer.max_epochs={SHORT_EPOCHS}"]),
                     announce=lambda line: None)

    load, helps, space, shapes, step, short = clauses = [
        Clause("the class and config file load"), Clause("every option has a help line"),
        Clause("the search space names real options"), Clause(f"the encoders give (batch, {bits})"),
        Clause("one float64 training step is finite and has gradients"),
        Clause(f"a run of {SHORT_EPOCHS} epochs evaluates everything and writes nothing")]
    trained = Clause(f"training beats the untrained method and chance by {LEARNS_BY}")
    clauses += [trained] if learn else []
    try:
        loads(method, dataset, bits)
    except Exception as error:  # whatever a method's module raises is the author's to see, in one line
        load.problems.append(described(error))
        for clause in clauses[1:]:
            clause.skipped = "the class does not load"
        return clauses
    for clause, test in ((helps, lambda: options_have_help(method)), (space, lambda: search_space_is_real(method,
                                                                                                           dataset, bits))):
        try:
            clause.problems += test()
        except Exception as error:
            clause.problems.append(described(error))
    try:
        shapes.problems, step.problems = encoders_and_step(built())
    except Exception as error:
        shapes.problems.append(described(error))
        step.skipped = "the method could not be built"
    for clause, test in ((short, lambda: evaluates(built())), (trained, lambda: learns(method, dataset, bits))):
        if clause in clauses:
            try:
                clause.problems += test()
            except Exception as error:
                clause.problems.append(described(error))
    return clauses


def passed(clauses: list[Clause]) -> bool:
    """Whether every clause checked was met."""
    return not any(clause.problems for clause in clauses)

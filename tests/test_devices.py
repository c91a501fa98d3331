"""GPU readiness without a GPU: every method trains a step and evaluates with its module and batches in float64.

A floating tensor a method makes in another dtype (created without the module's dtype, or cast to a fixed
one) fails loudly here: every operation of a training step and of encoding is checked to give float64,
the CPU stand-in for a tensor created off the module's device.
"""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from benchmarks.execution.evaluation import RetrievalEvaluation
from benchmarks.execution.pipeline import build
from benchmarks.spec.config import resolve
from benchmarks.spec.registry import names
from methods.base import ClosedFormHashing


class OnlyFloat64(TorchDispatchMode):
    """Raises on any operation whose floating result is not float64."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.dtype != torch.float64:
                raise AssertionError(f"{func} gave a {tensor.dtype} tensor inside a float64 module")
        return out


def in_float64(batch: dict) -> dict:
    return {key: value.double() if value.is_floating_point() else value for key, value in batch.items()}


@pytest.mark.filterwarnings("ignore:.*self.log.*")
@pytest.mark.parametrize("name", names("methods"))
def test_a_training_step_and_an_evaluation_in_float64(name):
    spec = resolve(name, "toy", 16, 0, ["--logger.kind=none", "--data.subset=300", "--data.batch_size=32",
                                        "--data.eval_batch_size=64", "--data.drop_last=true",
                                        "--data.label_vectors=none"])
    run = build(spec, announce=lambda line: None)
    data, model = run.data, run.method.double()
    batch = in_float64(next(iter(data.train_dataloader())))
    if isinstance(model, ClosedFormHashing):
        model._collected.append(batch)
        model.fit_collected()
    else:
        with OnlyFloat64():
            terms = model.losses(batch)
            terms["loss"].backward()
        assert all(p.grad.dtype == torch.float64 for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad(), OnlyFloat64():
        model.encode_image(batch["image"]), model.encode_text(batch["text"])
    evaluation = RetrievalEvaluation()
    with torch.no_grad():
        for loader_index, loader in enumerate(data.test_dataloader()):
            for evaluation_batch in loader:
                evaluation._update(model, model.test_step(in_float64(evaluation_batch), 0, loader_index),
                                   evaluation_batch, loader_index)
    scored = {kind: [m.score(m.collected()).map for m in metrics.values()] for kind, metrics in evaluation._metrics.items()}
    assert all(np.isfinite(v).all() for v in scored.values()) and "hamming" in scored

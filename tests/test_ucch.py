"""UCCH (Hu et al., TPAMI 2023): its contrastive scores, candidates, ranking loss and memory by hand, and that it
learns."""

import math

import pytest
import torch
from torch import nn

from methods.ucch import UCCH, batch_candidates, cross_modal_ranking, memory_scores, nce_softmax, ucch_mlp

from training import fit_and_test


def test_the_networks_are_the_codes_mlps():
    layers = [type(m) for m in ucch_mlp(5, 4, 16, 3)]
    assert layers == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [m.out_features for m in ucch_mlp(5, 4, 16, 3) if isinstance(m, nn.Linear)] == [16, 16, 4]
    assert [type(m) for m in ucch_mlp(5, 4, 16, 1)] == [nn.Linear]


def test_contrastive_scores_and_loss_by_hand():
    """Output (1, 0, 0, 0) against the signs (1, 1, 1, 1) (its own slot) and (-1, 1, 1, 1), T = 0.5: the scores
    are the dot products 1 and -1 over T sqrt(4) = 1; -log softmax of the first = log(1 + e^-2) = 0.126928."""
    output = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    candidates = torch.tensor([[[0.5, 0.5, 0.5, 0.5], [-0.2, 0.1, 0.3, 0.9]]])
    scores = memory_scores(output, candidates, temperature=0.5)
    assert torch.allclose(scores, torch.tensor([[1.0, -1.0]]))
    assert nce_softmax(scores).item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)


def test_warm_up_candidates_are_the_item_then_the_others():
    mixed = torch.tensor([[1.0], [2.0], [3.0]])
    assert batch_candidates(mixed)[:, :, 0].tolist() == [[1, 2, 3], [2, 1, 3], [3, 1, 2]]


def test_ranking_loss_by_hand():
    """Image and text outputs both the unit rows of I (two items): S = I. Each row's negative scores 0, below
    1 - margin 0.2, so it is lowered by shift 0.1 to -0.1: a row's loss is -1 + log(e + e^-0.1) + 0.2
    = log(1 + e^-1.1) + 0.2 = 0.487335; columns the same: 0.974671."""
    eye = torch.eye(2)
    assert cross_modal_ranking(eye, eye, margin=0.2, shift=0.1).item() == pytest.approx(0.974671, abs=1e-5)
    # a negative within the margin of its pair keeps its score: S = [[1, 0.9], [0.9, 1]] rows have no shift
    near = torch.tensor([[1.0, 0.0], [0.9, math.sqrt(1 - 0.81)]])
    scores = near @ near.T
    expected = 2 * (-1 + torch.logsumexp(scores[0], 0) + 0.2)
    assert cross_modal_ranking(near, near, 0.2, 0.1).item() == pytest.approx(expected.item(), abs=1e-5)


def test_the_memory_takes_the_mixed_outputs_in_warm_up_and_moves_by_momentum_after():
    torch.manual_seed(0)
    model = UCCH(bits=4, image_dim=3, text_dim=5, num_classes=2, n_train=6, hidden=8, negatives=3)
    assert torch.allclose(model.memory.norm(dim=1), torch.ones(6)) and set(model.memory.abs().unique().tolist()) \
        == {0.5}  # normalised signs
    batch = {"index": torch.tensor([1, 4]), "image": torch.randn(2, 3), "text": torch.randn(2, 5)}
    model.losses(batch)  # epoch 0: warm-up, the slots take the mixed outputs whole
    image = torch.nn.functional.normalize(torch.tanh(model.encode_image(batch["image"])), dim=1)
    text = torch.nn.functional.normalize(torch.tanh(model.encode_text(batch["text"])), dim=1)
    mixed = torch.nn.functional.normalize(image + text, dim=1)
    assert torch.allclose(model.memory[[1, 4]], mixed.detach(), atol=1e-6)
    before = model.memory.clone()
    model.hparams.warmup_epochs = 0  # as after warm-up
    model.losses(batch)
    moved = torch.nn.functional.normalize(0.4 * before[[1, 4]] + 0.6 * mixed.detach(), dim=1)
    assert torch.allclose(model.memory[[1, 4]], moved, atol=1e-6)
    assert torch.equal(model.memory[[0, 2, 3, 5]], before[[0, 2, 3, 5]])


@pytest.mark.slow
def test_ucch_learns_the_toy_set():
    narrow = ["--method.hidden=1024"]  # the code's 8,192 takes 6 s an epoch here (20 epochs: 0.40, 0.45)
    untrained = fit_and_test("ucch", bits=32, epochs=0, overrides=narrow)
    trained = fit_and_test("ucch", bits=32, epochs=10, overrides=narrow)
    lsh = fit_and_test("lsh", bits=32)
    for direction in ("i2t", "t2i"):  # 10 of 20 epochs: 0.18 and 0.19 against 0.07 untrained
        assert trained[direction] > untrained[direction] + 0.05, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.05, (direction, lsh, trained)

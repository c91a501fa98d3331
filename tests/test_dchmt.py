"""DCHMT (Tu et al., ACM MM 2022): its select hash layer, distance loss, optimiser and schedule by hand, and that it
learns."""

import math

import pytest
import torch

from methods.dchmt import DCHMT, BertAdam, SelectHash, distance_losses, warmup_cosine

from training import fit_and_test

LOW, HIGH = [1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]  # two bits' probabilities of (-1, +1): codes (-1, -1), (1, 1)


def test_the_select_layer_gives_each_bit_two_probabilities_initialised_as_the_code_does():
    torch.manual_seed(0)
    layer = SelectHash(in_dim=5, bits=3, embed=128)
    p = layer(torch.randn(4, 5))
    assert p.shape == (4, 3, 2) and torch.allclose(p.sum(-1), torch.ones(4, 3))
    # kaiming_uniform_(mode="fan_out"): bound sqrt(6 / fan_out), each bit's layer having fan-out 2; biases 0
    assert layer.fc.weight.abs().max() <= math.sqrt(6 / 128) and layer.select.weight.abs().max() <= math.sqrt(3)
    assert layer.select.weight.abs().max() > math.sqrt(6 / 128) and not layer.select.bias.any()


def test_codes_are_the_more_probable_value_of_each_bit():
    model = DCHMT(bits=3, image_dim=5, text_dim=4, num_classes=2).eval()
    x = torch.randn(6, 5)
    p = model.image_hash(x)
    assert torch.equal(model.encode_image(x).sign(), 2 * p.argmax(-1).float() - 1)


def test_distance_loss_by_hand():
    """Two bits, vartheta 0.5: the reach is sqrt(2 x 2 x 0.5) = sqrt 2. One-hot codes (-1, -1) and (1, 1) lie
    sqrt(4) = 2 apart."""
    codes = torch.tensor([LOW, HIGH])
    diagonal, everything = torch.eye(2, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)
    assert distance_losses(codes, codes, diagonal, 0.5).item() == pytest.approx(0)  # apart beyond the reach
    assert distance_losses(codes, codes, everything, 0.5).item() == pytest.approx((4 + 4) / 4)  # D^2 pulled
    # nothing relevant: the diagonal's distance 0 is pushed to the reach, (sqrt 2)^2 twice over four pairs
    assert distance_losses(codes, codes, ~everything, 0.5).item() == pytest.approx(2 * 2 / 4)
    # undecided probabilities lie 1 from a one-hot code: relevant 1^2, irrelevant (sqrt 2 - 1)^2
    half, one = torch.full((1, 4), 0.5), torch.tensor([LOW])
    assert distance_losses(half, one, torch.tensor([[True]]), 0.5).item() == pytest.approx(1)
    assert distance_losses(half, one, torch.tensor([[False]]), 0.5).item() == pytest.approx((math.sqrt(2) - 1) ** 2)


def test_the_loss_sums_the_cross_and_both_intra_modal_terms():
    torch.manual_seed(0)
    model = DCHMT(bits=4, image_dim=5, text_dim=3, num_classes=2)
    batch = {"image": torch.randn(6, 5), "text": torch.randn(6, 3), "labels": torch.eye(2)[[0, 1, 0, 1, 1, 0]]}
    terms = model.losses(batch)
    relevant = (batch["labels"] @ batch["labels"].T) > 0
    image, text = model.image_hash(batch["image"]).flatten(1), model.text_hash(batch["text"]).flatten(1)
    assert terms["cross"].item() == pytest.approx(distance_losses(image, text, relevant, 0.5).item())
    assert terms["loss"].item() == pytest.approx((terms["cross"] + terms["image"] + terms["text"]).item())


def test_bert_adam_by_hand():
    """p = 1 with gradient 2, clipped to norm 1; lr 0.1, betas (0.9, 0.98), weight decay 0.2, no bias correction.
    Step 1: m = 0.1, v = 0.02, update = 0.1 / sqrt(0.02) + 0.2 = 0.907107, p = 0.909290.
    Step 2: m = 0.19, v = 0.0396, update = 0.19 / sqrt(0.0396) + 0.2 x 0.909290, p = 0.795626."""
    p = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = BertAdam([p], lr=0.1, weight_decay=0.2)
    for expected in (0.909290, 0.795626):
        p.grad = torch.tensor([2.0])
        optimizer.step()
        assert p.item() == pytest.approx(expected, abs=1e-5)


def test_the_schedule_warms_up_then_decays_as_a_cosine():
    assert warmup_cosine(0.0, 0.1) == 0 and warmup_cosine(0.05, 0.1) == pytest.approx(0.5)
    assert warmup_cosine(0.1, 0.1) == pytest.approx(0.975528, abs=1e-6)  # the code's jump after the warm-up
    assert warmup_cosine(0.5, 0.1) == pytest.approx(0.5) and warmup_cosine(1.0, 0.1) == pytest.approx(0)


@pytest.mark.slow
def test_dchmt_learns_the_toy_set():
    untrained = fit_and_test("dchmt", bits=32, epochs=0)
    trained = fit_and_test("dchmt", bits=32, epochs=40)
    lsh = fit_and_test("lsh", bits=32)
    for direction in ("i2t", "t2i"):  # 40 of 100 epochs (the schedule spans them): 0.23 and 0.25 (100: 0.51, 0.52)
        assert trained[direction] > untrained[direction] + 0.05, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.05, (direction, lsh, trained)

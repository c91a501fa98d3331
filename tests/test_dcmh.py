"""DCMH (Jiang and Li, CVPR 2017): its objective by hand, its gradient against the authors' formula, its code
update, its two optimisers, and that it learns."""

import math

import pytest
import torch

from methods.dcmh import DCMH, dcmh_objective

from training import fit_and_test


def test_objective_by_hand():
    """Others F = I (two items), outputs g = (2, 0): theta = F g' / 2 = (1, 0); with S = (1, 0) the likelihood
    term is log(1 + e) - 1 + log 2 - 0 = 1.00641. gamma ||g - B||^2 with B = (1, 1): 1 + 1 = 2; eta ||g 1||^2 with
    the column sum (2, 0): 4. gamma = eta = 1: 7.00641."""
    g = torch.tensor([[2.0, 0.0]])
    value = dcmh_objective(g, torch.ones(1, 2), torch.eye(2), torch.tensor([[1.0], [0.0]]), g.sum(0), 1.0, 1.0)
    assert value.item() == pytest.approx(math.log(1 + math.e) - 1 + math.log(2) + 2 + 4, abs=1e-6)
    assert value.item() == pytest.approx(7.00641, abs=1e-5)


def test_the_gradient_is_the_codes_dJdG():
    """process_DCMH.m:42-44: dJ/dG_j = F (sigmoid(F' G_j / 2) - S_j) / 2 + 2 gamma (G_j - B_j) + 2 eta G 1 (the
    code's columns as rows here); autograd on the objective gives the same."""
    torch.manual_seed(0)
    n, b, c, gamma, eta = 7, 3, 4, 0.7, 1.3
    others, codes, rest = torch.randn(n, c), torch.sign(torch.randn(b, c)), torch.randn(n - b, c)
    similar = (torch.rand(n, b) < 0.5).float()
    g = torch.randn(b, c, requires_grad=True)
    column_sum = rest.sum(0) + g.sum(0)  # the other items' outputs of this modality, fixed, and the batch's
    dcmh_objective(g, codes, others, similar, column_sum, gamma, eta).backward()
    expected = (torch.sigmoid(others @ g.detach().T / 2) - similar).T @ others / 2 \
        + 2 * gamma * (g.detach() - codes) + 2 * eta * column_sum.detach()
    assert torch.allclose(g.grad, expected, atol=1e-5)


def model(**options) -> DCMH:
    return DCMH(bits=4, image_dim=3, text_dim=5, num_classes=2, train_labels=torch.eye(2)[[0, 1, 0]],
                text_mean=torch.zeros(5), hidden=8, **options)


def test_codes_are_the_signs_of_both_outputs_from_zero():
    dcmh = model()
    dcmh.on_train_epoch_start()  # F = G = 0: every code bit 0 (e_sign, process_DCMH.m:157-161)
    assert not dcmh.codes.any()
    dcmh.image_outputs.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0]] * 3))
    dcmh.text_outputs.copy_(torch.tensor([[-2.0, 1.0, 0.5, 0.0]] * 3))
    dcmh.on_train_epoch_start()
    assert torch.equal(dcmh.codes[0], torch.tensor([-1.0, -1.0, 1.0, 0.0]))


def test_a_step_moves_each_network_by_its_own_term_and_stores_both_outputs():
    """The text term's gradient reaches only the text network, the image term's only the image network; the
    buffers F and G hold the batch's outputs after the step's forward pass."""
    torch.manual_seed(0)
    dcmh = model()
    batch = {"index": torch.tensor([0, 2]), "image": torch.randn(2, 3), "text": torch.randn(2, 5),
             "labels": torch.eye(2)[[0, 0]]}
    terms = dcmh.losses(batch)
    image_grads = torch.autograd.grad(terms["text"], list(dcmh.image_hash.parameters()), allow_unused=True)
    assert all(g is None for g in image_grads)
    text_grads = torch.autograd.grad(terms["image"], list(dcmh.text_hash.parameters()), allow_unused=True)
    assert all(g is None for g in text_grads)
    assert torch.allclose(dcmh.image_outputs[[0, 2]], dcmh.encode_image(batch["image"]))
    assert torch.allclose(dcmh.text_outputs[[0, 2]], dcmh.encode_text(batch["text"]))
    assert not dcmh.image_outputs[1].any()
    loss = (terms["text"] + terms["image"]) / (2 * 3)  # update_net.m: the gradient over batch x training items
    assert terms["loss"].item() == pytest.approx(loss.item())


@pytest.mark.parametrize("kind,expected", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam)])
def test_the_learning_rate_falls_log_linearly_over_the_epochs(kind, expected):
    """DCMH_demo.m:20-21: logspace(-1.5, -3, maxIter), the epoch's rate for every step of it."""
    dcmh = model(optimizer=kind, lr_start=1e-1, lr_end=1e-3)
    dcmh.trainer = type("Trainer", (), {"max_epochs": 3})()
    configured = dcmh.configure_optimizers()
    optimizer, schedule = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, expected)
    rates = []
    for _ in range(3):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([1e-1, 1e-2, 1e-3])


@pytest.mark.slow
def test_dcmh_learns_the_toy_set():
    untrained = fit_and_test("dcmh", bits=32, epochs=0)
    trained = fit_and_test("dcmh", bits=32, epochs=20)
    lsh = fit_and_test("lsh", bits=32)
    for direction in ("i2t", "t2i"):  # 20 of 100 epochs: 0.18 and 0.17 against 0.07 untrained
        assert trained[direction] > untrained[direction] + 0.05, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.05, (direction, lsh, trained)

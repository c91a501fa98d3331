"""SGRN (re-implementation from the abstract): its graphs and losses by hand, and that it learns."""

import pytest
import torch

from methods.graphs import global_reconstruction, keep_top_k, local_rebased_similarity
from methods.losses import similarity_mse
from methods.sgrn import SGRN

from training import fit_and_test


def test_keep_top_k_by_hand():
    s = torch.tensor([[1.0, 0.5, 0.2], [0.5, 1.0, 0.9], [0.2, 0.9, 1.0]])
    assert torch.equal(keep_top_k(s, 2), torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.9], [0.0, 0.9, 1.0]]))


def test_local_rebasing_by_hand():
    """Features (1,0), (0,1), (1,1): S = [[1,0,c],[0,1,c],[c,c,1]], c = 1/sqrt2. With k = 1 each row keeps
    only itself, so K = I and R = cos(K, K) = I; a = 0.5 gives 2 (S/2 + I/2) - 1 = S + I - 1:
    diagonal 1, (1,2) = -1, (1,3) = c - 1 = -0.29289."""
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    s = local_rebased_similarity(features, k=1, a=0.5)
    c = 2 ** -0.5
    assert torch.allclose(s, torch.tensor([[1.0, -1.0, c - 1], [-1.0, 1.0, c - 1], [c - 1, c - 1, 1.0]]), atol=1e-6)


def test_global_reconstruction_by_hand():
    """S_J = 0.5 [[1,-1],[-1,1]] + 0.5 I = [[1,-.5],[-.5,1]]; S_J S_J' / 2 = [[.625,-.5],[-.5,.625]];
    e = 0.3: 0.7 S_J + 0.3 (S_J S_J' / 2) = [[.8875, -.5], [-.5, .8875]]."""
    image = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    out = global_reconstruction(image, torch.eye(2), b=0.5, e=0.3)
    assert torch.allclose(out, torch.tensor([[0.8875, -0.5], [-0.5, 0.8875]]))


def test_loss_terms_compose():
    torch.manual_seed(0)
    model = SGRN(bits=8, image_dim=6, text_dim=5, num_classes=3, hidden=16).train()
    image, text = torch.randn(10, 6), (torch.rand(10, 5) < 0.5).float()
    terms = model.pair_losses(image, text, alpha=2.0)
    assert terms["loss"].item() == pytest.approx(
        0.1 * terms["intra"].item() + terms["inter"].item() + 0.1 * terms["quant"].item(), rel=1e-6)
    s = model.target(image, text)
    assert s.shape == (10, 10) and torch.allclose(s, 1.4 * global_reconstruction(
        local_rebased_similarity(image, 2, 0.6), local_rebased_similarity(text, 2, 0.6), 0.5, 0.3))
    (h_i, a_i), (h_t, a_t) = model.image_hash(image), model.text_hash(text)
    b_i, b_t = torch.tanh(2 * h_i), torch.tanh(2 * h_t)
    reachable = ((s / 1.4 + 1) / 2).clamp(0, 1)  # the default real_target: rescaled to [0, 1]
    inter = similarity_mse(b_i, b_t, s) + 0.5 * similarity_mse(a_i.relu(), a_t.relu(), reachable) \
        + similarity_mse(h_i, b_t, s) + similarity_mse(b_i, h_t, s)
    assert terms["inter"].item() == pytest.approx(inter.item(), rel=1e-5)


def test_real_valued_targets_by_hand():
    """Hidden a = (-1, 2), target entries (-1.4, 0, 1.4) with mu = 1.4: signed keeps the target and ReLU(a) = (0, 2);
    rescaled maps it to (S*/mu + 1)/2 = (0, 0.5, 1); preactivation keeps a itself."""
    hidden, target = torch.tensor([[-1.0, 2.0]]), torch.tensor([-1.4, 0.0, 1.4])
    for mode, feature, expected in (("signed", [[0.0, 2.0]], [-1.4, 0.0, 1.4]), ("rescaled", [[0.0, 2.0]], [0, 0.5, 1]),
                                    ("preactivation", [[-1.0, 2.0]], [-1.4, 0.0, 1.4])):
        model = SGRN(bits=8, image_dim=6, text_dim=5, num_classes=3, hidden=16, real_target=mode)
        z, s = model.real_features(hidden, target)
        assert torch.equal(z, torch.tensor(feature)) and torch.allclose(s, torch.tensor(expected)), mode


@pytest.mark.slow
def test_sgrn_learns_the_toy_set():
    untrained = fit_and_test("sgrn", bits=16, epochs=0)
    trained = fit_and_test("sgrn", bits=16, epochs=10)
    lsh = fit_and_test("lsh", bits=16)
    for direction in ("i2t", "t2i"):
        assert trained[direction] > untrained[direction] + 0.1, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.1, (direction, lsh, trained)

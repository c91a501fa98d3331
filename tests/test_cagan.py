"""CAGAN: its graph, layers and losses against hand-worked values, the fixed-batch rule, and that it learns."""

import math

import pytest
import torch

from datamodules.toy import ToyDataModule
from methods.cagan import CAGAN
from methods.graphs import cosine, fused_similarity, shared_tag_similarity
from methods.heads import epoch_alpha
from methods.layers import AdaptiveGraphNetwork, DenseGraphConvolution
from methods.losses import paired_cosine, similarity_mse

from training import fit_and_test


def test_fused_similarity_by_hand():
    """Images (1,0), (0,1), (1,1): S_I = 2 cos - 1 has S_I12 = -1, S_I13 = S_I23 = a = sqrt(2) - 1.
    Tags {0}, {0,1}, {2}: S_T = [[1,1,-1],[1,1,-1],[-1,-1,1]].
    S_IT = cos(rows of S_I, rows of S_T): row 1 = (1,-1,a) against (1,1,-1): -a / (sqrt(2+a^2) sqrt 3) = -0.16228;
    row 3 = (a,a,1) against (1,1,-1): (2a-1) / (sqrt(2a^2+1) sqrt 3) = -0.08547.
    S = 1.4 (0.5 S_I + 0.2 S_T + 0.3 S_IT):
      S11 = 1.4 (0.5 + 0.2 - 0.3 * 0.16228) = 0.91184;   S12 = 1.4 (-0.5 + 0.2 - 0.3 * 0.16228) = -0.48816;
      S13 = 1.4 (0.5a - 0.2 + 0.3 * 0.16228) = 0.07811; S31 = 1.4 (0.5a - 0.2 - 0.3 * 0.08547) = -0.02595."""
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    bow = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert torch.equal(shared_tag_similarity(bow), torch.tensor([[1.0, 1, -1], [1, 1, -1], [-1, -1, 1]]))
    s = fused_similarity(image, bow, eta=0.5, beta=0.2, lam=0.3, mu=1.4)
    expected = {(0, 0): 0.91184, (0, 1): -0.48816, (0, 2): 0.07811, (2, 0): -0.02595}
    for (i, j), value in expected.items():
        assert s[i, j].item() == pytest.approx(value, abs=1e-5)
    dense = fused_similarity(image, bow, 0.5, 0.2, 0.3, 1.4, text_similarity="cosine")
    assert dense[0, 1].item() != pytest.approx(s[0, 1].item())
    with pytest.raises(ValueError, match="text_similarity"):
        fused_similarity(image, bow, 0.5, 0.2, 0.3, 1.4, text_similarity="jaccard")


def test_similarity_losses_by_hand():
    """x = (1,0), (1,1); y = (0,1), (1,1): cos(x, y) = [[0, 1/sqrt2], [1/sqrt2, 1]].
    Against the identity: (0-1)^2, 1/2, 1/2, 0 -> mean 1/2. Paired cosine: (0 + 1) / 2."""
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert torch.allclose(cosine(x, y), torch.tensor([[0.0, 2 ** -0.5], [2 ** -0.5, 1.0]]))
    assert similarity_mse(x, y, torch.eye(2)).item() == pytest.approx(0.5)
    assert paired_cosine(x, y).item() == pytest.approx(0.5)
    assert epoch_alpha(0) == 1 and epoch_alpha(3) == 2


def test_graph_convolution_by_hand():
    """x = (1), (2); A = swap; W = 2, b = 0.5 -> A (x W) + b = (4.5, 2.5)."""
    layer = DenseGraphConvolution(1, 1)
    with torch.no_grad():
        layer.linear.weight.fill_(2.0)
        layer.bias.fill_(0.5)
    out = layer(torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert torch.allclose(out, torch.tensor([[4.5], [2.5]]))


def test_graph_layers_are_drawn_as_the_authors_code_draws_them():
    """pygcn's init (CAGAN's and GNN4CMR's GraphConvolution): weight and bias U(+-1/sqrt(out)); CAGAN's W:
    kaiming_uniform_ with a = 0, bound sqrt(6 / fan_in) = 0.433 at batch 32."""
    torch.manual_seed(0)
    layer = DenseGraphConvolution(300, 64)
    for values in (layer.linear.weight, layer.bias):
        assert 0.95 / 8 < values.abs().max().item() <= 1 / 8
    net = AdaptiveGraphNetwork(in_dim=5, bits=8, batch_size=32, gamma=0.45)
    assert 0.95 * math.sqrt(6 / 32) < net.adaptive.abs().max().item() <= math.sqrt(6 / 32)


def test_adaptive_graph_needs_full_batches():
    net = AdaptiveGraphNetwork(in_dim=5, bits=8, batch_size=4, gamma=0.45)
    assert net(torch.randn(4, 5), torch.zeros(4, 4)).shape == (4, 8)
    assert net.adaptive.shape == (4, 4)
    with pytest.raises(ValueError, match="batches of 4, got 3 items"):
        net(torch.randn(3, 5), torch.zeros(3, 3))
    data = ToyDataModule(batch_size=4)
    data.setup()
    with pytest.raises(ValueError, match="set data.drop_last=true"):  # so the method refuses a loader that keeps it
        CAGAN.from_datamodule(data, bits=8)


def test_loss_is_the_weighted_sum_of_its_terms():
    torch.manual_seed(0)
    model = CAGAN(bits=8, image_dim=6, text_dim=5, num_classes=3, batch_size=4, hidden=16,
                  text_similarity="shared_tags")
    image, text = torch.randn(4, 6), (torch.rand(4, 5) < 0.5).float()
    terms = model.pair_losses(image, text, alpha=1.5)
    assert terms["loss"].item() == pytest.approx(
        0.1 * terms["l1"].item() + terms["l2"].item() + terms["l3"].item() + 0.15 * terms["l4"].item(), rel=1e-6)
    s = fused_similarity(image, text, 0.5, 0.2, 0.3, 1.4)
    b_i = torch.tanh(1.5 * model.encode_image(image))
    b_t = torch.tanh(1.5 * model.encode_text(text))
    assert terms["l1"].item() == pytest.approx((similarity_mse(b_i, b_i, s) + similarity_mse(b_t, b_t, s)).item(), rel=1e-6)
    l2 = similarity_mse(b_i, b_t, s) + similarity_mse(b_t, b_i, s) - paired_cosine(b_i, b_t)
    assert terms["l2"].item() == pytest.approx(l2.item(), rel=1e-6)
    assert model.encode_image(image).shape == (4, 8) and model.encode_text(text).shape == (4, 8)


@pytest.mark.slow
def test_cagan_learns_the_toy_set():
    untrained, trained = fit_and_test("cagan", bits=64, epochs=0), fit_and_test("cagan", bits=64, epochs=6)
    lsh = fit_and_test("lsh", bits=64)
    for direction in ("i2t", "t2i"):
        assert trained[direction] > untrained[direction] + 0.2, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.2, (direction, lsh, trained)

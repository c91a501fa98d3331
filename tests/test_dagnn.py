"""Dual adversarial GNN: label graphs, layers and every loss term by hand; both variants learn the toy set."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from common.errors import DataError
from datamodules.toy import ToyDataModule
from methods.dagnn import DAGNN
from methods.graphs import iterative_label_adjacency, probabilistic_label_adjacency, thresholded_cosine
from methods.layers import ModalityDiscriminator, MultiHopLabelGCN
from methods.losses import label_regression, modality_cross_entropy, multilabel_likelihood, soft_contrastive

from training import fit_and_test

E = math.e


def test_probabilistic_adjacency_by_hand():
    """Labels of 4 items over 4 classes (n = 3, 2, 1, 0; n_01 = 2): P(0|1) = 1 is the only conditional >= 0.7
    between two labels. The authors' counts hold 2 n_i on the diagonal (GNN4CMR util.py gen_A on the file of
    ALGCN's gen_occurrence_adj.py), so each label seen in training keeps itself with 1 + 0.5 and the unseen
    label 3 with 1: A = diag(1.5, 1.5, 1.5, 1) + 0.5 e_1 e_0'. Row sums (1.5, 2, 1.5, 1); out[i, j] =
    A[j, i] / sqrt(d_i d_j): label 0 gathers from label 1 with 0.5 / sqrt(3), label 1 keeps 1.5 / 2 of itself."""
    labels = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]])
    expected = torch.tensor([[1.0, 0.5 / math.sqrt(3), 0.0, 0.0], [0.0, 0.75, 0.0, 0.0],
                             [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    assert torch.allclose(probabilistic_label_adjacency(labels, 0.7), expected)


def test_iterative_adjacency_by_hand():
    """Embeddings (1,0), (1,1), (0,1): cosines 1/sqrt2 between neighbours, 0 between the ends.
    A0 at threshold 0.5 keeps them; the re-weighted cosines (one weight (1, 1)) at threshold 0.8 keep only
    the diagonal. A = 0.5 A0 + 0.5 I: off-diagonal 1/(2 sqrt2) = 0.35355, row sums 1.35355, 1.70711."""
    e = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    a0 = thresholded_cosine(e, 0.5)
    assert torch.allclose(a0, torch.tensor([[1, 2 ** -0.5, 0], [2 ** -0.5, 1, 2 ** -0.5], [0, 2 ** -0.5, 1]]))
    out = iterative_label_adjacency(e, torch.ones(1, 2), a0, 0.8, 0.5)
    off, d = 0.5 * 2 ** -0.5, torch.tensor([1 + 0.5 * 2 ** -0.5, 1 + 2 ** -0.5, 1 + 0.5 * 2 ** -0.5])
    assert out[0, 1].item() == pytest.approx(off / math.sqrt(d[0] * d[1]), rel=1e-6)
    assert out[0, 0].item() == pytest.approx(1 / d[0].item(), rel=1e-6) and out[0, 2].item() == 0
    assert torch.allclose(out, out.T)
    # The re-weightings are learned: the adjacency carries their gradient.
    w = torch.ones(1, 2, requires_grad=True)
    iterative_label_adjacency(e, w, a0, 0.0, 0.5).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_multi_hop_gcn_reaches_k_hops():
    """On the path 0 - 1 - 2 node 0 sees node 2 only through two layers."""
    path = torch.tensor([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]])
    torch.manual_seed(0)
    for layers, sees_node_2 in ((1, False), (2, True)):
        gcn = MultiHopLabelGCN(4, 8, layers)
        x = torch.randn(3, 4)
        y = x.clone()
        y[2] += 1
        assert gcn(x, path).shape == (3, 8)
        assert (not torch.allclose(gcn(x, path)[0], gcn(y, path)[0])) == sees_node_2


def test_soft_contrastive_by_hand():
    """Items 0 and 1 share a label and have identical features e1, item 2 has e2 (tau 1, scale 1).
    Cross-modal weights: rows 0, 1 -> (1/2, 1/2, 0), row 2 -> (0, 0, 1); the log-likelihood of each positive
    is cos - logsumexp(cos row): rows 0, 1: 1 - log(2e + 1), row 2: 1 - log(2 + e). Within a modality the
    item itself is no positive: rows 0, 1 give item 1 / item 0 weight 1, row 2 has none (contributes 0)."""
    labels = torch.tensor([[1, 0], [1, 0], [0, 1]])
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    inter = (2 * (1 - math.log(2 * E + 1)) + (1 - math.log(2 + E))) / 3
    intra = 2 * (1 - math.log(2 * E + 1)) / 3
    for gamma in (0.0, 0.14):
        expected = -(2 * inter + gamma * 2 * intra)
        assert soft_contrastive(f, f, labels, tau=1.0, gamma=gamma, logit_scale=1.0).item() == pytest.approx(expected, rel=1e-6)
    # The code's 1.06 scale inside the log-sum-exp and the temperature: disjoint labels, orthogonal features.
    eye, tau = torch.eye(2), 0.5
    expected = -2 * (1 / tau - math.log(math.exp(1.06 / tau) + 1))
    assert soft_contrastive(eye, eye, eye, tau=tau, gamma=0.14).item() == pytest.approx(expected, rel=1e-6)


def test_likelihood_classification_and_adversarial_terms_by_hand():
    eye = torch.eye(2)
    # theta = cos / 2 = I / 2, S = I: diagonal log(1 + e^0.5) - 0.5, off-diagonal log 2; three pair sets.
    term = (2 * (math.log(1 + math.exp(0.5)) - 0.5) + 2 * math.log(2)) / 4
    assert multilabel_likelihood(eye, eye, eye).item() == pytest.approx(3 * term, rel=1e-6)
    # ||(0.5, 0.5) - (1, 0)|| = 0.70711 and ||(0, 1) - (0, 1)|| = 0.
    assert label_regression(torch.tensor([[0.5, 0.5], [0.0, 1.0]]), eye).item() == pytest.approx(2 ** -0.5 / 2)
    # Undecided discriminators cost log 2 per input; confident correct ones almost nothing.
    zeros = torch.zeros(3, 2)
    assert modality_cross_entropy([zeros, zeros], [zeros, zeros]).item() == pytest.approx(4 * math.log(2))
    right = torch.tensor([[0.0, 20.0]])
    assert modality_cross_entropy([right], [right.flip(1)]).item() == pytest.approx(0.0, abs=1e-8)


def test_discriminator_reverses_the_gradient_of_its_input_only():
    torch.manual_seed(0)
    disc = ModalityDiscriminator(32).eval()
    x = torch.randn(4, 32, requires_grad=True)
    modality_cross_entropy([disc(x)], []).backward()
    reversed_grad, layer_grad = x.grad.clone(), disc.net[1].weight.grad.clone()
    x.grad, disc.net[1].weight.grad = None, None
    modality_cross_entropy([disc.net(x)], []).backward()  # the same network without the reversal
    assert torch.allclose(reversed_grad, -x.grad) and torch.allclose(layer_grad, disc.net[1].weight.grad)


def test_label_vector_sources(tmp_path):
    """The data side gives the label vectors (methods never read files or encoders themselves)."""
    data = ToyDataModule(cache_dir=tmp_path, n_classes=3)
    data.setup()
    data.data = dataclasses.replace(data.data, label_names=("sky", "clouds", "dog"))
    vectors = data.label_vectors()
    assert vectors.shape == (3, 384)
    cos = torch.nn.functional.cosine_similarity
    assert cos(vectors[0], vectors[1], dim=0) > cos(vectors[0], vectors[2], dim=0)  # sky is nearer clouds than dog
    np.save(tmp_path / "inp.npy", np.ones((4, 300)))
    data.label_vector_source = str(tmp_path / "inp.npy")
    with pytest.raises(DataError, match=r"inp\.npy: expected a \(3, d\) matrix"):
        data.label_vectors()
    np.save(tmp_path / "inp.npy", np.ones((3, 300)))
    model = DAGNN.from_datamodule(data, 8, graph="probabilistic")
    assert model.label_vectors.shape == (3, 300) and not model.label_vectors.requires_grad  # given: fixed in P-GNN
    data.label_vector_source = "none"
    model = DAGNN.from_datamodule(data, 8)
    assert model.label_vectors.shape == (3, 300) and model.label_vectors.requires_grad


@pytest.mark.parametrize("graph", ["iterative", "probabilistic"])
def test_losses_compose_and_shapes(graph):
    torch.manual_seed(0)
    labels = (torch.rand(6, 4) < 0.5).float()
    labels[:, 0] = 1
    model = DAGNN(bits=8, image_dim=40, text_dim=24, num_classes=4, train_labels=labels, graph=graph,
                             label_vectors=None)
    batch = {"image": torch.randn(6, 40).relu(), "text": (torch.rand(6, 24) < 0.3).float(), "labels": labels}
    terms = model.losses(batch)
    assert terms["loss"].item() == pytest.approx(0.5 * terms["cla"].item() + terms["feat"].item() + 2 * terms["gan"].item()
                                                 + terms["code"].item() + 0.1 * terms["quant"].item(), rel=1e-5)
    assert model.encode_image(batch["image"]).shape == (6, 8) and model.embed_text(batch["text"]).shape == (6, 1024)
    assert model.label_classifiers().shape == (4, 1024)
    assert model.label_vectors.requires_grad  # random label vectors are learned in both graphs
    if graph == "probabilistic":  # U(0, 1), the P-GNN code's torch.rand
        assert 0 <= model.label_vectors.min() and model.label_vectors.max() < 1
    assert DAGNN.supervised and model.real_valued


@pytest.mark.slow
def test_dagnn_learns_the_toy_set_and_beats_the_baselines():
    shrink = ["--data.label_vectors=none", "--method.lr=0.001"]  # the code's 5e-5 needs its 40 epochs
    untrained = fit_and_test("dagnn", bits=32, epochs=0, overrides=shrink)
    trained = fit_and_test("dagnn", bits=32, epochs=8, overrides=shrink)
    lsh, cca_itq = fit_and_test("lsh", bits=32), fit_and_test("cca_itq", bits=32)
    for direction in ("i2t", "t2i"):
        assert trained[direction] > untrained[direction] + 0.3, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.3 and trained[direction] > cca_itq[direction] + 0.1
        assert trained[f"cosine_{direction}"] > untrained[f"cosine_{direction}"] + 0.3  # the real-valued features


@pytest.mark.slow
def test_aaai_variant_learns_the_toy_set():
    shrink = ["--data.label_vectors=none", "--method.lr=0.001", "--method.graph=probabilistic",
              "--method.feature_loss=likelihood"]
    untrained = fit_and_test("dagnn", bits=32, epochs=0, overrides=shrink)
    trained = fit_and_test("dagnn", bits=32, epochs=10, overrides=shrink)
    for direction in ("i2t", "t2i"):
        assert trained[direction] > untrained[direction] + 0.1, (direction, untrained, trained)

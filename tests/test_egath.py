"""EGATH: label graph, triplet and quantization by hand; features mode learns; end-to-end mode fine-tunes CLIP."""

import pytest
import torch

from datamodules.mirflickr import MIRFlickrDataModule
from methods.egath import EGATH
from methods.graphs import label_cooccurrence_graph, label_similarity
from methods.losses import cross_modal_triplet, quantization

from conftest import SHARED_DATA
from training import fit_and_test

MIR = SHARED_DATA / "mirflickr25k"


def edges(edge_index: torch.Tensor) -> set:
    return set(map(tuple, edge_index.T.tolist()))


def test_label_graph_by_hand():
    """Labels of 4 items over 3 classes: n = (3, 2, 1), n_01 = 2. P(1|0) = 2/3, P(0|1) = 1, nothing else.
    At threshold 0.7 only A[1, 0] survives (edge 0 -> 1), plus self-loops; at 0.5 A[0, 1] too (edge 1 -> 0)."""
    labels = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert edges(label_cooccurrence_graph(labels, 0.7)) == {(0, 0), (1, 1), (2, 2), (0, 1)}
    assert edges(label_cooccurrence_graph(labels, 0.5)) == {(0, 0), (1, 1), (2, 2), (0, 1), (1, 0)}
    assert torch.equal(label_similarity(labels[:2], labels[2:]), torch.tensor([[1.0, -1.0], [1.0, -1.0]]))


def test_triplet_and_quantization_by_hand():
    """Anchor (1,0); others (1,0) relevant, (0,1) irrelevant, (1,1) relevant. Cosine distances 0, 1,
    1 - 1/sqrt2 = 0.29289: hardest positive 0.29289, hardest negative 1.
    margin 0.4: relu(0.29289 - 1 + 0.4) = 0; margin 0.8: 0.09289."""
    anchor = torch.tensor([[1.0, 0.0]])
    others = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    relevant = torch.tensor([[True, False, True]])
    assert cross_modal_triplet(anchor, others, relevant, 0.4).item() == pytest.approx(0.0)
    assert cross_modal_triplet(anchor, others, relevant, 0.8).item() == pytest.approx(0.8 - 2 ** -0.5, abs=1e-6)
    assert cross_modal_triplet(anchor, others, torch.tensor([[True, True, True]]), 0.8).item() == 0  # no negative
    assert quantization(torch.tensor([[0.5, -1.0]])).item() == pytest.approx(0.125)


def test_loss_terms_compose_and_shapes():
    torch.manual_seed(0)
    labels = (torch.rand(6, 4) < 0.5).float()
    labels[:, 0] = 1
    model = EGATH(bits=8, image_dim=5, text_dim=7, num_classes=4, train_labels=labels)
    batch = {"image": torch.randn(6, 5), "text": torch.randn(6, 7), "labels": labels}
    terms = model.losses(batch)
    assert terms["loss"].item() == pytest.approx(
        terms["cls"].item() + terms["sim"].item() + terms["tri"].item() + 0.1 * terms["quant"].item(), rel=1e-6)
    assert model.encode_image(batch["image"]).shape == (6, 8)
    assert model.classifier(model.label_embeddings, model.edge_index).shape == (4, 8)
    assert EGATH.supervised


@pytest.mark.slow
def test_egath_learns_the_toy_set_and_beats_cca_itq():
    untrained = fit_and_test("egath", bits=32, epochs=0)
    trained = fit_and_test("egath", bits=32, epochs=15)
    lsh, cca_itq = fit_and_test("lsh", bits=32), fit_and_test("cca_itq", bits=32)
    for direction in ("i2t", "t2i"):
        assert trained[direction] > untrained[direction] + 0.3, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.3 and trained[direction] > cca_itq[direction] + 0.1


@pytest.mark.shared_data("mirflickr25k")
def test_end_to_end_step_fine_tunes_clip_on_real_images(tiny_clip, tmp_path):
    """One optimisation step on a raw batch of real MIRFlickr images and tags: the CLIP weights move by
    about the backbone learning rate (Adam's first step is lr-sized), the heads by about theirs, and the
    loss on that batch goes down."""
    dm = MIRFlickrDataModule(MIR, source="lists", only_with_images=True, image_dir="images", protocol="mini",
                             image_backbone="clip", text_backbone="clip", clip_model=tiny_clip, raw=True,
                             batch_size=16, cache_dir=tmp_path)
    dm.prepare_data()
    dm.setup()
    torch.manual_seed(0)
    model = EGATH(bits=16, image_dim=None, text_dim=None, num_classes=dm.num_classes, mode="end_to_end",
                             clip_model=tiny_clip, train_labels=dm.train_labels, backbone_lr=1e-4,
                             weight_decay=0.0, warmup=0.0)
    batch = next(iter(dm.train_dataloader()))
    optimizer = model.configure_optimizers()["optimizer"]
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-4]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.eval()
    with torch.no_grad():
        loss_before = model.losses(batch)["loss"].item()
    model.train()
    optimizer.zero_grad()
    model.losses(batch)["loss"].backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        loss_after = model.losses(batch)["loss"].item()
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}
    backbone = max(v for n, v in moved.items() if n.startswith("backbone."))
    heads = max(v for n, v in moved.items() if n.startswith("image_head."))
    assert 0.5e-4 < backbone <= 1.01e-4 and 0.5e-3 < heads <= 1.01e-3
    assert loss_after < loss_before

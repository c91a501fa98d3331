"""DGCPN (Yu et al., AAAI 2021): its graph-neighbour coherence and loss terms by hand, its three steps a batch, a
saved run without the training set, and that it learns."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from benchmarks.execution import artifacts
from benchmarks.execution.pipeline import make_trainer
from benchmarks.spec.config import resolve
from datamodules.splits import Split
from methods.dgcpn import DGCPN, coherence_losses, off_diagonal_mse
from methods.graphs import graph_neighbour_coherence

from records import fake_record
from training import fit_and_test

# Unit rows with cosines 0.6 (0, 1), 0 (0, 2), -0.6 (0, 3), 0.8 (1, 2), 0.28 (1, 3), 0.8 (2, 3).
POINTS = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.6, 0.8]])


def test_graph_neighbour_coherence_by_hand():
    """k = 3: each row keeps its three largest cosines and drops itself, then sums to 1:
    P0 = (0, 1, 0, 0) (0.6 and 0, over 0.6), P1 = (3/7, 0, 4/7, 0), P2 = (0, 1/2, 0, 1/2),
    P3 = (0, 7/27, 20/27, 0). With the image cosines only, a = 0.5 and scale 2: R = S + 2 P P' - 1."""
    r = graph_neighbour_coherence(POINTS, torch.randn(4, 3), text_weight=0.0, second_order=0.5, k=3, scale=2.0)
    assert r[0, 0].item() == pytest.approx(1 + 2 - 1)  # P0 . P0 = 1
    assert r[0, 1].item() == pytest.approx(0.6 + 0 - 1)  # no shared neighbour
    assert r[0, 2].item() == pytest.approx(0 + 2 * 0.5 - 1)  # P0 . P2 = 1/2
    assert r[1, 3].item() == pytest.approx(0.28 + 2 * (4 / 7) * (20 / 27) - 1, abs=1e-6)
    assert torch.allclose(r, r.T)
    # the text cosines take the weight text_weight: all of it here, so the image features no longer matter
    assert torch.allclose(graph_neighbour_coherence(torch.randn(4, 5), POINTS, 1.0, 0.5, 3, 2.0), r, atol=1e-6)


def test_loss_terms_by_hand():
    """B_I = I, B_T = two copies of (1, 0): B_I B_I' = I, B_T B_T' = all ones, B_I B_T' = [[1, 1], [0, 0]].
    pair: ((1 - 1.5)^2 + (0 - 1.5)^2) / 2 = 1.25; graph against off-diagonal 0.5: each term has two gaps of 0.5
    over 4 entries, 0.125, three terms 0.375; consistency: four mse of 0.5 each, 2."""
    image, text = torch.eye(2) * 3, torch.tensor([[2.0, 0.0], [0.5, 0.0]])  # rows are normalised first
    target = torch.tensor([[9.0, 0.5], [0.5, 9.0]])  # the diagonal is ignored
    terms = coherence_losses(image, text, target, pair_target=1.5, w_graph=2.0, w_consistency=0.5)
    assert terms["pair"].item() == pytest.approx(1.25)
    assert terms["graph"].item() == pytest.approx(0.375)
    assert terms["consistency"].item() == pytest.approx(2.0)
    assert terms["loss"].item() == pytest.approx(1.25 + 2 * 0.375 + 0.5 * 2.0)
    assert off_diagonal_mse(torch.ones(2, 2), torch.zeros(2, 2)).item() == pytest.approx(0.5)


def model(**options) -> DGCPN:
    torch.manual_seed(0)
    return DGCPN(bits=4, image_dim=2, text_dim=3, num_classes=2, train_image=POINTS, train_text=torch.randn(4, 3),
                 hidden=8, k_ratio=0.75, **options)


def test_a_batch_reads_its_rows_and_columns_of_the_training_graph():
    dgcpn = model(second_order=0.5, scale=2 / 3, text_weight=0.0)  # k = 3, scale x k = 2: the graph above
    expected = graph_neighbour_coherence(POINTS, torch.zeros(4, 3), 0.0, 0.5, 3, 2.0)
    assert torch.allclose(dgcpn.graph, expected)
    index = torch.tensor([3, 1])
    codes = torch.randn(2, 4), torch.randn(2, 4)
    terms = dgcpn.batch_terms(*codes, index)
    direct = coherence_losses(*codes, expected[[3, 1]][:, [3, 1]], 1.5, 1.0, 1.0)
    assert terms["loss"].item() == pytest.approx(direct["loss"].item())


def test_each_batch_takes_three_steps_the_joint_one_then_each_network_against_the_others_signs():
    dgcpn = model()
    batch = {"index": torch.arange(4), "image": POINTS, "text": torch.randn(4, 3), "labels": torch.zeros(4, 2)}
    trainer = make_trainer(resolve("dgcpn", "toy", 4, 0, ["--logger.kind=none", "--trainer.max_epochs=1"]))
    trainer.fit(dgcpn, DataLoader([batch], batch_size=None))
    assert trainer.global_step == 4  # two optimisers, each stepped twice


def test_a_saved_run_leaves_the_training_set_out_and_still_encodes(tmp_path):
    dgcpn = model().eval()
    given = {"image_dim": 2, "text_dim": 3, "num_classes": 2, "train_image": POINTS, "train_text": torch.randn(4, 3)}
    artifacts.save(tmp_path / "run", fake_record("dgcpn", 4, 0, 0.5, 0.5, hidden=8, k_ratio=0.75), dgcpn, given, {},
                   Split(*(np.arange(2),) * 4), False)
    loaded = artifacts.load_method(tmp_path / "run")
    assert loaded.graph.numel() == 0
    assert torch.equal(loaded.encode_text(torch.ones(2, 3)), dgcpn.encode_text(torch.ones(2, 3)))
    with pytest.raises(RuntimeError, match="built without the training set"):
        loaded.losses({"index": torch.arange(2), "image": POINTS[:2], "text": torch.ones(2, 3)})


@pytest.mark.slow
def test_dgcpn_learns_the_toy_set():
    untrained = fit_and_test("dgcpn", bits=32, epochs=0)
    trained = fit_and_test("dgcpn", bits=32, epochs=2)
    lsh = fit_and_test("lsh", bits=32)
    for direction in ("i2t", "t2i"):  # 2 of 100 epochs: 0.20 and 0.19 against 0.07 untrained (10 epochs: 0.48)
        assert trained[direction] > untrained[direction] + 0.05, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.05, (direction, lsh, trained)

"""The reference baselines: their parts on tiny inputs, and that cca_itq learns where lsh cannot."""

import numpy as np
import pytest
import torch

from datamodules.toy import ToyDataModule
from datamodules.wikipedia import WikipediaDataModule
from methods.cca_itq import CCAITQ, cca, itq_rotation

from training import chance, fit_and_test


def test_cca_finds_a_perfectly_correlated_pair():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(200, 2, generator=g, dtype=torch.float64)
    # y's first column is exactly 2 x0 - x1; its second is independent noise.
    y = torch.stack([2 * x[:, 0] - x[:, 1], noise[:, 0]], 1)
    x, y = x - x.mean(0), y - y.mean(0)
    wx, wy, correlations = cca(x, y, dims=2, reg=0.0)
    assert correlations[0].item() == pytest.approx(1.0, abs=1e-9)
    assert correlations[1].item() < 0.3
    u, v = x @ wx[:, 0], y @ wy[:, 0]
    assert torch.corrcoef(torch.stack([u, v]))[0, 1].abs().item() == pytest.approx(1.0, abs=1e-9)


def test_itq_rotates_points_on_the_diagonals_onto_the_hypercube_vertices():
    # Points at the four axis directions: the rotation by 45 degrees puts them on (+-1, +-1) / sqrt(2).
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=torch.float64).repeat(10, 1)
    torch.manual_seed(0)
    rotation = itq_rotation(v, iterations=50)
    assert torch.allclose(rotation @ rotation.T, torch.eye(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose((v @ rotation).abs(), torch.full((40, 2), 2 ** -0.5, dtype=torch.float64), atol=1e-6)


def test_cca_itq_refuses_more_bits_than_dimensions():
    with pytest.raises(ValueError, match="64 bits need 64 canonical directions.*10 \\(text\\)"):
        CCAITQ(bits=64, image_dim=128, text_dim=10, num_classes=10)


@pytest.mark.parametrize("dataset", ["toy", "wikipedia"])
def test_cca_itq_beats_lsh_and_chance(dataset):
    lsh, cca_itq = fit_and_test("lsh", dataset), fit_and_test("cca_itq", dataset)
    dm = {"toy": ToyDataModule, "wikipedia": WikipediaDataModule}[dataset]()
    dm.setup()
    floor = chance(dm)
    margin = {"toy": 0.2, "wikipedia": 0.02}[dataset]
    for direction in ("i2t", "t2i"):
        assert lsh[direction] == pytest.approx(floor, abs=0.02)  # independent projections: chance
        assert cca_itq[direction] > lsh[direction] + margin
        assert cca_itq[direction] > floor + margin


def test_same_seed_same_numbers():
    assert fit_and_test("cca_itq", bits=16) == fit_and_test("cca_itq", bits=16)
    assert np.isfinite(list(fit_and_test("lsh", bits=16).values())).all()

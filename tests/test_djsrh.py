"""DJSRH (Su et al., ICCV 2019): its joint-semantics affinity and loss by hand, and that it learns."""

import pytest
import torch

from methods.djsrh import DJSRH, joint_semantics

from training import fit_and_test


def test_joint_semantics_by_hand():
    """Images (1,0), (0,1): S_I = 2 I - 1 = [[1,-1],[-1,1]]; texts (1,1), (1,1): S_T = all ones. beta 0.5:
    S~ = [[1,0],[0,1]]; eta 0.4 and n = 2: S = 0.6 S~ + 0.4 S~ S~' / 2 = 0.8 I; mu 1.5: 1.2 I."""
    image, text = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2, 3)
    assert torch.allclose(joint_semantics(image, text, beta=0.5, eta=0.4, mu=1.5), 1.2 * torch.eye(2), atol=1e-6)


def test_loss_by_hand():
    """With identical image and text codes B_I = B_T = [[1,0],[0,1]] (cosines I) against S = 1.2 I, each term is
    mean((I - 1.2 I)^2) = (2 x 0.04) / 4 = 0.02: loss = 0.1 x 0.02 + 0.02 + 0.1 x 0.02 = 0.024."""
    model = DJSRH(bits=2, image_dim=2, text_dim=3, num_classes=2, hidden=4, beta=0.5)
    codes = torch.tensor([[5.0, 0.0], [0.0, 5.0]])  # tanh(5 alpha) ~ 1
    model.encode_image = model.encode_text = lambda x: codes
    terms = model.losses({"image": torch.tensor([[1.0, 0.0], [0.0, 1.0]]), "text": torch.ones(2, 3)})
    for term in ("image", "cross", "text"):
        assert terms[term].item() == pytest.approx(0.02, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(0.024, abs=1e-6)


@pytest.mark.slow
def test_djsrh_learns_the_toy_set():
    untrained = fit_and_test("djsrh", bits=32, epochs=0)
    trained = fit_and_test("djsrh", bits=32, epochs=10)
    lsh = fit_and_test("lsh", bits=32)
    for direction in ("i2t", "t2i"):  # 10 of 80 epochs: 0.17 against 0.08 untrained
        assert trained[direction] > untrained[direction] + 0.05, (direction, untrained, trained)
        assert trained[direction] > lsh[direction] + 0.05, (direction, lsh, trained)


"""What serving a trained method costs (benchmarks.execution.serving): the bytes it keeps, by hand."""

import torch

from benchmarks.execution.serving import kept_state, serving_cost
from methods.dgcpn import DGCPN


def test_serving_keeps_what_encodes_and_times_both_modalities():
    """DGCPN with 4 bits on 3-d images and 5-d texts, hidden 8: the image network 3 x 8 + 8 + 8 x 4 + 4 = 68 and
    the text network 5 x 8 + 8 + 8 x 4 + 4 = 84 values are kept, 152 float32 = 608 bytes; its graph over the
    training items is not."""
    method = DGCPN(bits=4, image_dim=3, text_dim=5, num_classes=2, train_image=torch.randn(6, 3),
                   train_text=torch.randn(6, 5), hidden=8)
    assert {k.split(".")[0] for k in kept_state(method)} == {"image_hash", "text_hash"}
    cost = serving_cost(method, {"image": torch.randn(300, 3), "text": torch.randn(300, 5)}, repeats=2)
    assert cost["weights_bytes"] == 608 and method.training  # left as it was found
    assert all(cost[k][m] > 0 for k in ("ms_per_item", "items_per_second") for m in ("image", "text"))

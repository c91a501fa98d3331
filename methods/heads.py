"""Hash heads: networks that map a modality's features to continuous codes."""

import math

import torch
from torch import nn


class HashMLP(nn.Module):
    """in_dim -> hidden -> ReLU -> bits. `forward` gives the output h and the hidden layer before its ReLU, a
    (the hidden features are Z = ReLU(a)); codes are tanh(alpha * h). With `batch_norm`, h is standardised
    per bit over the batch (running statistics at test time), so no bit can drift to one constant sign."""

    def __init__(self, in_dim: int, bits: int, hidden: int = 4096, batch_norm: bool = False):
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden)
        self.out = nn.Sequential(nn.Linear(hidden, bits), nn.BatchNorm1d(bits, affine=False)) if batch_norm \
            else nn.Linear(hidden, bits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.hidden(x)
        return self.out(torch.relu(a)), a


def epoch_alpha(epoch: int) -> float:
    """The tanh sharpness schedule alpha = sqrt(epoch + 1) ("iterative approximate optimization"):
    tanh(alpha h) approaches sign(h) as training goes on."""
    return math.sqrt(epoch + 1)

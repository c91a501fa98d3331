"""Hash heads: networks that map a modality's features to continuous codes."""

import math

import torch
from torch import nn


def hash_layer(in_dim: int, bits: int, batch_norm: bool = False) -> nn.Module:
    """Linear(in_dim, bits), followed with `batch_norm` by a per-bit standardisation over the batch (running
    statistics at test time), so that no bit can drift to one constant sign. Alone, it is the hash layer a
    method adds on top of a frozen backbone's features."""
    return nn.Sequential(nn.Linear(in_dim, bits), nn.BatchNorm1d(bits, affine=False)) if batch_norm \
        else nn.Linear(in_dim, bits)


class HashMLP(nn.Module):
    """in_dim -> hidden -> ReLU -> (dropout) -> hash_layer -> bits. `forward` gives the output h and the hidden
    layer before its ReLU, a (the hidden features are Z = ReLU(a)); codes are tanh(alpha * h)."""

    def __init__(self, in_dim: int, bits: int, hidden: int = 4096, batch_norm: bool = False, dropout: float = 0.0):
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = hash_layer(hidden, bits, batch_norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.hidden(x)
        return self.out(self.dropout(torch.relu(a))), a


def epoch_alpha(epoch: int) -> float:
    """The tanh sharpness schedule alpha = sqrt(epoch + 1) ("iterative approximate optimization"):
    tanh(alpha h) approaches sign(h) as training goes on."""
    return math.sqrt(epoch + 1)

"""Graph layers on dense batch adjacencies."""

import math

import torch
from torch import nn


class DenseGraphConvolution(nn.Module):
    """A (X W) + b over a dense (batch x batch) adjacency A, without normalisation (as in Kipf & Welling's
    layer with the adjacency given as is)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return adjacency @ self.linear(x) + self.bias


class AdaptiveGraphNetwork(nn.Module):
    """Two graph convolutions over A = S + gamma W with W a learnable (batch x batch) matrix, then a
    linear layer to `bits`. W is indexed by batch slot, so every batch must have `batch_size` items."""

    def __init__(self, in_dim: int, bits: int, batch_size: int, gamma: float, widths=(2048, 1024)):
        super().__init__()
        self.gamma, self.batch_size = gamma, batch_size
        self.adaptive = nn.Parameter(torch.empty(batch_size, batch_size))
        nn.init.kaiming_uniform_(self.adaptive, a=math.sqrt(5))
        self.conv1 = DenseGraphConvolution(in_dim, widths[0])
        self.conv2 = DenseGraphConvolution(widths[0], widths[1])
        self.out = nn.Linear(widths[1], bits)

    def forward(self, x: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.batch_size:
            raise ValueError(f"adaptive graph built for batches of {self.batch_size}, got {x.shape[0]} items "
                             "(the last incomplete batch must be dropped)")
        adjacency = similarity + self.gamma * self.adaptive
        return self.out(torch.relu(self.conv2(torch.relu(self.conv1(x, adjacency)), adjacency)))

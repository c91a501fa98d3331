"""Graph layers on dense adjacencies (batch or label graphs) and the adversarial building blocks."""

import math

import torch
from torch import nn


class DenseGraphConvolution(nn.Module):
    """A (X W) + b over a dense (nodes x nodes) adjacency A, without normalisation (as in Kipf & Welling's
    layer with the adjacency given as is). W and b are drawn from U(-1/sqrt(out), 1/sqrt(out)), as the pygcn
    layer that the authors' code of CAGAN and of the dual adversarial GNN copies."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True):
        super().__init__()
        bound = 1 / math.sqrt(out_dim)
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        nn.init.uniform_(self.linear.weight, -bound, bound)
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        out = adjacency @ self.linear(x)
        return out if self.bias is None else out + self.bias


class AdaptiveGraphNetwork(nn.Module):
    """Two graph convolutions over A = S + gamma W with W a learnable (batch x batch) matrix, then a
    linear layer to `bits`. W is indexed by batch slot, so every batch must have `batch_size` items.
    W is Kaiming-uniform with torch's default a = 0 as in CAGAN's code (bound sqrt(6 / batch))."""

    def __init__(self, in_dim: int, bits: int, batch_size: int, gamma: float, widths=(2048, 1024)):
        super().__init__()
        self.gamma, self.batch_size = gamma, batch_size
        self.adaptive = nn.Parameter(torch.empty(batch_size, batch_size))
        nn.init.kaiming_uniform_(self.adaptive, a=0)
        self.conv1 = DenseGraphConvolution(in_dim, widths[0])
        self.conv2 = DenseGraphConvolution(widths[0], widths[1])
        self.out = nn.Linear(widths[1], bits)

    def forward(self, x: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.batch_size:
            raise ValueError(f"adaptive graph built for batches of {self.batch_size}, got {x.shape[0]} items "
                             "(the last incomplete batch must be dropped)")
        adjacency = similarity + self.gamma * self.adaptive
        return self.out(torch.relu(self.conv2(torch.relu(self.conv1(x, adjacency)), adjacency)))


class LabelGraphAttention(nn.Module):
    """Two single-head graph attention layers over the label graph (EGATH's label classifier):
    label embeddings -> hidden -> LeakyReLU(0.2) -> out. The output row of each label is its classifier.

    `authors_layer`: the layers as the authors' gat.py builds them: no bias, and the weights and the attention
    vector drawn Xavier-uniform with gain 1.414 (the attention vector as one (2 x out, 1) matrix, the first half
    scoring the gathering label, the second the gathered one). Otherwise torch_geometric's GATConv defaults
    (a bias, gain 1)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, attention_dropout: float, authors_layer: bool = False):
        super().__init__()
        from torch_geometric.nn import GATConv

        self.gat1, self.gat2 = (GATConv(a, b, heads=1, dropout=attention_dropout, add_self_loops=False,
                                        bias=not authors_layer) for a, b in ((in_dim, hidden), (hidden, out_dim)))
        if authors_layer:
            for layer in (self.gat1, self.gat2):
                nn.init.xavier_uniform_(layer.lin.weight, gain=1.414)
                attention = nn.init.xavier_uniform_(torch.empty(2 * layer.out_channels, 1), gain=1.414)
                with torch.no_grad():
                    layer.att_dst.copy_(attention[:layer.out_channels].view_as(layer.att_dst))
                    layer.att_src.copy_(attention[layer.out_channels:].view_as(layer.att_src))

    def forward(self, nodes: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.gat2(nn.functional.leaky_relu(self.gat1(nodes, edge_index), 0.2), edge_index)


class TokenContext(nn.Module):
    """One transformer encoder layer over a token sequence (global context), read out at one position."""

    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, batch_first=True)

    def forward(self, tokens: torch.Tensor, readout: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        out = self.layer(tokens, src_key_padding_mask=padding)
        return out[torch.arange(len(out), device=out.device), readout]


class MultiHopLabelGCN(nn.Module):
    """Graph convolutions (no bias) each followed by LeakyReLU(0.2), the outputs of all layers (1 to n hops)
    concatenated and projected to `width`: one classifier row per label node."""

    def __init__(self, in_dim: int, width: int, layers: int):
        super().__init__()
        self.convs = nn.ModuleList(DenseGraphConvolution(in_dim if i == 0 else width, width, bias=False)
                                   for i in range(layers))
        self.aggregate = nn.Linear(layers * width, width)

    def forward(self, nodes: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        hops = []
        for conv in self.convs:
            nodes = nn.functional.leaky_relu(conv(nodes, adjacency), 0.2)
            hops.append(nodes)
        return self.aggregate(torch.cat(hops, 1))


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient is negated backward, so what precedes a discriminator learns to fool it."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.neg()


class ModalityDiscriminator(nn.Module):
    """Gradient reversal -> BatchNorm(d) -> d/4 -> d/16 -> 2 logits (ReLU between): tells real features of a
    modality from reconstructions decoded out of the other modality's common features."""

    def __init__(self, dim: int):
        super().__init__()
        hidden = max(dim // 4, 1), max(dim // 16, 1)
        self.net = nn.Sequential(nn.BatchNorm1d(dim), nn.Linear(dim, hidden[0]), nn.ReLU(),
                                 nn.Linear(hidden[0], hidden[1]), nn.ReLU(), nn.Linear(hidden[1], 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(GradientReversal.apply(x))

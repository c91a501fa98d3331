"""Loss terms shared by the methods."""

import torch

from methods.graphs import cosine


def similarity_mse(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mse(cos(x, y), target): the mean squared gap between the rows' cosine similarities and a target graph."""
    return ((cosine(x, y) - target) ** 2).mean()


def paired_cosine(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cosine of the matching rows of x and y (the diagonal of cos(x, y))."""
    return torch.nn.functional.cosine_similarity(x, y, dim=1).mean()

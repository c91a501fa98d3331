"""Loss terms shared by the methods."""

import torch

from methods.graphs import cosine


def similarity_mse(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mse(cos(x, y), target): the mean squared gap between the rows' cosine similarities and a target graph."""
    return ((cosine(x, y) - target) ** 2).mean()


def paired_cosine(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cosine of the matching rows of x and y (the diagonal of cos(x, y))."""
    return torch.nn.functional.cosine_similarity(x, y, dim=1).mean()


def quantization(codes: torch.Tensor) -> torch.Tensor:
    """mse(H, sign(H)): how far continuous codes are from binary ones."""
    return ((codes - codes.sign()) ** 2).mean()


def cross_modal_triplet(anchors: torch.Tensor, others: torch.Tensor, relevant: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss on cosine distance 1 - cos: for each anchor of one modality, its farthest
    relevant and nearest irrelevant item of the other modality; anchors lacking either are skipped."""
    distance = 1 - cosine(anchors, others)
    hardest_positive = distance.masked_fill(~relevant, float("-inf")).amax(1)
    hardest_negative = distance.masked_fill(relevant, float("inf")).amin(1)
    valid = relevant.any(1) & (~relevant).any(1)
    if not valid.any():
        return distance.sum() * 0
    return torch.relu(hardest_positive - hardest_negative + margin)[valid].mean()

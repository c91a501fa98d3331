"""Similarity graphs built over a batch (the targets and adjacencies of graph hashing methods)."""

import torch
import torch.nn.functional as F


def cosine(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Row-normalised x times row-normalised y transposed (y = x when omitted)."""
    x = F.normalize(x, dim=1)
    return x @ (x if y is None else F.normalize(y, dim=1)).T


def shared_tag_similarity(bow: torch.Tensor) -> torch.Tensor:
    """+1 where two items share at least one tag, -1 elsewhere."""
    return 2 * (cosine(bow) > 0).to(bow.dtype) - 1


def fused_similarity(image: torch.Tensor, text: torch.Tensor, eta: float, beta: float, lam: float, mu: float,
                     text_similarity: str = "shared_tags") -> torch.Tensor:
    """CAGAN's multi-perspective similarity: S = mu (eta S_I + beta S_T + lambda S_IT), where
    S_I = 2 cos(F_I, F_I) - 1, S_T = shared tags (or 2 cos(F_T, F_T) - 1 for dense text features), and
    S_IT = cos(S_I, S_T) is the second-order agreement of the two modalities' similarity rows."""
    s_image = 2 * cosine(image) - 1
    if text_similarity == "shared_tags":
        s_text = shared_tag_similarity(text)
    elif text_similarity == "cosine":
        s_text = 2 * cosine(text) - 1
    else:
        raise ValueError(f"text_similarity must be 'shared_tags' or 'cosine', got {text_similarity!r}")
    return mu * (eta * s_image + beta * s_text + lam * cosine(s_image, s_text))

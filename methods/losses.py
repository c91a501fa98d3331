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


def label_regression(predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between each item's predicted label scores and its multi-hot labels."""
    return (predictions - labels.to(predictions.dtype)).norm(dim=1).mean()


def soft_contrastive(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, tau: float, gamma: float,
                     logit_scale: float = 1.06) -> torch.Tensor:
    """Soft multi-label contrastive loss of paired rows x (one modality) and y (the other).

    Similarities s = cos / tau; item i's log-likelihood of item j is s_ij - logsumexp_j(logit_scale s_ij).
    Positives are weighted by the label overlap G = min(L L', 1), each row normalised to sum 1: across
    modalities in both directions (i -> j and j -> i, G includes the pair itself), and within each
    modality with weight gamma (the item itself excluded)."""
    labels = labels.to(x.dtype)
    g = (labels @ labels.T).clamp(max=1)
    inter = g / g.sum(1, keepdim=True).clamp_min(1e-6)
    g_intra = (g - torch.eye(len(g), dtype=g.dtype, device=g.device)).clamp_min(0)
    intra = g_intra / g_intra.sum(1, keepdim=True).clamp_min(1e-6)

    def log_likelihood(s: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        s = s / tau
        return (weights * (s - torch.logsumexp(logit_scale * s, dim=1, keepdim=True))).sum(1).mean()

    s_xy = cosine(x, y)
    return -(log_likelihood(s_xy, inter) + log_likelihood(s_xy.T, inter)
             + gamma * (log_likelihood(cosine(x), intra) + log_likelihood(cosine(y), intra)))


def multilabel_likelihood(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """DAGNN's (AAAI 2021) pairwise likelihood of the label overlap S = L L' (shared label counts) given
    theta = cos / 2: mean of log(1 + e^theta) - S theta, over the x-x, x-y and y-y pairs."""
    labels = labels.to(x.dtype)
    s = labels @ labels.T

    def term(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        theta = cosine(a, b) / 2
        return (torch.nn.functional.softplus(theta) - s * theta).mean()

    return term(x, x) + term(x, y) + term(y, y)


def modality_cross_entropy(from_image: list[torch.Tensor], from_text: list[torch.Tensor]) -> torch.Tensor:
    """Summed cross-entropy of modality discriminators' logits: class 1 for inputs derived from an image
    (real image features, image -> text reconstructions), class 0 for those derived from a text."""
    ce = torch.nn.functional.cross_entropy
    return (sum(ce(z, torch.ones(len(z), dtype=torch.long, device=z.device)) for z in from_image)
            + sum(ce(z, torch.zeros(len(z), dtype=torch.long, device=z.device)) for z in from_text))

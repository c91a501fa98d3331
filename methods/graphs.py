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


def keep_top_k(similarity: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's k largest entries kept, the rest set to 0 (a kNN graph built with torch.topk)."""
    values, columns = similarity.topk(k, dim=1)
    return torch.zeros_like(similarity).scatter_(1, columns, values)


def local_rebased_similarity(features: torch.Tensor, k: int, a: float) -> torch.Tensor:
    """SGRN's local relation graph of one modality: S = cos(F, F); K = S with each row's top-k kept;
    second-order evidence R = cos(K, K); result 2 (a S + (1 - a) R) - 1."""
    s = cosine(features)
    kept = keep_top_k(s, k)
    return 2 * (a * s + (1 - a) * cosine(kept)) - 1


def graph_neighbour_coherence(image: torch.Tensor, text: torch.Tensor, text_weight: float, second_order: float,
                              k: int, scale: float) -> torch.Tensor:
    """DGCPN's similarity of the whole training set: the fused cosines S = t cos(F_T, F_T) + (1 - t) cos(F_I, F_I);
    each row's k largest entries kept, its largest (the item itself) then removed, the rest 0, and the row divided
    by its sum, P; the graph-neighbour coherence scale P P' (two items whose neighbourhoods overlap); the result
    2 ((1 - a) S + a scale P P') - 1, with a = `second_order`."""
    fused = text_weight * cosine(text) + (1 - text_weight) * cosine(image)
    kept = keep_top_k(fused, k)
    kept.scatter_(1, fused.argmax(1, keepdim=True), 0.0)
    kept = kept / kept.sum(1, keepdim=True)
    return 2 * ((1 - second_order) * fused + second_order * scale * kept @ kept.T) - 1


def global_reconstruction(image_local: torch.Tensor, text_local: torch.Tensor, b: float, e: float) -> torch.Tensor:
    """Two modalities' graphs fused, S_J = b S_I + (1 - b) S_T, and diffused once: (1 - e) S_J + e S_J S_J' / n
    (DJSRH's joint-semantics affinity; SGRN's global relation graph over its local graphs)."""

    joint = b * image_local + (1 - b) * text_local
    return (1 - e) * joint + e * joint @ joint.T / joint.shape[0]


def label_cooccurrence(labels: torch.Tensor, threshold: float) -> torch.Tensor:
    """Binarised conditional co-occurrence of training labels, without self-loops: A[i, j] = 1 when
    i != j and P(j | i) = n_ij / n_i >= threshold (n_ij: items with both labels, n_i: items with label i)."""
    labels = labels.float()
    counts = labels.T @ labels
    conditional = counts / counts.diagonal().clamp_min(1)[:, None]
    return (conditional >= threshold) & ~torch.eye(len(counts), dtype=torch.bool, device=labels.device)


def label_cooccurrence_graph(labels: torch.Tensor, threshold: float) -> torch.Tensor:
    """label_cooccurrence with self-loops as edge_index (2, E): an edge j -> i for each A[i, j] = 1
    (label i gathers from label j)."""
    adjacency = label_cooccurrence(labels, threshold) | torch.eye(labels.shape[1], dtype=torch.bool, device=labels.device)
    target, source = adjacency.nonzero(as_tuple=True)
    return torch.stack([source, target])


def symmetric_normalized(adjacency: torch.Tensor) -> torch.Tensor:
    """D^-1/2 A' D^-1/2 with D the row sums of A (Kipf & Welling's propagation matrix, in the transposed
    form of the ML-GCN lineage's gen_adj; the same for a symmetric A)."""
    scale = adjacency.sum(1).rsqrt()
    return scale[:, None] * adjacency.T * scale[None, :]


def probabilistic_label_adjacency(labels: torch.Tensor, threshold: float, weight: float = 0.5) -> torch.Tensor:
    """P-GNN's label graph as the authors' code builds it (GNN4CMR util.py gen_A): the co-occurrence counts
    divided row-wise by n_i, binarised at `threshold`, times `weight`, plus the identity; normalised by
    symmetric_normalized, so label i gathers from label j when P(i | j) >= threshold. The authors' counts
    hold 2 n_i on the diagonal (their generator counts the pair (i, i) twice), so P(i | i) = 2 passes the
    threshold: every label seen in training keeps itself with weight 1 + `weight`."""
    labels = labels.float()
    edges = label_cooccurrence(labels, threshold).float() + torch.diag((labels.sum(0) > 0).float())
    return symmetric_normalized(weight * edges + torch.eye(labels.shape[1], device=labels.device))


def thresholded_cosine(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """cos(x, x) with entries below `threshold` set to 0."""
    s = cosine(x)
    return s * (s >= threshold)


def iterative_label_adjacency(embeddings: torch.Tensor, reweightings: torch.Tensor, initial: torch.Tensor,
                              threshold: float, mix: float = 0.5) -> torch.Tensor:
    """I-GNN's label graph, rebuilt from the current label embeddings E (C x d) at every step:
    S = mean over the k rows w of `reweightings` of cos(E * w, E * w), entries below `threshold` zeroed;
    A = mix A0 + (1 - mix) S with A0 the thresholded cosine of the initial embeddings; symmetrically normalised."""
    learned = torch.stack([cosine(embeddings * w) for w in reweightings]).mean(0)
    learned = learned * (learned >= threshold)
    return symmetric_normalized(mix * initial + (1 - mix) * learned)


def label_similarity(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """+1 where two items share at least one label, -1 elsewhere (in the labels' floating dtype)."""
    return 2 * ((labels_a @ labels_b.T) > 0).to(labels_a.dtype) - 1

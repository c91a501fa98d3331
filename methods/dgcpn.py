"""DGCPN: deep graph-neighbor coherence preserving network (Yu, Zhou, Zhan, Tao; AAAI 2021). Unsupervised.

Follows docs/methods.md (DGCPN): the authors' code, github.com/Atmegal/DGCPN (train_div.py, models.py, train.py).
"""

import torch
import torch.nn.functional as F

from methods.base import GradientHashing
from methods.graphs import graph_neighbour_coherence
from methods.heads import HashMLP


def off_diagonal_mse(similarity: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mse(A, S) with the diagonals of both set to 0, averaged over all n^2 entries (the code's masked terms)."""
    off = 1 - torch.eye(len(similarity), dtype=similarity.dtype, device=similarity.device)
    return (((similarity - target) * off) ** 2).mean()


def coherence_losses(image: torch.Tensor, text: torch.Tensor, target: torch.Tensor, pair_target: float,
                     w_graph: float, w_consistency: float) -> dict[str, torch.Tensor]:
    """DGCPN's loss terms of a batch of codes, rows normalised to B_I, B_T:
    pair = mse(diag(B_I B_T'), K); graph = the off-diagonal mse of B_T B_T', B_I B_T' and B_I B_I' against S;
    consistency = mse(B_I B_T', B_I B_I') + mse(B_I B_T', B_T B_T') + mse(B_I B_I', B_T B_T')
    + mse(B_I B_T', B_T B_I'); loss = pair + w_graph graph + w_consistency consistency."""
    b_i, b_t = F.normalize(image, dim=1), F.normalize(text, dim=1)
    ii, tt, it = b_i @ b_i.T, b_t @ b_t.T, b_i @ b_t.T
    terms = {"pair": ((it.diagonal() - pair_target) ** 2).mean(),
             "graph": off_diagonal_mse(tt, target) + off_diagonal_mse(it, target) + off_diagonal_mse(ii, target),
             "consistency": (F.mse_loss(it, ii) + F.mse_loss(it, tt) + F.mse_loss(ii, tt) + F.mse_loss(it, it.T))}
    terms["loss"] = terms["pair"] + w_graph * terms["graph"] + w_consistency * terms["consistency"]
    return terms


class DGCPN(GradientHashing):
    """Unsupervised graph hashing whose codes keep the graph-neighbour coherence of the training set: two items are
    similar when their features are and when their neighbourhoods in the kNN graph of the whole training set
    overlap (Yu et al., AAAI 2021). A hash MLP per modality; codes tanh(h).

    Each batch takes three steps (the code's): both networks on the loss of both codes; the image network against
    the text codes' signs; the text network against the image codes' signs (coherence_losses, with the target S
    of the batch's rows and columns of graph_neighbour_coherence). Codes at test time: the signs of h.

    Args:
        train_image: the training items' image features, in `index` order, for the graph (from the data).
        train_text: their text features (from the data).
        hidden: width of the hash MLPs' hidden layer.
        dropout: dropout before each hash layer.
        text_weight: weight of the text cosines in the fused similarity (1 - text_weight: the image cosines).
        second_order: weight of the graph-neighbour coherence against the fused similarity.
        k_ratio: neighbours kept per row of the kNN graph, as a share of the training set (k = k_ratio x n_train).
        scale: the coherence P P' is multiplied by scale x k (its entries are near 1 / k for two items with
            the same neighbours).
        pair_target: the target K of each pair's code cosine.
        w_graph: weight of the graph terms.
        w_consistency: weight of the consistency terms.
        lr: SGD learning rate of both networks.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        batch_norm: standardise the hash outputs per bit over the batch (not in the code).
    """

    training_only = ("train_image", "train_text")

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, train_image: torch.Tensor | None,
                 train_text: torch.Tensor | None, hidden: int = 4096, dropout: float = 0.5, text_weight: float = 0.01,
                 second_order: float = 0.3, k_ratio: float = 0.4, scale: float = 2.0, pair_target: float = 1.5,
                 w_graph: float = 1.0, w_consistency: float = 1.0, lr: float = 0.005, momentum: float = 0.9,
                 weight_decay: float = 5e-4, batch_norm: bool = False):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters(ignore=["train_image", "train_text"])
        self.automatic_optimization = False  # three steps a batch
        self.image_hash = HashMLP(image_dim, bits, hidden, batch_norm, dropout)
        self.text_hash = HashMLP(text_dim, bits, hidden, batch_norm, dropout)
        text_layer = self.text_hash.out[0] if batch_norm else self.text_hash.out
        torch.nn.init.normal_(text_layer.weight, std=0.3)  # models.py: TxtNet's fc_encode
        graph = torch.empty(0, 0)  # a method loaded from a run folder only encodes
        if train_image is not None:
            k = max(2, round(k_ratio * len(train_image)))
            graph = graph_neighbour_coherence(train_image.float(), train_text.float(), text_weight, second_order, k,
                                              scale * k)
        self.register_buffer("graph", graph, persistent=False)

    @classmethod
    def check_widths(cls, bits, image_dim, text_dim):
        if image_dim is None or text_dim is None:
            raise ValueError("dgcpn builds its graph from the training set's features: it needs a feature "
                             "backbone for both modalities, not raw items")

    @classmethod
    def data_arguments(cls, data) -> dict:
        features = data.train_features()
        return {**super().data_arguments(data), "train_image": features["image"], "train_text": features["text"]}

    def encode_image(self, image):
        return self.image_hash(image)[0]

    def encode_text(self, text):
        return self.text_hash(text)[0]

    def batch_terms(self, image: torch.Tensor, text: torch.Tensor, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """coherence_losses of a batch's codes against its rows and columns of the graph."""
        hp = self.hparams
        target = self.graph[index][:, index].to(image.dtype)
        return coherence_losses(image, text, target, hp.pair_target, hp.w_graph, hp.w_consistency)

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        if not self.graph.numel():
            raise RuntimeError("dgcpn was built without the training set's features (a loaded run only encodes)")
        codes = torch.tanh(self.encode_image(batch["image"])), torch.tanh(self.encode_text(batch["text"]))
        return self.batch_terms(*codes, batch["index"])

    def training_step(self, batch: dict, batch_idx: int) -> None:
        image_optimizer, text_optimizer = self.optimizers()
        loss = super().training_step(batch, batch_idx)  # the joint step's terms, checked and logged
        image_optimizer.zero_grad()
        text_optimizer.zero_grad()
        self.manual_backward(loss)
        image_optimizer.step()
        text_optimizer.step()
        # Then each network against the other's signs, both from one forward pass after the joint step.
        b_i, b_t = torch.tanh(self.encode_image(batch["image"])), torch.tanh(self.encode_text(batch["text"]))
        for optimizer, image, text in ((image_optimizer, b_i, b_t.sign().detach()),
                                       (text_optimizer, b_i.sign().detach(), b_t)):
            optimizer.zero_grad()
            self.manual_backward(self.batch_terms(image, text, batch["index"])["loss"])
            optimizer.step()

    def configure_optimizers(self):
        hp = self.hparams
        return [torch.optim.SGD(net.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
                for net in (self.image_hash, self.text_hash)]

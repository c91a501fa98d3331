"""CAGAN: CLIP-based adaptive graph attention network hashing (Li et al., Sensors 2023). Unsupervised.

Follows docs/methods.md (CAGAN): the authors' code, descending from DJSRH.
"""

from typing import Literal

import torch

from methods.base import HashMLPPair
from methods.graphs import fused_similarity
from methods.layers import AdaptiveGraphNetwork
from methods.losses import paired_cosine, similarity_mse


class CAGAN(HashMLPPair):
    """Unsupervised hashing with two hash MLPs on frozen image features and bag-of-words texts, trained against a
    fused multi-view similarity S with the help of two adaptive graph networks over S.

    The graph networks (training only) read each modality's features over the adjacency S + gamma W, W a
    learnable batch-slot matrix.

    L1 = mse(B_I B_I', S) + mse(B_T B_T', S); L2 = mse(B_I B_T', S) + mse(B_T B_I', S) - mean diag(B_I B_T');
    L3 = mse(G_I G_T', S); L4 = mse(G_I B_I', S) + mse(G_I B_T', S) (rows normalised);
    L = w1 L1 + w23 (L2 + L3) + w4 L4. Codes at test time: sign of the hash MLPs' outputs.

    ASSUMPTIONS: the graph networks read the modality's input features; a dense text feature (not in the
    code) gets the text similarity 2 cos - 1. Not in the code, off by default: `batch_norm` (see
    results/README.md: at the code's settings the codes collapse at 16 bits).

    Args:
        batch_size: the training batch size; the adaptive matrix W is batch x batch (from the data).
        text_similarity: S_T from the data: `shared_tags` (+1 where two texts share a tag, the code's) for a
            binary bag of words, `cosine` (2 cos - 1) for dense text features.
        hidden: width of the hash MLPs' hidden layer.
        eta: weight of the image similarity S_I in S.
        beta: weight of the text similarity S_T in S.
        lam: weight of the second-order agreement S_IT = cos(S_I, S_T) in S.
        mu: scale of the fused similarity S.
        gamma: weight of the learnable matrix W in the graph networks' adjacency S + gamma W.
        w1: weight of the intra-modal code loss L1.
        w23: weight of the cross-modal code and graph losses L2 + L3.
        w4: weight of the graph-to-code loss L4.
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        batch_norm: standardise the hash outputs per bit over the batch (not in the code).
    """

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, batch_size: int,
                 text_similarity: Literal["shared_tags", "cosine"], hidden: int = 4096, eta: float = 0.5,
                 beta: float = 0.2, lam: float = 0.3, mu: float = 1.4, gamma: float = 0.45, w1: float = 0.1,
                 w23: float = 1.0, w4: float = 0.15, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, batch_norm: bool = False):
        super().__init__(bits, image_dim, text_dim, num_classes, hidden, batch_norm)
        self.save_hyperparameters()
        self.image_graph = AdaptiveGraphNetwork(image_dim, bits, batch_size, gamma)
        self.text_graph = AdaptiveGraphNetwork(text_dim, bits, batch_size, gamma)

    @classmethod
    def data_arguments(cls, data) -> dict:
        """W is indexed by batch slot: built for the loader's batch size, which must drop its last, short batch.
        The text similarity follows the text features: shared tags for a binary bag of words, cosine for dense
        features (a sentence or CLIP text encoder), where "shares a tag" means nothing."""
        if not data.drop_last:
            raise ValueError("cagan needs full training batches: set data.drop_last=true")
        return {**super().data_arguments(data), "batch_size": data.batch_size,
                "text_similarity": "shared_tags" if data.text_is_bag_of_words else "cosine"}

    def pair_losses(self, image: torch.Tensor, text: torch.Tensor, alpha: float) -> dict[str, torch.Tensor]:
        hp = self.hparams
        s = fused_similarity(image, text, hp.eta, hp.beta, hp.lam, hp.mu, hp.text_similarity)
        b_i = torch.tanh(alpha * self.image_hash(image)[0])
        b_t = torch.tanh(alpha * self.text_hash(text)[0])
        g_i = torch.tanh(alpha * self.image_graph(image, s))
        g_t = torch.tanh(alpha * self.text_graph(text, s))
        terms = {
            "l1": similarity_mse(b_i, b_i, s) + similarity_mse(b_t, b_t, s),
            "l2": similarity_mse(b_i, b_t, s) + similarity_mse(b_t, b_i, s) - paired_cosine(b_i, b_t),
            "l3": similarity_mse(g_i, g_t, s),
            "l4": similarity_mse(g_i, b_i, s) + similarity_mse(g_i, b_t, s),
        }
        terms["loss"] = hp.w1 * terms["l1"] + hp.w23 * (terms["l2"] + terms["l3"]) + hp.w4 * terms["l4"]
        return terms

    def configure_optimizers(self):
        hp = self.hparams
        return torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)

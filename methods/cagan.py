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
    """Frozen image features (CLIP) and tag bag-of-words texts through two hash MLPs; two adaptive graph
    networks (training only) over the fused similarity S plus a learnable batch-slot matrix.

    L1 = mse(B_I B_I', S) + mse(B_T B_T', S); L2 = mse(B_I B_T', S) + mse(B_T B_I', S) - mean diag(B_I B_T');
    L3 = mse(G_I G_T', S); L4 = mse(G_I B_I', S) + mse(G_I B_T', S) (rows normalised);
    L = w1 L1 + w23 (L2 + L3) + w4 L4. Codes at test time: sign of the hash MLPs' outputs.

    ASSUMPTIONS: the graph networks read the modality's input features; `text_similarity` (an option:
    `shared_tags` for bags of words, the code's choice; `cosine`, 2 cos - 1, for dense text features such as
    CLIP text, which the code does not use and defines no S_T for; `auto`, the default, picks by the data).
    Not in the code, off by default: `batch_norm` standardises the hash outputs per bit (see
    results/README.md: at the code's settings the codes collapse at 16 bits).
    """

    name = "cagan"

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, batch_size: int,
                 hidden: int = 4096, eta: float = 0.5, beta: float = 0.2, lam: float = 0.3, mu: float = 1.4,
                 gamma: float = 0.45, w1: float = 0.1, w23: float = 1.0, w4: float = 0.15, lr: float = 0.01,
                 momentum: float = 0.9, weight_decay: float = 5e-4,
                 text_similarity: Literal["auto", "shared_tags", "cosine"] = "auto", batch_norm: bool = False,
                 **kwargs):
        super().__init__(bits, image_dim, text_dim, num_classes, hidden, batch_norm, **kwargs)
        if text_similarity == "auto":
            raise ValueError("text_similarity=auto is decided from the data: build the method with from_datamodule")
        self.save_hyperparameters()
        self.image_graph = AdaptiveGraphNetwork(image_dim, bits, batch_size, gamma)
        self.text_graph = AdaptiveGraphNetwork(text_dim, bits, batch_size, gamma)

    @classmethod
    def from_datamodule(cls, data, bits: int, **options) -> "CAGAN":
        """W is indexed by batch slot: built for the loader's batch size, which must drop its last, short batch.
        `text_similarity: auto` follows the text features: shared tags for a binary bag of words, cosine for
        dense features (a sentence or CLIP text encoder), where "shares a tag" means nothing."""
        if not data.drop_last:
            raise ValueError("cagan needs full training batches: set data.drop_last=true")
        similarity = options.pop("text_similarity", "auto")
        chosen = ("shared_tags" if data.text_is_bag_of_words else "cosine") if similarity == "auto" else similarity
        model = super().from_datamodule(data, bits, batch_size=data.batch_size, text_similarity=chosen, **options)
        if similarity == "auto":
            kind = "a binary bag of words" if data.text_is_bag_of_words else "dense"
            model.choices["text_similarity"] = f"{chosen} (the text features are {kind})"
        return model

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

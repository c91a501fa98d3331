"""SGRN: similarity graph-correlation reconstruction network (Yao, Li, Li, Zhang, Ma; ESWA 237, 2024).
Unsupervised. RE-IMPLEMENTATION FROM THE ABSTRACT: no public code exists, and the design below
(docs/methods.md, SGRN) places the abstract's parts in the DJSRH / JDSH / DGCPN family.
"""

from typing import Literal

import torch

from methods.base import HashMLPPair, modality_sgd
from methods.graphs import global_reconstruction, local_rebased_similarity
from methods.losses import quantization, similarity_mse


class SGRN(HashMLPPair):
    """Unsupervised hashing with two hash MLPs trained to reproduce a global relation graph reconstructed from
    each modality's locally rebased similarity graph (a re-implementation from the abstract).

    Z = the MLPs' hidden layer, H = tanh(alpha h); the target is S* = mu S_G, where S_G reconstructs a global
    relation graph from each modality's locally rebased graph (top-k neighbours plus second-order evidence).

    intra = sum over modalities of mse(cos(H_m, H_m), S*) + l_r mse(cos(Z_m, Z_m), S*)
    inter = mse(cos(H_I, H_T), S*) + l_r mse(cos(Z_I, Z_T), S*) + mse(cos(h_I, H_T), S*) + mse(cos(H_I, h_T), S*)
    loss = w_intra intra + w_inter inter + w_quant mean (H - sign H)^2

    ASSUMPTIONS (config options; the paper's full text was not available): k_ratio (k = k_ratio x batch),
    a, b, e, mu, the weights and the optimiser settings. Not an option: the abstract's terms between one
    modality's real-valued features and the other's codes need equal widths, so they use h, the
    real-valued output of the hash layer before tanh (the 4,096-d Z cannot be compared with c-bit codes).

    `real_target` fits the l_r terms to a target the real-valued feature can reach: Z = ReLU(a) has
    cos(Z, Z) >= 0, so `signed` (Z against S*, as the abstract reads) pushes against negative entries it can
    never meet; `rescaled` compares Z with S* mapped to [0, 1], (S* / mu + 1) / 2; `preactivation` uses the
    hidden layer before its ReLU, a, whose cosines span [-1, 1], against S*.

    Args:
        hidden: width of the hash MLPs' hidden layer (Z).
        k_ratio: neighbours kept per row of the local graph, as a share of the batch (k = k_ratio x batch).
        a: first- vs second-order evidence in each modality's local graph.
        b: image vs text local graph in the joint graph.
        e: diffusion weight of the global reconstruction.
        mu: scale of the target graph S*.
        w_intra: weight of the intra-modal terms.
        w_inter: weight of the cross-modal terms.
        l_r: weight of the real-valued (Z) terms inside each group.
        w_quant: weight of the quantization term.
        image_lr: SGD learning rate of the image network.
        text_lr: SGD learning rate of the text network.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        batch_norm: standardise h per bit over the batch (without it the codes collapse).
        real_target: the target of the real-valued terms (above): signed, rescaled or preactivation.
    """

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, hidden: int = 4096,
                 k_ratio: float = 0.15, a: float = 0.6, b: float = 0.5, e: float = 0.3, mu: float = 1.4,
                 w_intra: float = 0.1, w_inter: float = 1.0, l_r: float = 0.5, w_quant: float = 0.1,
                 image_lr: float = 0.001, text_lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4,
                 batch_norm: bool = True, real_target: Literal["signed", "rescaled", "preactivation"] = "rescaled"):
        super().__init__(bits, image_dim, text_dim, num_classes, hidden, batch_norm)
        self.save_hyperparameters()

    def target(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        k = max(1, round(hp.k_ratio * image.shape[0]))
        return hp.mu * global_reconstruction(local_rebased_similarity(image, k, hp.a),
                                             local_rebased_similarity(text, k, hp.a), hp.b, hp.e)

    def real_features(self, hidden: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the real-valued feature, its target) as `real_target` says (class docstring)."""
        mode = self.hparams.real_target
        if mode == "preactivation":
            return hidden, target
        features = torch.relu(hidden)
        return features, target if mode == "signed" else ((target / self.hparams.mu + 1) / 2).clamp(0, 1)

    def pair_losses(self, image: torch.Tensor, text: torch.Tensor, alpha: float) -> dict[str, torch.Tensor]:
        hp = self.hparams
        s = self.target(image, text)
        (h_i, a_i), (h_t, a_t) = self.image_hash(image), self.text_hash(text)
        (z_i, s_z), (z_t, _) = self.real_features(a_i, s), self.real_features(a_t, s)
        b_i, b_t = torch.tanh(alpha * h_i), torch.tanh(alpha * h_t)
        terms = {
            "intra": sum(similarity_mse(b, b, s) + hp.l_r * similarity_mse(z, z, s_z) for b, z in ((b_i, z_i), (b_t, z_t))),
            "inter": (similarity_mse(b_i, b_t, s) + hp.l_r * similarity_mse(z_i, z_t, s_z)
                      + similarity_mse(h_i, b_t, s) + similarity_mse(b_i, h_t, s)),
            "quant": quantization(b_i) + quantization(b_t),
        }
        terms["loss"] = hp.w_intra * terms["intra"] + hp.w_inter * terms["inter"] + hp.w_quant * terms["quant"]
        return terms

    def configure_optimizers(self):
        hp = self.hparams
        return modality_sgd(self, hp.image_lr, hp.text_lr, hp.momentum, hp.weight_decay)

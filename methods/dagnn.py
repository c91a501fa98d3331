"""Dual adversarial GNN with soft multi-label contrastive learning (Qian, Xue, Fang, Xu; IEEE TPAMI, doi
10.1109/TPAMI.2022.3188547), and its AAAI 2021 predecessor DAGNN as options. Supervised; real-valued in the
papers, hashed here.

Follows docs/methods.md (dual adversarial GNN) and the authors' public code (LivXue/GNN4CMR).
"""

import math
from typing import Literal

import torch
from torch import nn

from methods.base import GradientHashing
from methods.graphs import cosine, iterative_label_adjacency, probabilistic_label_adjacency, thresholded_cosine
from methods.layers import ModalityDiscriminator, MultiHopLabelGCN
from methods.losses import (
    label_regression,
    modality_cross_entropy,
    multilabel_likelihood,
    quantization,
    soft_contrastive,
)


def encoder(dim: int, width: int) -> nn.Module:
    return nn.Sequential(nn.BatchNorm1d(dim), nn.Linear(dim, width), nn.ReLU())


def decoder(width: int, hidden: int, dim: int, activation: nn.Module) -> nn.Module:
    return nn.Sequential(nn.BatchNorm1d(width), nn.Linear(width, hidden), activation, nn.Linear(hidden, dim), activation)


class DAGNN(GradientHashing):
    """Supervised real-valued retrieval with dual adversarial graph networks and a soft multi-label contrastive
    loss, hashed by a tanh head on its common features.

    Per modality: BatchNorm -> Linear(d, 1024) -> ReLU gives the common features F. Dual adversarial part:
    decoders image -> text (1024 -> 512 -> d_t, LeakyReLU 0.2) and text -> image (1024 -> 2048 -> d_i, ReLU),
    one discriminator per modality (gradient reversal, so one optimizer trains both sides) telling its real
    features from the other modality's reconstructions. A multi-hop label GCN (5 layers, LeakyReLU 0.2,
    layer outputs concatenated -> 1024) turns label vectors into classifiers W; predictions cos(F, W_c).
    Graph: `iterative` (I-GNN: label-vector cosines thresholded at 0.4, mixed 0.5 / 0.5 with the mean of
    k = 8 learnable re-weightings) or `probabilistic` (P-GNN: 0.5 x binarised co-occurrence + I).

    loss = alpha L_cla + w_feat L_feat(F_I, F_T) + beta L_gan + w_code L_feat(H_I, H_T) + w_quant mse(H, sign H),
    L_cla = mean ||cos(F, W) - labels|| per modality; L_feat the soft multi-label contrastive loss (tau,
    gamma 0.14, log-sum-exp logits x 1.06) or, for the AAAI DAGNN, the pairwise label likelihood;
    L_gan the discriminators' cross-entropy. Codes H = tanh(Linear(1024, bits)(F)).
    Retrieval: Hamming on sign(H) (the suite's tables) and cosine on F (real-valued, labelled).

    ASSUMPTIONS (config options): the hashing head and its losses (`w_code`, `w_quant`), which also train the
    encoders unless `detach_hash_head` (then the codes come from the authors' model, unchanged); the label
    vectors are what the data's `label_vectors` setting names (MiniLM sentence embeddings of the label names by
    default: the code's 300-d GloVe vectors are not available offline; a GloVe text file or the authors' .mat
    files reproduce them); with none, 300-d random vectors are learned: U(0, 1) for P-GNN (its code's draw),
    N(0, 1/300) for I-GNN (whose code requires given vectors).
    P-GNN keeps given label vectors fixed.
    Deviations from the code: the final epoch is evaluated (the code keeps the epoch with the best test
    mAP, which is tuning on the query set); the incomplete-modality mode is not built.

    Args:
        train_labels: the training items' labels, for the P-GNN co-occurrence graph (from the data).
        label_vectors: one vector per label name, or None to learn random ones (from the data).
        graph: `iterative` (I-GNN, the TPAMI paper) or `probabilistic` (P-GNN, the AAAI DAGNN).
        feature_loss: `soft_contrastive` (TPAMI) or `likelihood` (the AAAI DAGNN's pairwise label likelihood).
        width: width of the common features.
        gnn_layers: graph convolutions of the label GCN (hops).
        reweightings: learnable re-weightings k of the I-GNN graph.
        threshold: cosine (I-GNN) or conditional co-occurrence (P-GNN) from which two labels are linked.
        mix: weight of the initial graph against the learned one (I-GNN).
        cooccurrence_weight: weight of the co-occurrence edges against the self-loops (P-GNN).
        alpha: weight of the label classification loss L_cla.
        w_feat: weight of the feature loss L_feat on the common features (the AAAI code's alpha).
        beta: weight of the adversarial loss L_gan.
        tau: temperature of the soft contrastive loss.
        gamma: weight of its intra-modal terms.
        logit_scale: the scale of the logits inside its log-sum-exp (1.06 in the code).
        w_code: weight of the contrastive loss on the codes (the suite's hashing head).
        w_quant: weight of the quantization loss on the codes.
        detach_hash_head: train the hashing head on detached features, leaving the common features to the
            authors' losses.
        lr: Adam learning rate.
        betas: Adam betas.
    """

    supervised = True
    training_only = ("image_to_text", "text_to_image", "image_discriminator", "text_discriminator", "label_gcn")

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, train_labels: torch.Tensor,
                 label_vectors: torch.Tensor | None, graph: Literal["iterative", "probabilistic"] = "iterative",
                 feature_loss: Literal["soft_contrastive", "likelihood"] = "soft_contrastive", width: int = 1024,
                 gnn_layers: int = 5, reweightings: int = 8, threshold: float = 0.4, mix: float = 0.5,
                 cooccurrence_weight: float = 0.5, alpha: float = 0.5, w_feat: float = 1.0, beta: float = 2.0,
                 tau: float = 0.22, gamma: float = 0.14, logit_scale: float = 1.06, w_code: float = 1.0,
                 w_quant: float = 0.1,
                 detach_hash_head: bool = False, lr: float = 5e-5, betas: tuple[float, float] = (0.5, 0.999)):
        super().__init__(bits, image_dim, text_dim, num_classes)
        if image_dim is None or text_dim is None:
            raise ValueError("dagnn trains on feature vectors; the datamodule must not be in raw mode")
        self.save_hyperparameters(ignore=["train_labels", "label_vectors"])
        self.image_encoder, self.text_encoder = encoder(image_dim, width), encoder(text_dim, width)
        self.image_to_text = decoder(width, 512, text_dim, nn.LeakyReLU(0.2))
        self.text_to_image = decoder(width, 2048, image_dim, nn.ReLU())
        self.image_discriminator, self.text_discriminator = ModalityDiscriminator(image_dim), ModalityDiscriminator(text_dim)
        self.image_hash, self.text_hash = nn.Linear(width, bits), nn.Linear(width, bits)

        given = label_vectors is not None
        # Without label vectors P-GNN draws U(0, 1) as its code does; the I-GNN code refuses to run, and U(0, 1)
        # vectors (cosines near 0.75) would link every pair of labels: I-GNN draws near-orthogonal ones.
        vectors = label_vectors.float() if given else \
            torch.rand(num_classes, 300) if graph == "probabilistic" else torch.randn(num_classes, 300) / math.sqrt(300)
        self.label_vectors = nn.Parameter(vectors, requires_grad=graph == "iterative" or not given)
        self.label_gcn = MultiHopLabelGCN(vectors.shape[1], width, gnn_layers)
        if graph == "iterative":
            self.register_buffer("initial_adjacency", thresholded_cosine(vectors, threshold))
            self.reweightings = nn.Parameter(torch.empty(reweightings, vectors.shape[1]).uniform_(0.3, 0.6))
        else:
            self.register_buffer("adjacency", probabilistic_label_adjacency(torch.as_tensor(train_labels), threshold,
                                                                            cooccurrence_weight))

    @classmethod
    def data_arguments(cls, data) -> dict:
        return {**super().data_arguments(data), "train_labels": torch.as_tensor(data.train_labels),
                "label_vectors": data.label_vectors()}

    def embed_image(self, image):
        return self.image_encoder(image)

    def embed_text(self, text):
        return self.text_encoder(text)

    def hash_embedding(self, embedding, modality):
        return (self.image_hash if modality == "image" else self.text_hash)(embedding)

    def encode_image(self, image):
        return self.hash_embedding(self.embed_image(image), "image")

    def encode_text(self, text):
        return self.hash_embedding(self.embed_text(text), "text")

    def label_classifiers(self) -> torch.Tensor:
        """W (classes x width) from the label GCN over the current label graph."""
        hp = self.hparams
        if hp.graph == "iterative":
            adjacency = iterative_label_adjacency(self.label_vectors, self.reweightings, self.initial_adjacency,
                                                  hp.threshold, hp.mix)
        else:
            adjacency = self.adjacency
        return self.label_gcn(self.label_vectors, adjacency)

    def feature_loss(self, x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        if hp.feature_loss == "likelihood":
            return multilabel_likelihood(x, y, labels)
        return soft_contrastive(x, y, labels, hp.tau, hp.gamma, hp.logit_scale)

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        image, text, labels = batch["image"], batch["text"], batch["labels"]
        f_i, f_t = self.embed_image(image), self.embed_text(text)
        w = self.label_classifiers()
        # With detach_hash_head the codes' losses train the hashing head alone: the common features (and
        # with them the cosine retrieval) are exactly the authors' real-valued model.
        g_i, g_t = (f_i.detach(), f_t.detach()) if hp.detach_hash_head else (f_i, f_t)
        h_i, h_t = torch.tanh(self.hash_embedding(g_i, "image")), torch.tanh(self.hash_embedding(g_t, "text"))
        terms = {
            "cla": label_regression(cosine(f_i, w), labels) + label_regression(cosine(f_t, w), labels),
            "feat": self.feature_loss(f_i, f_t, labels),
            "gan": modality_cross_entropy(
                from_image=[self.image_discriminator(image), self.text_discriminator(self.image_to_text(f_i))],
                from_text=[self.image_discriminator(self.text_to_image(f_t)), self.text_discriminator(text)]),
            "code": self.feature_loss(h_i, h_t, labels),
            "quant": quantization(h_i) + quantization(h_t),
        }
        terms["loss"] = (hp.alpha * terms["cla"] + hp.w_feat * terms["feat"] + hp.beta * terms["gan"]
                         + hp.w_code * terms["code"] + hp.w_quant * terms["quant"])
        return terms

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))

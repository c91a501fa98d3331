"""EGATH: end-to-end graph attention network hashing (Jin et al., NeurIPS 2024). Supervised.

Only the label classifier (gat.py) is public; the rest follows docs/methods.md (EGATH): the CLIP-based
supervised line of DCHMT and DSPH.
"""

import math
from typing import Literal

import torch
from torch import nn

from common.errors import pretrained
from methods.base import GradientHashing
from methods.graphs import label_cooccurrence_graph, label_similarity
from methods.layers import LabelGraphAttention, TokenContext
from methods.losses import cross_modal_triplet, quantization, similarity_mse


class ClipTokens(nn.Module):
    """CLIP's two towers as token sequences in the joint (projection) space, for fine-tuning."""

    def __init__(self, model: str):
        super().__init__()
        from transformers import CLIPModel

        self.clip = pretrained(CLIPModel.from_pretrained, model)
        self.eos_token_id = self.clip.config.text_config.eos_token_id
        self.width = self.clip.config.projection_dim

    def image(self, pixels: torch.Tensor):
        vision = self.clip.vision_model(pixel_values=pixels)
        tokens = self.clip.visual_projection(self.clip.vision_model.post_layernorm(vision.last_hidden_state))
        return tokens, torch.zeros(len(tokens), dtype=torch.long, device=tokens.device), None  # read out at CLS

    def text(self, ids: torch.Tensor):
        tokens = self.clip.text_projection(self.clip.text_model(input_ids=ids).last_hidden_state)
        end = (ids == self.eos_token_id).int().argmax(1)  # the first end token (CLIP pads with it too)
        padding = torch.arange(ids.shape[1], device=ids.device)[None] > end[:, None]
        return tokens, end, padding


class FeatureTokens(nn.Module):
    """Frozen cached features as one-token sequences: batch-normalised (feature scales differ by orders
    of magnitude between SIFT histograms, bags of words and CLIP), then mapped to the joint width."""

    def __init__(self, dim: int, width: int):
        super().__init__()
        self.project = nn.Sequential(nn.BatchNorm1d(dim), nn.Linear(dim, width))

    def forward(self, features: torch.Tensor):
        return self.project(features)[:, None], torch.zeros(len(features), dtype=torch.long, device=features.device), None


class EGATH(GradientHashing):
    """Supervised hashing with a label graph attention classifier: per modality, tokens through one transformer
    layer and a tanh hash head, trained with classification, similarity, triplet and quantization losses.

    Per modality: tokens (CLIP towers end to end, or one token from cached features) -> one transformer
    layer for global context -> Linear(width, bits) -> tanh. A two-layer GAT over the thresholded label
    co-occurrence graph of the training labels turns label embeddings into a classifier W_cls (C x bits).

    loss = w_cls BCE(H W_cls', labels) [both modalities] + w_sim [mse(cos(H_I, H_T), S) + mse(cos(H_I, H_I), S)
           + mse(cos(H_T, H_T), S)] + w_tri triplet (both directions) + w_quant mse(H, sign H),
    with S = 2 [labels share one] - 1.

    ASSUMPTIONS (config options): the label embeddings are learnable (the code's GloVe vectors are not
    available offline); features mode projects cached features to `width`; the transformer layer runs over
    CLIP's projected tokens and reads out CLS / the end token; triplets are batch-hard on cosine distance;
    AdamW with linear warm-up, then cosine decay. In end-to-end mode texts use the datamodule's CLIP token
    length (`data.clip_text_tokens`; the paper preset sets the paper's 32).

    Args:
        train_labels: the training items' labels, for the label co-occurrence graph (from the data).
        mode: `features` (cached frozen features, heads only; CPU) or `end_to_end` (fine-tunes CLIP on raw
            images and token ids; needs data.raw=true and, in practice, a GPU).
        clip_model: the CLIP checkpoint fine-tuned in end-to-end mode (a hub name or a local folder).
        width: the joint width features are projected to in features mode.
        label_dim: width of the learnable label embeddings.
        gat_hidden: hidden width of the label graph attention classifier.
        threshold: conditional co-occurrence P(j given i) from which two labels are linked.
        attention_dropout: dropout on the graph attention coefficients.
        gat_layer: `pyg` (torch_geometric's GATConv: a bias, Xavier gain 1) or `authors` (gat.py: no bias,
            gain 1.414).
        margin: triplet margin on cosine distance.
        w_cls: weight of the label classification loss.
        w_sim: weight of the cosine similarity losses.
        w_tri: weight of the triplet losses.
        w_quant: weight of the quantization loss.
        lr: AdamW learning rate of the heads.
        backbone_lr: AdamW learning rate of CLIP in end-to-end mode.
        weight_decay: AdamW weight decay.
        warmup: share of the steps with a linear learning-rate warm-up.
    """

    supervised = True

    def __init__(self, bits: int, image_dim: int | None, text_dim: int | None, num_classes: int,
                 train_labels: torch.Tensor, mode: Literal["features", "end_to_end"] = "features",
                 clip_model: str = "openai/clip-vit-base-patch32", width: int = 512, label_dim: int = 300,
                 gat_hidden: int = 1024, threshold: float = 0.3, attention_dropout: float = 0.3,
                 gat_layer: Literal["pyg", "authors"] = "pyg", margin: float = 0.4, w_cls: float = 1.0,
                 w_sim: float = 1.0, w_tri: float = 1.0, w_quant: float = 0.1, lr: float = 1e-3, backbone_lr: float = 1e-5,
                 weight_decay: float = 0.2, warmup: float = 0.1):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters(ignore=["train_labels"])
        self.register_buffer("edge_index", label_cooccurrence_graph(torch.as_tensor(train_labels), threshold))
        if mode == "end_to_end":
            if image_dim is not None:
                raise ValueError("mode=end_to_end fine-tunes CLIP on images, but this dataset's batches carry "
                                 "features: give a dataset with raw images and data.raw=true, or mode=features")
            self.backbone = ClipTokens(clip_model)
            width = self.backbone.width
            self.image_tokens, self.text_tokens = self.backbone.image, self.backbone.text
        else:
            if image_dim is None or text_dim is None:
                raise ValueError("features mode needs feature vectors; use mode=end_to_end with raw batches")
            self.image_tokens, self.text_tokens = FeatureTokens(image_dim, width), FeatureTokens(text_dim, width)
        self.image_context, self.text_context = TokenContext(width), TokenContext(width)
        self.image_head, self.text_head = nn.Linear(width, bits), nn.Linear(width, bits)
        self.label_embeddings = nn.Parameter(torch.randn(num_classes, label_dim) / math.sqrt(label_dim))
        self.classifier = LabelGraphAttention(label_dim, gat_hidden, bits, attention_dropout, gat_layer == "authors")

    @classmethod
    def data_arguments(cls, data) -> dict:
        return {**super().data_arguments(data), "train_labels": torch.as_tensor(data.train_labels)}

    def encode_image(self, image):
        return self.image_head(self.image_context(*self.image_tokens(image)))

    def encode_text(self, text):
        return self.text_head(self.text_context(*self.text_tokens(text)))

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        h_i, h_t = torch.tanh(self.encode_image(batch["image"])), torch.tanh(self.encode_text(batch["text"]))
        labels = batch["labels"].to(h_i.dtype)
        w_cls = self.classifier(self.label_embeddings, self.edge_index)
        s = label_similarity(labels, labels)
        relevant = s > 0
        bce = nn.functional.binary_cross_entropy_with_logits
        terms = {
            "cls": bce(h_i @ w_cls.T, labels) + bce(h_t @ w_cls.T, labels),
            "sim": similarity_mse(h_i, h_t, s) + similarity_mse(h_i, h_i, s) + similarity_mse(h_t, h_t, s),
            "tri": cross_modal_triplet(h_i, h_t, relevant, hp.margin) + cross_modal_triplet(h_t, h_i, relevant, hp.margin),
            "quant": quantization(h_i) + quantization(h_t),
        }
        terms["loss"] = hp.w_cls * terms["cls"] + hp.w_sim * terms["sim"] + hp.w_tri * terms["tri"] + hp.w_quant * terms["quant"]
        return terms

    def configure_optimizers(self):
        hp = self.hparams
        backbone = [p for n, p in self.named_parameters() if n.startswith("backbone.")]
        heads = [p for n, p in self.named_parameters() if not n.startswith("backbone.")]
        groups = [{"params": heads, "lr": hp.lr}] + ([{"params": backbone, "lr": hp.backbone_lr}] if backbone else [])
        optimizer = torch.optim.AdamW(groups, weight_decay=hp.weight_decay)
        total = max(1, self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        warm = max(1, round(hp.warmup * total))

        def schedule(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule),
                                                         "interval": "step"}}

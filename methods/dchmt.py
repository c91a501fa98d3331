"""DCHMT: differentiable cross-modal hashing via multimodal transformers (Tu, Liu, Lin, Hong, Wang; ACM MM 2022).
Supervised.

Follows docs/methods.md (DCHMT): the authors' code, github.com/kalenforn/DCHMT (model/hash_model.py,
train/hash_train.py, model/optimization.py, utils/get_args.py, README.md).
"""

import math

import torch
from torch import nn

from methods.base import GradientHashing
from methods.graphs import label_similarity


def fan_out_uniform_(weight: torch.Tensor, fan_out: int) -> None:
    """Kaiming-uniform with fan-out `fan_out` (ReLU gain): U(-sqrt(6 / fan_out), sqrt(6 / fan_out))."""
    bound = math.sqrt(6 / fan_out)
    nn.init.uniform_(weight, -bound, bound)


class SelectHash(nn.Module):
    """The code's "select" hash layer: Linear(d, embed), ReLU, then for each bit its own Linear(embed, 2) and a
    softmax over the two, the probabilities of -1 and +1 (the bits' layers stacked into one, each initialised
    as the code initialises a Linear(embed, 2); biases 0). `forward` gives (batch, bits, 2)."""

    def __init__(self, in_dim: int, bits: int, embed: int = 128):
        super().__init__()
        self.fc, self.select = nn.Linear(in_dim, embed), nn.Linear(embed, 2 * bits)
        fan_out_uniform_(self.fc.weight, embed)
        fan_out_uniform_(self.select.weight, 2)
        nn.init.zeros_(self.fc.bias)
        nn.init.zeros_(self.select.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.select(torch.relu(self.fc(x)))
        return logits.view(len(x), -1, 2).softmax(-1)


def distance_losses(a: torch.Tensor, b: torch.Tensor, relevant: torch.Tensor, vartheta: float) -> torch.Tensor:
    """DCHMT's similarity loss (euclidean, l2) of two batches of flattened bit probabilities (batch, 2 bits):
    D = the Euclidean distances; relevant pairs pull to 0, mean((D S)^2); the others push out to m = sqrt(2 bits
    vartheta), the distance of two one-hot codes differing in vartheta of their bits: mean((m (1 - S) -
    min(D (1 - S), m))^2), both means over all pairs."""
    relevant = relevant.to(a.dtype)
    distance = torch.cdist(a, b)
    reach = math.sqrt(a.shape[1] * vartheta)
    positive = ((distance * relevant) ** 2).mean()
    negative = ((reach * (1 - relevant) - (distance * (1 - relevant)).clamp(max=reach)) ** 2).mean()
    return positive + negative


class BertAdam(torch.optim.Optimizer):
    """The optimiser of the authors' code (model/optimization.py, from BERT): Adam without bias correction, each
    parameter tensor's gradient clipped to norm `max_grad_norm` first, and a weight decay added to the update,
    update = m / (sqrt(v) + eps) + weight_decay p, p <- p - lr update (the learning rate as a scheduler sets it).

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: Adam's b1, b2.
        eps: Adam's epsilon.
        weight_decay: weight of p in the update.
        max_grad_norm: the norm each tensor's gradient is clipped to.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-6,
                 weight_decay: float = 0.2, max_grad_norm: float = 1.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "max_grad_norm": max_grad_norm})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                torch.nn.utils.clip_grad_norm_(p, group["max_grad_norm"])
                state = self.state[p]
                if not state:
                    state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                state["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                update = state["m"] / (state["v"].sqrt() + group["eps"]) + group["weight_decay"] * p
                p.sub_(group["lr"] * update)
        return loss


def warmup_cosine(progress: float, warmup: float) -> float:
    """The code's schedule of the learning rate over training (progress in [0, 1]): linear from 0 over the first
    `warmup`, then 0.5 (1 + cos(pi progress))."""
    return progress / warmup if progress < warmup else 0.5 * (1 + math.cos(math.pi * progress))


class DCHMT(GradientHashing):
    """Supervised hashing with a differentiable sign (Tu et al., ACM MM 2022): each bit is a two-way softmax
    ("select" layer) over features, and codes of items sharing a label are pulled together, the others pushed
    to differ in a share vartheta of their bits, in Euclidean distance between the bits' probabilities, across and
    within modalities. The paper's multimodal transformers are CLIP's encoders, fine-tuned; the frozen-feature mode
    trains the hash layers on the dataset's features.

    L = sim(P_I, P_T) + sim(P_I, P_I) + sim(P_T, P_T), sim = distance_losses with S = shared label. Codes at test
    time: the more probable of each bit's two values (the sign of p(+1) - p(-1)).

    Args:
        embed: width of the hash layers' hidden layer.
        vartheta: the share of bits in which codes without a shared label should differ.
        lr: learning rate of the hash layers (BertAdam).
        weight_decay: BertAdam's weight decay.
        warmup: share of the training steps over which the learning rate rises from 0 (then a cosine decay).
    """

    supervised = True

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, embed: int = 128,
                 vartheta: float = 0.5, lr: float = 1e-3, weight_decay: float = 0.2, warmup: float = 0.1):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters()
        self.image_hash = SelectHash(image_dim, bits, embed)
        self.text_hash = SelectHash(text_dim, bits, embed)

    def encode_image(self, image):
        p = self.image_hash(image)
        return p[..., 1] - p[..., 0]

    def encode_text(self, text):
        p = self.text_hash(text)
        return p[..., 1] - p[..., 0]

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        vartheta = self.hparams.vartheta
        image, text = self.image_hash(batch["image"]).flatten(1), self.text_hash(batch["text"]).flatten(1)
        relevant = label_similarity(batch["labels"], batch["labels"]) > 0
        terms = {"cross": distance_losses(image, text, relevant, vartheta),
                 "image": distance_losses(image, image, relevant, vartheta),
                 "text": distance_losses(text, text, relevant, vartheta)}
        terms["loss"] = terms["cross"] + terms["image"] + terms["text"]
        return terms

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = BertAdam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(1, self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step / total, hp.warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

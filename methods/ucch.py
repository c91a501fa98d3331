"""UCCH: unsupervised contrastive cross-modal hashing (Hu, Zhu, Lin, Peng, Zhao, Peng; IEEE TPAMI 45(3), 2023).
Unsupervised.

Follows docs/methods.md (UCCH): the authors' code, github.com/penghu-cs/UCCH (UCCH.py, NCE/NCEAverage.py,
NCE/NCECriterion.py, src/utils.py, nets/ImageNet.py, nets/TextNet.py, utils/config.py, README.md).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import GradientHashing


def ucch_mlp(in_dim: int, bits: int, hidden: int, layers: int) -> nn.Sequential:
    """The code's ImageNet / TextNet body: `layers` linear layers, `hidden` wide with a ReLU between them
    (one layer: Linear(in_dim, bits))."""
    widths = [in_dim, *[hidden] * (layers - 1), bits]
    modules = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        modules += [nn.Linear(a, b)] + ([nn.ReLU()] if i < layers - 1 else [])
    return nn.Sequential(*modules)


def memory_scores(outputs: torch.Tensor, weights: torch.Tensor, temperature: float) -> torch.Tensor:
    """(batch, 1 + negatives) scores of each output against the signs of its candidates: the positive (its own
    slot) first, then the negatives. Outputs are unit rows, signs have norm sqrt(bits), so the scores are cosines
    over `temperature` (the code divides by T sqrt(bits))."""
    return torch.bmm(weights.sign(), outputs[:, :, None])[:, :, 0] / (temperature * math.sqrt(outputs.shape[1]))


def nce_softmax(scores: torch.Tensor) -> torch.Tensor:
    """-log softmax(scores)[:, 0], averaged over the batch (NCESoftmaxLoss: the positive sits in column 0)."""
    return -scores.log_softmax(1)[:, 0].mean()


def batch_candidates(mixed: torch.Tensor) -> torch.Tensor:
    """(batch, batch, bits) candidates from the batch itself (the warm-up epochs): for item i, its own mixed
    output first, then every other item's in order (NCEAverage.forward with momentum 0)."""
    n = len(mixed)
    order = torch.arange(n, device=mixed.device)
    others = order.expand(n, n)[~torch.eye(n, dtype=torch.bool, device=mixed.device)].view(n, n - 1)
    return mixed[torch.cat([order[:, None], others], 1)]


def cross_modal_ranking(image: torch.Tensor, text: torch.Tensor, margin: float, shift: float) -> torch.Tensor:
    """UCCH's cross-modal ranking loss (ContrastiveLoss in src/utils.py, tau 1): scores S = image text'; in each
    row (text retrieval) and column (image retrieval), a negative scoring below the pair's own score minus
    `margin` is lowered by `shift`; the loss is the log-sum-exp of each row (column) minus its pair's score,
    plus the margin, averaged, for both directions."""
    scores = image @ text.T
    pair = scores.diag()
    rows = torch.where(scores >= (pair[:, None] - margin).detach(), scores, scores - shift)
    columns = torch.where(scores >= (pair[None, :] - margin).detach(), scores, scores - shift)
    return (-rows.diag() + rows.logsumexp(1) + margin).mean() + (-columns.diag() + columns.logsumexp(0) + margin).mean()


class UCCH(GradientHashing):
    """Unsupervised hashing by contrast with a memory of codes: each item's outputs are scored against the signs of
    its own memory slot and of randomly drawn other items' (instance-level contrast, with no continuous
    relaxation of the codes), plus a cross-modal ranking loss between the batch's image and text outputs (Hu et
    al., TPAMI 2023).

    Outputs o = normalize(tanh(MLP(x))) per modality. L = alpha (NCE(o_I) + NCE(o_T)) + (1 - alpha) CRL(o_I, o_T);
    after each batch, an item's memory slot moves to normalize(momentum m + (1 - momentum) normalize(o_I + o_T)).
    In the warm-up epochs the candidates are the batch's own mixed outputs and the memory takes them whole. Codes
    at test time: the signs of the MLPs' outputs.

    Args:
        n_train: the number of training items, one memory slot each (from the data; no label is read).
        image_layers: linear layers of the image network.
        text_layers: linear layers of the text network.
        hidden: width of the hidden layers.
        alpha: weight of the contrastive term (1 - alpha: the ranking term).
        negatives: memory slots drawn per item (uniformly, with replacement) as negatives.
        temperature: temperature of the contrastive scores (cosines over it).
        momentum: how much of a memory slot is kept when the item is seen again.
        margin: the ranking loss's margin.
        shift: how much the ranking loss lowers a negative that is already below its pair's score minus the margin.
        warmup_epochs: epochs that contrast with the batch instead of the memory.
        lr: Adam learning rate (divided by 10 at epochs 30, 60, 90 and 120).
        weight_decay: Adam weight decay.
    """

    training_only = ("memory",)

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, n_train: int,
                 image_layers: int = 3, text_layers: int = 2, hidden: int = 8192, alpha: float = 0.7,
                 negatives: int = 4096, temperature: float = 0.9, momentum: float = 0.4, margin: float = 0.2,
                 shift: float = 0.1, warmup_epochs: int = 1, lr: float = 1e-4, weight_decay: float = 1e-6):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters()
        self.image_net = ucch_mlp(image_dim, bits, hidden, image_layers)
        self.text_net = ucch_mlp(text_dim, bits, hidden, text_layers)
        # NCEAverage's start: the normalised signs of 2 stdv N(0, 1) - stdv (about 31% of them +1)
        stdv = 1 / math.sqrt(bits / 3)
        self.register_buffer("memory", F.normalize(torch.randn(n_train, bits).mul(2 * stdv).sub(stdv).sign(), dim=1))

    @classmethod
    def data_arguments(cls, data) -> dict:
        return {**super().data_arguments(data), "n_train": len(data.train_labels)}

    def encode_image(self, image):
        return self.image_net(image)

    def encode_text(self, text):
        return self.text_net(text)

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp, index = self.hparams, batch["index"]
        image = F.normalize(torch.tanh(self.encode_image(batch["image"])), dim=1)
        text = F.normalize(torch.tanh(self.encode_text(batch["text"])), dim=1)
        warm = self.current_epoch < hp.warmup_epochs
        if warm:
            candidates = batch_candidates((image + text).detach() / 2)
        else:
            drawn = torch.randint(len(self.memory), (len(index), hp.negatives + 1), device=index.device)
            drawn[:, 0] = index
            candidates = self.memory[drawn].to(image.dtype)
        terms = {"contrast": nce_softmax(memory_scores(image, candidates, hp.temperature))
                 + nce_softmax(memory_scores(text, candidates, hp.temperature)),
                 "ranking": cross_modal_ranking(image, text, hp.margin, hp.shift)}
        with torch.no_grad():
            momentum = 0.0 if warm else hp.momentum
            mixed = F.normalize(image + text, dim=1).to(self.memory.dtype)
            self.memory[index] = F.normalize(momentum * self.memory[index] + (1 - momentum) * mixed, dim=1)
        terms["loss"] = hp.alpha * terms["contrast"] + (1 - hp.alpha) * terms["ranking"]
        return terms

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, [30, 60, 90, 120], gamma=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

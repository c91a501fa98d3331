"""DCMH: deep cross-modal hashing (Jiang and Li, CVPR 2017). Supervised.

Follows docs/methods.md (DCMH): the authors' code, github.com/jiangqy/DCMH-CVPR2017, its MATLAB version
(DCMH_matlab: DCMH_demo.m, process_DCMH.m, update_net.m, net_structure_txt.m).
"""

from typing import Literal

import torch
import torch.nn.functional as F

from methods.base import GradientHashing
from methods.heads import HashMLP, hash_layer


def dcmh_objective(outputs: torch.Tensor, codes: torch.Tensor, others: torch.Tensor, similar: torch.Tensor,
                   column_sum: torch.Tensor, gamma: float, eta: float) -> torch.Tensor:
    """The part of DCMH's objective that one modality's batch outputs move, every other output fixed.

    sum_ij log(1 + e^theta_ij) - S_ij theta_ij with theta_ij = others_i' outputs_j / 2, plus gamma ||outputs - B||^2
    and eta ||column_sum||^2. Its gradient with respect to `outputs` is the code's dJ/dG (dJ/dF) (process_DCMH.m:42-45).

    Args:
        outputs: (batch, bits) this modality's outputs of the batch.
        codes: (batch, bits) the batch's binary codes B.
        others: (items, bits) the other modality's outputs of every training item.
        similar: (items, batch) 1 where a training item and a batch item share a label.
        column_sum: (bits,) this modality's outputs summed over every training item, the batch's part live.
        gamma: weight of the quantization term.
        eta: weight of the bit-balance term.

    Returns:
        The objective, a scalar.
    """
    theta = others @ outputs.T / 2
    return (F.softplus(theta) - similar * theta).sum() + gamma * (outputs - codes).square().sum() \
        + eta * column_sum.square().sum()


class DCMH(GradientHashing):
    """Supervised hashing fitted to the cross-modal label similarities by a pairwise likelihood, with the binary
    codes B = sign(gamma (F + G)) of the training items renewed every epoch (Jiang and Li, CVPR 2017): a hash layer
    on the frozen image features, an MLP on the centred texts.

    F and G hold the latest image and text outputs of every training item (zero at first). On a batch the text
    network, then the image network, moves dcmh_objective with the other modality's outputs fixed; the objective
    is divided by batch x training items (update_net.m). Codes at test time: the signs of the outputs.

    Args:
        train_labels: the training items' labels (S_ij = 1 where two share one; from the data).
        text_mean: the training texts' mean, subtracted from every text (from the data).
        hidden: width of the text network's hidden layer.
        gamma: weight of the quantization term ||F - B||^2 + ||G - B||^2.
        eta: weight of the bit-balance term ||F 1||^2 + ||G 1||^2.
        optimizer: `sgd` (the authors': plain SGD) or `adam` (the suite's common preset, docs/methods.md).
        lr_start: learning rate of the first epoch.
        lr_end: learning rate of the last epoch (log-linear in between).
        weight_decay: the optimiser's weight decay (L2, added to the gradient).
        init_std: standard deviation of the Gaussian initial weights and biases of the layers it trains anew.
    """

    supervised = True
    training_only = ("train_labels", "image_outputs", "text_outputs", "codes")

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, train_labels: torch.Tensor | None,
                 text_mean: torch.Tensor, hidden: int = 8192, gamma: float = 1.0, eta: float = 1.0,
                 optimizer: Literal["sgd", "adam"] = "sgd", lr_start: float = 10 ** -1.5, lr_end: float = 1e-3,
                 weight_decay: float = 5e-4, init_std: float = 0.01):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters(ignore=["train_labels", "text_mean"])
        self.image_hash = hash_layer(image_dim, bits)  # the code's new fc8 on the backbone's fc7
        self.text_hash = HashMLP(text_dim, bits, hidden)
        for layer in (self.image_hash, self.text_hash.hidden, self.text_hash.out):
            torch.nn.init.normal_(layer.weight, std=init_std)
            torch.nn.init.normal_(layer.bias, std=init_std)
        self.register_buffer("text_mean", torch.as_tensor(text_mean, dtype=torch.float32))
        labels = torch.empty(0, num_classes) if train_labels is None else torch.as_tensor(train_labels).float()
        self.register_buffer("train_labels", labels)
        for name in ("image_outputs", "text_outputs", "codes"):  # F, G = 0 (process_DCMH.m:18-19)
            self.register_buffer(name, torch.zeros(len(labels), bits))

    @classmethod
    def data_arguments(cls, data) -> dict:
        return {**super().data_arguments(data), "train_labels": torch.as_tensor(data.train_labels),
                "text_mean": data.train_features()["text"].mean(0)}

    def encode_image(self, image):
        return self.image_hash(image)

    def encode_text(self, text):
        return self.text_hash(text - self.text_mean.to(text.dtype))[0]  # normZeroMean (DCMH_demo.m:27)

    def on_train_epoch_start(self) -> None:
        """B = sign(gamma (F + G)) from the outputs so far (process_DCMH.m:31)."""
        self.codes.copy_(torch.sign(self.hparams.gamma * (self.image_outputs + self.text_outputs)))

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp, index = self.hparams, batch["index"]
        labels = self.train_labels.to(batch["labels"].dtype)
        similar = (labels @ batch["labels"].T > 0).to(self.image_outputs.dtype)
        codes, terms = self.codes[index], {}
        for name, encode, x, mine, theirs in (("text", self.encode_text, batch["text"], self.text_outputs,
                                               self.image_outputs),
                                              ("image", self.encode_image, batch["image"], self.image_outputs,
                                               self.text_outputs)):
            out = encode(x)
            mine[index] = out.detach().to(mine.dtype)  # the buffers keep each item's latest output
            column_sum = mine.sum(0).to(out.dtype) - out.detach().sum(0) + out.sum(0)  # this batch's part live
            others = theirs.to(out.dtype, copy=True)  # as they are now: the image step then reads the new G
            terms[name] = dcmh_objective(out, codes.to(out.dtype), others, similar.to(out.dtype), column_sum,
                                         hp.gamma, hp.eta)
        # One backward for both: each term moves only its own network, and the image term reads the text outputs
        # the text term has just stored, as the code's image pass reads the G of its text pass.
        terms["loss"] = (terms["text"] + terms["image"]) / (len(index) * len(self.train_labels))
        return terms

    def configure_optimizers(self):
        hp = self.hparams
        kind = torch.optim.Adam if hp.optimizer == "adam" else torch.optim.SGD
        optimizer = kind(self.parameters(), lr=hp.lr_start, weight_decay=hp.weight_decay)
        last = max((self.trainer.max_epochs or 1) - 1, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(  # logspace(lr_start, lr_end, epochs) (DCMH_demo.m:20-21)
            optimizer, lambda epoch: (hp.lr_end / hp.lr_start) ** (min(epoch, last) / last))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

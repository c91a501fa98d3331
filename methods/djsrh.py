"""DJSRH: deep joint-semantics reconstructing hashing (Su, Zhong, Zhang; ICCV 2019). Unsupervised.

Follows docs/methods.md (DJSRH): the authors' code, github.com/zs-zhong/DJSRH (train.py, settings.py).
"""

import torch

from methods.base import GradientHashing, modality_sgd
from methods.graphs import cosine, global_reconstruction
from methods.heads import HashMLP, epoch_alpha, hash_layer
from methods.losses import similarity_mse


def joint_semantics(image: torch.Tensor, text: torch.Tensor, beta: float, eta: float, mu: float) -> torch.Tensor:
    """DJSRH's joint-semantics affinity of a batch: S_I = 2 cos(F_I, F_I) - 1 and S_T = 2 cos(F_T, F_T) - 1 fused
    as S~ = beta S_I + (1 - beta) S_T, diffused once, S = (1 - eta) S~ + eta S~ S~' / n, and scaled by mu."""
    return mu * global_reconstruction(2 * cosine(image) - 1, 2 * cosine(text) - 1, beta, eta)


class DJSRH(GradientHashing):
    """Unsupervised hashing whose codes reconstruct a joint-semantics affinity of the batch, both modalities'
    feature cosines fused and diffused (Su et al., ICCV 2019): a hash layer on the frozen image features, a hash
    MLP on the texts.

    With B = tanh(alpha h) row-normalised, alpha = sqrt(epoch + 1), and S the joint-semantics affinity
    (joint_semantics): L = lambda1 mse(B_I B_I', S) + mse(B_I B_T', S) + lambda2 mse(B_T B_T', S). Codes at test
    time: the signs of h.

    Args:
        hidden: width of the text network's hidden layer.
        beta: weight of the image affinity S_I in the fused S~ (1 - beta for the text one).
        eta: weight of the diffused S~ S~' / n against S~.
        mu: scale of the target S.
        lambda1: weight of the image-image term.
        lambda2: weight of the text-text term.
        image_lr: SGD learning rate of the image network.
        text_lr: SGD learning rate of the text network.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        batch_norm: standardise the hash outputs per bit over the batch (not in the code).
    """

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, hidden: int = 4096,
                 beta: float = 0.9, eta: float = 0.4, mu: float = 1.5, lambda1: float = 0.1, lambda2: float = 0.1,
                 image_lr: float = 0.001, text_lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4,
                 batch_norm: bool = False):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters()
        self.image_hash = hash_layer(image_dim, bits, batch_norm)  # the code's fc_encode on the backbone's fc7
        self.text_hash = HashMLP(text_dim, bits, hidden, batch_norm)

    def encode_image(self, image):
        return self.image_hash(image)

    def encode_text(self, text):
        return self.text_hash(text)[0]

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp, alpha = self.hparams, epoch_alpha(self.current_epoch)
        image, text = batch["image"], batch["text"]
        s = joint_semantics(image, text, hp.beta, hp.eta, hp.mu)
        b_i = torch.tanh(alpha * self.encode_image(image))
        b_t = torch.tanh(alpha * self.encode_text(text))
        terms = {"image": similarity_mse(b_i, b_i, s), "cross": similarity_mse(b_i, b_t, s),
                 "text": similarity_mse(b_t, b_t, s)}
        terms["loss"] = hp.lambda1 * terms["image"] + terms["cross"] + hp.lambda2 * terms["text"]
        return terms

    def configure_optimizers(self):
        hp = self.hparams
        return modality_sgd(self, hp.image_lr, hp.text_lr, hp.momentum, hp.weight_decay)


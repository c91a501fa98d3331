"""CCA-ITQ (Gong et al., TPAMI 2013): CCA to a common `bits`-d space, then one ITQ rotation."""

import torch

from methods.base import ClosedFormHashing


def inverse_sqrt(covariance: torch.Tensor, reg: float) -> torch.Tensor:
    """(C + reg * mean eigenvalue * I)^(-1/2) of a symmetric positive semi-definite C."""
    d = covariance.shape[0]
    ridge = reg * covariance.trace() / d * torch.eye(d, dtype=covariance.dtype, device=covariance.device)
    eigenvalues, vectors = torch.linalg.eigh(covariance + ridge)
    return vectors @ torch.diag(eigenvalues.clamp_min(1e-12).rsqrt()) @ vectors.T


def cca(x: torch.Tensor, y: torch.Tensor, dims: int, reg: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Projections (d_x, dims), (d_y, dims) onto the top canonical directions of centred x, y, and their correlations."""
    n = x.shape[0]
    wx, wy = inverse_sqrt(x.T @ x / n, reg), inverse_sqrt(y.T @ y / n, reg)
    u, correlations, vt = torch.linalg.svd(wx @ (x.T @ y / n) @ wy)
    return wx @ u[:, :dims], wy @ vt[:dims].T, correlations[:dims]


def itq_rotation(v: torch.Tensor, iterations: int) -> torch.Tensor:
    """Orthogonal R minimising ||sign(V R) - V R||: alternate the codes and a Procrustes rotation."""
    rotation, _ = torch.linalg.qr(torch.randn(v.shape[1], v.shape[1], dtype=v.dtype, device=v.device))
    for _ in range(iterations):
        codes = (v @ rotation >= 0).to(v.dtype) * 2 - 1  # sign with 0 -> +1, made in v's dtype and device
        u, _, vt = torch.linalg.svd(codes.T @ v)
        rotation = (u @ vt).T
    return rotation


class CCAITQ(ClosedFormHashing):
    """CCA to a common `bits`-d space, then one ITQ rotation, learnt on the stacked projections of both
    modalities, that makes the signs lose as little as possible (Gong et al., TPAMI 2013).

    Args:
        reg: ridge on each covariance, relative to its mean eigenvalue (the text features of small sets are
            rank-deficient); 0.1 is a conventional value.
        correlation_power: each canonical direction is weighted by its correlation to this power before the
            rotation, as in the paper (p = 4), so that weak, noisy directions weigh less.
        itq_iterations: alternations of codes and rotation (50 in the paper).
    """

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, reg: float = 0.1,
                 correlation_power: float = 4.0, itq_iterations: int = 50):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters()
        self.check_widths(bits, image_dim, text_dim)
        self.reg, self.correlation_power, self.itq_iterations = reg, correlation_power, itq_iterations
        for name, dim in (("image", image_dim), ("text", text_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim, dtype=torch.float64))
            self.register_buffer(f"{name}_projection", torch.zeros(dim, bits, dtype=torch.float64))

    @classmethod
    def check_widths(cls, bits: int, image_dim: int | None, text_dim: int | None) -> None:
        known = [d for d in (image_dim, text_dim) if d is not None]
        if known and bits > min(known):
            raise ValueError(f"{bits} bits need {bits} canonical directions, but the features have "
                             f"{image_dim} (image) and {text_dim} (text) dimensions")

    def fit(self, image, text, labels):
        self.image_mean.copy_(image.mean(0))
        self.text_mean.copy_(text.mean(0))
        x, y = image - self.image_mean, text - self.text_mean
        wx, wy, correlations = cca(x, y, self.bits, self.reg)
        weight = correlations ** self.correlation_power
        wx, wy = wx * weight, wy * weight
        rotation = itq_rotation(torch.cat([x @ wx, y @ wy]), self.itq_iterations)
        self.image_projection.copy_(wx @ rotation)
        self.text_projection.copy_(wy @ rotation)

    def encode_image(self, image):
        return (image.double() - self.image_mean) @ self.image_projection

    def encode_text(self, text):
        return (text.double() - self.text_mean) @ self.text_projection

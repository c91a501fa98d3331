"""Packages installed beside the suite as pip installs them (modules, config files, a dist-info naming their
entry points), for the tests of the plug-in door: a sound method and broken ones."""

import importlib
import sys
from pathlib import Path

from benchmarks.spec import registry

# A sound method written outside the suite: a supervised linear hash per modality.
LINEAR_HASH = '''
"""A method written outside the suite: one linear layer per modality."""

import torch
from torch import nn

from methods.base import GradientHashing
from methods.losses import similarity_mse


class LinearHash(GradientHashing):
    """Supervised linear hashing: one standardised linear layer per modality, the codes' cross-modal cosines
    fitted to whether the items share a label.

    Args:
        lr: Adam learning rate.
    """

    supervised = True

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, lr: float = 0.01):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters()
        self.image = nn.Sequential(nn.BatchNorm1d(image_dim), nn.Linear(image_dim, bits))
        self.text = nn.Sequential(nn.BatchNorm1d(text_dim), nn.Linear(text_dim, bits))

    def encode_image(self, image):
        return self.image(image)

    def encode_text(self, text):
        return self.text(text)

    def losses(self, batch):
        h_i, h_t = torch.tanh(self.encode_image(batch["image"])), torch.tanh(self.encode_text(batch["text"]))
        shared = (batch["labels"] @ batch["labels"].T > 0).to(h_i.dtype)
        return {"loss": similarity_mse(h_i, h_t, shared)}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
'''
LINEAR_HASH_YAML = "class: myhash.linhash.LinearHash\ntrainer:\n  max_epochs: 3\n"


def install(site: Path, distribution: str, files: dict[str, str], entries: dict[str, dict[str, str]],
            version: str = "0.1") -> None:
    """Write a package into `site` (on sys.path) as pip would, and make the registry find it.

    Args:
        site: the folder packages are installed into.
        distribution: the distribution's name.
        files: {path under site: text} (modules, __init__.py, config files).
        entries: {entry-point group kind (methods, datasets): {name: package}}.
        version: the distribution's version.
    """
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    info = site / f"{distribution}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{registry.GROUP}{kind}]\n" + "".join(f"{name} = {package}\n" for name, package in named.items())
        for kind, named in entries.items()))
    importlib.invalidate_caches()
    for module in [m for m in sys.modules if m.split(".")[0] in {n.split("/")[0] for n in files}]:
        del sys.modules[module]  # a package of the same name installed by an earlier test
    registry.rediscover()

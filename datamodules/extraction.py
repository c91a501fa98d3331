"""The on-disk feature cache and the extraction loop that fills it.

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
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import DataLoader, Dataset

from common.files import load_array, save_array, save_array_parts
from datamodules.encoders import Encoder

log = logging.getLogger("cmhb")


@dataclass(frozen=True)
class Extraction:
    """How features are computed: speed only, except `precision`, which changes the features (and the cache key).

    Args:
        batch_size: items per forward pass of the backbone.
        num_workers: DataLoader processes that decode and preprocess (the CPU bottleneck for images).
        device: `auto` (CUDA when available), `cpu` or `cuda`.
        precision: `32`, or `bf16` / `16` mixed precision on CUDA.
    """

    batch_size: int = 32
    num_workers: int = 0
    device: str = "auto"
    precision: Literal["32", "bf16", "16"] = "32"

    @property
    def torch_device(self) -> torch.device:
        return torch.device("cuda" if self.device == "auto" and torch.cuda.is_available() else
                            "cpu" if self.device == "auto" else self.device)

    @property
    def effective_precision(self) -> str:
        """The precision features are computed in: mixed precision applies on CUDA only."""
        return self.precision if self.torch_device.type == "cuda" else "32"

    def autocast(self):
        if self.effective_precision == "32":
            return nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)


def cache_key(dataset: str, ids: Sequence[str], encoder: Encoder, extraction: Extraction) -> str:
    """The feature cache's file name: the dataset, the backbone and its preprocessing, the precision, and a hash
    of the items' ids."""
    precision = extraction.effective_precision
    key = encoder.key + ("" if precision == "32" else f":{precision}")
    digest = hashlib.sha256(json.dumps([dataset, key, list(map(str, ids))]).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in key)
    return f"{dataset}-{safe}-{digest}"


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
    features = load_checked(path, len(items))
    if features is not None:
        return features
    parts = path.with_name(path.name + ".parts")
    starts = list(range(0, len(items), chunk_size))
    chunks = {start: parts / f"{start:09d}.npy" for start in starts}
    missing = [s for s in starts if load_checked(chunks[s], min(s + chunk_size, len(items)) - s) is None]
    if missing:
        left = sum(min(s + chunk_size, len(items)) - s for s in missing)
        kept = f" ({len(items) - left:,} kept from an interrupted extraction)" if left < len(items) else ""
        print(f"{encoder.key} features: extracting {left:,} of {len(items):,} items{kept}", file=sys.stderr, flush=True)
        _extract(encoder, items, missing, chunk_size, chunks, extraction)
    dim = np.load(chunks[starts[0]], mmap_mode="r").shape[1] if starts else 0  # the header only: verified below
    save_array_parts(path, (load_array(chunks[s]) for s in starts), (len(items), dim), np.float32)  # chunk by chunk
    shutil.rmtree(parts, ignore_errors=True)
    return load_array(path)


def load_checked(path: Path, rows: int) -> np.ndarray | None:
    """The cached features at `path` (memory-mapped) when complete and intact, else None (a damaged file is
    named in a warning)."""
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

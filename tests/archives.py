"""Miniature archives in the datasets' official layouts, built from the real files in shared/data."""

import collections
import zipfile
from pathlib import Path

import numpy as np

from datamodules.mirflickr import LABELS


def read_mirflickr_lists(root: Path):
    """(image numbers, tag lists, labels) of the 20,015 rows of the community text lists."""
    numbers = [int(p.strip().split("im")[-1].split(".")[0]) for p in (root / "all_imgs.txt").read_text().split()]
    tags = [line.split(",") for line in (root / "all_tags.txt").read_text().splitlines()][:len(numbers)]
    labels = np.loadtxt(root / "all_labels.txt", dtype=np.uint8)
    return numbers, tags, labels


def build_mirflickr_archives(shared: Path, out: Path, extra: int = 6) -> Path:
    """mirflickr25k.zip and mirflickr25k_annotations_v080.zip for the rows whose real image is in
    shared/images, plus `extra` items the standard selection must drop (no label, or only rare tags)."""
    numbers, tags, labels = read_mirflickr_lists(shared)
    vocabulary = (shared / "TagList.txt").read_text().split()
    counts = collections.Counter(t for row in tags for t in set(row))
    have = {int(p.stem[2:]): p for p in (shared / "images").glob("im*.jpg")}
    rows = [i for i, k in enumerate(numbers) if k in have]
    spare = [k for k in range(1, 1001) if k not in set(numbers)][:extra]
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out / "mirflickr25k.zip", "w") as z:
        z.writestr("mirflickr/doc/common_tags.txt", "".join(f"{t} {counts[t]}\n" for t in vocabulary))
        for i in rows:
            k = numbers[i]
            z.write(have[k], f"mirflickr/im{k}.jpg")
            z.writestr(f"mirflickr/meta/tags/tags{k}.txt", "\n".join(tags[i] + ["zzrare"]) + "\n")
        first = have[numbers[rows[0]]]
        for n, k in enumerate(spare):
            z.write(first, f"mirflickr/im{k}.jpg")
            # Half have only rare tags (but a label), half have frequent tags but no label.
            z.writestr(f"mirflickr/meta/tags/tags{k}.txt", "zzrare\n" if n % 2 == 0 else "sky\nblue\n")
    with zipfile.ZipFile(out / "mirflickr25k_annotations_v080.zip", "w") as z:
        z.writestr("README.txt", "annotations\n")
        for j, label in enumerate(LABELS):
            listed = [numbers[i] for i in rows if labels[i, j]] + [k for n, k in enumerate(spare) if n % 2 == 0 and j == 0]
            z.writestr(f"{label}.txt", "".join(f"{k}\n" for k in sorted(listed)))
            if j % 3 == 0:  # the `_r1` files repeat a subset of their label: the standard 24 ignore them
                z.writestr(f"{label}_r1.txt", "".join(f"{k}\n" for k in sorted(listed)[:5]))
    return out

"""Miniature archives in the datasets' official layouts, built from the real files in shared/data."""

import collections
import json
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


def real_images(shared: Path, n: int) -> list[Path]:
    """n real photos (MIRFlickr thumbnails) to stand in for another dataset's pixels."""
    return sorted((shared / "images").glob("im*.jpg"))[:n]


COCO_CATEGORIES = [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]


def build_coco_archives(shared: Path, out: Path, n_train: int = 32, n_val: int = 6) -> dict:
    """train2014.zip, val2014.zip and annotations_trainval2014.zip in the official layout (under zips/ and
    annotations/ as the official host serves them). Every 8th image has no instance: it must be dropped.
    Returns what the reader should produce: ids, labels (category-id order), first captions."""
    photos = real_images(shared, n_train + n_val)
    (out / "zips").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    expected = {"ids": [], "labels": [], "captions": []}
    annotations = {}
    next_id = 1000
    for part, photos_of_part, offset in (("train2014", photos[:n_train], 1), ("val2014", photos[n_train:], 500)):
        images, instances, captions = [], [], []
        with zipfile.ZipFile(out / "zips" / f"{part}.zip", "w") as z:
            for n, photo in enumerate(photos_of_part):
                image_id = offset + 7 * (len(photos_of_part) - n)  # listed in descending id order
                name = f"COCO_{part}_{image_id:012d}.jpg"
                z.write(photo, f"{part}/{name}")
                images.append({"id": image_id, "file_name": name})
                cats = [] if n % 8 == 0 else sorted({COCO_CATEGORIES[n % 3]["id"], COCO_CATEGORIES[(n // 3) % 3]["id"]})
                for c in cats:
                    instances.append({"id": next_id, "image_id": image_id, "category_id": c})
                    next_id += 1
                for k in (2, 1):  # the caption with the smaller annotation id is the "first"
                    captions.append({"id": next_id + k, "image_id": image_id, "caption": f"photo {image_id} caption {k}"})
                next_id += 3
        annotations[f"annotations/instances_{part}.json"] = {"images": images, "annotations": instances,
                                                              "categories": COCO_CATEGORIES}
        annotations[f"annotations/captions_{part}.json"] = {"images": images, "annotations": captions}
        for image in sorted(images, key=lambda i: i["id"]):
            cats = sorted({a["category_id"] for a in instances if a["image_id"] == image["id"]})
            if cats:
                expected["ids"].append(f"{part}/{image['id']}")
                expected["labels"].append([int(c in cats) for c in (1, 3, 18)])
                expected["captions"].append(f"photo {image['id']} caption 1")
    with zipfile.ZipFile(out / "annotations" / "annotations_trainval2014.zip", "w") as z:
        for name, content in annotations.items():
            z.writestr(name, json.dumps(content))
    return expected


def build_nuswide_folder(shared: Path, out: Path, n: int = 48, with_images: bool = True) -> np.ndarray:
    """The official NUS-WIDE lists for n items and 25 concepts of decreasing frequency. Returns the
    full label matrix (concepts in file-name order)."""
    rng = np.random.default_rng(0)
    concepts = [f"c{j:02d}" for j in range(25)]
    frequency = np.linspace(0.5, 0.02, len(concepts))
    labels = (rng.random((n, len(concepts))) < frequency).astype(np.uint8)
    labels[:3] = 0
    labels[3, :] = 0
    labels[3, 22] = 1  # only a rare concept: dropped by both variants
    (out / "ImageList").mkdir(parents=True)
    (out / "Groundtruth" / "AllLabels").mkdir(parents=True)
    (out / "NUS_WID_Tags").mkdir(parents=True)
    photos = real_images(shared, n)
    paths = [f"{concepts[int(np.argmax(labels[i]))]}/{i:04d}_{1000 + i}.jpg" for i in range(n)]
    (out / "ImageList" / "Imagelist.txt").write_text(
        "".join("C:\\ImageData\\Flickr\\" + p.replace("/", "\\") + "\n" for p in paths))
    for j, concept in enumerate(concepts):
        (out / "Groundtruth" / "AllLabels" / f"Labels_{concept}.txt").write_text("".join(f"{v}\n" for v in labels[:, j]))
    tags = (rng.random((n, 1000)) < 0.01).astype(np.uint8)
    (out / "NUS_WID_Tags" / "AllTags1k.txt").write_text("".join(" ".join(map(str, row)) + "\n" for row in tags))
    (out / "NUS_WID_Tags" / "TagList1k.txt").write_text("".join(f"tag{j}\n" for j in range(1000)))
    if with_images:
        for photo, path in zip(photos, paths):
            (out / "Flickr" / path).parent.mkdir(parents=True, exist_ok=True)
            (out / "Flickr" / path).write_bytes(photo.read_bytes())
    return labels

"""The real datasets' annotations at their real sizes: parse, cache and split time, and peak memory.

Generates files in the official layouts with the official counts (MS-COCO 2014: 82,783 + 40,504 images, five
captions each, instance annotations with polygons as large as the real 333 MB of JSON; NUS-WIDE: the 269,648-row
image list, 81 concept files and the 539 MB AllTags1k.txt) and empty image files, then, each in a fresh
process, reads them: once parsing the files (which writes the annotation cache), once from the cache (every
later run), and makes the standard split. The generated files are synthetic: only sizes and layouts are real.

    python benchmarks/perf/data.py [--datasets coco,nuswide] [--scale 1.0] [--markdown FILE]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COCO_PARTS = {"train2014": 82_783, "val2014": 40_504}
NUS_ITEMS, NUS_CONCEPTS, NUS_TAGS = 269_648, 81, 1000


def coco_files(root: Path, scale: float) -> None:
    """The annotation JSON and empty image files of MS-COCO 2014 in the official layout."""
    rng = np.random.default_rng(0)
    categories = [{"id": i, "name": f"category{i}", "supercategory": "thing"}
                  for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    next_id = 1
    for part, count in COCO_PARTS.items():
        count = int(count * scale)
        (root / part).mkdir(exist_ok=True)
        images, instances, captions = [], [], []
        for image_id in range(1, count + 1):
            name = f"COCO_{part}_{image_id:012d}.jpg"
            (root / part / name).touch()
            images.append({"id": image_id, "file_name": name, "height": 480, "width": 640, "license": 1,
                           "coco_url": f"http://images.cocodataset.org/{part}/{name}", "date_captured": "2013-11-14"})
            for _ in range(0 if rng.random() < 0.009 else rng.integers(1, 14)):  # ~7.3 instances, ~1% none
                polygon = np.round(rng.random(rng.integers(20, 60)) * 640, 2).tolist()
                instances.append({"id": next_id, "image_id": image_id, "category_id": categories[rng.integers(80)]["id"],
                                  "segmentation": [polygon], "area": 1234.5, "bbox": polygon[:4], "iscrowd": 0})
                next_id += 1
            for k in range(5):
                captions.append({"id": next_id, "image_id": image_id, "caption": f"A photo {image_id} of a scene, "
                                 f"caption {k}, with a few more words as captions have."})
                next_id += 1
        (root / "annotations" / f"instances_{part}.json").write_text(json.dumps(
            {"images": images, "annotations": instances, "categories": categories}))
        (root / "annotations" / f"captions_{part}.json").write_text(json.dumps({"images": images, "annotations": captions}))


def nuswide_files(root: Path, scale: float) -> None:
    """The official NUS-WIDE lists (image list, concept flags, the 1,000-tag matrix) and empty image files."""
    rng = np.random.default_rng(0)
    items = int(NUS_ITEMS * scale)
    concepts = [f"concept{j:02d}" for j in range(NUS_CONCEPTS)]
    relative = [f"{concepts[i % NUS_CONCEPTS]}/{i:04d}_{1_000_000 + i}.jpg" for i in range(items)]
    for path in relative:
        (root / "Flickr" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "Flickr" / path).touch()
    (root / "ImageList").mkdir(parents=True, exist_ok=True)
    (root / "ImageList" / "Imagelist.txt").write_text("".join(f"C:\\ImageData\\Flickr\\{p.replace('/', chr(92))}\n"
                                                            for p in relative))
    (root / "Groundtruth" / "AllLabels").mkdir(parents=True, exist_ok=True)
    prevalence = 0.2 / (1 + np.arange(NUS_CONCEPTS))  # a few frequent concepts, many rare ones
    for j, concept in enumerate(concepts):
        flags = (rng.random(items) < prevalence[j]).astype(np.uint8)
        (root / "Groundtruth" / "AllLabels" / f"Labels_{concept}.txt").write_text("\n".join(map(str, flags)) + "\n")
    (root / "NUS_WID_Tags").mkdir(parents=True, exist_ok=True)
    with open(root / "NUS_WID_Tags" / "AllTags1k.txt", "wb") as f:
        for start in range(0, items, 10_000):
            block = (rng.random((min(10_000, items - start), NUS_TAGS)) < 0.008).astype(np.uint8)
            f.write(b"".join(b" ".join(b"01"[v:v + 1] for v in row) + b"\n" for row in block))
    (root / "NUS_WID_Tags" / "TagList1k.txt").write_text("".join(f"tag{j}\n" for j in range(NUS_TAGS)))


def measure(dataset: str, root: str, cache: str) -> dict:
    """One load of the dataset's annotations (parsing or from the cache) and its standard split (the mini one
    for a small --scale), here."""
    from datamodules.coco import COCODataModule
    from datamodules.nuswide import NUSWIDEDataModule

    cls = COCODataModule if dataset == "coco" else NUSWIDEDataModule
    data = cls(root, cache_dir=cache, **({"download": False} if dataset == "coco" else {}))
    start = time.perf_counter()
    records = data.load()
    loaded = time.perf_counter()
    split = cls.protocols["standard" if len(records) > 20_000 else "mini"].make(records, seed=0)  # mini: --scale
    return {"items": len(records), "load_seconds": loaded - start, "split_seconds": time.perf_counter() - loaded,
            "queries": len(split.query), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="coco,nuswide")
    parser.add_argument("--scale", type=float, default=1.0, help="a fraction of the real counts, for a quick look")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--one", nargs=3, metavar=("DATASET", "ROOT", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    lines = ["| dataset (items kept) | generating the files | first run: parse + cache | later runs: from the cache "
             "| standard split | peak RSS (first / later) |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        for dataset in args.datasets.split(","):
            root, cache = Path(folder) / dataset, Path(folder) / "cache"
            start = time.perf_counter()
            (coco_files if dataset == "coco" else nuswide_files)(root, args.scale)
            generated = time.perf_counter() - start
            runs = []
            for _ in range(2):
                done = subprocess.run([sys.executable, __file__, "--one", dataset, str(root), str(cache)],
                                      capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"{dataset} failed:\n{done.stderr[-3000:]}")
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            first, later = runs
            lines.append(f"| {dataset} ({first['items']:,}) | {generated:.0f} s | {first['load_seconds']:.1f} s | "
                         f"{later['load_seconds']:.1f} s | {later['split_seconds']:.2f} s | "
                         f"{first['peak_rss_mb'] / 1024:.2f} / {later['peak_rss_mb'] / 1024:.2f} GB |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()

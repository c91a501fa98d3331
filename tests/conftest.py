import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.mirflickr import LABELS

# The project's real test data (MIRFlickr photos, lists and .mat files) beside the checkout, or where
# CMHB_SHARED_DATA points (CI points it at an empty folder once, to prove the suite passes without it).
SHARED_DATA = Path(os.environ.get("CMHB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Splits and wandb runs of a test go to its own temporary folder."""
    monkeypatch.setenv("CMH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def pytest_runtest_setup(item):
    """A test marked `shared_data("<folder>")` reads that real dataset folder of the shared test data: it is
    skipped, with a reason that names the folder and how to provide it, when the folder is absent."""
    for mark in item.iter_markers("shared_data"):
        path = SHARED_DATA / mark.args[0]
        if not path.is_dir():
            pytest.skip(f"real test data not found: {path} (the real {mark.args[0]} files are not bundled with "
                        "the package; put the project's test data beside the checkout as ../shared/data, or set "
                        "CMHB_SHARED_DATA=DIR)")


def byte_level_alphabet() -> list[str]:
    """The 256 printable stand-ins CLIP's byte-level BPE uses for bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return [chr(c) for c in printable] + [chr(256 + n) for n in range(len(extra))]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A randomly initialised CLIP with a character-level tokenizer, saved as a real checkpoint folder."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = tmp_path_factory.mktemp("tiny-clip")
    alphabet = byte_level_alphabet()
    vocab = {token: i for i, token in enumerate(alphabet + [c + "</w>" for c in alphabet]
                                                 + ["<|startoftext|>", "<|endoftext|>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8), projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def photo_lists(tmp_path) -> Path:
    """A MIRFlickr text-list folder of 520 generated photos: a raw-image pipeline without the real data."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "lists"
    (folder / "images").mkdir(parents=True)
    rows = []
    for k in range(1, 521):
        Image.fromarray(rng.integers(0, 255, (30 + k % 40, 50, 3), dtype=np.uint8)).save(folder / "images" / f"im{k}.jpg")
        rows.append(" ".join("1" if j == k % 3 else "0" for j in range(len(LABELS))))
    (folder / "all_imgs.txt").write_text("".join(f"mirflickr/im{k}.jpg\n" for k in range(1, 521)))
    (folder / "all_tags.txt").write_text("".join(f"sky,tag{k % 5}\n" for k in range(1, 521)))
    (folder / "all_labels.txt").write_text("\n".join(rows) + "\n")
    (folder / "TagList.txt").write_text("sky\n" + "".join(f"tag{i}\n" for i in range(5)))
    return folder

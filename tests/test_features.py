"""Backbones load through the real from_pretrained path; extraction is cached and resumable; raw mode."""

import shutil
import tracemalloc

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from benchmarks.execution.pipeline import build
from benchmarks.spec.config import resolve
from common.errors import ConfigError
from common.files import load_array, save_array, save_array_parts
from datamodules.encoders import Encoder, make_encoder
from datamodules.extraction import Extraction, cached_features
from datamodules.mirflickr import MIRFlickrDataModule

from archives import read_mirflickr_lists
from conftest import SHARED_DATA
from tiny_clip import save_tiny_clip

MIR = SHARED_DATA / "mirflickr25k"


def images(n: int) -> list[str]:
    return [str(p) for p in sorted((MIR / "images").glob("im*.jpg"))[:n]]


@pytest.mark.shared_data("mirflickr25k")
def test_clip_loads_from_a_local_folder_and_encodes_both_modalities(tiny_clip):
    image = make_encoder("clip", "image", tiny_clip)
    text = make_encoder("clip", "text", tiny_clip)
    assert image.encode(images(3)).shape == (3, 16)
    out = text.encode(["a dog on the beach", "sky", "sky"])
    assert out.shape == (3, 16) and np.allclose(out[1], out[2]) and not np.allclose(out[0], out[1])
    # Padding after the end token does not change a text's features.
    short = text.forward(text.preprocess("sky")[None])
    assert torch.allclose(short, torch.from_numpy(out[1:2]), atol=1e-5)


def test_clip_resize_frames_images_as_resize_and_centre_crop(tiny_clip):
    """CAGAN's framing (torchvision Resize(36) + CenterCrop(32) at the tiny CLIP's size): a 60 x 40 image gets
    its shorter side to 36 (54 x 36, bilinear), then the central 32 x 32 (from column 11, row 2), scaled to
    [0, 1] and normalised with CLIP's mean and std; CLIP's own processor frames differently, and the cache
    key says which framing made the features."""
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    framed = Image.fromarray(pixels).resize((54, 36), Image.Resampling.BILINEAR).crop((11, 2, 43, 34))
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    expected = torch.from_numpy(((np.asarray(framed) / 255 - mean) / std).transpose(2, 0, 1)).float()
    resized, processor = make_encoder("clip", "image", tiny_clip, clip_resize=36), make_encoder("clip", "image", tiny_clip)
    assert torch.allclose(resized.preprocess(pixels), expected, atol=1e-5)
    assert not torch.allclose(processor.preprocess(pixels), expected, atol=1e-2)
    assert resized.key == processor.key + ":resize36-centrecrop"


@pytest.mark.shared_data("mirflickr25k")
def test_offline_encoders_give_real_features():
    minilm = make_encoder("minilm", "text")
    out = minilm.encode(["a dog running on the beach", "a puppy playing by the sea", "tax law of 1998"])
    assert out.shape == (3, 384) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert out[0] @ out[1] > out[0] @ out[2] + 0.2  # a real sentence encoder, not random weights
    effnet = make_encoder("efficientnet-lite0", "image")
    logits = effnet.net(torch.stack([effnet.preprocess(p) for p in images(2)]))
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="no text backbone 'efficientnet-lite0'"):
        make_encoder("efficientnet-lite0", "text")


class CountingEncoder(Encoder):
    modality = "text"
    key = "counting"
    dim = 2

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def preprocess(self, item):
        return torch.tensor([float(len(item))])

    def load(self):
        return torch.nn.Identity()

    def forward(self, batch):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C
        return batch.repeat(1, 2)


def test_extraction_resumes_after_an_interruption_and_is_cached(tmp_path, capsys):
    items = [f"item {i}" * (i % 5 + 1) for i in range(50)]
    path = tmp_path / "features.npy"
    with pytest.raises(KeyboardInterrupt):
        cached_features(CountingEncoder(fail_after=3), items, path, Extraction(batch_size=5), chunk_size=10)
    assert not path.exists() and len(list((tmp_path / "features.npy.parts").glob("*.npy"))) == 1
    resumed = CountingEncoder()
    result = cached_features(resumed, items, path, Extraction(batch_size=5), chunk_size=10)
    assert resumed.calls == 8  # the first chunk (2 batches) was kept
    progress = capsys.readouterr().err  # not a terminal: one line per finished chunk, with the rate
    assert "counting features: 10/40 items" in progress and "items/s" in progress and "min left" in progress
    assert np.array_equal(result[:, 0], [len(i) for i in items])
    assert not (tmp_path / "features.npy.parts").exists()
    again = CountingEncoder()
    assert np.array_equal(cached_features(again, items, path), result) and again.calls == 0


def test_the_feature_matrix_is_written_from_its_chunks_without_a_copy_in_memory(tmp_path):
    chunks = []
    for i in range(8):  # 8 memory-mapped chunks of 5 MB: the matrix is 40 MB
        save_array(tmp_path / f"{i}.npy", np.full((1250, 1024), i, np.float32))
        chunks.append(tmp_path / f"{i}.npy")
    tracemalloc.start()
    save_array_parts(tmp_path / "all.npy", (load_array(c) for c in chunks), (10_000, 1024), np.float32)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10e6  # a block of rows at a time (2 MB measured); concatenate, astype and BytesIO held 132 MB
    matrix = load_array(tmp_path / "all.npy")
    assert matrix.shape == (10_000, 1024) and matrix[1249, 0] == 0 and matrix[1250, 0] == 1 and matrix[-1, -1] == 7
    with pytest.raises(ValueError, match="1250 rows written for an array of shape"):
        save_array_parts(tmp_path / "short.npy", [load_array(chunks[0])], (10_000, 1024), np.float32)
    assert not (tmp_path / "short.npy").exists()


def test_damaged_feature_caches_are_named_and_recomputed(tmp_path, caplog):
    items = [f"item {i}" * (i % 5 + 1) for i in range(50)]
    path = tmp_path / "features.npy"
    with pytest.raises(KeyboardInterrupt):
        cached_features(CountingEncoder(fail_after=4), items, path, Extraction(batch_size=5), chunk_size=10)
    chunk = tmp_path / "features.npy.parts" / "000000000.npy"
    chunk.write_bytes(chunk.read_bytes()[:-7])  # a truncated chunk, as a full disk or a kill leaves it
    resumed = CountingEncoder()
    result = np.array(cached_features(resumed, items, path, Extraction(batch_size=5), chunk_size=10))
    assert resumed.calls == 10 - 2 and "000000000.npy: damaged or incomplete feature cache" in caplog.text
    assert np.array_equal(result[:, 0], [len(i) for i in items])
    path.write_bytes(path.read_bytes()[:100] + b"\0" * (path.stat().st_size - 100))  # zeroed in place
    recomputed = CountingEncoder()
    assert np.array_equal(cached_features(recomputed, items, path, Extraction(batch_size=50)), result)
    assert recomputed.calls == 1  # one batch of all 50 items: the whole matrix was recomputed
    assert "features.npy: damaged or incomplete feature cache (checksum mismatch)" in caplog.text


@pytest.mark.shared_data("mirflickr25k")
def test_raw_mode_serves_pixels_and_token_ids(tiny_clip, tmp_path):
    dm = MIRFlickrDataModule(MIR, source="lists", only_with_images=True, image_dir=str(MIR / "images"),
                             protocol="mini", image_backbone="clip", text_backbone="clip", clip_model=tiny_clip,
                             raw=True, batch_size=4, cache_dir=tmp_path)
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["text"].shape == (4, 77)
    assert batch["text"].dtype == torch.long and dm.image_dim is None
    assert not (tmp_path / "features").exists()  # nothing was encoded


@pytest.mark.shared_data("mirflickr25k")
def test_bits_that_do_not_fit_the_backbone_fail_before_any_extraction(tiny_clip, tmp_path):
    """cca_itq at 32 bits on the tiny CLIP's 16-d features: refused from the backbone's config, before a single
    image is encoded."""
    spec = resolve("cca_itq", "mirflickr25k", 32, 0, [
        f"--data.data_dir={MIR}", "--data.source=lists", "--data.only_with_images=true",
        f"--data.image_dir={MIR / 'images'}", "--data.protocol=mini", "--data.image_backbone=clip",
        "--data.text_backbone=clip", f"--data.clip_model={tiny_clip}", f"--data.cache_dir={tmp_path}",
        "--logger.kind=none"])
    with pytest.raises(ConfigError, match="cca_itq on mirflickr25k: 32 bits need 32 canonical directions, but the "
                                          "features have 16 .image. and 16 .text."):
        build(spec, announce=lambda line: None)
    assert not (tmp_path / "features").exists()


@pytest.mark.shared_data("mirflickr25k")
def test_clip_features_of_a_subset_through_the_datamodule(tiny_clip, tmp_path):
    dm = MIRFlickrDataModule(MIR, source="lists", only_with_images=True, image_dir=str(MIR / "images"),
                             protocol="mini", subset=150, image_backbone="clip", text_backbone="clip",
                             clip_model=tiny_clip, cache_dir=tmp_path)
    dm.prepare_data()
    dm.setup()
    assert (dm.image_dim, dm.text_dim) == (16, 16)
    used = np.union1d(dm.split.query, dm.split.database)
    assert len(used) == 150 and np.abs(dm.data.image[used]).sum(1).min() > 0
    assert dm.describe()["backbone"] == f"clip:{tiny_clip}+clip:{tiny_clip}"


@pytest.mark.shared_data("mirflickr25k")
def test_a_local_model_replaced_at_the_same_path_gives_fresh_features(tmp_path):
    model = tmp_path / "clip"

    def features():
        dm = MIRFlickrDataModule(MIR, source="lists", only_with_images=True, image_dir=str(MIR / "images"),
                                 protocol="mini", subset=120, image_backbone="clip", text_backbone="clip",
                                 clip_model=str(model), cache_dir=tmp_path / "cache")
        dm.prepare_data()
        dm.setup()
        return dm.data.image.copy(), dm.data.text.copy()

    save_tiny_clip(model, seed=0)
    first = features()
    assert all(np.array_equal(a, b) for a, b in zip(first, features()))
    cached = set((tmp_path / "cache" / "features").iterdir())
    shutil.rmtree(model)
    save_tiny_clip(model, seed=1)
    second = features()
    assert not np.allclose(first[0], second[0]) and not np.allclose(first[1], second[1])
    assert len(set((tmp_path / "cache" / "features").iterdir()) - cached) == len(cached)  # a new entry per modality


@pytest.mark.shared_data("mirflickr25k")
def test_dcmh_mat_files_with_iall_pixels(tmp_path):
    """The .mat source on real rows: LAll / YAll (v5) and IAll as MATLAB v7.3 (HDF5) writes it."""
    numbers, _, _ = read_mirflickr_lists(MIR)
    have = {int(p.stem[2:]): p for p in (MIR / "images").glob("im*.jpg")}
    rows = [i for i, k in enumerate(numbers) if k in have][:6]
    lall = scipy.io.loadmat(MIR / "mirflickr25k-lall.mat")["LAll"][rows]
    yall = scipy.io.loadmat(MIR / "mirflickr25k-yall.mat")["YAll"][rows]
    scipy.io.savemat(tmp_path / "mirflickr25k-lall.mat", {"LAll": lall})
    scipy.io.savemat(tmp_path / "mirflickr25k-yall.mat", {"YAll": yall})
    from PIL import Image

    pixels = np.stack([np.asarray(Image.open(have[numbers[i]]).convert("RGB").resize((40, 30))) for i in rows], -1)
    with h5py.File(tmp_path / "mirflickr25k-iall.mat", "w") as f:  # MATLAB: 30 x 40 x 3 x 6, HDF5 reversed
        f["IAll"] = pixels.transpose(3, 2, 1, 0)
    dm = MIRFlickrDataModule(tmp_path, source="mat", cache_dir=tmp_path / "cache")
    data = dm.load()
    assert np.array_equal(data.labels, lall) and np.array_equal(data.text, yall)
    assert np.array_equal(data.image[2], pixels[..., 2])
    encoded = make_encoder("efficientnet-lite0", "image").encode([data.image[0], data.image[1]])
    assert encoded.shape == (2, 1280)

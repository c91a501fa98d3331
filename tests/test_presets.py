"""Presets (each method as its authors ran it) and the fidelity options they use."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.spec.config import resolve
from benchmarks.spec.registry import names
from datamodules.mirflickr import MIRFlickrDataModule
from datamodules.mirflickr_mini import MIRFlickrMiniDataModule
from datamodules.records import CrossModalData
from datamodules.splits import SplitProtocol
from datamodules.toy import ToyDataModule
from datamodules.wikipedia import WikipediaDataModule
from methods.cagan import CAGAN
from methods.dagnn import DAGNN
from methods.layers import LabelGraphAttention

DOCS = Path(__file__).resolve().parents[1] / "docs" / "methods.md"


def test_the_paper_preset_resolves_for_every_method_on_every_dataset():
    for method in names("methods", own=True):
        for dataset in names("datasets", own=True):
            assert resolve(method, dataset, 32, 0, preset="paper").preset == "paper"
    common, paper = resolve("cagan", "mirflickr25k", 32), resolve("cagan", "mirflickr25k", 32, preset="paper")
    assert paper.settings["data"]["protocol"] == "per-label" and common.settings["data"]["protocol"] is None
    assert paper.paper_metric == "map@5000"


def test_the_aaai_dagnn_resolves_to_its_authors_settings():
    """GNN4CMR at commit 429141c (main.py:27-62): P-GNN, the label likelihood, L_cla + 0.2 L_likelihood + 0.2
    L_gan; batch 100 and 5 GNN layers on MIRFlickr, 1,024 and 4 on NUS-WIDE and MS-COCO; 40 epochs."""
    for dataset, batch, layers in (("mirflickr25k", 100, 5), ("nuswide", 1024, 4), ("coco", 1024, 4)):
        settings = resolve("dagnn_aaai", dataset, 32, 0).settings
        method = {k: settings["method"][k] for k in ("graph", "feature_loss", "alpha", "w_feat", "beta", "gnn_layers")}
        assert method == {"graph": "probabilistic", "feature_loss": "likelihood", "alpha": 1.0, "w_feat": 0.2,
                          "beta": 0.2, "gnn_layers": layers}, dataset
        assert (settings["data"]["batch_size"], settings["trainer"]["max_epochs"]) == (batch, 40)


def test_cagan_picks_its_text_similarity_from_the_data(tmp_path):
    mirflickr = MIRFlickrMiniDataModule(cache_dir=tmp_path, drop_last=True)  # MIRFlickr's real tags
    mirflickr.setup()
    assert CAGAN.from_datamodule(mirflickr, 16).hparams.text_similarity == "shared_tags"
    tags = ToyDataModule(cache_dir=tmp_path, batch_size=32, drop_last=True)  # binary bags of tags
    tags.setup()
    assert CAGAN.data_arguments(tags)["text_similarity"] == "shared_tags"
    dense = WikipediaDataModule(cache_dir=tmp_path, batch_size=32, drop_last=True)  # TF-IDF weights
    dense.setup()
    assert CAGAN.from_datamodule(dense, 16).hparams.text_similarity == "cosine"
    explicit = CAGAN.from_datamodule(dense, 16, text_similarity="shared_tags")
    assert explicit.hparams.text_similarity == "shared_tags"


def test_a_detached_hash_head_leaves_the_encoders_to_the_authors_losses():
    torch.manual_seed(0)
    labels = (torch.rand(8, 4) < 0.5).float()
    labels[:, 0] = 1
    batch = {"image": torch.randn(8, 12).relu(), "text": (torch.rand(8, 10) < 0.3).float(), "labels": labels}
    for detach in (False, True):
        model = DAGNN(bits=8, image_dim=12, text_dim=10, num_classes=4, train_labels=labels, label_vectors=None,
                      detach_hash_head=detach)
        terms = model.losses(batch)
        (terms["code"] + terms["quant"]).backward()
        encoder_gradient = sum(p.grad.abs().sum() for p in model.image_encoder.parameters() if p.grad is not None)
        assert (encoder_gradient == 0) == detach
        assert model.image_hash.weight.grad.abs().sum() > 0  # the head itself still learns


def test_the_authors_gat_layer_has_no_bias_and_gain_1414():
    torch.manual_seed(0)
    layer = LabelGraphAttention(300, 1024, 64, 0.3, authors_layer=True)
    assert not any(name.endswith("bias") for name, _ in layer.named_parameters())
    bound = 1.414 * (6 / (300 + 1024)) ** 0.5  # Xavier-uniform
    assert layer.gat1.lin.weight.abs().max() <= bound and layer.gat1.lin.weight.abs().max() > 0.9 * bound
    assert layer.gat2.att_src.abs().max() <= 1.414 * (6 / (2 * 64 + 1)) ** 0.5
    edges = torch.tensor([[0, 1, 2, 1], [0, 1, 2, 0]])
    assert layer(torch.randn(3, 300), edges).shape == (3, 64)
    assert any(name.endswith("bias") for name, _ in LabelGraphAttention(300, 1024, 64, 0.3).named_parameters())


def labelled(labels: np.ndarray) -> CrossModalData:
    n = len(labels)
    return CrossModalData(name="labelled", ids=np.arange(n).astype(str), labels=labels, image=np.zeros((n, 2), np.float32),
                          text=np.zeros((n, 2), np.float32), label_names=tuple(map(str, range(labels.shape[1]))),
                          source="<test>")


def test_per_label_sampling_draws_label_by_label_then_fills_the_training_set():
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 3)) < 0.4).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    split = SplitProtocol("per-label", n_train=60, per_label=((4, 10), (2, 5))).make(labelled(labels), seed=0)
    assert len(split.query) == 4 + 2 + 2 and len(split.train) == 60 and len(set(split.train)) == 60
    assert labels[split.query[:4], 0].all() and labels[split.query[4:6], 1].all() and labels[split.query[6:], 2].all()
    assert labels[split.train[:10], 0].all() and labels[split.train[10:15], 1].all()
    assert not set(split.query) & set(split.database) and set(split.train) <= set(split.database)


def test_queries_as_database():
    labels = np.eye(4, dtype=np.uint8)[np.arange(200) % 4]
    protocol = SplitProtocol("x", n_query=20, n_train=50, n_val=30, queries_are_database=True)
    split = protocol.make(labelled(labels), seed=0)
    assert sorted(split.database) == sorted(split.query) and len(split.database) == 20
    assert not set(split.train) & set(split.query) and not set(split.val) & set(split.query)
    dm = ToyDataModule(cache_dir=None, queries_are_database=True)
    assert dm.protocol.name.endswith("-queries-as-database") and dm.protocol.queries_are_database


def test_glove_text_files_give_label_vectors(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("sky 1 0 0\nplant 0 2 0\nlife 0 0 2\ndog 3 3 3\n")
    data = ToyDataModule(cache_dir=tmp_path, n_classes=3, label_vectors=str(glove))
    data.setup()
    data.data = dataclasses.replace(data.data, label_names=("sky", "plant_life", "Dog"))
    assert data.label_vectors().tolist() == [[1, 0, 0], [0, 1, 1], [3, 3, 3]]


def test_augmented_views_are_cached_once_and_served_one_per_item(photo_lists, tiny_clip, tmp_path):
    def datamodule():
        return MIRFlickrDataModule(str(photo_lists), source="lists", image_dir="images", image_backbone="clip",
                                   clip_model=tiny_clip, protocol="mini", subset=60, augment_views=3, batch_size=8,
                                   cache_dir=str(tmp_path / "cache"))

    dm = datamodule()
    dm.prepare_data()
    dm.setup()
    views = dm.datasets["train"].views
    assert views.shape == (3, len(dm.split.train), 16) and not np.allclose(views[0], views[1])
    cached = sorted(p.name for p in (tmp_path / "cache" / "features").glob("*.npy"))
    assert any("flip-resize256-crop224-3views" in name for name in cached) and len(cached) == 2
    torch.manual_seed(0)
    served = dm.datasets["train"].__getitems__(list(range(len(dm.split.train))))["image"].numpy()
    assert all(any(np.allclose(served[i], views[v, i]) for v in range(3)) for i in range(len(served)))
    plain = dm.datasets["query"].__getitems__([0])["image"].numpy()  # evaluation: the plain (centre) view
    assert np.allclose(plain[0], dm.data.image[dm.split.query[0]])
    again = datamodule()
    again.setup()  # from the cache (prepared above): the same views
    assert np.array_equal(again.datasets["train"].views, views)


@pytest.mark.slow
def test_the_paper_preset_runs_on_a_features_only_set(tmp_path, capsys):
    """On the embedded set (features, no photos) CAGAN's backbone and augmentation have nothing to act on; the
    run still completes and its row names the preset and the authors' metric."""
    from benchmarks.cli import main
    from benchmarks.execution.results import read_records

    results = tmp_path / "rows.jsonl"
    assert main(["bench", "--method", "cagan", "--preset", "paper", "--bits", "16", "--trainer.max_epochs=1",
                 "--logger.kind=none", f"--logger.save_dir={tmp_path}", f"--results={results}"]) == 0
    record = read_records(results)[0]
    assert record.preset == "paper" and record.paper_metric == "map@5000"
    assert "5000" in record.score("hamming", "i2t").map_at

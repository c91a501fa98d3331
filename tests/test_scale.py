"""The synthetic scale shapes copy the benchmarks' sizes, protocols and label statistics."""

import numpy as np
import pytest
import scipy.io

from datamodules.scale import MIRFLICKR_LABEL_FREQUENCY, MIRFLICKR_TAGS_PER_ITEM, SHAPES, ScaleDataModule

from conftest import SHARED_DATA


def test_shapes_have_the_benchmarks_sizes_and_protocols():
    sizes = {name: (s.items, s.protocol.n_query, s.protocol.n_train, len(s.label_frequency), s.text_dim)
             for name, s in SHAPES.items()}
    assert sizes == {"mirflickr25k": (20015, 2000, 10000, 24, 1386), "nuswide": (195834, 2100, 10500, 21, 1000),
                     "nuswide_tc10": (186577, 2000, 5000, 10, 1000), "coco": (122218, 5000, 10000, 80, 512)}


def test_the_mirflickr_shape_reproduces_its_label_and_tag_density(tmp_path):
    dm = ScaleDataModule(shape="mirflickr25k", cache_dir=tmp_path)
    dm.setup()
    assert (len(dm.split.query), len(dm.split.train), len(dm.split.database)) == (2000, 10000, 18015)
    assert (dm.image_dim, dm.text_dim, dm.num_classes) == (512, 1386, 24)
    np.testing.assert_allclose(dm.data.labels.mean(0), MIRFLICKR_LABEL_FREQUENCY, atol=0.01)
    assert dm.data.text.sum(1).mean() == pytest.approx(MIRFLICKR_TAGS_PER_ITEM, rel=0.05)
    assert "synthetic" in dm.describe()["backbone"]


@pytest.mark.shared_data("mirflickr25k")
def test_the_mirflickr_statistics_are_those_of_the_real_matrices():
    labels = scipy.io.loadmat(SHARED_DATA / "mirflickr25k" / "mirflickr25k-lall.mat")["LAll"]
    tags = scipy.io.loadmat(SHARED_DATA / "mirflickr25k" / "mirflickr25k-yall.mat")["YAll"]
    np.testing.assert_allclose(labels.mean(0), MIRFLICKR_LABEL_FREQUENCY, atol=5e-5)
    assert tags.sum(1).mean() == pytest.approx(MIRFLICKR_TAGS_PER_ITEM, abs=0.005)

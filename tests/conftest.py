import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Splits and wandb runs of a test go to its own temporary folder."""
    monkeypatch.setenv("CMH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def shared_data(name: str) -> Path:
    """A real dataset folder from ../shared/data, or a skip that names the missing path."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real test data not found: {path} (see shared/data/README.md)")
    return path


@pytest.fixture
def wikipedia_dir() -> Path:
    return shared_data("wikipedia")

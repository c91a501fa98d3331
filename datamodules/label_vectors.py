"""Vectors of the label names, for methods that use them (the dual adversarial GNN's label graph): from a text
encoder (offline: MiniLM, or a CLIP checkpoint) or from a word-vector file."""

from pathlib import Path

import numpy as np
import torch

from common.errors import DataError
from datamodules.matfiles import read_mat


def word_vectors(path: Path, names: tuple[str, ...]) -> np.ndarray:
    """The mean word vector of each name's words, read from a GloVe-format text file in one pass."""
    words = {name: name.lower().replace("_", " ").split() for name in names}
    wanted = {w for ws in words.values() for w in ws}
    found = {}
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            word, _, rest = line.rstrip().partition(" ")
            if word in wanted:
                try:
                    found[word] = np.array(rest.split(), np.float32)
                except ValueError as error:
                    raise DataError(f"{path}:{number}: not a word followed by numbers ({error})") from error
    missing = [name for name, ws in words.items() if not any(w in found for w in ws)]
    if missing:
        raise DataError(f"{path}: no vector for any word of the label names {missing}")
    return np.stack([np.mean([found[w] for w in ws if w in found], axis=0) for ws in words.values()])


def read_label_vectors(source: str, names: tuple[str, ...], encode) -> torch.Tensor | None:
    """One vector per label name (classes, d).

    Args:
        source: `none`; a text encoder's name (`encode(source)` gives it); or a file of word vectors: a GloVe
            text file (`word v1 ... vd` per line; a name of several words, split at `_` and spaces, gets the mean
            of its words' vectors), `.npy` (classes x d) or `.mat` (variable `inp`, the dual adversarial GNN
            authors' files).
        names: the label names.
        encode: returns the text encoder of a name, or None when `source` is no encoder's name.

    Returns:
        The vectors, or None for `none`.

    Raises:
        DataError: a missing or malformed file, or one with another number of labels.
    """
    if source == "none":
        return None
    if (encoder := encode(source)) is not None:
        return torch.as_tensor(encoder.encode(list(names)))
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{source}: no such file; label vectors come from a text encoder (minilm, clip), a "
                        "word-vector file (.txt GloVe, .npy, .mat), or none")
    if path.suffix == ".npy":
        vectors = np.load(path, allow_pickle=False)
    elif path.suffix == ".mat":
        vectors = read_mat(path, "inp")
    else:
        vectors = word_vectors(path, names)
    if vectors.ndim != 2 or vectors.shape[0] != len(names):
        raise DataError(f"{path}: expected a ({len(names)}, d) matrix of label vectors, got shape {vectors.shape}")
    return torch.as_tensor(np.asarray(vectors), dtype=torch.float32)

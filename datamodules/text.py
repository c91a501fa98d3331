"""Texts as the backbones take them: a bag of words over a vocabulary, or one string per item for a sentence
encoder. Readers give texts as tag lists (or caption words), caption strings or a bag-of-words matrix."""

from collections.abc import Sequence

import numpy as np

Texts = list[list[str]] | list[str] | np.ndarray


def bag_of_words(tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """Binary tag presence (n, len(vocabulary), uint8: a quarter of float32's memory; batches are served as
    float32); tags outside the vocabulary are ignored."""
    column = {tag: j for j, tag in enumerate(vocabulary)}
    out = np.zeros((len(tag_lists), len(vocabulary)), np.uint8)
    for i, tags in enumerate(tag_lists):
        out[i, [column[t] for t in tags if t in column]] = 1
    return out


def text_payload(texts: Texts, vocabulary: Sequence[str] | None, backbone: str) -> np.ndarray | list[str]:
    """The texts as a backbone takes them.

    Args:
        texts: one tag list per item, one caption per item, or a bag-of-words matrix (items x vocabulary).
        vocabulary: the words of the bag's columns (for tag lists and matrices).
        backbone: `bow` (the dataset's own bag of words) or a sentence encoder's name.

    Returns:
        For `bow`, the bag-of-words matrix: uint8 as read (binary flags: NUS-WIDE's 195,834 x 1,000 take 196 MB,
        not float32's 783 MB), else float32; otherwise one string per item (tags joined by spaces, or the
        caption).

    Raises:
        ValueError: `bow` asked of captions (a reader builds their bag of words from its own vocabulary).
    """
    if isinstance(texts, np.ndarray):
        if backbone == "bow":
            return texts if texts.dtype == np.uint8 else texts.astype(np.float32)
        return [" ".join(vocabulary[j] for j in np.flatnonzero(row)) for row in texts]
    if texts and isinstance(texts[0], str):
        if backbone == "bow":
            raise ValueError("captions have no bag of words here; tokenise them against a vocabulary first")
        return list(texts)
    return bag_of_words(texts, vocabulary) if backbone == "bow" else [" ".join(tags) for tags in texts]

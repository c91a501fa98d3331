"""Parsed annotations, cached: a dataset's official lists are read once, not in every run of a sweep.

MS-COCO's annotation JSON takes about a minute and over 3 GB to parse, NUS-WIDE's 539 MB tag matrix about as
long; their parsed form (Annotations) is saved under `<cache_dir>/annotations/` as a NumPy archive of the
arrays (no pickles) and a JSON file of the strings, each with its checksum. The key names the files read
(path, size, modification time) and the reader's settings: a changed file is parsed again. A damaged cache
is named and rebuilt, never used.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from common.files import load_npz, verified, write_checked, write_checked_stream
from datamodules.records import Annotations

log = logging.getLogger("cmhb")


def annotations_key(name: str, files: list[Path], settings: dict) -> str:
    """A cache key that changes with any file read (path, size, modification time) or reader setting."""
    stats = [(str(Path(f).resolve()), (s := Path(f).stat()).st_size, s.st_mtime_ns) for f in files]
    return f"{name}-" + hashlib.sha256(json.dumps([stats, settings], sort_keys=True).encode()).hexdigest()[:16]


def cached_annotations(folder: Path, name: str, files: list[Path], settings: dict,
                       read: Callable[[], Annotations]) -> Annotations:
    """The annotations that `read()` parses from `files`, from the cache when it holds them for these files and
    settings, else parsed and saved there for the next run.

    Args:
        folder: the cache folder.
        name: the dataset (names the cache files).
        files: every file `read` parses; when one is missing, `read` runs and names it.
        settings: the reader's settings that change what it returns, and its `version` (raise it when the
            parsing changes).
        read: parses the dataset's files; its images must be file paths and its texts strings, tag lists or
            a matrix.

    Returns:
        The annotations.
    """
    if not all(Path(f).is_file() for f in files):
        return read()
    key = annotations_key(name, files, settings)
    arrays_path, strings_path = folder / f"{key}.npz", folder / f"{key}.json"
    arrays, strings = load_npz(arrays_path), None
    if arrays is not None and verified(strings_path):
        try:
            strings = json.loads(strings_path.read_text())
        except (OSError, ValueError):
            pass
    if arrays is not None and strings is not None:
        texts = arrays["texts"] if "texts" in arrays else strings["texts"]
        return Annotations(ids=arrays["ids"], labels=arrays["labels"], label_names=tuple(strings["label_names"]),
                           images=strings["images"], texts=texts, vocabulary=strings["vocabulary"],
                           source=strings["source"])
    if arrays_path.exists() or strings_path.exists():
        log.warning(f"{folder / key}.*: damaged or incomplete annotation cache; parsing the dataset's files again")
    annotations = read()
    matrix = isinstance(annotations.texts, np.ndarray)
    arrays = {"ids": np.asarray(annotations.ids), "labels": annotations.labels,
              **({"texts": annotations.texts} if matrix else {})}
    write_checked_stream(arrays_path, lambda f: np.savez(f, **arrays))
    strings = {"label_names": list(annotations.label_names), "images": list(annotations.images),
               "texts": None if matrix else list(annotations.texts), "source": annotations.source,
               "vocabulary": None if annotations.vocabulary is None else list(annotations.vocabulary)}
    write_checked(strings_path, json.dumps(strings).encode())
    return annotations


"""Wikipedia (Rasiwasia et al. 2010): 2,866 image-text pairs in 10 categories, official split.

Reads the official distribution: raw_features.mat (SIFT bag-of-visual-words images I_tr / I_te,
LDA topics T_tr / T_te, TF-IDF T_tfidf_tr / T_tfidf_te) and the two lists whose row i is row i of the
matrices (text id, image id, category 1..10). These official files are embedded in the package
(datamodules/embedded/wikipedia, 3.4 MB), so the dataset needs no download; `data_dir` reads another copy.
"""

from pathlib import Path
from typing import Literal

import numpy as np
import scipy.io

from common.errors import DataError
from datamodules.base import RetrievalDataModule
from datamodules.records import CrossModalData
from datamodules.splits import SplitProtocol

EMBEDDED = Path(__file__).parent / "embedded" / "wikipedia"
CATEGORIES = ("art", "biology", "geography", "history", "literature", "media", "music", "royalty", "sport",
              "warfare")
TEXT_FEATURES = {"tfidf": "T_tfidf", "lda": "T"}


def read_list(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(text ids, image ids, categories 0..9) of a *_txt_img_cat.list file."""
    if not path.exists():
        raise DataError(f"{path}: file not found (expected the Wikipedia dataset's official list)")
    texts, images, categories = [], [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not fields[2].strip().isdigit() or not 1 <= int(fields[2]) <= len(CATEGORIES):
            raise DataError(f"{path}:{number}: expected 'text id<TAB>image id<TAB>category 1..10', got {line!r}")
        texts.append(fields[0])
        images.append(fields[1])
        categories.append(int(fields[2]) - 1)
    return texts, images, np.array(categories)


def read_matrices(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataError(f"{path}: file not found (expected the Wikipedia dataset's raw_features.mat)")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as error:
        raise DataError(f"{path}: not a readable MATLAB file ({error})") from error
    missing = [name for name in names if name not in mat]
    if missing:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path}: missing variables {missing}; it has {present}")
    return {name: np.asarray(mat[name], np.float32) for name in names}


class WikipediaDataModule(RetrievalDataModule):
    """Wikipedia, official split: the 693 test pairs query the 2,173 training pairs (the database); 173 of them
    are held out of training for validation (`official-val173`, the default; `official` trains on all 2,173 and
    has no validation set).

    Args:
        text_features: `tfidf` (1,000-d, the default: hashing methods need a bag of words) or `lda` (10 topics).
    """

    name = "wikipedia"
    protocols = {"official-val173": SplitProtocol("official-val173", official=True, n_val=173),
                 "official": SplitProtocol("official", official=True)}

    def __init__(self, *args, text_features: Literal["tfidf", "lda"] = "tfidf", **kwargs):
        super().__init__(*args, **kwargs)
        self.text_features = text_features

    @property
    def root(self) -> Path:
        return self.data_dir or EMBEDDED

    @property
    def backbone(self) -> str:
        return f"sift-bovw128+{self.text_features}"

    def load(self) -> CrossModalData:
        root = self.root
        text_var = TEXT_FEATURES[self.text_features]
        mat_path = root / "raw_features.mat"
        mat = read_matrices(mat_path, ["I_tr", "I_te", f"{text_var}_tr", f"{text_var}_te"])
        parts = {}
        for part, list_name in (("tr", "trainset_txt_img_cat.list"), ("te", "testset_txt_img_cat.list")):
            texts, images, categories = read_list(root / list_name)
            for var in ("I", text_var):
                rows = mat[f"{var}_{part}"].shape[0]
                if rows != len(categories):
                    raise DataError(f"{mat_path}: {var}_{part} has {rows} rows but {root / list_name} "
                                    f"lists {len(categories)} pairs")
            parts[part] = (texts, images, categories)
        categories = np.concatenate([parts["tr"][2], parts["te"][2]])
        n_train = len(parts["tr"][2])
        return CrossModalData(
            name=self.name,
            ids=np.array([f"{t}/{i}" for part in ("tr", "te") for t, i in zip(parts[part][0], parts[part][1])]),
            labels=np.eye(len(CATEGORIES), dtype=np.uint8)[categories],
            image=np.concatenate([mat["I_tr"], mat["I_te"]]),
            text=np.concatenate([mat[f"{text_var}_tr"], mat[f"{text_var}_te"]]),
            label_names=CATEGORIES, source=str(root),
            official_split={"train": np.arange(n_train), "query": np.arange(n_train, len(categories))})

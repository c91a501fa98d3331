"""MATLAB files as the community distributes them: v5 (scipy) or v7.3 (HDF5), and the DCMH file set."""

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from common.errors import DataError


def read_mat(path: Path, name: str) -> np.ndarray:
    """Variable `name` of a MATLAB file, v5 (scipy) or v7.3 (HDF5, stored transposed)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            if name not in f:
                raise DataError(f"{path}: no variable {name!r}; it has {sorted(f.keys())}")
            return np.asarray(f[name]).transpose()
    mat = scipy.io.loadmat(path, variable_names=[name])
    if name not in mat:
        raise DataError(f"{path}: no variable {name!r}; it has {mat_variables(path)}")
    return mat[name]


def mat_strings(array: np.ndarray) -> list[str]:
    """The strings of a MATLAB cell array (nested object arrays) or char matrix, one per item."""
    out = []
    for item in np.ravel(array) if array.dtype == object else array:
        while isinstance(item, np.ndarray):
            item = item.ravel()[0] if item.size else ""
        out.append(str(item).strip())
    return out


def mat_variables(path: Path) -> list[str]:
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            return sorted(f.keys())
    return sorted(name for name, *_ in scipy.io.whosmat(path))


class MatImages(Sequence):
    """The pixel arrays of IAll in a .mat file, read one image at a time (height, width, 3 uint8).

    MATLAB stores IAll as height x width x 3 x n (column-major); HDF5 (v7.3) shows those axes reversed.
    """

    def __init__(self, path: Path, n_items: int):
        self.path, self.hdf5 = path, h5py.is_hdf5(path)
        shape = self._array().shape if self.hdf5 else read_mat(path, "IAll").shape
        matlab_shape = shape[::-1] if self.hdf5 else shape
        if len(matlab_shape) != 4 or matlab_shape[2] != 3 or matlab_shape[3] != n_items:
            raise DataError(f"{path}: IAll has shape {matlab_shape} (MATLAB order); expected "
                            f"height x width x 3 x {n_items}")
        self.n_items = n_items
        self.pixels = None if self.hdf5 else read_mat(path, "IAll")

    def _array(self):
        return h5py.File(self.path, "r")["IAll"]

    def __len__(self) -> int:
        return self.n_items

    def __getitem__(self, i: int) -> np.ndarray:
        if self.hdf5:
            array = self._array()
            try:
                return np.ascontiguousarray(array[i].transpose(2, 1, 0))  # (3, width, height) -> (h, w, 3)
            finally:
                array.file.close()
        return self.pixels[..., i]


def read_dcmh_mats(root: Path, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | MatImages]:
    """Labels (LAll), tag bag of words (YAll) and images (IAll pixels, or XAll features) of the DCMH
    files <prefix>-lall.mat, <prefix>-yall.mat and <prefix>-iall.mat, row for row."""
    missing = [f"{prefix}-{part}.mat" for part in ("lall", "yall", "iall") if not (root / f"{prefix}-{part}.mat").exists()]
    if missing:
        raise DataError(f"{root}: {', '.join(missing)} not found (the .mat source needs {prefix}-lall.mat (LAll), "
                        f"{prefix}-yall.mat (YAll) and {prefix}-iall.mat (IAll images or XAll features))")
    labels = read_mat(root / f"{prefix}-lall.mat", "LAll").astype(np.uint8)
    bow = read_mat(root / f"{prefix}-yall.mat", "YAll")
    image_file = root / f"{prefix}-iall.mat"
    if len(bow) != len(labels):
        raise DataError(f"{root}: YAll has {len(bow)} rows but LAll has {len(labels)}")
    if "XAll" in mat_variables(image_file):
        images = read_mat(image_file, "XAll").astype(np.float32)
        if len(images) != len(labels):
            raise DataError(f"{image_file}: XAll has {len(images)} rows but LAll has {len(labels)}")
    else:
        images = MatImages(image_file, len(labels))
    return labels, bow, images

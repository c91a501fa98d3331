"""A run's saved outputs, so that its metrics can be recomputed and new items hashed without training again.

    <run folder>/row.json    the run's result row
    <run folder>/method.pt   the method's name, constructor arguments and trained state
    <run folder>/codes.npz   per direction (i2t, t2i): the query and database codes as packed bits (uint64 words,
                             `bits` of them) and their labels, in ranking order; the dataset item indices of the
                             queries and of the database; a real-valued method's features (float32) under
                             cosine_<direction>_...

Run folders live under `<logger.save_dir>/artifacts/` (runs/artifacts by default) and each row names its own
(`run_dir`). `cmhb evaluate RUN` recomputes every metric from codes.npz; `cmhb encode RUN` hashes new features.
"""

import io
import json
from pathlib import Path

import numpy as np
import torch

from common.errors import DataError
from common.files import atomic_write_bytes
from metrics import cosine_retrieval, pack_codes, retrieval_metrics

DIRECTIONS = ("i2t", "t2i")


def run_folder(save_dir: str, row: dict) -> Path:
    stamp = row["timestamp"].replace(":", "").replace("-", "").replace("+0000", "")
    return Path(save_dir) / "artifacts" / (f"{row['method']}-{row['dataset_config']}-{row['bits']}b-s{row['seed']}-"
                                           f"{row['config_hash'][:8]}-{stamp}")


def save(folder: Path, model, data, row: dict) -> None:
    """Write a finished run's folder: codes.npz, method.pt, then row.json (last: a folder without it is
    incomplete)."""
    arrays = {"bits": np.array(model.bits), "query_items": data.split.query, "database_items": data.split.database}
    for part, collected in model.evaluated.items():
        for key, value in collected.items():
            hashed = key.endswith("codes") and not part.startswith("cosine")
            arrays[f"{part}_{key}"] = pack_codes(value) if hashed else value
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(folder / "codes.npz", buffer.getvalue())
    buffer = io.BytesIO()
    torch.save({"method": row["method"], "arguments": model.arguments, "state_dict": model.state_dict()}, buffer)
    atomic_write_bytes(folder / "method.pt", buffer.getvalue())
    atomic_write_bytes(folder / "row.json", (json.dumps(row, sort_keys=True) + "\n").encode())


def unpack(packed: np.ndarray, bits: int) -> np.ndarray:
    """Packed codes back to +-1 (int8)."""
    on = np.unpackbits(np.ascontiguousarray(packed).view(np.uint8), axis=1, bitorder="little")[:, :bits]
    return np.where(on, 1, -1).astype(np.int8)


def read(folder: Path) -> tuple[dict, dict]:
    """(the saved row, the arrays of codes.npz) of a run folder, or a DataError naming what is missing."""
    folder = Path(folder)
    try:
        row = json.loads((folder / "row.json").read_text())
        with np.load(folder / "codes.npz") as saved:
            return row, {key: saved[key] for key in saved.files}
    except (OSError, ValueError) as error:
        raise DataError(f"{folder}: not a complete run folder (row.json and codes.npz; {error})") from error


def evaluate(folder: Path) -> tuple[dict, dict]:
    """(the metrics recomputed from a run folder's codes, the run's row)."""
    row, arrays = read(folder)
    bits = int(arrays["bits"])
    numbers = {}
    for direction in DIRECTIONS:
        result = retrieval_metrics(unpack(arrays[f"{direction}_query_codes"], bits), arrays[f"{direction}_query_labels"],
                                   unpack(arrays[f"{direction}_database_codes"], bits),
                                   arrays[f"{direction}_database_labels"])
        numbers.update(result.scalars(suffix=f"_{direction}"))
        if f"cosine_{direction}_query_codes" in arrays:
            numbers[f"cosine_map_{direction}"] = cosine_retrieval(
                *(arrays[f"cosine_{direction}_{key}"] for key in ("query_codes", "query_labels", "database_codes",
                                                                 "database_labels"))).map
    return numbers, row


def load_method(folder: Path):
    """The trained method of a run folder, in evaluation mode."""
    from methods import METHODS

    try:
        saved = torch.load(Path(folder) / "method.pt", weights_only=False, map_location="cpu")
    except OSError as error:
        raise DataError(f"{folder}: no trained method to load ({error})") from error
    model = METHODS[saved["method"]](**saved["arguments"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def encode(folder: Path, features: np.ndarray, modality: str, batch_size: int = 4096) -> np.ndarray:
    """+-1 codes (int8) of new features of one modality ('image' or 'text') by a run's trained method."""
    model = load_method(folder)
    encode_batch = model.encode_image if modality == "image" else model.encode_text
    dtype = next(model.parameters(), torch.empty(0)).dtype
    with torch.no_grad():
        codes = [encode_batch(torch.as_tensor(features[i:i + batch_size], dtype=dtype)).numpy()
                 for i in range(0, len(features), batch_size)]
    return np.where(np.concatenate(codes) >= 0, 1, -1).astype(np.int8)

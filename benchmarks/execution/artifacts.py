"""A run's saved folder, so that its metrics can be recomputed and new items hashed without training again.

    <run folder>/codes.npz          per direction (i2t, t2i): the query and database codes as packed bits (uint64
                                    words, `bits` of them) and their labels, in ranking order; the dataset item
                                    indices of the queries and of the database; with `--logger.save_features`,
                                    a real-valued method's features (float32) under cosine_<direction>_...
    <run folder>/method.json        the method's name, code length, options and the scalar arguments it took
                                    from the data
    <run folder>/method.safetensors its trained weights (but those of parts only training uses: the method's
                                    `training_only`) and the tensors it took from the data (but those in
                                    `training_only`: the training set's features); left out with
                                    `--logger.save_weights=false` (the folder then cannot hash new items)
    <run folder>/row.json           the run's result row
    <run folder>/manifest.json      the SHA-256 of each file above, written last: a folder without it is
                                    incomplete, one whose files do not match it is damaged

Run folders are shared between researchers, so nothing in them can run code when loaded: JSON, NumPy arrays
without pickles and safetensors only; every file is checked against the manifest before it is read. Folders
live under `<logger.save_dir>/artifacts/` (runs/artifacts by default); each row names its own (`run_dir`).
"""

import io
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from benchmarks.execution.record import DIRECTIONS, RowError, RunRecord, Scores
from benchmarks.execution.serving import kept_state
from common.errors import DataError
from common.files import atomic_write_bytes, sha256_bytes, sha256_file
from metrics import cosine_retrieval, pack_codes, retrieval_metrics

WEIGHTS = "method.safetensors"
FILES = ("codes.npz", "method.json", WEIGHTS, "row.json")
MANIFEST = "manifest.json"


def run_folder(save_dir: str, record: RunRecord) -> Path:
    """A new run's folder: named by method, dataset, bits, seed, config hash and end time."""
    stamp = record.timestamp.replace(":", "").replace("-", "").replace("+0000", "")
    return (Path(save_dir) / "artifacts" / f"{record.method}-{record.dataset_config}-{record.bits}b-s{record.seed}-"
            f"{record.config_hash[:8]}-{stamp}").resolve()


def save(folder: Path, record: RunRecord, method, given: dict, collected: dict, split, save_features: bool,
         save_weights: bool = True) -> None:
    """Write a finished run's folder (module docstring).

    Args:
        folder: the run folder (created).
        record: the run's record (its run_dir already set).
        method: the trained method.
        given: the constructor arguments it took from the data.
        collected: the test's gathered codes and features (benchmarks.execution.evaluation).
        split: the data's split (the items' indices).
        save_features: also keep a real-valued method's features (large).
        save_weights: keep the trained weights (method.safetensors).
    """
    from safetensors.torch import save as save_tensors

    arrays = {"bits": np.array(record.bits), "query_items": split.query, "database_items": split.database}
    for part, values in collected.items():
        kind, direction = part.split("_")
        if kind == "cosine" and not save_features:
            continue
        prefix = direction if kind == "hamming" else part
        for key, value in values.items():
            arrays[f"{prefix}_{key}"] = pack_codes(value) if kind == "hamming" and key.endswith("codes") else value
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    # Contiguous copies: safetensors refuses tensors that share memory (a buffer holding a tensor the data gave)
    # or are views (a transposed buffer).
    tensors = {f"state.{k}": v.detach().cpu().clone(memory_format=torch.contiguous_format)
               for k, v in kept_state(method).items()}
    given = {k: None if k in method.training_only else v for k, v in given.items()}
    tensors.update({f"given.{k}": v.detach().cpu().clone(memory_format=torch.contiguous_format)
                    for k, v in given.items() if isinstance(v, torch.Tensor)})
    arguments = {"method": record.method, "bits": record.bits, "options": record.config["method"],
                 "given": {k: v for k, v in given.items() if not isinstance(v, torch.Tensor) and v is not None},
                 "none": sorted(k for k, v in given.items() if v is None)}
    contents = {"codes.npz": buffer.getvalue(), "method.json": json.dumps(arguments, sort_keys=True).encode(),
                "row.json": (json.dumps(record.to_row(), sort_keys=True) + "\n").encode()}
    if save_weights:
        contents[WEIGHTS] = save_tensors(tensors)
    for name, data in contents.items():
        atomic_write_bytes(folder / name, data)
    manifest = {name: sha256_bytes(data) for name, data in contents.items()}
    atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())


def verified(folder: Path) -> Path:
    """The folder, once every file matches its manifest (the weights only where the run saved them).

    Raises:
        DataError: no manifest (the run did not finish saving), or a missing or altered file.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{folder}: not a complete run folder (no readable {MANIFEST}: the run did not finish "
                        "saving, or this is not a run folder)") from error
    if not isinstance(manifest, dict):
        raise DataError(f"{folder / MANIFEST}: not a manifest (a JSON object of each file's SHA-256); refusing the "
                        "folder")
    for name in FILES:
        path = folder / name
        if path.is_symlink():  # its checksum would vouch for a file outside the folder
            raise DataError(f"{path}: a link; a run folder holds its own files (copy the file in place of the link)")
        if name == WEIGHTS and name not in manifest and not path.exists():
            continue  # saved without weights (--logger.save_weights=false)
        if not path.is_file() or sha256_file(path) != manifest.get(name):
            raise DataError(f"{path}: {'missing' if not path.is_file() else 'does not match its checksum'} in "
                            f"{MANIFEST} (a damaged or altered run folder); refusing to use it")
    return folder


def read(folder: Path) -> tuple[RunRecord, dict]:
    """(the saved record, the arrays of codes.npz) of a verified run folder.

    Raises:
        DataError: an incomplete, damaged or unreadable folder.
    """
    folder = verified(folder)
    try:
        record = RunRecord.from_row(json.loads((folder / "row.json").read_text()))
        with np.load(folder / "codes.npz", allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
    except (OSError, ValueError, RowError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{folder}: unreadable run folder ({' '.join(str(error).split())})") from error
    check_codes(folder / "codes.npz", arrays)
    return record, arrays


def check_codes(path: Path, arrays: dict) -> None:
    """Refuse a codes.npz whose arrays do not make a ranking: the code length, and per direction the query and
    database codes (packed: one uint64 word per 64 bits) with one label row per code row.

    Raises:
        DataError: a missing array or one of the wrong shape or kind.
    """
    from benchmarks.spec.config import MAX_BITS

    bits = arrays.get("bits")
    if bits is None or bits.shape != () or bits.dtype.kind not in "iu" or not 1 <= int(bits) <= MAX_BITS:
        raise DataError(f"{path}: no code length from 1 to {MAX_BITS} (`bits`); a damaged or crafted run folder")
    for direction in DIRECTIONS:
        for side in ("query", "database"):
            codes, labels = (arrays.get(f"{direction}_{side}_{key}") for key in ("codes", "labels"))
            if codes is None or labels is None:
                raise DataError(f"{path}: no {direction} {side} codes and labels; a damaged or crafted run folder")
            if codes.ndim != 2 or codes.dtype != np.uint64 or codes.shape[1] != -(-int(bits) // 64) \
                    or labels.ndim != 2 or len(labels) != len(codes):
                raise DataError(f"{path}: {direction} {side} codes {codes.shape} ({codes.dtype}) and labels "
                                f"{labels.shape} do not fit {int(bits)}-bit codes with one label row each; a damaged "
                                "or crafted run folder")


def unpack(packed: np.ndarray, bits: int) -> np.ndarray:
    """Packed codes back to +-1 (int8)."""
    on = np.unpackbits(np.ascontiguousarray(packed).view(np.uint8), axis=1, bitorder="little")[:, :bits]
    return np.where(on, 1, -1).astype(np.int8)


def evaluate(folder: Path) -> tuple[list[Scores], RunRecord]:
    """(every score recomputed from a run folder's codes and saved features, the saved record)."""
    record, arrays = read(folder)
    bits, found = int(arrays["bits"]), []
    for direction in DIRECTIONS:
        result = retrieval_metrics(unpack(arrays[f"{direction}_query_codes"], bits),
                                   arrays[f"{direction}_query_labels"],
                                   unpack(arrays[f"{direction}_database_codes"], bits),
                                   arrays[f"{direction}_database_labels"])
        found.append(Scores("hamming", direction, result.map, map_at={str(k): v for k, v in result.map_at.items()},
                            map_tie=result.map_tie, empty_queries=result.empty_queries,
                            distinct_codes=result.distinct_codes))
        if f"cosine_{direction}_query_codes" in arrays:
            cosine = cosine_retrieval(*(arrays[f"cosine_{direction}_{key}"] for key in (
                "query_codes", "query_labels", "database_codes", "database_labels")))
            found.append(Scores("cosine", direction, cosine.map, empty_queries=cosine.empty_queries))
    return found, record


def load_method(folder: Path):
    """The trained method of a verified run folder, in evaluation mode (its class as the registry declares it).

    Raises:
        DataError: a damaged folder, or weights that do not fit the method.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from benchmarks.spec.registry import declared

    folder = verified(folder)
    if not (folder / WEIGHTS).is_file():
        raise DataError(f"{folder}: saved without its weights (--logger.save_weights=false): its codes can be "
                        "evaluated (cmhb evaluate), but new items need a run saved with its weights")
    try:
        arguments = json.loads((folder / "method.json").read_text())
        tensors = load_file(folder / WEIGHTS)
    except (OSError, ValueError, SafetensorError) as error:
        raise DataError(f"{folder}: unreadable trained method ({error})") from error
    check_arguments(folder / "method.json", arguments)
    if bad := [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]:
        raise DataError(f"{folder / WEIGHTS}: {bad[0]} holds values that are not finite (NaN or inf): a diverged or "
                        "damaged method; refusing to hash with it")
    given = {**arguments["given"], **dict.fromkeys(arguments["none"]),
             **{k.removeprefix("given."): v for k, v in tensors.items() if k.startswith("given.")}}
    cls = declared("methods", arguments["method"]).load()
    try:
        model = cls(bits=arguments["bits"], **given, **arguments["options"])
        # strict=False: a folder holds no weights of the method's training-only parts
        missing, unexpected = model.load_state_dict({k.removeprefix("state."): v for k, v in tensors.items()
                                                     if k.startswith("state.")}, strict=False)
    except (TypeError, ValueError, RuntimeError) as error:
        raise DataError(f"{folder}: the saved arguments or weights do not fit {arguments['method']} "
                        f"({' '.join(str(error).split())[:300]})") from error
    if unfit := unexpected + [k for k in missing if k.split(".", 1)[0] not in cls.training_only]:
        raise DataError(f"{folder}: the saved weights do not fit {arguments['method']} (missing or unknown: "
                        f"{', '.join(unfit[:5])})")
    return model.eval()


def check_arguments(path: Path, arguments) -> None:
    """Refuse a method.json that is not what `save` writes (its code length in the suite's range).

    Raises:
        DataError: it is not.
    """
    from benchmarks.spec.config import MAX_BITS

    kinds = {"method": str, "bits": int, "options": dict, "given": dict, "none": list}
    wrong = [key for key, kind in kinds.items() if not isinstance(arguments, dict) or isinstance(
        arguments.get(key), bool) or not isinstance(arguments.get(key), kind)]
    if wrong or not 1 <= arguments["bits"] <= MAX_BITS:
        raise DataError(f"{path}: not a saved method's arguments ({', '.join(wrong) or 'bits'}: expected the method's "
                        f"name, a code length from 1 to {MAX_BITS}, and its options, given and none); a damaged or "
                        "crafted run folder")


IMAGE_FILES = (".jpg", ".jpeg", ".png")


def featurize(folder: Path, source: Path, modality: str) -> np.ndarray:
    """Features of new items by a run's own backbone: the images of a folder (file-name order) or the lines of
    a text file.

    Raises:
        DataError: the run's features come from no backbone the suite can run on new items (a dataset of fixed
            features, or a bag of words over its own vocabulary), or the source holds no items.
    """
    from datamodules.encoders import ENCODERS, make_encoder

    record, _ = read(folder)
    data = record.config["data"]
    backbone = data.get(f"{modality}_backbone")
    if backbone not in ENCODERS or modality not in ENCODERS[backbone]:
        raise DataError(f"{folder}: the run's {modality} features come from {record.backbone}, which cannot encode "
                        f"new items here (a dataset of fixed features, or a bag of words over its vocabulary); give "
                        "--features")
    if modality == "image":
        items = sorted(str(p) for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_FILES) \
            if Path(source).is_dir() else []
    else:
        items = [line.strip() for line in Path(source).read_text().splitlines() if line.strip()] \
            if Path(source).is_file() else []
    if not items:
        raise DataError(f"{source}: no {'image files (.jpg, .png)' if modality == 'image' else 'lines of text'}")
    encoder = make_encoder(backbone, modality, data.get("clip_model"), data.get("clip_text_tokens", 77),
                           data.get("clip_resize"))
    return np.concatenate([encoder.encode(items[i:i + 32]) for i in range(0, len(items), 32)])


def encode(folder: Path, features: np.ndarray, modality: str, batch_size: int = 4096,
           source: str = "the features") -> np.ndarray:
    """+-1 codes (int8) of new features of one modality by a run's trained method.

    Args:
        folder: a run folder.
        features: (items, width) features from the run's own backbone.
        modality: `image` or `text`.
        batch_size: items per forward pass.
        source: where the features come from, for messages (their file).

    Raises:
        DataError: a damaged run folder, or features that are no real numbers, not finite in the method's
            precision, or of a shape that does not fit the method (the message names the width and backbone it
            expects).
    """
    model = load_method(folder)
    width = model.image_dim if modality == "image" else model.text_dim
    record, _ = read(folder)
    backbone = record.backbone.split("+")[0 if modality == "image" else -1]
    dtype = next(model.parameters(), torch.empty(0)).dtype
    if features.dtype.kind not in "fiu":  # complex, strings, structured records, booleans
        raise DataError(f"{source}: features must be real numbers; got an array of {features.dtype}")
    if features.ndim != 2 or features.shape[1] != width or not len(features):
        raise DataError(f"{source}: the run's method takes {width}-d {modality} features from its backbone {backbone}, one "
                        f"row per item (at least one); got an array of shape {features.shape}")
    with np.errstate(over="ignore"):
        cast = features.astype(torch.empty(0, dtype=dtype).numpy().dtype)
    if not np.isfinite(cast).all():  # 1e300 is inf in float32, and would hash to a constant code
        raise DataError(f"{source}: values that are not finite as {cast.dtype} (NaN, inf, or beyond its range)")
    encode_batch = model.encode_image if modality == "image" else model.encode_text
    with torch.no_grad():
        codes = [encode_batch(torch.from_numpy(cast[i:i + batch_size])).numpy()
                 for i in range(0, len(cast), batch_size)]
    return np.where(np.concatenate(codes) >= 0, 1, -1).astype(np.int8)

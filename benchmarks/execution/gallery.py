"""The retrieval gallery of a saved run: a few fixed queries per direction with their top results, relevant
ones marked. Image -> text rows show the query photo and the retrieved texts (tags, captions); text -> image
rows show the query text and the retrieved photos. Needs the dataset's texts as strings and its photos:
the image files of a raw-image dataset (MIRFlickr official or lists, MS-COCO, NUS-WIDE), or, for a
dataset that carries features only (the embedded MIRFlickr subset), a folder of photos named by item id
(`--photos DIR`: DIR/<id>.jpg).
"""

import io
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.execution import artifacts  # noqa: E402
from common.errors import DataError  # noqa: E402
from common.files import atomic_write_bytes  # noqa: E402
from datamodules.encoders import load_image  # noqa: E402
from metrics import hamming_distance  # noqa: E402

RELEVANT, IRRELEVANT = "#1a9850", "#d73027"


def dataset_items(record):
    """The run's dataset with texts as strings (tag lists joined, captions), read from its own config."""
    from benchmarks.spec.registry import declared

    settings = dict(record.config["data"])
    if "text_backbone" in settings:
        settings["text_backbone"] = "minilm"  # any sentence encoder: load() keeps the strings
    data = declared("datasets", record.dataset_config).load()(**settings).load()
    if isinstance(data.text, np.ndarray):
        raise DataError(f"{record.dataset}: its texts are features, not strings: no gallery")
    return data


def photo(data, item: int, photos: Path | None):
    if photos:
        source = str(Path(photos) / f"{data.ids[item]}.jpg")
    elif isinstance(data.image, np.ndarray):
        raise DataError(f"{data.source}: the dataset carries image features, not photos; give --photos DIR "
                        "(DIR/<item id>.jpg)")
    else:
        source = data.image[item]
    image = load_image(source)
    image.thumbnail((160, 160))
    return image


def ranking(arrays: dict, direction: str, query: int, top: int) -> tuple[np.ndarray, np.ndarray]:
    """(database positions of the top results of one query, whether each is relevant), stable ties."""
    bits = int(arrays["bits"])
    q = artifacts.unpack(arrays[f"{direction}_query_codes"][query:query + 1], bits)
    d = artifacts.unpack(arrays[f"{direction}_database_codes"], bits)
    order = np.argsort(hamming_distance(q, d)[0].numpy(), kind="stable")[:top]
    relevant = (arrays[f"{direction}_database_labels"][order] @ arrays[f"{direction}_query_labels"][query]) > 0
    return order, relevant


def figure(folder: Path, photos: Path | None = None, queries: int = 3, top: int = 10):
    """The gallery of a run folder as a matplotlib figure (queries: the first `queries` of the split, fixed):
    a row per query, the query then its top results, each framed green (relevant) or red (not)."""
    record, arrays = artifacts.read(folder)
    data = dataset_items(record)
    figure_, axes = plt.subplots(2 * queries, top + 1, figsize=(1.6 * (top + 1), 1.9 * 2 * queries))
    for block, direction in enumerate(("i2t", "t2i")):
        for q in range(queries):
            order, relevant = ranking(arrays, direction, q, top)
            query_item = int(arrays["query_items"][q])
            cells = axes[block * queries + q]
            draw(cells[0], data, query_item, "image" if direction == "i2t" else "text", photos, "query", "black")
            for k, (position, hit) in enumerate(zip(order, relevant)):
                item = int(arrays["database_items"][position])
                draw(cells[k + 1], data, item, "text" if direction == "i2t" else "image", photos,
                     f"{k + 1} {'relevant' if hit else 'not relevant'}", RELEVANT if hit else IRRELEVANT)
    figure_.suptitle(f"{record.method} on {record.dataset_config}, {record.bits} bits, seed {record.seed}: "
                     f"top {top} of {len(arrays['database_items'])} (rows 1-{queries}: image \u2192 text; "
                     f"{queries + 1}-{2 * queries}: text \u2192 image); green: shares a label with the query")
    return figure_


def draw(ax, data, item: int, modality: str, photos: Path | None, caption: str, colour: str) -> None:
    if modality == "image":
        ax.imshow(photo(data, item, photos))
    else:
        ax.text(0.5, 0.5, textwrap.fill(str(data.text[item])[:120], 18), ha="center", va="center", fontsize=6,
                wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)
    ax.set_title(caption, fontsize=6, color=colour)


def write(folder: Path, photos: Path | None = None) -> Path:
    """Draw a run folder's gallery into it (gallery.png); return the file."""
    drawn, buffer = figure(folder, photos), io.BytesIO()
    drawn.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(drawn)
    path = Path(folder) / "gallery.png"
    atomic_write_bytes(path, buffer.getvalue())
    return path

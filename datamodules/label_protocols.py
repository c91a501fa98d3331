"""Label protocols beyond the closed set (docs/protocol.md, "Unseen classes" and "Noisy labels"): which labels a
method may see while training, and how wrong the training labels are.

Both are drawn with the split seed, each from a stream of its own, so that a run's held-out labels and its
corrupted items are a function of the data, the split and the setting, and the split itself does not change.
"""

from dataclasses import dataclass, replace

import numpy as np

from datamodules.splits import Split

UNSEEN_STREAM, NOISE_STREAM = 1, 2  # the SeedSequence keys beside the split seed
# The multi-hot noise model: an item's label vector replaced by that of another item with a different vector.
VECTOR_NOISE = "another item's label vector"
# The single-label noise model (symmetric noise, as in Hu et al., MRL, CVPR 2021): another class, uniformly.
CLASS_NOISE = "another class, uniformly"
TRAINING_ROLES = ("train", "val")


@dataclass(frozen=True)
class LabelView:
    """What the run's labels are, per split role.

    Attributes:
        split: the split, without the training and validation items that carry a held-out label.
        seen: the label columns a method is told of (all, in the closed set).
        unseen: the held-out label columns (none in the closed set).
        served: {role: labels of its items}: the training and validation roles hold the seen columns, noisy where
            noise is asked for; the queries and the database hold every column, clean (they are scored).
        noise_model: the noise model used, or None without noise.
        corrupted: the share of training and validation items whose labels were changed.
    """

    split: Split
    seen: np.ndarray
    unseen: np.ndarray
    served: dict
    noise_model: str | None = None
    corrupted: float = 0.0

    def unseen_items(self, labels: np.ndarray) -> np.ndarray:
        """Which of these items (rows of every label column) carry at least one held-out label."""
        return np.asarray(labels)[:, self.unseen].any(1) if len(self.unseen) else np.zeros(len(labels), bool)


def held_out_labels(n_labels: int, share: float, seed: int) -> np.ndarray:
    """The label columns held out of training: round(share x labels), at least one and at most all but one.

    Args:
        n_labels: the dataset's number of labels.
        share: 0 < share < 1.
        seed: the split seed.

    Returns:
        The held-out columns, sorted.
    """
    count = min(max(round(share * n_labels), 1), n_labels - 1)
    rng = np.random.default_rng([seed, UNSEEN_STREAM])
    return np.sort(rng.choice(n_labels, count, replace=False))


def corrupt(labels: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, str, np.ndarray]:
    """Noisy copies of multi-hot labels: each item is corrupted with probability `rate`.

    A single-label set (every item one label) gets another class drawn uniformly (symmetric noise); a multi-label
    set gets the label vector of another of these items whose vector differs, drawn uniformly, which keeps the
    label density and the labels' co-occurrence.

    Args:
        labels: (items, classes) the items' clean labels.
        rate: 0 <= rate < 1.
        seed: the split seed.

    Returns:
        (the noisy labels, the model's name, which items were corrupted).
    """
    rng = np.random.default_rng([seed, NOISE_STREAM])
    labels = np.asarray(labels)
    noisy = labels.copy()
    flagged = rng.random(len(labels)) < rate
    single = bool((labels.sum(1) == 1).all())
    if single:
        classes = labels.argmax(1)
        shift = rng.integers(1, labels.shape[1], len(labels))  # another class: never the item's own
        noisy[flagged] = 0
        noisy[np.flatnonzero(flagged), (classes[flagged] + shift[flagged]) % labels.shape[1]] = 1
        return noisy, CLASS_NOISE, flagged
    items = np.flatnonzero(flagged)
    donors = rng.integers(0, len(labels), len(items))
    for _ in range(100):  # rejection: uniform over the items whose vector differs
        same = (labels[donors] == labels[items]).all(1)
        if not same.any():
            break
        donors[same] = rng.integers(0, len(labels), int(same.sum()))
    changed = ~(labels[donors] == labels[items]).all(1)  # an item no other differs from keeps its labels
    noisy[items[changed]] = labels[donors[changed]]
    flagged[items[~changed]] = False
    return noisy, VECTOR_NOISE, flagged


def label_view(labels: np.ndarray, split: Split, unseen_share: float, noise_rate: float, seed: int) -> LabelView:
    """The labels a run serves, per role, under the two protocols (both 0: the closed set with clean labels).

    Args:
        labels: (items, classes) every item's clean labels.
        split: the run's split.
        unseen_share: the share of labels held out of training (0: none).
        noise_rate: the probability that a training or validation item's labels are corrupted (0: none).
        seed: the split seed.

    Returns:
        The LabelView.
    """
    labels = np.asarray(labels)
    unseen = held_out_labels(labels.shape[1], unseen_share, seed) if unseen_share else np.array([], np.int64)
    seen = np.setdiff1d(np.arange(labels.shape[1]), unseen)
    if len(unseen):
        kept = {role: split.role(role)[~labels[split.role(role)][:, unseen].any(1)] for role in TRAINING_ROLES}
        split = replace(split, **kept)
    pool = np.concatenate([split.role(role) for role in TRAINING_ROLES])
    training = labels[pool][:, seen]
    model, corrupted = None, 0.0
    if noise_rate:
        training, model, flagged = corrupt(training, noise_rate, seed)
        corrupted = float(flagged.mean()) if len(flagged) else 0.0
    bounds = np.cumsum([0] + [len(split.role(role)) for role in TRAINING_ROLES])
    served = {role: training[bounds[i]:bounds[i + 1]] for i, role in enumerate(TRAINING_ROLES)}
    served.update({role: labels[split.role(role)] for role in ("query", "database")})
    return LabelView(split, seen, unseen, served, model, corrupted)

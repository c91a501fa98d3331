"""Whether a difference in mAP is real: a paired test over the queries, and intervals for the CSV.

Two methods evaluated on the same queries give each query an AP; the difference of two methods' mAP is
the mean of the per-query differences d. Under the null hypothesis that the methods are exchangeable,
each d_q is as likely to be -d_q: the sign-flip permutation test compares |mean(d)| with the means of all
(or, beyond 16 queries, 10,000 random) sign patterns of d. Where a method has several seeds, its per-query
AP is first averaged over them (the queries are the same: the split does not depend on the run seed).
"""

import numpy as np

LEVEL = 0.05
DRAWS = 10_000


def sign_flip_p_value(differences, draws: int = DRAWS, seed: int = 0) -> float:
    """Two-sided p-value of mean(differences) = 0 under random sign flips: exact (all 2^n patterns) for
    n <= 16 queries, else (hits + 1) / (draws + 1) over `draws` random patterns.

    >>> sign_flip_p_value([0.1, 0.2, -0.05, 0.3])  # 4 of the 16 patterns reach |sum| >= 0.55
    0.25
    """
    d = np.asarray(differences, np.float64)
    observed = abs(d.mean()) if len(d) else 0.0
    if observed == 0:
        return 1.0
    tolerance = 1e-12 * max(1.0, observed)  # a pattern equal to the observed one counts, despite rounding
    if len(d) <= 16:
        signs = ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1) * 2 - 1
        return float((np.abs(signs @ d) / len(d) >= observed - tolerance).mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, draws, 1000):
        signs = rng.integers(0, 2, (min(1000, draws - start), len(d))) * 2 - 1
        hits += int((np.abs(signs @ d) / len(d) >= observed - tolerance).sum())
    return (hits + 1) / (draws + 1)


def bootstrap_interval(values, level: float = 0.95, draws: int = DRAWS, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-query values (queries resampled with replacement)."""
    v = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = np.concatenate([v[rng.integers(0, len(v), (min(1000, draws - s), len(v)))].mean(1)
                            for s in range(0, draws, 1000)])
    return tuple(float(q) for q in np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))

"""Evaluation protocol of the suite: Hamming ranking metrics as functions and a torchmetrics Metric."""

from metrics.functional import (
                                MAP_KS,
                                PRECISION_KS,
                                RetrievalResult,
                                binarize,
                                cosine_mean_average_precision,
                                hamming_distance,
                                mean_average_precision,
                                pack_codes,
                                retrieval_metrics,
)
from metrics.retrieval import CosineRetrieval, HammingRetrieval

__all__ = ["MAP_KS", "PRECISION_KS", "CosineRetrieval", "HammingRetrieval", "RetrievalResult", "binarize",
           "cosine_mean_average_precision", "hamming_distance",
           "mean_average_precision", "pack_codes", "retrieval_metrics"]

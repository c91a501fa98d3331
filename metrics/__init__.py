"""Evaluation protocol of the suite: Hamming ranking metrics as functions and a torchmetrics Metric."""

from metrics.functional import (MAP_KS, PRECISION_KS, RetrievalResult, binarize, hamming_distance,
                                mean_average_precision, pack_codes, retrieval_metrics)
from metrics.retrieval import HammingRetrieval

__all__ = ["MAP_KS", "PRECISION_KS", "HammingRetrieval", "RetrievalResult", "binarize", "hamming_distance",
           "mean_average_precision", "pack_codes", "retrieval_metrics"]

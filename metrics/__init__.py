"""Evaluation protocol of the suite: Hamming (and cosine) ranking metrics as functions and torchmetrics Metrics."""

from metrics.functional import (
                                MAP_KS,
                                PRECISION_KS,
                                CosineResult,
                                RetrievalResult,
                                binarize,
                                cosine_retrieval,
                                hamming_distance,
                                mean_average_precision,
                                pack_codes,
                                retrieval_metrics,
)
from metrics.retrieval import CosineRetrieval, HammingRetrieval

__all__ = ["MAP_KS", "PRECISION_KS", "CosineResult", "CosineRetrieval", "HammingRetrieval", "RetrievalResult",
           "binarize", "cosine_retrieval", "hamming_distance", "mean_average_precision", "pack_codes",
           "retrieval_metrics"]

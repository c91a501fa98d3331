"""A torchmetrics Metric that accumulates codes with their indices and scores one direction at the end."""

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from metrics.functional import MAP_KS, PRECISION_KS, CosineResult, RetrievalResult, cosine_retrieval, retrieval_metrics


class HammingRetrieval(Metric):
    """Accumulate (index, code, labels) of query and database items; compute the protocol's metrics.

    `index` is the item's position in its split. Under a distributed sampler the last shard is padded
    with repeated items, so after gathering each index is kept once and items are put back in index
    order: the database position that breaks ties is the datamodule's, whatever the process layout.

    >>> m = HammingRetrieval(map_ks=(2,), precision_ks=(1,))
    >>> labels = torch.tensor([[1, 0], [0, 1], [1, 0]])
    >>> m.update(torch.arange(3), torch.tensor([[1., 1.], [-1., -1.], [1., -1.]]), labels, database=True)
    >>> m.update(torch.tensor([0]), torch.tensor([[1., 1.]]), labels[:1], database=False)
    >>> round(m.compute().map, 4)
    1.0
    """

    full_state_update = False

    def __init__(self, map_ks=MAP_KS, precision_ks=PRECISION_KS, variant: str = "protocol", **kwargs):
        super().__init__(**kwargs)
        self.map_ks, self.precision_ks, self.variant = tuple(map_ks), tuple(precision_ks), variant
        for role in ("query", "database"):
            for name in ("index", "codes", "labels"):
                self.add_state(f"{role}_{name}", default=[], dist_reduce_fx="cat")

    def update(self, index: torch.Tensor, codes: torch.Tensor, labels: torch.Tensor, *, database: bool) -> None:
        """Add a batch of query or database items.

        Args:
            index: (batch,) each item's position in its split role (database position breaks ties).
            codes: (batch, bits) continuous codes (binarised here) or, for CosineRetrieval, features.
            labels: (batch, classes) multi-hot labels.
            database: whether these are database items (else queries).
        """
        role = "database" if database else "query"
        getattr(self, f"{role}_index").append(index.detach().long())
        getattr(self, f"{role}_codes").append(self._stored(codes.detach()))
        getattr(self, f"{role}_labels").append(labels.detach())

    @staticmethod
    def _stored(codes: torch.Tensor) -> torch.Tensor:
        # Binarized on arrival (sign, 0 -> +1): a quarter of the memory, and gathered across processes as is.
        return torch.where(codes >= 0, 1, -1).to(torch.int8)

    def _collected(self, role: str) -> tuple[torch.Tensor, torch.Tensor]:
        index = getattr(self, f"{role}_index")  # a list, or one tensor once synced across processes
        if isinstance(index, list) and not index:
            raise RuntimeError(f"{type(self).__name__}: no {role} items were given to update()")
        index = dim_zero_cat(index)
        order = first_occurrence_in_index_order(index)
        return dim_zero_cat(getattr(self, f"{role}_codes"))[order], dim_zero_cat(getattr(self, f"{role}_labels"))[order]

    def collected(self) -> dict[str, np.ndarray]:
        """The accumulated query and database items in index order: codes (or features) and labels."""
        (qc, ql), (dc, dl) = self._collected("query"), self._collected("database")
        return {"query_codes": qc.cpu().numpy(), "query_labels": ql.cpu().numpy(),
                "database_codes": dc.cpu().numpy(), "database_labels": dl.cpu().numpy()}

    def score(self, collected: dict[str, np.ndarray]) -> RetrievalResult:
        """The metrics of what `collected` returned (metrics.functional.retrieval_metrics).

        Args:
            collected: this metric's items, as `collected()` returns them.

        Returns:
            The direction's RetrievalResult.
        """
        return retrieval_metrics(collected["query_codes"], collected["query_labels"], collected["database_codes"],
                                 collected["database_labels"], map_ks=self.map_ks, precision_ks=self.precision_ks,
                                 variant=self.variant)

    def compute(self) -> RetrievalResult:
        """The metrics of every item given so far (gathered over processes by torchmetrics)."""
        return self.score(self.collected())


class CosineRetrieval(HammingRetrieval):
    """The same accumulation for real-valued features, scored by cosine mAP@all."""

    @staticmethod
    def _stored(codes: torch.Tensor) -> torch.Tensor:
        return codes.float()

    def score(self, collected: dict[str, np.ndarray]) -> CosineResult:
        """The cosine mAP@all of what `collected` returned (metrics.functional.cosine_retrieval)."""
        return cosine_retrieval(collected["query_codes"], collected["query_labels"], collected["database_codes"],
                                collected["database_labels"])


def first_occurrence_in_index_order(index: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each distinct index value, sorted by that value."""
    unique, inverse = torch.unique(index, sorted=True, return_inverse=True)
    first = torch.full((len(unique),), len(index), dtype=torch.long, device=index.device)
    return first.scatter_reduce_(0, inverse, torch.arange(len(index), device=index.device), reduce="amin")

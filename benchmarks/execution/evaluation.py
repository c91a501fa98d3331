"""Evaluation as a Lightning callback: it owns the retrieval metrics, their timing and the gathered codes.

At every validation (validation queries against the training items, docs/protocol.md) and at the test
(queries against the database), the callback collects what the method's evaluation step returns for each
batch (HashingModule.evaluation_outputs: codes, and a real-valued method's features), gathers it over
processes with the items' indices, and scores both directions. Numbers are logged (`val/map_i2t`,
`test/map@50_t2i`, `test/cosine_map_i2t`, ...) and kept whole in `results[stage][kind][direction]`; the
test's gathered codes and features in `collected`, for the saved run. An evaluation that scored fewer items
than its loaders hold raises IncompleteEvaluation: a partial number is never a result.
"""

import time

import numpy as np
from lightning import Callback

from benchmarks.execution.record import DIRECTIONS
from common.errors import IncompleteEvaluation
from metrics import MAP_KS, CosineRetrieval, HammingRetrieval

METRICS = {"hamming": HammingRetrieval, "cosine": CosineRetrieval}  # score kind -> its metric


class RetrievalEvaluation(Callback):
    """Scores a method's codes (and real-valued features) at each validation and at the test.

    Args:
        map_ks: the K of mAP@K.

    Attributes:
        results: {stage: {kind: {direction: RetrievalResult or CosineResult}}} of the last evaluation of each
            stage (`val`, `test`).
        collected: {"<kind>_<direction>": {query_codes, query_labels, database_codes, database_labels}} of the
            test, in index order.
        seconds: {kind: seconds the metrics of both directions took} at the last evaluation.
    """

    def __init__(self, map_ks=MAP_KS):
        self.map_ks = tuple(map_ks)
        self.results: dict = {}
        self.collected: dict = {}
        self.seconds: dict = {}
        self._metrics: dict = {}

    def _update(self, module, outputs: dict, batch: dict, dataloader_idx: int) -> None:
        database = dataloader_idx == 1
        for kind, (image, text) in outputs.items():
            if kind not in self._metrics:
                self._metrics[kind] = {d: METRICS[kind](map_ks=self.map_ks).to(module.device) for d in DIRECTIONS}
            # i2t: image queries against the database's texts; t2i the reverse.
            items = {"i2t": text if database else image, "t2i": image if database else text}
            for direction, metric in self._metrics[kind].items():
                metric.update(batch["index"], items[direction], batch["labels"], database=database)

    def _score(self, trainer, module, stage: str, loaders) -> None:
        expected = [len(loader.dataset) for loader in loaders]
        results, self.seconds = {}, {}
        for kind, metrics in self._metrics.items():
            start = time.perf_counter()
            for direction, metric in metrics.items():
                with metric.sync_context():  # every process's items (nothing to do in one process)
                    collected = metric.collected()
                seen = [len(collected["query_labels"]), len(collected["database_labels"])]
                if seen != expected:
                    raise IncompleteEvaluation(
                        f"the {stage} evaluation scored {seen[0]} of {expected[0]} queries and {seen[1]} of "
                        f"{expected[1]} database items; a result scores them all, so nothing is recorded")
                results.setdefault(kind, {})[direction] = metric.score(collected)
                if stage == "test":
                    self.collected[f"{kind}_{direction}"] = collected
                metric.reset()
            self.seconds[kind] = time.perf_counter() - start
        self._metrics = {}
        self.results[stage] = results
        hamming = results["hamming"]
        module.log(f"{stage}/map", sum(r.map for r in hamming.values()) / len(hamming), sync_dist=False)
        for kind, by_direction in results.items():
            prefix = "" if kind == "hamming" else f"{kind}_"
            for direction, result in by_direction.items():
                module.log(f"{stage}/{prefix}map_{direction}", result.map, sync_dist=False,
                           prog_bar=stage == "val" and not prefix)
                for k, value in getattr(result, "map_at", {}).items():
                    module.log(f"{stage}/{prefix}map@{k}_{direction}", value, sync_dist=False)

    def evaluate(self, trainer, module, stage: str, loaders) -> None:
        """Score the method on `loaders` (queries, then database) outside Lightning's loops, as `stage` (the
        oracle diagnostic's per-epoch test); the module's mode and gradients are the caller's."""
        self._metrics = {}
        for database, loader in enumerate(loaders):
            for batch in loader:
                batch = {k: v.to(module.device) for k, v in batch.items()}
                self._update(module, module.evaluation_outputs(batch), batch, database)
        self._score(trainer, module, stage, loaders)

    def score_groups(self, unseen_items) -> list[tuple[str, int, int, dict]]:
        """The test's scores per group of queries and database items (docs/protocol.md, "Unseen classes"): seen
        queries (every label seen in training) and unseen ones (at least one held-out label), each against the
        whole database and against the database items of its own group. A group without queries or database
        items is left out.

        Args:
            unseen_items: labels (items, every label) -> a boolean mask of the items that carry a held-out label.

        Returns:
            [(group, queries, database items, {kind: {direction: result}})].
        """
        out = {}
        for name, collected in self.collected.items():
            kind, direction = name.split("_")
            query_unseen = unseen_items(collected["query_labels"])
            database_unseen = unseen_items(collected["database_labels"])
            everything = np.ones(len(database_unseen), bool)
            for group, queries, database in (("seen@all", ~query_unseen, everything),
                                             ("unseen@all", query_unseen, everything),
                                             ("seen@seen", ~query_unseen, ~database_unseen),
                                             ("unseen@unseen", query_unseen, database_unseen)):
                if not queries.any() or not database.any():
                    continue
                part = {f"{role}_{what}": collected[f"{role}_{what}"][mask] for role, mask in
                        (("query", queries), ("database", database)) for what in ("codes", "labels")}
                result = METRICS[kind](map_ks=self.map_ks).score(part)
                entry = out.setdefault(group, (group, int(queries.sum()), int(database.sum()), {}))
                entry[3].setdefault(kind, {})[direction] = result
        return list(out.values())

    def on_validation_epoch_start(self, trainer, module) -> None:
        self._metrics = {}

    def on_test_epoch_start(self, trainer, module) -> None:
        self._metrics = {}

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(module, outputs, batch, dataloader_idx)

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(module, outputs, batch, dataloader_idx)

    def on_validation_epoch_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self._score(trainer, module, "val", trainer.val_dataloaders)

    def on_test_epoch_end(self, trainer, module) -> None:
        self._score(trainer, module, "test", trainer.test_dataloaders)

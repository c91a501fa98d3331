"""The result record of one run (docs/protocol.md, "Result rows"): one definition of every field, written as one
JSON line and read back by tables, plots, regression, saved runs and sweeps.

Scores are data: each `Scores` names its kind (`hamming`: the codes ranked by Hamming distance, the suite's
tables; `cosine`: a real-valued method's features ranked by cosine similarity, labelled) and its direction.
Whether a run is a variant of its method's config files, and of what, is decided when the row is written.
Rows of schema 1 (written before the record existed; results/runs.jsonl.gz as committed) load too.
"""

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields

SCHEMA = 2
DIRECTIONS = {"i2t": "I->T", "t2i": "T->I"}  # image queries against the text database, and the reverse
KINDS = {"hamming": "", "cosine": "cosine, real-valued"}  # score kind -> how tables label it


class RowError(ValueError):
    """A line that is not a usable result row; the message says what is wrong with it."""


@dataclass(frozen=True)
class Scores:
    """One direction's numbers under one score kind (docs/protocol.md).

    Attributes:
        kind: `hamming` (codes) or `cosine` (real-valued features).
        direction: `i2t` or `t2i`.
        map: mAP@all (stable ties).
        ap: each query's average precision, for paired tests.
        map_at: {K: mAP@K} (Hamming only).
        map_tie: the tie-averaged mAP@all (Hamming only).
        empty_queries: queries without a relevant database item.
        distinct_codes: distinct database codes (Hamming only).
        precision_at: {K: precision@K} (Hamming only).
        pr_precision: precision within each Hamming radius 0..bits.
        pr_recall: recall within each Hamming radius 0..bits.
        pr_empty: the share of queries with no database item within each Hamming radius 0..bits (rows written
            before it was recorded have none).
    """

    kind: str
    direction: str
    map: float
    ap: list[float] = field(default_factory=list)
    map_at: dict[str, float] = field(default_factory=dict)
    map_tie: float | None = None
    empty_queries: int = 0
    distinct_codes: int | None = None
    precision_at: dict[str, float] = field(default_factory=dict)
    pr_precision: list[float] = field(default_factory=list)
    pr_recall: list[float] = field(default_factory=list)
    pr_empty: list[float] = field(default_factory=list)

    def lookup(self, radius: int = 2) -> tuple[float, float]:
        """Hash lookup within `radius`: (precision over the queries that retrieve something, the share of queries
        that retrieve nothing); NaN where the row does not hold it, and the precision NaN where every ball is empty."""
        def at(values):
            return values[radius] if radius < len(values) else math.nan
        empty = at(self.pr_empty)
        return (math.nan if empty == 1 else at(self.pr_precision)), empty

    def value(self, metric: str) -> float:
        """`map`, `map_tie` or `map@K` (K as a string key of map_at)."""
        if metric.startswith("map@"):
            return self.map_at[metric[4:]]
        return getattr(self, metric)


@dataclass(frozen=True)
class GroupScores:
    """The test scores of one group of queries against one group of the database, under unseen classes
    (docs/protocol.md, "Unseen classes").

    Attributes:
        group: `seen@all`, `unseen@all`, `seen@seen` or `unseen@unseen` (queries@database; an item is unseen when
            it carries at least one held-out label).
        n_query, n_database: the group's sizes.
        chance: {direction: mAP of a random ranking within the group}.
        scores: every direction's numbers under every score kind, as a record's own.
    """

    group: str
    n_query: int
    n_database: int
    chance: dict[str, float]
    scores: list[Scores]


@dataclass(frozen=True)
class RunRecord:
    """Everything a finished run reports.

    Attributes:
        method: the method's declared name.
        dataset: the data's own name (the datamodule's).
        dataset_config: the declared dataset name (its config file).
        bits: code length.
        seed: run seed.
        supervised: whether the method reads labels while training.
        config: the resolved settings ({"run", "method", "data", "trainer"}).
        config_hash: hash of what decides the numbers.
        protocol: the split protocol's name (a subset run's own sizes).
        backbone: what produced the features.
        n_query, n_database: the split's real sizes.
        scores: every direction's numbers under every score kind.
        preset: common or paper.
        variant: {setting: value} where the run's settings differ from its config files' (empty: none);
            None for a schema-1 row, whose variant is decided when it is read.
        chance: {direction: mAP of a random ranking}.
        split_seed: seed of the split.
        subset: items drawn for a subset run, else None.
        n_train, n_val: the training and validation set's sizes.
        data_fingerprint: checksum of the data the method saw.
        validation: {direction: the last epoch's validation mAP@all of the codes}, where there is a validation
            split.
        epochs: epochs trained.
        train_seconds, eval_seconds: wall time of training and of the test evaluation.
        collapsed: directions whose database codes collapsed to a handful.
        choices: settings the method took from the data (e.g. CAGAN's text similarity).
        paper_metric: the metric the method's authors report (paper preset).
        study: the tuned preset's provenance: its study's name, trials (complete, pruned, failed), the best
            trial (Optuna's trial number, counted from 0; the tuning log counts from 1), its validation mAP and
            the preset's file.
        revision: the code's git revision.
        declared_by: {"method": ..., "dataset": ...}: the distribution and version that declared each (the suite,
            `graph-cmh-bench 0.1.0`, or a plug-in's package); None in rows written before it was recorded.
        timestamp: when the run ended (UTC).
        run_dir: its saved folder, or None.
        gallery: its retrieval gallery (PNG), or None.
        label_protocol: the label protocols (docs/protocol.md): the held-out labels and their share, the label
            noise rate, its model and the share of items it changed; empty for the closed set with clean labels.
        groups: under unseen classes, the scores of each group of queries (GroupScores); else empty.
        serving: what encoding new items costs (benchmarks.execution.serving): the bytes kept to encode, ms per
            item alone and items per second in batches, per modality; empty in rows written before it was measured.
        schema: the row format's version.
    """

    method: str
    dataset: str
    dataset_config: str
    bits: int
    seed: int
    supervised: bool
    config: dict
    config_hash: str
    protocol: str
    backbone: str
    n_query: int
    n_database: int
    scores: list[Scores]
    preset: str = "common"
    variant: dict | None = None
    chance: dict[str, float] = field(default_factory=dict)
    split_seed: int = 0
    subset: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    data_fingerprint: str | None = None
    validation: dict[str, float] = field(default_factory=dict)
    epochs: int | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    collapsed: list[str] = field(default_factory=list)
    choices: dict = field(default_factory=dict)
    paper_metric: str | None = None
    study: dict | None = None
    revision: str | None = None
    declared_by: dict | None = None

    timestamp: str | None = None
    run_dir: str | None = None
    gallery: str | None = None
    label_protocol: dict = field(default_factory=dict)
    groups: list[GroupScores] = field(default_factory=list)
    serving: dict = field(default_factory=dict)
    schema: int = SCHEMA

    def score(self, kind: str, direction: str) -> Scores | None:
        """The scores of one kind and direction, or None (a method without real-valued features)."""
        return next((s for s in self.scores if s.kind == kind and s.direction == direction), None)

    @property
    def kinds(self) -> list[str]:
        """The score kinds the run has, `hamming` first."""
        return [k for k in KINDS if any(s.kind == k for s in self.scores)]

    def map(self, direction: str) -> float:
        """mAP@all of the codes in one direction (the tables' headline number)."""
        return self.score("hamming", direction).map

    def scalars(self) -> dict[str, float]:
        """Flat numbers for a dashboard (wandb's summary): `map_i2t`, `map@50_t2i`, `cosine_map_i2t`, ..."""
        out = {}
        for s in self.scores:
            prefix = "" if s.kind == "hamming" else f"{s.kind}_"
            out[f"{prefix}map_{s.direction}"] = s.map
            out.update({f"{prefix}map@{k}_{s.direction}": v for k, v in s.map_at.items()})
            if s.map_tie is not None:
                out[f"{prefix}map_tie_{s.direction}"] = s.map_tie
        out.update({f"val_map_{d}": v for d, v in self.validation.items()})
        out.update({f"{g.group}/{'' if s.kind == 'hamming' else s.kind + '_'}map_{s.direction}": s.map
                    for g in self.groups for s in g.scores})
        return out

    def to_row(self) -> dict:
        """The record as a JSON-ready dict (one line of a results file)."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> "RunRecord":
        """A record from a results line (schema 2, or the flat schema 1).

        Raises:
            RowError: a field is missing or of the wrong type, or a number is not finite.
        """
        if not isinstance(row, dict):
            raise RowError("not a JSON object")
        if row.get("schema", 1) not in (1, SCHEMA):
            raise RowError(f"of row schema {row['schema']!r}, which this suite ({SCHEMA}) does not know: a row of a "
                           "newer suite (update this one to read it) or a damaged one")
        row = row if row.get("schema") == SCHEMA else _from_schema_1(row)
        names = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.name not in row and f.default is MISSING
                   and f.default_factory is MISSING]
        if missing:
            raise RowError(f"no {', '.join(missing)}")
        try:
            scores = [Scores(**s) for s in row["scores"]]
            groups = [GroupScores(**{**g, "scores": [Scores(**s) for s in g["scores"]]}) for g in row.get("groups", [])]
        except (TypeError, KeyError) as error:
            raise RowError(f"malformed scores ({error})") from error
        record = cls(**{**{k: v for k, v in row.items() if k in names}, "scores": scores, "groups": groups})
        record._check()
        return record

    def _check(self) -> None:
        for name, kind in (("method", str), ("dataset_config", str), ("config_hash", str), ("bits", int),
                           ("seed", int), ("config", dict)):
            if not isinstance(getattr(self, name), kind) or isinstance(getattr(self, name), bool):
                raise RowError(f"{name} is {getattr(self, name)!r}, not a {kind.__name__}")
        if self.bits < 1 or self.seed < 0:
            raise RowError(f"bits {self.bits} or seed {self.seed} is out of range (a code length is at least 1, a "
                           "seed at least 0)")
        if not isinstance(self.config.get("run"), dict):
            raise RowError("config has no run section")
        if self.score("hamming", "i2t") is None or self.score("hamming", "t2i") is None:
            raise RowError("no mAP of the codes in both directions")
        for where, n_query, scores in [("", self.n_query, self.scores),
                                        *((f"{g.group} ", g.n_query, g.scores) for g in self.groups)]:
            for s in scores:
                if not _finite(s.map) or not all(map(_finite, s.ap)):
                    raise RowError(f"{where}{s.kind} {s.direction} mAP is {s.map!r}, not a finite number")
                if s.ap and len(s.ap) != n_query:  # the paired tests pair queries by position
                    raise RowError(f"{where}{s.kind} {s.direction} has {len(s.ap)} query APs for {n_query} queries")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _from_schema_1(row: dict) -> dict:
    """A flat row of schema 1 in the fields of schema 2 (its variant is decided when it is read)."""
    scores = []
    for direction in DIRECTIONS:
        if f"map_{direction}" in row:
            curves = row.get(f"curves_{direction}", {})
            scores.append({"kind": "hamming", "direction": direction, "map": row[f"map_{direction}"],
                           "ap": row.get(f"ap_{direction}", []),
                           "map_at": {key[4:-4]: value for key, value in row.items()
                                      if key.startswith("map@") and key.endswith(f"_{direction}")},
                           "map_tie": row.get(f"map_tie_{direction}"),
                           "empty_queries": int(row.get(f"empty_queries_{direction}", 0)),
                           "distinct_codes": row.get(f"distinct_codes_{direction}"),
                           "precision_at": curves.get("precision_at", {}),
                           "pr_precision": curves.get("pr_precision", []), "pr_recall": curves.get("pr_recall", [])})
        if f"cosine_map_{direction}" in row:
            scores.append({"kind": "cosine", "direction": direction, "map": row[f"cosine_map_{direction}"],
                           "ap": row.get(f"cosine_ap_{direction}", [])})
    return {**row, "dataset_config": row.get("dataset_config", row.get("dataset")), "scores": scores,
            "chance": {d: row[f"chance_{d}"] for d in DIRECTIONS if f"chance_{d}" in row},
            "validation": {d: row[f"val_map_{d}"] for d in DIRECTIONS if f"val_map_{d}" in row},
            "collapsed": row.get("collapsed_codes", []), "variant": None, "schema": 1,
            "n_val": row.get("n_val"), "preset": row.get("preset", "common")}


def dumps(record: RunRecord) -> str:
    """One JSON line (sorted keys)."""
    return json.dumps(record.to_row(), sort_keys=True)

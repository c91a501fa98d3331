"""Hashing methods as LightningModules on one base class, and the registry that names them."""

from methods.base import ClosedFormHashing, HashingModule, HashMLPPair, TrainingDiverged
from methods.cagan import CAGAN
from methods.cca_itq import CCAITQ
from methods.dagnn import DAGNN
from methods.egath import EGATH
from methods.lsh import LSH
from methods.sgrn import SGRN

METHODS: dict[str, type[HashingModule]] = {m.name: m for m in (LSH, CCAITQ, CAGAN, SGRN, EGATH, DAGNN)}

__all__ = ["CAGAN", "CCAITQ", "DAGNN", "EGATH", "LSH", "METHODS", "SGRN", "ClosedFormHashing", "HashMLPPair",
           "HashingModule", "TrainingDiverged"]

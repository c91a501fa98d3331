"""Hashing methods as LightningModules on one base class, and the registry that names them."""

from methods.base import ClosedFormHashing, HashingModule
from methods.cagan import CAGAN
from methods.cca_itq import CCAITQ
from methods.lsh import LSH

METHODS: dict[str, type[HashingModule]] = {m.name: m for m in (LSH, CCAITQ, CAGAN)}

__all__ = ["CAGAN", "CCAITQ", "LSH", "METHODS", "ClosedFormHashing", "HashingModule"]

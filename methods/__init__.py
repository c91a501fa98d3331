"""Hashing methods as LightningModules on one base class, and the registry that names them."""

from methods.base import ClosedFormHashing, HashingModule
from methods.cca_itq import CCAITQ
from methods.lsh import LSH

METHODS: dict[str, type[HashingModule]] = {m.name: m for m in (LSH, CCAITQ)}

__all__ = ["CCAITQ", "LSH", "METHODS", "ClosedFormHashing", "HashingModule"]

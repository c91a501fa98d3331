"""Datasets as LightningDataModules on one base class, with saved split protocols."""

from datamodules.base import RetrievalDataModule
from datamodules.records import CrossModalData, DataError
from datamodules.splits import Split, SplitProtocol
from datamodules.toy import ToyDataModule
from datamodules.wikipedia import WikipediaDataModule

DATAMODULES: dict[str, type[RetrievalDataModule]] = {m.name: m for m in (ToyDataModule, WikipediaDataModule)}

__all__ = ["DATAMODULES", "CrossModalData", "DataError", "RetrievalDataModule", "Split", "SplitProtocol",
           "ToyDataModule", "WikipediaDataModule"]

"""Datasets as LightningDataModules on one base class, with saved split protocols."""

from datamodules.base import RetrievalDataModule
from datamodules.coco import COCODataModule
from datamodules.mirflickr import MIRFlickrDataModule
from datamodules.mirflickr_mini import MIRFlickrMiniDataModule
from datamodules.nuswide import NUSWIDEDataModule, NUSWIDETC10DataModule
from datamodules.records import CrossModalData
from datamodules.splits import Split, SplitProtocol
from datamodules.toy import ToyDataModule
from datamodules.wikipedia import WikipediaDataModule

DATAMODULES: dict[str, type[RetrievalDataModule]] = {
    m.name: m for m in (ToyDataModule, WikipediaDataModule, MIRFlickrMiniDataModule, MIRFlickrDataModule,
                        NUSWIDEDataModule, NUSWIDETC10DataModule, COCODataModule)}

__all__ = ["COCODataModule", "DATAMODULES", "CrossModalData", "MIRFlickrDataModule",
           "MIRFlickrMiniDataModule", "NUSWIDEDataModule", "NUSWIDETC10DataModule", "RetrievalDataModule", "Split", "SplitProtocol",
           "ToyDataModule", "WikipediaDataModule"]

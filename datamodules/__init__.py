"""Datasets as LightningDataModules on the base classes of datamodules.base, one file per dataset. Each is
declared to the suite by its config file (benchmarks/spec/registry.py); importing this package imports nothing."""

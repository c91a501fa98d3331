"""Hashing methods as LightningModules on the base classes of methods.base, one file per method. Each is
declared to the suite by its config file (benchmarks/spec/registry.py); importing this package imports nothing."""

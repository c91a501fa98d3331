"""Doing one run: building it (pipeline), evaluating it (evaluation), its console and signals, its progress
lines and wandb logging, its result record and result files, its saved folder and gallery. Imports `spec` only."""

"""Failures that end a run without a result, named here so that every layer (and the command line, without
importing the heavy ones) can raise and catch them."""


class TrainingDiverged(RuntimeError):
    """A loss term, a gradient or a closed-form fit stopped being finite: the run is a failure, not a result."""


class DataError(ValueError):
    """Bad dataset input. The message names the file and what is wrong with it."""

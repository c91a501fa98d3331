"""Failures that end a command without a result, named here so that every layer (and the command line, without
importing the heavy ones) can raise and catch them; and the one place a pretrained model's load failure is
turned into one."""


class ConfigError(ValueError):
    """An expected user error in a command's arguments or a config file; the message names the fault and the
    fix. The command line prints it as one `error:` line and exits with status 2."""


class DataError(ValueError):
    """Bad dataset input (a missing, damaged or malformed file). The message names the file and what is wrong
    with it. The command line exits with status 1."""


class TrainingDiverged(RuntimeError):
    """A loss term, a gradient or a closed-form fit stopped being finite: the run is a failure, not a result."""


class IncompleteEvaluation(RuntimeError):
    """An evaluation scored fewer query or database items than its split holds: its numbers are not the
    protocol's, so the run records nothing."""


def pretrained(loader, name: str):
    """Load a pretrained model or processor, naming a failure with its fix.

    Args:
        loader: a transformers `from_pretrained` (of a model, tokenizer or processor).
        name: a hub name or a local folder saved with `save_pretrained`.

    Returns:
        What `loader(name)` returns.

    Raises:
        DataError: the weights cannot be loaded (no network and no local copy, or a damaged folder).
    """
    try:
        return loader(name)
    except OSError as error:
        raise DataError(f"{name}: cannot load the pretrained weights ({' '.join(str(error).split())[:200]}); without "
                        "a network, give a local folder saved with save_pretrained") from error

"""A quiet, honest console: the suite's own lines, without third-party tips, banners and deprecation noise."""

import logging
import os
import sys
import warnings

NOISE = (".*LeafSpec.*", ".*configure_optimizers.*", ".*log_every_n_steps.*", ".*across ranks is zero.*",
         ".*does not have many workers.*")


def quiet() -> None:
    """Silence what other libraries print on every run: Lightning's device banners and tips (info level),
    transformers' and wandb's chatter, and warnings that ask the user to do nothing (a closed-form method
    has no optimizer; a small set has fewer batches than the log interval)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR if name == "transformers" else logging.WARNING)
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar
    if "transformers" in sys.modules:  # imported already: it read the variable then
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    for message in NOISE:
        warnings.filterwarnings("ignore", message=message)

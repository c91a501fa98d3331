"""What a run says while it trains: on a terminal Lightning's progress bar; otherwise (a pipe, a log file, a
sweep's cell) one line per epoch with the loss terms, the validation mAP and the time left."""

import time

from lightning import Callback

from benchmarks.execution.record import DIRECTIONS


def duration(seconds: float) -> str:
    """12 s, 3 min 4 s, 1 h 02 min."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class EpochLines(Callback):
    """One line per finished epoch: `epoch 3/20: loss 0.4123 (l1 0.1, ...); val mAP I->T 0.5123, T->I 0.5011;
    36 s, 3 min 24 s left`.

    Args:
        say: receives each line (default: print it, flushed).
    """

    def __init__(self, say=None):
        self.say = say or (lambda line: print(line, flush=True))

    def on_train_start(self, trainer, module) -> None:
        self.began = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        if not trainer.is_global_zero:  # one process speaks for a run on several
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        done, total = trainer.current_epoch + 1, trainer.max_epochs
        terms = {k.removeprefix("train/"): v for k, v in metrics.items() if k.startswith("train/")}
        parts = [f"epoch {done}/{total}"]
        if "loss" in terms:
            others = ", ".join(f"{k} {v:.4g}" for k, v in terms.items() if k != "loss")
            parts[0] += f": loss {terms.pop('loss'):.4f}" + (f" ({others})" if others else "")
        if "val/map_i2t" in metrics:
            parts.append("val mAP " + ", ".join(f"{name} {metrics[f'val/map_{d}']:.4f}" for d, name in DIRECTIONS.items()))
        elapsed = time.perf_counter() - self.began
        parts.append(f"{duration(elapsed)}, {duration(elapsed / done * (total - done))} left")
        self.say("; ".join(parts))

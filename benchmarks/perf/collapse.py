"""When do a method's codes collapse? Trains a method at its config settings and, after each of its first
optimisation steps and at each epoch's end, counts the distinct image and text codes over the training items
and the share of saturated outputs (|tanh(alpha h)| > 0.99).

    python benchmarks/perf/collapse.py --method cagan --dataset mirflickr25k_mini --bits 16 [--lr 0.001]
"""

import argparse

import lightning as L
import torch

from benchmarks.execution.console import quiet
from benchmarks.execution.pipeline import build
from benchmarks.spec.config import resolve
from methods.heads import epoch_alpha
from metrics.functional import distinct_rows, pack_codes


class Counter(L.Callback):
    """Counts distinct codes over the training items after each of the first `steps` steps and each epoch."""

    def __init__(self, steps: int):
        self.steps, self.lines = steps, []

    def count(self, model, when: str) -> None:
        model.eval()
        with torch.no_grad():
            outputs = {m: getattr(model, f"encode_{m}")(self.items[m]) for m in ("image", "text")}
        model.train()
        alpha = epoch_alpha(model.current_epoch)
        saturated = {m: float((torch.tanh(alpha * h).abs() > 0.99).float().mean()) for m, h in outputs.items()}
        distinct = {m: distinct_rows(pack_codes(h)) for m, h in outputs.items()}
        self.lines.append(f"{when:>14}: distinct codes image {distinct['image']:4d}, text {distinct['text']:4d}; "
                          f"saturated outputs image {saturated['image']:.2f}, text {saturated['text']:.2f}")

    def on_train_start(self, trainer, model):
        data = trainer.datamodule
        train = data.datasets["train"].__getitems__(list(range(len(data.split.train))))
        self.items = {m: train[m] for m in ("image", "text")}
        self.count(model, "before training")

    def on_train_batch_end(self, trainer, model, outputs, batch, batch_idx):
        if trainer.global_step <= self.steps:
            self.count(model, f"step {trainer.global_step}")

    def on_train_epoch_end(self, trainer, model):
        self.count(model, f"epoch {trainer.current_epoch + 1} end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="cagan")
    parser.add_argument("--dataset", default="mirflickr25k_mini")
    parser.add_argument("--bits", type=int, default=16)
    parser.add_argument("--lr", type=float, help="the learning rate instead of the config's")
    parser.add_argument("--steps", type=int, default=12, help="count after each of the first STEPS steps")
    parser.add_argument("--epochs", type=int, help="instead of the config's")
    args = parser.parse_args()
    quiet()
    overrides = [f"--method.lr={args.lr}"] if args.lr else []
    overrides += [f"--trainer.max_epochs={args.epochs}"] if args.epochs else []
    spec = resolve(args.method, args.dataset, args.bits, 0, [*overrides, "--logger.kind=none"])
    counter = Counter(args.steps)
    run = build(spec, callbacks=[counter], announce=lambda line: None)
    run.trainer.fit(run.method, datamodule=run.data)
    print(f"{args.method} on {args.dataset}, {args.bits} bits, lr {spec.settings['method'].get('lr')}, "
          f"{len(run.data.split.train)} training items (distinct codes of at most {2 ** args.bits}):")
    print("\n".join(counter.lines))


if __name__ == "__main__":
    main()

"""Is a small validation split enough to choose on? For each study, the spread of validation mAP between the
configurations it compared (its complete trials) against the spread of one configuration (the best, retrained
as the `tuned` preset) over run seeds and split seeds, and how far the retrained runs fall from the trial that
chose them (the winner's curse of a noisy choice).

    python benchmarks/perf/validation_spread.py [--results results/runs.jsonl.gz] [--storage results/tuned/studies.log]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.campaigns.tuning import open_storage
from benchmarks.execution.record import DIRECTIONS
from benchmarks.execution.results import read_records


def spread(results: Path, storage: str) -> pd.DataFrame:
    """One line per study with retrained runs at its code length: trials' std and range of validation mAP;
    the retrained runs' mean and std, over run seeds (split seed 0) and over everything."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_storage(storage)
    runs: dict[str, list] = {}
    for record in read_records(results):
        if record.preset == "tuned" and record.study and record.bits == record.study.get("bits") and record.validation:
            runs.setdefault(record.study["name"], []).append(record)
    lines = []
    for name, records in sorted(runs.items()):
        study = optuna.load_study(study_name=name, storage=opened)
        values = [t.value for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
        val = pd.DataFrame([{"seed": r.seed, "split_seed": r.split_seed,
                             "map": np.mean([r.validation[d] for d in DIRECTIONS])} for r in records])
        first_split = val[val.split_seed == val.split_seed.min()]["map"]
        lines.append({"study": name, "complete trials": len(values),
                      "trials: std": f"{np.std(values, ddof=1):.4f}" if len(values) > 1 else "–",
                      "trials: best - median": f"{max(values) - np.median(values):.4f}",
                      "best trial": f"{study.best_value:.4f}",
                      "retrained: mean": f"{val['map'].mean():.4f}",
                      "std over run seeds": f"{first_split.std():.4f}" if len(first_split) > 1 else "–",
                      "std over all runs": f"{val['map'].std():.4f}" if len(val) > 1 else "–",
                      "runs": len(val)})
    return pd.DataFrame.from_records(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/runs.jsonl.gz"))
    parser.add_argument("--storage", default="results/tuned/studies.log")
    args = parser.parse_args()
    print(spread(args.results, args.storage).to_markdown(index=False, disable_numparse=True))


if __name__ == "__main__":
    main()

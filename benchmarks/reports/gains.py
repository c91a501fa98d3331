"""What tuning changed: each method's `tuned` preset against its `common` one, column by column.

Both presets of a method run on the same queries (the same split seeds), so each column's difference is
tested paired over the queries (benchmarks.reports.significance), like the tables' bold. The Markdown section sums
each method up over its columns: the means, the range of the changes and how many columns moved
significantly.
"""

import numpy as np
import pandas as pd

from benchmarks.reports.significance import LEVEL, sign_flip_p_value

BASELINE, TUNED = "common", "tuned"


def tuning_gains(summary: pd.DataFrame) -> pd.DataFrame:
    """Per table, method, direction and code length where both presets have runs: their means, the change and
    its paired p-value (NaN without per-query AP on the same queries).

    Args:
        summary: benchmarks.reports.tables.summarize's lines, with their per-query AP (`ap`) and method (`base`).

    Returns:
        One line per column: table, method, direction, bits, common, tuned, change, p, collapsed_common,
        collapsed_tuned.
    """
    codes = summary[summary.candidate & summary.preset.isin([BASELINE, TUNED])]
    lines = []
    for (table, method, direction, bits), part in codes.groupby(["table", "base", "direction", "bits"]):
        by_preset = part.set_index("preset")
        if not by_preset.index.is_unique or {BASELINE, TUNED} - set(by_preset.index):
            continue  # one preset only, or variants of one: nothing to pair
        common, tuned = by_preset.loc[BASELINE], by_preset.loc[TUNED]
        paired = common.ap is not None and tuned.ap is not None and len(common.ap) == len(tuned.ap)
        lines.append({"table": table, "method": method, "direction": direction, "bits": bits,
                      "common": common["mean"], "tuned": tuned["mean"], "change": tuned["mean"] - common["mean"],
                      "p": sign_flip_p_value(tuned.ap - common.ap) if paired else np.nan,
                      "collapsed_common": common.collapsed, "collapsed_tuned": tuned.collapsed})
    return pd.DataFrame.from_records(lines)


def gains_markdown(gains: pd.DataFrame, table: str) -> str:
    """A Markdown table of one table's methods: mean over the columns under each preset, the range of the
    changes, and the columns better / level / worse at the test's level; empty when no method has both."""
    part = gains[gains.table == table] if len(gains) else gains
    if not len(part):
        return ""
    lines = []
    for method, columns in part.groupby("method"):
        better = int(((columns.p < LEVEL) & (columns.change > 0)).sum())
        worse = int(((columns.p < LEVEL) & (columns.change < 0)).sum())
        collapsed = ", ".join(f"{n} {preset}" for preset in (BASELINE, TUNED)
                              if (n := int(columns[f"collapsed_{preset}"].sum())))
        lines.append({"method": method, "common (mean of columns)": f"{columns.common.mean():.4f}",
                      "tuned": f"{columns.tuned.mean():.4f}",
                      "change per column": f"{columns.change.min():+.4f} to {columns.change.max():+.4f}",
                      f"columns better / level / worse (p < {LEVEL})":
                          f"{better} / {len(columns) - better - worse} / {worse}",
                      "collapsed columns": collapsed or "none"})
    text = pd.DataFrame.from_records(lines).to_markdown(index=False, disable_numparse=True)
    return (f"What tuning changed on **{table}** (`tuned` preset against `common`, paired sign-flip test per "
            f"column over the same queries):\n\n{text}\n")

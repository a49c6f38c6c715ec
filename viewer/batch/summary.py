"""A batch run's summary.csv: one row per input and label (volume, mean intensity), failed cases with their error."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from viewer.batch.case import CaseResult

#: summary.csv's columns; ``retried``: attempts of the case that did not finish (0 = first attempt succeeded).
COLUMNS = ("input", "output", "label", "volume_ml", "mean_intensity", "units", "retried", "error")


def summary_rows(cases: list[CaseResult]) -> list[dict]:
    """The summary's rows, cases in input order: one per label, or one with the error for a failed case."""
    rows = []
    for case in sorted(cases, key=lambda c: c.index):
        common = {"input": case.input, "output": "" if case.error else case.output, "retried": case.retried}
        if case.error:
            rows.append({**common, "error": case.error})
        for row in case.rows:
            mean = row["mean_intensity"]
            rows.append({**common, "label": row["label"], "volume_ml": f"{row['volume_ml']:.3f}",
                         "mean_intensity": "" if mean is None else f"{mean:.2f}", "units": row["units"],
                         "error": ""})
    return rows


def write_summary(cases: list[CaseResult], path: Path) -> Path:
    """Write summary.csv to ``path`` under a temporary name renamed into place (present means complete)."""
    from viewer.commands.outputs import partial_path

    tmp = partial_path(path)
    try:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(summary_rows(cases))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

"""Mean ± std over seeds: :func:`stat` and :func:`summarize` (run records -> one summary per group).

Owns the aggregation every report, table and claim reads; imports nothing from :mod:`prelu`.
The spread is the sample standard deviation over seeds (n - 1 in the denominator); with one seed
there is none (None), and the claims that compare against it say so.

>>> stat([0.9, 0.92, None])
{'mean': 0.91, 'std': 0.014142135623730963, 'n': 2, 'values': [0.9, 0.92, None]}
>>> stat([0.5])["std"] is None
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CURVE_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "dead_fraction", "running_loss")


def stat(values: Iterable[float | None]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` of the values that are not None (nor NaN)."""
    values = list(values)
    present = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(present)
    mean = sum(present) / n if n else None
    std = None
    if mean is not None and n >= 2:
        std = math.sqrt(sum((v - mean) ** 2 for v in present) / (n - 1))
    return {"mean": mean, "std": std, "n": n, "values": values}


def format_stat(value: Mapping[str, Any] | None, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    """``"97.8 ± 0.3"`` (mean ± std, times ``scale``); ``"n/a"`` when there is no value (e.g. every run diverged).

    >>> format_stat(stat([0.978, 0.975, 0.981]), scale=100, digits=1, unit=" %")
    '97.8 ± 0.3 %'
    >>> format_stat(stat([None, float("nan")]))
    'n/a'
    """
    if not value or value.get("mean") is None:
        return "n/a"
    text = f"{value['mean'] * scale:.{digits}f}"
    if value.get("std") is not None:
        text += f" ± {value['std'] * scale:.{digits}f}"
    return text + unit


def has_slopes(summary: Mapping[str, Any]) -> bool:
    """Whether a summary has runs with learnable slopes (a PReLU variant)."""
    return bool(summary.get("runs")) and any(layer.get("learnable") for layer in summary["layers"].values())


def runs_text(summary: Mapping[str, Any]) -> str:
    """How many runs a group has, and how many of them diverged.

    >>> runs_text({"runs": 3, "diverged": 1}), runs_text({"runs": 2, "diverged": 0})
    ('3 (1 diverged)', '2')
    """
    diverged = summary.get("diverged") or 0
    return f"{summary.get('runs', 0)}" + (f" ({diverged} diverged)" if diverged else "")


def _curve(records: Sequence[Mapping[str, Any]], key: str, length: int) -> dict[str, Any]:
    columns = [stat(record["curve"][epoch].get(key) for record in records) for epoch in range(length)]
    return {"mean": [c["mean"] for c in columns], "std": [c["std"] for c in columns]}


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One group's runs (e.g. one activation over its seeds) -> mean ± std of every number the
    reports use (a number a run does not have, e.g. after it diverged, is left out; the final
    slopes of a diverged run are left out too). ``epochs_to_target`` counts a run that never
    reached the target as ``epochs + 1`` (``censored``) and says how many reached it."""
    if not records:
        return {"runs": 0}
    final = [record["final"] for record in records]
    epochs = max(record["epochs"] for record in records)
    to_target = [f.get("epochs_to_target") for f in final]
    summary: dict[str, Any] = {
        "runs": len(records),
        "seeds": [record["seed"] for record in records],
        "diverged": sum(1 for record in records if record.get("diverged")),
    }
    for key in (
        "test_acc",
        "test_loss",
        "train_loss",
        "train_acc",
        "initial_train_loss",
        "dead_fraction",
        "negative_fraction",
        "seconds_per_epoch",
    ):
        summary[key] = stat(f.get(key) for f in final)
    summary["epochs_to_target"] = stat(to_target)
    summary["epochs_to_target"]["reached"] = sum(1 for v in to_target if v is not None)
    summary["epochs_to_target_censored"] = stat(epochs + 1 if v is None else v for v in to_target)

    length = min(len(record["curve"]) for record in records)
    summary["curve"] = {"epoch": list(range(length))}
    for key in CURVE_KEYS:
        summary["curve"][key] = _curve(records, key, length)

    layer_names = [layer["name"] for layer in records[0]["layers"]]
    summary["layers"] = {}
    for name in layer_names:
        found = [next((layer for layer in record["layers"] if layer["name"] == name), None) for record in records]
        rows = [row for row in found if row is not None]
        entry: dict[str, Any] = {
            "kind": rows[0]["kind"],
            "units": rows[0]["units"],
            "dead_fraction": stat(row["dead_fraction"] for row in rows),
            "negative_fraction": stat(row["negative_fraction"] for row in rows),
            "learnable": bool(rows[0].get("learnable")),
        }
        if entry["learnable"]:
            # The slopes a run ended with when it diverged are where the blow-up left them, not where
            # training settled them: the final slope numbers come from the runs that did not diverge.
            settled = [row for row, record in zip(found, records, strict=True) if row and not record.get("diverged")]
            entry["slope"] = stat(row["slope_mean"] for row in settled)
            entry["slope_change"] = stat(row.get("slope_change") for row in settled)
            entry["slope_min"] = min(
                (row["slope_min"] for row in settled if row["slope_min"] is not None), default=None
            )
            entry["slope_max"] = max(
                (row["slope_max"] for row in settled if row["slope_max"] is not None), default=None
            )
            entry["slope_curve"] = {
                "mean": [stat(_slope(r, e, name) for r in records)["mean"] for e in range(length)],
                "std": [stat(_slope(r, e, name) for r in records)["std"] for e in range(length)],
            }
        counts = [row.get("hist_counts") for row in rows if row.get("hist_counts")]
        if counts:
            entry["hist_counts"] = [sum(column) for column in zip(*counts, strict=True)]
            entry["hist_range"] = rows[0]["hist_range"]
            entry["hist_outside"] = [
                sum(row.get("underflow") or 0 for row in rows if row.get("hist_counts")),
                sum(row.get("overflow") or 0 for row in rows if row.get("hist_counts")),
            ]
        summary["layers"][name] = entry
    return summary


def _slope(record: Mapping[str, Any], epoch: int, layer: str) -> float | None:
    """The mean slope of ``layer`` after ``epoch`` in one run (None if not recorded)."""
    slopes = record["curve"][epoch].get("slopes") or {}
    value = slopes.get(layer)
    return value if isinstance(value, (int, float)) else None

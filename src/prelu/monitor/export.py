"""Reports for :class:`prelu.Monitor` records: CSV, JSON, TensorBoard scalars/histograms, a PNG.

Owns only the output formats; takes records (:class:`prelu.monitor.LayerStats`, read through their
attributes) and imports only :mod:`prelu._io` (strict JSON). matplotlib is imported on first plot.

>>> from types import SimpleNamespace
>>> record = SimpleNamespace(hist_counts=[1, 0, 3], hist_range=(-3.0, 3.0), underflow=2, overflow=0)
>>> histogram_sample(record).tolist()
[-3.0, -3.0, -2.0, 2.0, 2.0, 2.0]
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from prelu._io.jsonio import strict_json as _plain

if TYPE_CHECKING:
    from prelu.monitor.stats import LayerStats

SCALARS = ("dead_fraction", "negative_fraction", "slope_mean", "grad_abs_mean", "nonfinite_inputs", "nonfinite_slopes")
"""The record fields :func:`log_records` writes as scalars (those that are not None)."""


def _rows(records: Sequence[LayerStats]) -> list[dict[str, Any]]:
    return [_plain(dataclasses.asdict(record)) for record in records]


def write_csv(records: Sequence[LayerStats], columns: Sequence[str], path: str | Path) -> Path:
    """A header of ``columns``, then one row per record; list fields (``hist_counts``, ``slopes``,
    ``dead_indices``, ``hist_range``) as JSON text, None as an empty cell."""
    path = Path(path)
    rows = _rows(records)
    names = list(columns)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, list) else ("" if v is None else v) for k, v in row.items()}
            )
    return path


def write_json(records: Sequence[LayerStats], settings: dict[str, Any], path: str | Path) -> Path:
    """``{"settings": ..., "records": [...]}``, strict JSON (NaN written as null)."""
    path = Path(path)
    document = {"settings": _plain(settings), "records": _rows(records)}
    path.write_text(json.dumps(document, indent=1, allow_nan=False))
    return path


def histogram_sample(record: Any, max_values: int = 10_000) -> torch.Tensor:
    """Values whose histogram is the record's: bin centres repeated by count, underflow at the low
    edge and overflow at the high edge (NaN left out); scaled down to at most ``max_values``
    (largest remainders) for writers that take raw values, as ``SummaryWriter.add_histogram``."""
    low, high = record.hist_range
    bins = len(record.hist_counts)
    width = (high - low) / bins
    centres = [low] + [low + (i + 0.5) * width for i in range(bins)] + [high]
    counts = torch.tensor([record.underflow, *record.hist_counts, record.overflow], dtype=torch.float64)
    total = float(counts.sum())
    if total > max_values:
        scaled = counts * (max_values / total)
        counts = scaled.floor()
        remainder = int(max_values - counts.sum())
        counts[torch.argsort(scaled - counts, descending=True, stable=True)[:remainder]] += 1
    return torch.repeat_interleave(torch.tensor(centres, dtype=torch.float32), counts.long())


def log_records(records: Sequence[LayerStats], writer: Any, step: int, *, prefix: str = "monitor") -> None:
    """``writer.add_scalar(f"{prefix}/{name}/{field}", value, step)`` for each of :data:`SCALARS` that
    is not None, and ``writer.add_histogram(f"{prefix}/{name}/inputs", values, step)`` when the
    layer saw finite inputs."""
    for record in records:
        for name in SCALARS:
            value = getattr(record, name)
            if value is not None:
                writer.add_scalar(f"{prefix}/{record.name}/{name}", float(value), step)
        values = histogram_sample(record)
        if values.numel():
            writer.add_histogram(f"{prefix}/{record.name}/inputs", values, step)


def plot_records(records: Sequence[LayerStats], path: str | Path) -> Path:
    """A PNG with three panels: dead fraction per layer over steps, slope mean (min–max band) per
    layer over steps, and each layer's input histogram in its latest window (as a density)."""
    # A bare Figure renders with Agg and leaves pyplot's global backend and figure list alone.
    import matplotlib
    from matplotlib.figure import Figure

    path = Path(path)
    names = list(dict.fromkeys(r.name for r in records))
    figure = Figure(figsize=(15, 4.5), layout="constrained")
    dead_axes, slope_axes, hist_axes = figure.subplots(1, 3)
    colors = matplotlib.colormaps["viridis" if len(names) > 10 else "tab10"]
    for index, name in enumerate(names):
        color = colors(index / max(1, len(names) - 1)) if len(names) > 10 else colors(index)
        mine = [r for r in records if r.name == name]
        steps = [r.step for r in mine]
        dead = [math.nan if r.dead_fraction is None else r.dead_fraction for r in mine]
        dead_axes.plot(steps, dead, marker="o", color=color, label=f"{name} ({mine[0].kind})")
        with_slopes = [r for r in mine if r.slope_mean is not None]
        if with_slopes:
            slope_steps = [r.step for r in with_slopes]
            style = "-" if with_slopes[0].learnable else ":"
            slope_axes.plot(slope_steps, [r.slope_mean for r in with_slopes], style, marker="o", color=color)
            slope_axes.fill_between(
                slope_steps,
                [r.slope_min for r in with_slopes],
                [r.slope_max for r in with_slopes],
                color=color,
                alpha=0.15,
            )
        last = mine[-1]
        total = sum(last.hist_counts)
        if total:
            low, high = last.hist_range
            width = (high - low) / len(last.hist_counts)
            edges = [low + i * width for i in range(len(last.hist_counts) + 1)]
            density = [c / (total * width) for c in last.hist_counts]
            hist_axes.stairs(density, edges, color=color)
    dead_axes.set(title="dead units (fraction of layer)", xlabel="step", ylabel="dead fraction", ylim=(-0.02, 1.02))
    slope_axes.set(title="negative slope (mean; band: min–max; dotted: fixed)", xlabel="step", ylabel="slope")
    hist_axes.set(title="inputs, latest window (in-range density)", xlabel="input", ylabel="density")
    if not names:
        dead_axes.text(0.5, 0.5, "no rectifier layers", ha="center", va="center", transform=dead_axes.transAxes)
    elif len(names) <= 12:
        dead_axes.legend(fontsize="small")
    figure.savefig(path, format="png", dpi=100)
    return path

"""The report of ``prelu dying``: dead units, accuracy and divergence against the learning rate.

Owns the sweep's figures and page; builds on :mod:`prelu.lab.report` (every string escaped there
or here with :func:`html.escape`); imports nothing else from :mod:`prelu`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from prelu.lab import report
from prelu.lab.summary import format_stat


def table_rows(summaries: Mapping[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One row per (activation, learning rate)."""
    headers = ["activation", "lr", "runs", "diverged", "dead units %", "test acc %", "train loss"]
    rows = []
    for summary in summaries.values():
        rows.append(
            [
                str(summary["activation"]),
                f"{summary['lr']:g}",
                str(summary["runs"]),
                f"{summary['diverged']}/{summary['runs']}",
                format_stat(summary.get("dead_fraction"), 100, 1) if summary.get("runs") else "-",
                format_stat(summary.get("test_acc"), 100, 1) if summary.get("runs") else "-",
                format_stat(summary.get("train_loss"), 1, 3) if summary.get("runs") else "-",
            ]
        )
    return headers, rows


def sweep_figure(summaries: Mapping[str, dict[str, Any]]) -> str:
    """Dead units %, final test accuracy % and the diverged share against the learning rate (log x):
    mean over the seeds that did not diverge, ± std as error bars; one line per activation."""
    figure, axes = report._axes(1, 3, width=4.4)
    activations = list(dict.fromkeys(s["activation"] for s in summaries.values()))
    panels = (
        ("dead_fraction", "dead units (%)"),
        ("test_acc", "final test accuracy (%)"),
        ("diverged_rate", "diverged runs (%)"),
    )
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        for index, activation in enumerate(activations):
            points = []
            for summary in summaries.values():
                if summary["activation"] != activation:
                    continue
                if key == "diverged_rate":
                    if summary["diverged_rate"] is not None:
                        points.append((summary["lr"], 100 * summary["diverged_rate"], 0.0))
                elif summary.get("runs") and summary[key]["mean"] is not None:
                    points.append((summary["lr"], 100 * summary[key]["mean"], 100 * (summary[key]["std"] or 0.0)))
            if points:
                lrs, means, stds = zip(*sorted(points), strict=True)
                ax.errorbar(
                    lrs,
                    means,
                    yerr=stds,
                    marker="o",
                    capsize=2,
                    lw=1.5,
                    color=report.color(activation, index),
                    label=report.label(activation),
                )
        if key == "dead_fraction":
            ax.axhline(30, color="#999", ls=":", lw=1)
            ax.axhline(5, color="#2ca02c", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    return report.png(figure)


def page(config: Mapping[str, Any], description: str, results: Mapping[str, Any]) -> str:
    """The whole report.html of a sweep."""
    summaries: Mapping[str, dict[str, Any]] = results["summary"]
    headers, rows = table_rows(summaries)
    incomplete = (
        None if results["complete"] else f"Incomplete: {int(results['finished'])} of {int(results['expected'])} runs."
    )
    intro = (  # plain text: report.page escapes it
        f"{description}; model {config['model']}; activations {', '.join(config['activations'])}; learning rates "
        f"{', '.join(f'{lr:g}' for lr in config['lrs'])}; {config['seeds']} seed(s) x {config['epochs']} epochs, "
        f"batch {config['batch_size']}, {config['optimizer']} momentum {config['momentum']}, weight decay "
        f"{config['weight_decay']}, init {config['init']}."
    )
    note = html.escape(
        "A unit is dead when its input is <= 0 for every monitored training sample at the end (prelu.Monitor). "
        "A run whose loss becomes NaN or infinite is diverged: it counts in the diverged column and is left out "
        "of the dead-unit and accuracy numbers. Per seed, every activation starts from the same weights and sees "
        "the same batches. Numbers can differ between machines (BLAS kernels, thread counts), most of all at "
        "learning rates near the edge of divergence."
    )
    sections = [
        ("Claims", report.claims_table(results["claims"])),
        ("Dead units, accuracy and divergence against the learning rate", sweep_figure(summaries)),
        (
            "Per activation and learning rate (mean ± std over the seeds that did not diverge)",
            report.html_table(headers, rows, ["", "num", "num", "num", "num", "num", "num"])
            + f'<p class="note">{note}</p>',
        ),
    ]
    return report.page(f"prelu dying: {config['dataset']}, {config['model']}", sections, intro, incomplete=incomplete)

"""What ``prelu depth`` shows: its summary table, its figures (loss curves, signal at init, slopes by
depth) and its report.html.

Owns the depth report's layout and wording; imports :mod:`prelu.lab.report`,
:mod:`prelu.lab.summary`, :mod:`prelu.lab.claims` (the trains rule), :mod:`prelu.lab.console` and
:mod:`prelu.lab.runs`. Diverged runs (missing numbers) are left out of the figures and show as
``n/a`` in the tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from prelu.lab import console, report
from prelu.lab.claims import TRAINS_RATIO, trains
from prelu.lab.runs import RunFolder
from prelu.lab.settings import DepthSettings
from prelu.lab.summary import format_stat, has_slopes

Groups = Mapping[str, Sequence[Mapping[str, Any]]]


# The defaults sit near the edge of stability: on one machine kaiming/prelu trained on 2 of 2
# seeds, on a second machine of the same kind seed 0 diverged at epoch 22 (deterministically, both
# backends). The report says so; the summary's "trains" column counts diverged runs per group.
STABILITY_NOTE = (
    "At these defaults (lr 0.01, momentum 0.9, 30 epochs) a 30-layer net sits near the edge of stability: the same "
    "run has trained on one machine and diverged (kaiming/prelu, seed 0, epoch 22) on another of the same kind, "
    "because BLAS kernels and thread counts round differently. The 'trains' column counts such runs per group and "
    "the runs table names their epochs; the loss figure shows every seed. Fewer epochs or a smaller --lr move away "
    "from the edge."
)


def _slopes_text(summary: Mapping[str, Any]) -> str:
    learnable = [layer["slope"]["mean"] for layer in summary["layers"].values() if layer.get("learnable")]
    if not learnable:
        return "-"
    first, last = ("n/a" if value is None else f"{value:.2f}" for value in (learnable[0], learnable[-1]))
    return f"{first} / {last}"


def table_rows(summaries: Mapping[str, Any], groups: Groups) -> tuple[list[str], list[list[str]]]:
    """One row per init/activation: how many runs train, loss before and after, accuracy, dead units, slopes."""
    headers = [
        "init / activation",
        "trains",
        "train loss: start -> end",
        "test acc %",
        "dead units %",
        "slopes: first / last layer",
        "s / epoch",
    ]
    rows = []
    for key, summary in summaries.items():
        records = groups.get(key, [])
        if not summary.get("runs"):
            rows.append([key, "0/0", *["-"] * 5])
            continue
        trained = f"{sum(trains(r) for r in records)}/{len(records)}"
        if summary.get("diverged"):
            trained += f" ({summary['diverged']} diverged)"
        rows.append(
            [
                key,
                trained,
                f"{format_stat(summary['initial_train_loss'], 1, 3)} -> {format_stat(summary['train_loss'], 1, 3)}",
                format_stat(summary["test_acc"], 100, 1),
                format_stat(summary["dead_fraction"], 100, 1),
                _slopes_text(summary),
                format_stat(summary["seconds_per_epoch"], 1, 3),
            ]
        )
    return headers, rows


def _finite_points(xs: Sequence[Any], ys: Sequence[Any]) -> tuple[list[Any], list[float]]:
    """The (x, y) pairs whose y is a positive finite number (a log axis shows no others)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if isinstance(y, (int, float)) and math.isfinite(y) and y > 0]
    return [x for x, _ in pairs], [y for _, y in pairs]


def loss_figure(summaries: Mapping[str, Any], groups: Groups, activations: Sequence[str]) -> str:
    """Train loss vs epoch, one panel per activation, Xavier vs Kaiming (thin: each seed; thick: mean)."""
    figure, axes = report._axes(1, len(activations))
    styles = {"xavier": ("#1f77b4", "--"), "kaiming": ("#d62728", "-")}
    for ax, activation in zip(axes[0], activations, strict=True):
        for init, (colour, line) in styles.items():
            key = f"{init}/{activation}"
            for record in groups.get(key, []):
                epochs, losses = _finite_points(
                    [row["epoch"] for row in record["curve"]], [row["train_loss"] for row in record["curve"]]
                )
                ax.plot(epochs, losses, line, color=colour, alpha=0.35, lw=0.8)
            summary = summaries.get(key, {})
            if summary.get("runs"):
                curve = summary["curve"]
                epochs, means = _finite_points(curve["epoch"], curve["train_loss"]["mean"])
                ax.plot(epochs, means, line, color=colour, lw=2, label=init.capitalize())
        ax.set_title(f"{report.label(activation)}: train loss")
        ax.set_xlabel("epoch")
        if ax.has_data():
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return report.png(figure)


def signal_figure(groups: Groups) -> str:
    """Std of each rectifier's input at init, per layer (log scale): Xavier shrinks, Kaiming holds."""
    figure, axes = report._axes(1, 1, width=6.5)
    ax = axes[0, 0]
    for index, (key, records) in enumerate(groups.items()):
        if not records:
            continue
        layers, stds = _finite_points(
            list(range(1, len(records[0].get("init_input_std") or []) + 1)), records[0].get("init_input_std") or []
        )
        init, activation = key.split("/", 1)
        ax.plot(
            layers,
            stds,
            "--" if init == "xavier" else "-",
            color=report.color(activation, index),
            label=f"{init} / {report.label(activation)} (seed {records[0]['seed']})",
            lw=1.5,
        )
    if ax.has_data():
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set_xlabel("rectifier layer")
    ax.set_ylabel("std of its input at init")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return report.png(figure)


def slope_depth_figure(summaries: Mapping[str, Any]) -> str | None:
    """Final mean slope per layer (mean over seeds ± std), one line per init, for each PReLU variant."""
    lines = [(key, s) for key, s in summaries.items() if has_slopes(s)]
    if not lines:
        return None
    figure, axes = report._axes(1, 1, width=6.5)
    ax = axes[0, 0]
    nan = float("nan")  # a layer without a number (diverged runs) leaves a gap
    for index, (key, summary) in enumerate(lines):
        values = [layer["slope"] for layer in summary["layers"].values() if layer.get("learnable")]
        means = [nan if v["mean"] is None else v["mean"] for v in values]
        stds = [v["std"] or 0 for v in values]
        ax.errorbar(
            range(1, len(means) + 1),
            means,
            yerr=stds,
            label=key,
            capsize=2,
            lw=1.3,
            color=["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c"][index % 4],
        )
    ax.axhspan(0.6, 0.7, color="#d62728", alpha=0.07, lw=0)
    ax.axhline(0.25, color="#999", lw=0.8, ls=":")
    ax.set_xlabel("PReLU layer (input side first)")
    ax.set_ylabel("learned slope (mean over units)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return report.png(figure)


def run_rows(groups: Groups) -> list[list[str]]:
    """One row per run: whether it trains, its losses, and how it diverged."""
    rows = []
    for records in groups.values():
        for record in records:
            final = record["final"]
            losses = [final.get("initial_train_loss"), final.get("train_loss")]
            start, end = ("n/a" if value is None else f"{value:.3f}" for value in losses)
            verdict = "yes" if trains(record) else "no"
            rows.append([record["id"], verdict, f"{start} -> {end}", report.divergence_text(record)])
    return rows


def page(settings: DepthSettings, data_description: str, results: Mapping[str, Any], groups: Groups) -> str:
    """report.html of one depth folder."""
    summaries = results["summary"]
    headers, rows = table_rows(summaries, groups)
    sections = [
        ("Claims", report.claims_table(results["claims"])),
        ("Summary (mean ± std over seeds)", report.html_table(headers, rows, ["", *["num"] * 6])),
        ("Train loss (cf. He et al., Fig. 3)", loss_figure(summaries, groups, settings.activations)),
        ("Signal at init: std of each rectifier's input", signal_figure(groups)),
    ]
    slopes = slope_depth_figure(summaries)
    if slopes:
        sections.append(("Learned slopes by depth", slopes))
    prelu_summaries = {key: s for key, s in summaries.items() if has_slopes(s)}
    sections.append(("Learned slopes per layer (cf. He et al., Table 1)", report.slope_table(prelu_summaries)))
    sections.append(("Dead units per layer (end of training)", report.dead_units_figure(summaries)))
    histograms = report.histograms_figure(summaries)
    if histograms:
        sections.append(("Rectifier inputs at the end (all seeds pooled)", histograms))
    sections.append(
        ("Runs", report.html_table(["run", "trains", "train loss: start -> end", "diverged"], run_rows(groups)))
    )
    intro = (
        f"{data_description}; plain net of {settings.layers} Linear layers ({settings.layers - 1} hidden x "
        f"{settings.width} units, no normalisation); {settings.seeds} seed(s) x {settings.epochs} epochs, batch "
        f"{settings.batch_size}, {settings.optimizer} lr {settings.lr} momentum {settings.momentum}, weight decay "
        f"{settings.weight_decay} (slopes {settings.slope_weight_decay}). A run trains iff it did not diverge and "
        f"its final train loss < {TRAINS_RATIO} x its initial one. {STABILITY_NOTE}"
    )
    return report.page(
        f"prelu depth: {settings.layers} layers on {settings.dataset}",
        sections,
        intro,
        incomplete=report.incomplete_text(results),
    )


def print_results(settings: DepthSettings, results: Mapping[str, Any], groups: Groups, folder: RunFolder) -> None:
    """The summary and claims tables on stdout, and where the files are."""
    headers, rows = table_rows(results["summary"], groups)
    console.print_table(
        f"prelu depth: {settings.layers} layers on {settings.dataset}, {settings.epochs} epochs, mean ± std over seeds",
        headers,
        rows,
        right=[False, True, True, True, True, True, True],
    )
    console.print_claims_and_files(results["claims"], folder.path, folder.results_path, folder.report_path)

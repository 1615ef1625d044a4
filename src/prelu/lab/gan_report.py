"""The report of ``prelu gan``: claims, a table, sample grids and curves, in one self-contained page.

Owns the GAN's figures and page; builds on :mod:`prelu.lab.report` (every string escaped with
:func:`html.escape`) and reads :mod:`prelu.lab.gan_train` for the ring's modes; imports nothing
else from :mod:`prelu`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from prelu.lab import report
from prelu.lab.gan_train import ring_modes

CURVES = (
    ("modes", "modes covered", 1.0),
    ("high_quality", "high-quality samples (%)", 100.0),
    ("quality", "quality score", 1.0),
    ("grad_norm", "|dL_G/dx| passed to G", 1.0),
    ("d_dead_fraction", "D dead units (%)", 100.0),
    ("d_loss", "D loss", 1.0),
)


def mean_text(value: dict[str, Any], scale: float, digits: int = 1) -> str:
    """``"6.3 ± 1.2"`` (mean ± std times ``scale``); ``"-"`` without a value."""
    if value.get("mean") is None:
        return "-"
    text = f"{value['mean'] * scale:.{digits}f}"
    return text + (f" ± {value['std'] * scale:.{digits}f}" if value.get("std") is not None else "")


def table_rows(summaries: Mapping[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One row per activation: diverged, then each final metric (mean ± std over the runs that did not diverge)."""
    headers = ["D activation", "runs", "diverged", "modes", "high-quality %", "quality", "grad to G", "D dead %"]
    rows = [
        [
            name,
            str(s["runs"]),
            f"{s['diverged']}/{s['runs']}",
            mean_text(s["modes"], 1),
            mean_text(s["high_quality"], 100),
            mean_text(s["quality"], 1, 3),
            mean_text(s["grad_norm"], 1, 3),
            mean_text(s["d_dead_fraction"], 100),
        ]
        for name, s in summaries.items()
    ]
    return headers, rows


def samples_figure(data: str, records: Mapping[str, dict[str, Any]], activations: list[str]) -> str | None:
    """The final samples of the lowest seed of each activation: points over the ring's modes, or a grid of digits."""
    chosen = []
    for name in activations:
        group = sorted((r for r in records.values() if r["group"] == name), key=lambda r: r["seed"])
        if group:
            chosen.append((name, group[0]))
    if not chosen:
        return None
    import numpy as np

    figure, axes = report._axes(1, len(chosen), width=3.6, height=3.6)
    for ax, (name, record) in zip(axes[0], chosen, strict=True):
        samples = np.asarray(record["samples"], dtype=float)
        status = " (diverged)" if record.get("diverged") else ""
        if data == "ring":
            modes = ring_modes().numpy()
            ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.4, color=report.color(name))
            ax.scatter(modes[:, 0], modes[:, 1], s=30, marker="x", color="#000")
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_aspect("equal")
        else:
            side = int(np.ceil(np.sqrt(len(samples))))
            grid = np.full((side * 9, side * 9), -1.0)
            for index, image in enumerate(samples):
                row, col = divmod(index, side)
                grid[row * 9 : row * 9 + 8, col * 9 : col * 9 + 8] = np.nan_to_num(image.reshape(8, 8), nan=-1.0)
            ax.imshow(grid, cmap="gray_r", vmin=-1, vmax=1)
            ax.axis("off")
        ax.set_title(f"{report.label(name)}, seed {record['seed']}{status}", fontsize=9)
    figure.tight_layout()
    return report.png(figure)


def curves_figure(summaries: Mapping[str, dict[str, Any]]) -> str:
    """Every metric against the step: mean over the runs that did not diverge, ± std band."""
    figure, axes = report._axes(2, 3, width=4.2, height=3.0)
    for ax, (key, title, scale) in zip(axes.flat, CURVES, strict=True):
        for index, (name, summary) in enumerate(summaries.items()):
            curve = summary.get("curve")
            if not curve:
                continue
            mean = [None if m is None else m * scale for m in curve[key]["mean"]]
            std = [None if s is None else s * scale for s in curve[key]["std"]]
            report._band(ax, curve["step"], mean, std, name, index)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    return report.png(figure)


def page(config: Mapping[str, Any], results: Mapping[str, Any], records: Mapping[str, dict[str, Any]]) -> str:
    """The whole report.html of ``prelu gan``."""
    summaries: Mapping[str, dict[str, Any]] = results["summary"]
    activations: list[str] = list(config["activations"])
    headers, rows = table_rows(summaries)
    intro = (  # plain text: report.page escapes it
        f"data {config['data']}; generator and discriminator MLPs of 2 hidden layers x {config['width']} units; the "
        f"discriminator's rectifier is one of {', '.join(activations)} (Leaky ReLU slope 0.2 as DCGAN, PReLU per "
        f"channel from 0.25); noise dim {config['noise']}; {config['seeds']} seed(s) x {config['steps']} steps, "
        f"batch {config['batch_size']}, Adam lr {config['lr']} betas (0.5, 0.999), non-saturating loss."
    )
    incomplete = None if results["complete"] else f"Incomplete: {results['finished']} of {results['expected']} runs."
    note = html.escape(
        "Ring: a sample is high quality within 3 std (0.06) of its nearest mode; a mode is covered when >= 2 % of "
        "the samples are high-quality samples of it; the quality score is the high-quality share with each mode's "
        "share capped at 1/8. Digits: a fixed logistic-regression classifier reads the samples; high quality = top "
        "class probability >= 0.9; a digit is covered when >= 2 % of the samples are confident ones of it; the "
        "quality score is the mean top-class probability. 'grad to G' is the mean per-sample norm of dL_G/dx at "
        "the generated samples. Metrics are measured on 2,000 samples from fixed noise. Diverged runs (a NaN or "
        "infinite loss) are counted and left out of the means. Numbers can differ between machines (BLAS "
        "kernels, thread counts): GAN training amplifies small differences."
    )
    sections = [
        ("Claims", report.claims_table(results["claims"])),
        (
            "Summary at the end (mean ± std over the runs that did not diverge)",
            report.html_table(headers, rows, ["", *["num"] * 7]) + f'<p class="note">{note}</p>',
        ),
    ]
    grid = samples_figure(str(config["data"]), records, activations)
    if grid:
        sections.append(("Samples at the end (lowest seed)", grid))
    if any(summary.get("curve") for summary in summaries.values()):
        sections.append(("Curves", curves_figure(summaries)))
    return report.page(f"prelu gan: {config['data']}", sections, intro, incomplete=incomplete)

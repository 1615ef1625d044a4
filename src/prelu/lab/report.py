"""The lab's ``report.html``: self-contained (inline CSS, PNGs inlined as base64, no script, no link).

Owns the shared figures (matplotlib, Agg) and the HTML; reads the summaries of
:mod:`prelu.lab.summary` and the claims of :mod:`prelu.lab.claims`; imports nothing else from
:mod:`prelu`. The page opens offline: nothing in it refers to another file or to the network.

Every string that reaches the page is escaped here: the functions take plain text (model
names, paths, layer names, dataset names, labels, error text) and return HTML; only the HTML
they return is put in unescaped. Missing numbers (a diverged run, a model without rectifiers)
are left out of the figures and shown as ``n/a`` in the tables.

>>> "<td>a &amp; b</td>" in html_table(["x"], [["a & b"]])
True
>>> note("<script>")
'<p class="note">&lt;script&gt;</p>'
"""

from __future__ import annotations

import base64
import datetime
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

from prelu.lab.summary import format_stat, has_slopes

COLORS = {"relu": "#4d4d4d", "leaky_relu": "#1f77b4", "prelu_shared": "#ff7f0e", "prelu": "#d62728"}
_EXTRA = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
LABELS = {"relu": "ReLU", "leaky_relu": "Leaky ReLU", "prelu": "PReLU (per channel)", "prelu_shared": "PReLU (shared)"}

# He et al. 2015, Table 1: learned slopes of their 14-layer model (channel-shared, channel-wise).
PAPER_TABLE_1 = [
    ("conv1", 0.681, 0.596),
    ("conv2_1", 0.103, 0.321),
    ("conv2_2", 0.099, 0.204),
    ("conv2_3", 0.228, 0.294),
    ("conv2_4", 0.561, 0.464),
    ("conv3_1", 0.126, 0.196),
    ("conv3_2", 0.089, 0.152),
]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.agree{background:#dff3df;font-weight:bold}.disagree{background:#f8dcdc;font-weight:bold}
.inconclusive{background:#f1f1f1;font-weight:bold}
.note{color:#555;font-size:.9em}img{max-width:100%}code{background:#f5f5f5;padding:0 .2em}
"""


def color(name: str, index: int = 0) -> str:
    """The colour of an activation (fixed for the built-in names)."""
    return COLORS.get(name, _EXTRA[index % len(_EXTRA)])


def label(name: str) -> str:
    return LABELS.get(name, name)


def png(figure: Any) -> str:
    """An ``<img>`` with the figure as an inline base64 PNG (no metadata, so no URL in it); closes the figure."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], classes: Sequence[str] | None = None) -> str:
    """An HTML table; every cell escaped; ``classes`` gives a CSS class per column (e.g. ``num``)."""
    classes = classes or [""] * len(headers)
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell, css in zip(row, classes, strict=False):
            attribute = f' class="{css}"' if css else ""
            cells.append(f"<td{attribute}>{html.escape(str(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def note(text: str) -> str:
    """A note paragraph with ``text`` (plain text, escaped)."""
    return f'<p class="note">{html.escape(text)}</p>'


def divergence_text(record: Mapping[str, Any]) -> str:
    """How a run diverged, in words ("" when it did not).

    >>> divergence_text({"diverged": 4, "divergence": {"epoch": 4, "statistic": "running_loss", "value": "nan"}})
    'epoch 4: running_loss = nan'
    """
    if not record.get("diverged"):
        return ""
    divergence = record.get("divergence")
    if isinstance(divergence, Mapping):
        return f"epoch {record['diverged']}: {divergence.get('statistic', 'loss')} = {divergence.get('value', 'n/a')}"
    return f"epoch {record['diverged']}: loss not finite"


def incomplete_text(results: Mapping[str, Any]) -> str | None:
    """ "Incomplete: 1 of 4 runs." while runs are missing; None when complete."""
    if results.get("complete"):
        return None
    return f"Incomplete: {results.get('finished')} of {results.get('expected')} runs."


def claims_table(claims: Sequence[Mapping[str, str]]) -> str:
    """The claims table: claim, source, our number, rule, verdict (coloured)."""
    rows = []
    for row in claims:
        verdict = html.escape(row["verdict"])
        text = html.escape(row.get("verdict_text") or row["verdict"])
        rows.append(
            "<tr>"
            + "".join(f"<td>{html.escape(row[key])}</td>" for key in ("claim", "source", "number", "rule"))
            + f'<td class="{verdict}">{text}</td></tr>'
        )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ("claim", "source", "our number", "rule", "verdict"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def page(title: str, sections: Sequence[tuple[str, str]], intro: str = "", *, incomplete: str | None = None) -> str:
    """A whole HTML document: ``sections`` are (heading, inner HTML) pairs; ``title``, ``intro`` and
    ``incomplete`` (shown in bold: why the report is not final) are plain text."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    status = f" <b>{html.escape(incomplete)}</b>" if incomplete else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{html.escape(intro)}{status} Generated {stamp} by prelu.</p>',
    ]
    for heading, inner in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{inner}")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _axes(rows: int, cols: int, width: float = 5.0, height: float = 3.4) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    return figure, axes


def _band(
    ax: Any,
    x: Sequence[int],
    mean: Sequence[float | None],
    std: Sequence[float | None],
    name: str,
    index: int,
    line: str = "-",
) -> None:
    points = [(e, m, s) for e, m, s in zip(x, mean, std, strict=True) if m is not None]
    if not points:
        return
    xs, ms, ss = zip(*points, strict=True)
    ax.plot(xs, ms, line, color=color(name, index), label=label(name), lw=1.6)
    if any(s is not None for s in ss):
        low = [m - (s or 0) for m, s in zip(ms, ss, strict=True)]
        high = [m + (s or 0) for m, s in zip(ms, ss, strict=True)]
        ax.fill_between(xs, low, high, color=color(name, index), alpha=0.15, lw=0)


def curves_figure(summaries: Mapping[str, Any], target: float | None = None) -> str:
    """Train loss, test loss, test accuracy and dead units vs epoch: mean over seeds, ± std band."""
    figure, axes = _axes(2, 2)
    panels = [
        ("train_loss", "train loss (eval pass)", 1.0, True),
        ("test_loss", "test loss", 1.0, True),
        ("test_acc", "test accuracy (%)", 100.0, False),
        ("dead_fraction", "dead units (%)", 100.0, False),
    ]
    for ax, (key, title, scale, log) in zip(axes.flat, panels, strict=True):
        for index, (name, summary) in enumerate(summaries.items()):
            if not summary.get("runs"):
                continue
            curve = summary["curve"]
            mean = [None if m is None else m * scale for m in curve[key]["mean"]]
            std = [None if s is None else s * scale for s in curve[key]["std"]]
            _band(ax, curve["epoch"], mean, std, name, index)
        if key == "test_acc" and target is not None:
            ax.axhline(target * 100, color="#999", ls=":", lw=1)
        if log and ax.has_data():
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if axes[0, 0].has_data():
        axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    return png(figure)


def dead_units_figure(summaries: Mapping[str, Any]) -> str:
    """Final dead units per layer, one bar per activation (mean over seeds, std as error bar)."""
    names = [name for name, summary in summaries.items() if summary.get("runs") and summary.get("layers")]
    layers = list(summaries[names[0]]["layers"]) if names else []
    if not layers:
        return "<p>No rectifier layers in these runs: no dead units to count.</p>"
    figure, axes = _axes(1, 1, width=max(6.0, 1.1 * len(layers) + 3), height=3.4)
    ax = axes[0, 0]
    width = 0.8 / max(len(names), 1)
    for index, name in enumerate(names):
        layer_stats = list(summaries[name]["layers"].values())
        nan = float("nan")  # a layer with no number (diverged runs) gets no bar, not a bar at 0
        means = [nan if s["dead_fraction"]["mean"] is None else 100 * s["dead_fraction"]["mean"] for s in layer_stats]
        stds = [100 * (s["dead_fraction"]["std"] or 0) for s in layer_stats]
        positions = [i + (index - (len(names) - 1) / 2) * width for i in range(len(means))]
        ax.bar(positions, means, width, yerr=stds, color=color(name, index), label=label(name), capsize=2)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([f"{i + 1}" for i in range(len(layers))])
    ax.set_xlabel("rectifier layer (input side first)")
    ax.set_ylabel("dead units (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return png(figure)


def slopes_figure(summaries: Mapping[str, Any]) -> str | None:
    """Slope trajectories: each PReLU layer's mean slope vs epoch (mean over seeds), one panel per variant."""
    variants = [(n, s) for n, s in summaries.items() if has_slopes(s)]
    if not variants:
        return None
    import matplotlib.pyplot as plt

    figure, axes = _axes(1, len(variants))
    for ax, (name, summary) in zip(axes[0], variants, strict=True):
        learnable = [(layer_name, layer) for layer_name, layer in summary["layers"].items() if layer.get("learnable")]
        cmap = plt.get_cmap("viridis")
        for index, (layer_name, layer) in enumerate(learnable):
            shade = cmap(index / max(len(learnable) - 1, 1))
            curve = layer["slope_curve"]
            points = [(e, m) for e, m in zip(summary["curve"]["epoch"], curve["mean"], strict=True) if m is not None]
            if points:
                ax.plot(*zip(*points, strict=True), color=shade, label=f"{index + 1}: {layer_name}", lw=1.4)
        ax.axhspan(0.1, 0.3, color="#2ca02c", alpha=0.08, lw=0)
        ax.set_title(f"{label(name)}: slope per layer")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean slope")
        ax.grid(alpha=0.3)
        if len(learnable) <= 10:
            ax.legend(fontsize=7)
    figure.tight_layout()
    return png(figure)


def histograms_figure(summaries: Mapping[str, Any], max_layers: int = 6) -> str | None:
    """Inputs of each rectifier at the end (all seeds pooled), one panel per layer, one line per activation."""
    names = [name for name, summary in summaries.items() if summary.get("runs") and summary.get("layers")]
    if not names:
        return None
    every_layer = list(summaries[names[0]]["layers"])
    layers = every_layer
    if len(layers) > max_layers:  # first, last and evenly spaced ones between
        step = (len(layers) - 1) / (max_layers - 1)
        layers = [layers[round(i * step)] for i in range(max_layers)]
    cols = min(3, len(layers))
    rows = (len(layers) + cols - 1) // cols
    figure, axes = _axes(rows, cols, width=4.2, height=3.0)
    for ax, layer_name in zip(axes.flat, layers, strict=False):
        drawn = False
        for index, name in enumerate(names):
            layer = summaries[name]["layers"].get(layer_name)
            if not layer or "hist_counts" not in layer:
                continue
            counts = layer["hist_counts"]
            low, high = layer["hist_range"]
            if low is None or high is None or not sum(counts):  # no finite inputs were seen (a diverged run)
                continue
            total = sum(counts) + sum(layer.get("hist_outside", [0, 0])) or 1
            edges = [low + (high - low) * i / len(counts) for i in range(len(counts) + 1)]
            ax.stairs([c / total for c in counts], edges, color=color(name, index), label=label(name), lw=1.3)
            drawn = True
        ax.axvline(0, color="#999", lw=0.8)
        ax.set_title(f"layer {every_layer.index(layer_name) + 1}: {layer_name}", fontsize=9)
        if drawn:
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "n/a", transform=ax.transAxes, ha="center")
        ax.set_xlabel("rectifier input")
    for ax in list(axes.flat)[len(layers) :]:
        ax.axis("off")
    if axes.flat[0].patches:
        axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    return png(figure)


def slope_table(summaries: Mapping[str, Any]) -> str:
    """Per-layer learned slopes in the style of He et al.'s Table 1, beside the paper's own numbers."""
    variants = [(n, s) for n, s in summaries.items() if has_slopes(s)]
    if not variants:
        return "<p>No PReLU layers in this run.</p>"
    layer_names = list(variants[0][1]["layers"])
    headers = ["layer", "#", *[f"{label(n)}: mean ± std over seeds [min, max over units]" for n, _ in variants]]
    rows = []
    for index, layer_name in enumerate(layer_names):
        row = [layer_name, str(index + 1)]
        for _, summary in variants:
            layer = summary["layers"].get(layer_name, {})
            if not layer.get("learnable"):
                row.append("-")
                continue
            cell = format_stat(layer["slope"], 1, 3)
            if (
                layer.get("slope_min") is not None
                and layer.get("slope_max") is not None
                and layer["slope_min"] != layer["slope_max"]
            ):
                cell += f" [{layer['slope_min']:.3f}, {layer['slope_max']:.3f}]"
            row.append(cell)
        rows.append(row)
    paper = html_table(
        ["layer (He et al.)", "channel-shared", "channel-wise"],
        [[name, f"{shared:.3f}", f"{wise:.3f}"] for name, shared, wise in PAPER_TABLE_1],
        ["", "num", "num"],
    )
    return (
        html_table(headers, rows, ["", "num", *["num"] * len(variants)])
        + '<p class="note">For reference, He et al. 2015, Table 1 (14-layer net on ImageNet, init 0.25):</p>'
        + paper
    )

"""What ``prelu compare`` shows: its summary table (terminal and HTML) and its report.html.

Owns the compare report's layout and wording; imports :mod:`prelu.lab.report`,
:mod:`prelu.lab.summary`, :mod:`prelu.lab.console`, :mod:`prelu.lab.runs` and
:mod:`prelu.lab.train` (a constant). Missing numbers (a diverged run, a model without
rectifiers) show as ``n/a`` or say why; every string from the settings, the model or the data is
escaped by :mod:`prelu.lab.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prelu.lab import console, report
from prelu.lab.runs import RunFolder
from prelu.lab.settings import CompareSettings
from prelu.lab.summary import format_stat, runs_text
from prelu.lab.train import MONITOR_SAMPLES

NO_RECTIFIER = "no rectifier"


def _slopes_text(summary: Mapping[str, Any]) -> str:
    layers = summary.get("layers", {})
    if not layers:
        return NO_RECTIFIER
    values = [layer["slope"]["mean"] for layer in layers.values() if layer.get("learnable")]
    if not values:
        return "-"
    return " ".join("n/a" if value is None else f"{value:.2f}" for value in values)


def table_rows(summaries: Mapping[str, Any], target: float) -> tuple[list[str], list[list[str]]]:
    """The summary table: one row per activation, mean ± std over seeds ("n/a" where a number is missing).

    >>> table_rows({"relu": {"runs": 0}}, 0.9)[1]
    [['relu', '0', '-', '-', '-', '-', '-', '-']]
    """
    headers = [
        "activation",
        "runs",
        "test acc %",
        "test loss",
        f"epochs to {target:.0%}",
        "dead units %",
        "final slopes (per layer)",
        "s / epoch",
    ]
    rows = []
    for name, summary in summaries.items():
        if not summary.get("runs"):
            rows.append([name, "0", *["-"] * 6])
            continue
        to_target = summary["epochs_to_target"]
        reached = f"{format_stat(to_target, 1, 1)} ({to_target['reached']}/{summary['runs']})"
        dead = format_stat(summary["dead_fraction"], 100, 1) if summary.get("layers") else NO_RECTIFIER
        rows.append(
            [
                name,
                runs_text(summary),
                format_stat(summary["test_acc"], 100, 1),
                format_stat(summary["test_loss"], 1, 3),
                reached,
                dead,
                _slopes_text(summary),
                format_stat(summary["seconds_per_epoch"], 1, 3),
            ]
        )
    return headers, rows


def describe(settings: CompareSettings, data_description: str) -> str:
    """One sentence with every setting (plain text)."""
    return (
        f"{data_description}; model {settings.model}; {settings.seeds} seed(s) x {settings.epochs} epochs, batch "
        f"{settings.batch_size}, {settings.optimizer} lr {settings.lr} momentum {settings.momentum}, weight decay "
        f"{settings.weight_decay} (slopes {settings.slope_weight_decay}), init {settings.init}"
    )


def _number(value: float | None, scale: float, digits: int) -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}"


def run_rows(records: Mapping[str, Any]) -> list[list[str]]:
    """One row per run: its numbers, fingerprints, and whether it diverged."""
    rows = []
    for record in sorted(records.values(), key=lambda r: (r["seed"], r["group"])):
        final = record["final"]
        rows.append(
            [
                record["id"],
                _number(final.get("test_acc"), 100, 1),
                _number(final.get("test_loss"), 1, 3),
                _number(final.get("dead_fraction"), 100, 1) if record.get("layers") else NO_RECTIFIER,
                report.divergence_text(record),
                record.get("init_fingerprint", ""),
                record.get("order_fingerprint", ""),
            ]
        )
    return rows


CLAIMS_NOTE = (
    "Verdicts follow the stated rule from the numbers above. Comparisons are paired: runs of one seed share their "
    "initial weights and batches, so each seed gives one difference; the verdict is agree or disagree only when the "
    "95 % t-interval of the mean difference lies wholly on one side of the claim's threshold, else inconclusive, with "
    "the number of seeds that would decide it at the observed spread (more --seeds narrow the interval). A non-gain "
    "is a disagree. The checks use the per-channel PReLU ('prelu') where it was run, else the shared one. A seed "
    "whose run diverged has no number and leaves the pairs; a group with no number at all makes a claim "
    "inconclusive. The dead-units claim is tested by prelu dying, across learning rates."
)
DEAD_NOTE = (
    f"A unit is dead when its input is <= 0 for every one of the first {MONITOR_SAMPLES} training samples "
    "(evaluation pass after the last epoch, measured with prelu.Monitor). For PReLU such a unit still passes a "
    "scaled signal and gradient; the count shows how many units sit entirely on the negative side."
)
FAIRNESS_NOTE = (
    "Fairness: runs of one seed share the initial weights of every non-activation layer (same init fingerprint) "
    "and see the same batches in the same order (same order fingerprint)."
)


def page(
    settings: CompareSettings, data_description: str, results: Mapping[str, Any], records: Mapping[str, Any]
) -> str:
    """report.html of one compare folder."""
    summaries, target = results["summary"], settings.target
    headers, rows = table_rows(summaries, target)
    sections = [
        ("Claims", report.claims_table(results["claims"]) + report.note(CLAIMS_NOTE)),
        ("Summary (mean ± std over seeds)", report.html_table(headers, rows, ["", "num", *["num"] * 6])),
        ("Curves", report.curves_figure(summaries, target)),
        ("Dead units per layer (end of training)", report.dead_units_figure(summaries) + report.note(DEAD_NOTE)),
    ]
    slopes = report.slopes_figure(summaries)
    if slopes:
        sections.append(("Slope trajectories", slopes))
    sections.append(("Learned slopes per layer (cf. He et al., Table 1)", report.slope_table(summaries)))
    histograms = report.histograms_figure(summaries)
    if histograms:
        sections.append(("Rectifier inputs at the end (all seeds pooled)", histograms))
    run_headers = ["run", "test acc %", "test loss", "dead %", "diverged", "init fingerprint", "order fingerprint"]
    sections.append(("Runs", report.html_table(run_headers, run_rows(records)) + report.note(FAIRNESS_NOTE)))
    return report.page(
        f"prelu compare: {settings.dataset}, {settings.model}",
        sections,
        describe(settings, data_description) + ".",
        incomplete=report.incomplete_text(results),
    )


def print_results(results: Mapping[str, Any], folder: RunFolder) -> None:
    """The summary and claims tables on stdout, and where the files are."""
    config = results["config"]
    headers, rows = table_rows(results["summary"], float(config["target"]))
    console.print_table(
        f"prelu compare: {config['dataset']}, {config['model']}, {config['epochs']} epochs, mean ± std over seeds",
        headers,
        rows,
        right=[False, True, True, True, True, True, False, True],
    )
    console.print_claims_and_files(results["claims"], folder.path, folder.results_path, folder.report_path)

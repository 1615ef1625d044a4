"""The loop every experiment runs: train each run that has not finished, save each one as it
finishes, keep the summary current, and finish cleanly on Ctrl-C or SIGTERM.

Owns :class:`RunSpec`, the order of the runs, skipping finished ones (``--resume``), the per-run
callback and the interrupt path; imports :mod:`prelu.lab.runs`, :mod:`prelu.lab.files`,
:mod:`prelu.lab.train` and :mod:`prelu.lab.console`. :mod:`prelu.lab.experiment` drives it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prelu._io.jsonio import strict_json as strict
from prelu.lab.console import Progress
from prelu.lab.runs import RunFolder
from prelu.lab.train import Distributed, broadcast

Record = dict[str, Any]
"""One run's record, JSON-ready (see :func:`prelu.lab.train.train_run`)."""

CURVE_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "running_loss",
    "dead_fraction",
    "negative_fraction",
    "seconds",
)


@dataclass(frozen=True)
class RunSpec:
    """One run: ``group`` (an activation, or ``init/activation``) trained with ``seed``."""

    group: str
    seed: int

    @property
    def run_id(self) -> str:
        """The file stem of the run: ``prelu-seed0``, ``kaiming-relu-seed1``.

        >>> RunSpec("kaiming/relu", 1).run_id
        'kaiming-relu-seed1'
        """
        return f"{self.group.replace('/', '-')}-seed{self.seed}"


def curve_rows(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The record's curve flattened for CSV (one ``slope:<layer>`` column per PReLU layer) and its columns."""
    layers: list[str] = []
    rows = []
    for row in record["curve"]:
        flat = {key: value for key, value in row.items() if key != "slopes"}
        for layer, slope in (row.get("slopes") or {}).items():
            if layer not in layers:
                layers.append(layer)
            flat[f"slope:{layer}"] = slope
        rows.append(flat)
    return rows, [*CURVE_COLUMNS, *(f"slope:{layer}" for layer in layers)]


def finished_note(record: Mapping[str, Any]) -> str:
    """The one line printed when a run finishes (numbers that are missing say so)."""
    final = record["final"]

    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f} %"

    seconds = final.get("seconds_per_epoch")
    text = (
        f"finished {record['id']}: test acc {percent(final.get('test_acc'))}, dead "
        f"{percent(final.get('dead_fraction'))}, {'n/a' if seconds is None else f'{seconds:.3f}'} s/epoch"
    )
    divergence = record.get("divergence")
    if record.get("diverged"):
        statistic = divergence.get("statistic", "loss") if isinstance(divergence, dict) else "loss"
        text += f" (diverged at epoch {record['diverged']}: {statistic} not finite)"
    return text


def execute(
    folder: RunFolder,
    specs: Sequence[RunSpec],
    epochs: int,
    train_one: Callable[[RunSpec, Callable[[int, dict[str, Any]], None]], Record],
    finalize: Callable[[dict[str, Record], bool], None],
    *,
    distributed: Distributed,
    progress: bool = True,
    notes: bool = True,
    on_run: Callable[[str, Record], None] | None = None,
) -> dict[str, Record]:
    """Train every spec without a saved run, in order; returns every record (old and new) by run id.

    After each run: (rank 0) its files are written atomically, ``finalize(records, False)``
    rewrites the summary, a line is printed, then ``on_run(run_id, record)`` is called (every rank).
    At the end, or on KeyboardInterrupt (re-raised; SIGTERM arrives as one), ``finalize(records,
    True)`` writes the report.
    """
    saved = folder.finished() if distributed.is_main else {}
    saved_ids = set(broadcast(sorted(saved), distributed))
    wanted = {spec.run_id for spec in specs}
    records = {run_id: record for run_id, record in saved.items() if run_id in wanted}
    todo = [spec for spec in specs if spec.run_id not in saved_ids]
    with Progress(len(todo) * epochs, bar=distributed.is_main and progress, notes=distributed.is_main and notes) as bar:
        for problem in folder.problems:
            bar.note(problem)
        if records:
            bar.note(f"resuming {folder.path}: {len(records)} finished run(s) kept, {len(todo)} to go")
        try:
            for number, spec in enumerate(todo, start=1):
                bar.describe(f"{spec.group} seed {spec.seed} ({number}/{len(todo)})")

                def on_epoch(epoch: int, row: dict[str, Any]) -> None:
                    if epoch > 0:
                        bar.advance()

                record = train_one(spec, on_epoch)
                # As it will read back from disk: NaN and inf as None, so later steps see one shape.
                record = strict({"id": spec.run_id, "group": spec.group, **record})
                if distributed.is_main:
                    rows, columns = curve_rows(record)
                    folder.save_run(spec.run_id, record, rows, columns)
                records[spec.run_id] = record
                if distributed.is_main:
                    finalize(records, False)
                    bar.note(finished_note(record))
                if on_run is not None:
                    on_run(spec.run_id, record)
        except KeyboardInterrupt:
            if distributed.is_main:
                bar.note(f"interrupted: {len(records)} finished run(s) kept in {folder.path}; --resume continues")
                finalize(records, True)
            raise
    if distributed.is_main:
        finalize(records, True)
    return records

"""The loop both experiments share: train every (group, seed) run that has not finished, save each
one as it finishes, keep the summary current, and finish cleanly on Ctrl-C.

Owns the order of the runs, skipping finished ones (``--resume``), the per-run callback and the
interrupt path; imports :mod:`prelu.lab.runs`, :mod:`prelu.lab.train` and
:mod:`prelu.lab.console`. :mod:`prelu.lab.compare` and :mod:`prelu.lab.depth` say what a run is
and what the results look like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import prelu
from prelu.lab.config import ConfigError, choice
from prelu.lab.console import Progress
from prelu.lab.runs import RunFolder
from prelu.lab.train import DEVICES, Distributed, broadcast, distributed_from_env

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
        """The file stem of the run: ``prelu-seed0``, ``kaiming-relu-seed1``."""
        return f"{self.group.replace('/', '-')}-seed{self.seed}"


def curve_rows(record: Mapping[str, object]) -> tuple[list[dict], list[str]]:
    """The record's curve flattened for CSV (one ``slope:<layer>`` column per PReLU layer) and its columns."""
    layers: list[str] = []
    rows = []
    for row in record["curve"]:  # type: ignore[union-attr]
        flat = {key: value for key, value in row.items() if key != "slopes"}
        for layer, slope in row.get("slopes", {}).items():
            if layer not in layers:
                layers.append(layer)
            flat[f"slope:{layer}"] = slope
        rows.append(flat)
    return rows, [*CURVE_COLUMNS, *(f"slope:{layer}" for layer in layers)]


def execute(
    folder: RunFolder,
    specs: Sequence[RunSpec],
    epochs: int,
    train_one: Callable[[RunSpec, Callable[[int, dict], None]], dict],
    finalize: Callable[[dict[str, dict], bool], None],
    *,
    distributed: Distributed,
    progress: bool = True,
    notes: bool = True,
    on_run: Callable[[str, dict], None] | None = None,
) -> dict[str, dict]:
    """Train every spec without a saved run, in order; returns every record (old and new) by run id.

    After each run: (rank 0) its files are written atomically, ``finalize(records, False)``
    rewrites the summary, a line is printed, then ``on_run(run_id, record)`` is called (every rank).
    At the end, or on KeyboardInterrupt (re-raised), ``finalize(records, True)`` writes the report.
    """
    saved = folder.finished() if distributed.is_main else None
    saved_ids = broadcast(sorted(saved) if saved is not None else None, distributed)
    wanted = {spec.run_id for spec in specs}
    records = {run_id: record for run_id, record in (saved or {}).items() if run_id in wanted}
    todo = [spec for spec in specs if spec.run_id not in set(saved_ids)]  # type: ignore[arg-type]
    with Progress(len(todo) * epochs, bar=distributed.is_main and progress, notes=distributed.is_main and notes) as bar:
        if records:
            bar.note(f"resuming {folder.path}: {len(records)} finished run(s) kept, {len(todo)} to go")
        try:
            for number, spec in enumerate(todo, start=1):
                bar.describe(f"{spec.group} seed {spec.seed} ({number}/{len(todo)})")

                def on_epoch(epoch: int, row: dict) -> None:
                    if epoch > 0:
                        bar.advance()

                record = train_one(spec, on_epoch)
                record = {"id": spec.run_id, "group": spec.group, **record}
                if distributed.is_main:
                    rows, columns = curve_rows(record)
                    folder.save_run(spec.run_id, record, rows, columns)
                records[spec.run_id] = record
                if distributed.is_main:
                    finalize(records, False)
                    final = record["final"]
                    bar.note(
                        f"finished {spec.run_id}: test acc {100 * final['test_acc']:.1f} %, dead "
                        f"{100 * (final['dead_fraction'] or 0):.1f} %, {final['seconds_per_epoch'] or 0:.3f} s/epoch"
                    )
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


def prepare(folder: RunFolder, *, resume: bool, force: bool, distributed: Distributed) -> dict | None:
    """Rank 0 decides what may happen to the folder (:meth:`RunFolder.check`), every rank learns it;
    returns the stored config to resume from. Writes nothing."""
    error, stored = None, None
    if distributed.is_main:
        try:
            stored = folder.check(resume=resume, force=force)
        except ConfigError as problem:
            error = str(problem)
    error, stored = broadcast((error, stored), distributed)  # type: ignore[misc]
    if error:
        raise ConfigError(error)
    return stored


def environment(distributed: Distributed) -> dict:
    """Versions, threads and processes, for results.json."""
    return {
        "torch": torch.__version__,
        "prelu": prelu.__version__,
        "threads": torch.get_num_threads(),
        "world_size": distributed.world_size,
        "device": distributed.device,
    }


Resolve = Callable[..., dict]


def open_experiment(
    options: Mapping[str, object],
    *,
    default_device: str,
    resolve: Resolve,
    default_name: Callable[[Mapping[str, object]], str],
    out: str | Path,
    name: str | None,
    resume: bool,
    force: bool,
) -> tuple[Distributed, dict, RunFolder]:
    """The set-up both experiments share: check the device, join the process group (under
    torchrun), resolve the config, and decide what may happen to the run folder, taking a resumed
    folder's stored settings into account. Writes nothing."""
    device = str(options.get("device") or default_device)
    choice("device", device, DEVICES)
    distributed = distributed_from_env(device)
    config = resolve(options)
    folder = RunFolder(Path(out) / (name or default_name(config)))
    stored = prepare(folder, resume=resume, force=force, distributed=distributed)
    if stored is not None:
        config = resolve(options, stored)
    return distributed, config, folder

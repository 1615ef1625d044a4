"""The :class:`Experiment` protocol and :func:`run`, the one driver every experiment goes through.

Owns the eight steps every experiment shares, in this order: settings (:meth:`Experiment.resolve`)
-> validate (the experiment's constructor: data loaded, models tried, nothing written) -> open
the run folder (checked, locked, made) -> plan the runs (:meth:`Experiment.plan`) -> execute or
resume them (:meth:`Experiment.train`, each saved as it finishes; see :mod:`prelu.lab.loop`) ->
summarize -> claims -> report. Imports :mod:`prelu` (its version), :mod:`prelu.lab.config`,
:mod:`prelu.lab.files`, :mod:`prelu.lab.loop`, :mod:`prelu.lab.runs` and :mod:`prelu.lab.train`.

An experiment is a subclass of :class:`Experiment` (see :mod:`prelu.lab` for a walk-through);
everything it does not say (the folder, the lock, resume, Ctrl-C and SIGTERM, results.json's
frame, the format version, distributed set-up) happens here, alike for all.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import torch

import prelu
from prelu.lab.config import ConfigError, as_dict, choice, merge, typed
from prelu.lab.files import write_json, write_text
from prelu.lab.lock import FolderLock
from prelu.lab.loop import Record, RunSpec, execute
from prelu.lab.runs import FORMAT, RunFolder, folder_path
from prelu.lab.train import DEVICES, Distributed, TrainSettings, broadcast, distributed_from_env

__all__ = ["Experiment", "Record", "RunSpec", "run"]

S = TypeVar("S")


class Experiment(abc.ABC, Generic[S]):
    """One kind of experiment: its settings type ``S`` (a frozen dataclass), its runs, its summary,
    claims and report. The driver (:func:`run`) calls the hooks in the order they are listed.

    Class attributes: ``kind`` (the command, also written into config.json: a folder made by one
    kind is never resumed by another), ``settings_type`` (``S`` itself), ``defaults`` (every
    option and its default, None = decided in :meth:`complete`; the CLI's flags are these keys),
    ``run_set`` (the options that say which runs to do, allowed to grow on ``--resume``; every
    other stored setting is fixed). The constructor sets ``training``, how every run trains.
    """

    kind: ClassVar[str]
    settings_type: ClassVar[type[Any]]
    defaults: ClassVar[Mapping[str, object]]
    run_set: ClassVar[tuple[str, ...]] = ("seeds",)
    training: TrainSettings

    @classmethod
    def resolve(cls, options: Mapping[str, object], stored: Mapping[str, object] | None = None) -> S:
        """Step 1. The typed settings: ``defaults``, then a resumed folder's ``stored`` config, then
        the ``options`` given (None = not given; see :func:`prelu.lab.config.merge`), names in
        lists lower-cased, :meth:`complete`, each value's type checked (:func:`~prelu.lab.config.typed`)."""
        config = merge(cls.defaults, options, stored, cls.run_set)
        for key, value in config.items():
            if isinstance(value, (list, tuple)):  # --activations PReLU: names are matched without case
                config[key] = [item.strip().lower() if isinstance(item, str) else item for item in value]
        source = "the settings" if stored is None else "the resumed folder's config.json"
        settings: S = typed(cls.settings_type, cls.complete(config), source=source)
        return settings

    @classmethod
    def complete(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Fill in the settings whose default depends on others (None in ``defaults``)."""
        return config

    @classmethod
    @abc.abstractmethod
    def default_name(cls, settings: S) -> str:
        """The run folder's name when ``--name`` is not given (one safe folder name)."""

    @classmethod
    def run(cls, **arguments: Any) -> dict[str, Any]:
        """:func:`run` this experiment: ``name``, ``out``, ``resume``, ``force``, ``wait``,
        ``progress``, ``quiet``, ``on_run`` and the options of ``defaults`` (None = the default)."""
        return run(cls, **arguments)

    def __init__(self, settings: S, distributed: Distributed) -> None:
        """Step 2. Check every setting, load the data, try the models, set ``training``; write
        nothing (a :class:`~prelu.lab.config.ConfigError` says what is wrong)."""
        self.settings = settings
        self.distributed = distributed

    @property
    def epochs(self) -> int:
        """Epochs per run (the progress bar's unit)."""
        return self.training.epochs

    @abc.abstractmethod
    def plan(self) -> list[RunSpec]:
        """Step 4. Every run, in the order they train."""

    @abc.abstractmethod
    def train(self, spec: RunSpec, on_epoch: Callable[[int, dict[str, Any]], None]) -> Record:
        """Step 5. Train one run; its record (JSON-ready; :func:`prelu.lab.train.train_run` makes most of it).
        The driver adds ``id`` and ``group``."""

    @abc.abstractmethod
    def summarize(self, records: Mapping[str, Record]) -> dict[str, Any]:
        """Step 6. One summary per group (:func:`prelu.lab.summary.summarize`), from the finished runs by id."""

    @abc.abstractmethod
    def claims(self, records: Mapping[str, Record], summary: Mapping[str, Any]) -> list[dict[str, str]]:
        """Step 7. The claims checked against the numbers (:mod:`prelu.lab.claims`)."""

    def run_entry(self, record: Record) -> dict[str, Any]:
        """One run's line in results.json's ``runs`` (its record without the curves)."""
        keys = ("id", "group", "seed", "final", "diverged", "divergence")
        return {key: record.get(key) for key in keys}

    @abc.abstractmethod
    def report(self, results: Mapping[str, Any], records: Mapping[str, Record]) -> str:
        """Step 8. report.html (every string from settings, models or data escaped: :mod:`prelu.lab.report`)."""

    @abc.abstractmethod
    def print_results(self, results: Mapping[str, Any], records: Mapping[str, Record], folder: RunFolder) -> None:
        """The tables on stdout when the run ends (not with ``quiet``)."""


def environment(distributed: Distributed) -> dict[str, Any]:
    """Versions, threads and processes, for results.json."""
    return {
        "torch": torch.__version__,
        "prelu": prelu.__version__,
        "threads": torch.get_num_threads(),
        "world_size": distributed.world_size,
        "device": distributed.device,
    }


def _on_rank_zero(distributed: Distributed, step: Callable[[], Any]) -> Any:
    """``step()`` on rank 0, its result (or its ConfigError) on every rank."""
    error, value = None, None
    if distributed.is_main:
        try:
            value = step()
        except ConfigError as problem:
            error = str(problem)
    error, value = broadcast((error, value), distributed)
    if error:
        raise ConfigError(error)
    return value


def run(
    experiment_type: type[Experiment[S]],
    *,
    name: str | None = None,
    out: str | Path = "runs",
    resume: bool = False,
    force: bool = False,
    wait: bool = False,
    progress: bool = True,
    quiet: bool = False,
    on_run: Callable[[str, Record], None] | None = None,
    **options: object,
) -> dict[str, Any]:
    """Run one experiment of ``experiment_type`` with ``options`` and return its results (as written
    to ``<out>/<name>/results.json``).

    Everything is validated before the run folder is touched (:class:`ConfigError` otherwise). The
    folder is locked while the experiment runs (``wait``: wait for another writer instead of being
    refused). ``on_run(run_id, record)`` is called after each finished run is saved. Under
    ``torchrun`` the runs train with DistributedDataParallel and only rank 0 writes or prints.
    """
    device = str(options.get("device") or experiment_type.defaults["device"])
    choice("device", device, DEVICES)
    distributed = distributed_from_env(device)
    settings = experiment_type.resolve(options)
    folder = RunFolder(folder_path(out, experiment_type.default_name(settings) if name is None else name))
    kind = experiment_type.kind
    stored = _on_rank_zero(distributed, lambda: folder.check(kind=kind, resume=resume, force=force))
    if stored is not None:
        fields = {key: stored[key] for key in experiment_type.defaults if key in stored}
        typed(experiment_type.settings_type, fields, source=str(folder.config_path))  # a wrongly shaped file
        settings = experiment_type.resolve(options, stored)
    experiment = experiment_type(settings, distributed)
    specs = experiment.plan()

    held: list[FolderLock] = []  # rank 0's lock, released when the experiment ends however it ends

    def open_folder() -> None:
        lock = folder.lock(wait=wait)
        held.append(lock)
        folder.check(kind=kind, resume=resume, force=force)  # again, now that no one else can write it
        folder.create(kind, as_dict(settings), force=force)

    results: dict[str, Any] = {}

    def finalize(records: dict[str, Record], final: bool) -> None:
        summary = experiment.summarize(records)
        results.clear()
        results.update(
            experiment=kind,
            format=FORMAT,
            config=as_dict(settings),
            complete=all(spec.run_id in records for spec in specs),
            finished=sum(spec.run_id in records for spec in specs),
            expected=len(specs),
            environment=environment(distributed),
            claims=experiment.claims(records, summary),
            summary=summary,
            runs=[experiment.run_entry(record) for record in records.values()],
        )
        write_json(folder.results_path, results)
        if final:
            write_text(folder.report_path, experiment.report(results, records))

    try:
        _on_rank_zero(distributed, open_folder)
        records = execute(
            folder,
            specs,
            experiment.epochs,
            experiment.train,
            finalize,
            distributed=distributed,
            progress=progress and not quiet,
            notes=not quiet,
            on_run=on_run,
        )
    finally:
        for lock in held:
            lock.release()
    if distributed.is_main and not quiet:
        experiment.print_results(results, records, folder)
    return results

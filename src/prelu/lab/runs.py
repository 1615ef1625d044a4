"""The run folder: its layout, what has finished, and what ``--resume`` and ``--force`` may do to it.

Owns the layout of ``<out>/<name>/`` and the rules for opening it; imports
:mod:`prelu.lab.config`, :mod:`prelu.lab.files` and :mod:`prelu.lab.lock`.

::

    <out>/<name>/config.json        the experiment kind, the format version and the resolved settings
    <out>/<name>/runs/<id>.json     one finished run (e.g. activation x seed): its record
    <out>/<name>/curves/<id>.csv    the same run's per-epoch numbers
    <out>/<name>/results.json       the summary of every finished run, rewritten after each one
    <out>/<name>/report.html        the report (self-contained)
    <out>/<name>/.lock              held (flock) by the one process writing the folder

A run counts as finished once its JSON exists and reads back as a run record, so an interrupted
experiment keeps every finished run and ``--resume`` skips them; a run file that cannot be read
is named and its run done again. The rules:

- ``--name`` is one folder name: ``..``, ``.``, an absolute path or a ``/`` would leave ``--out``.
- A folder belongs to the experiment kind in its ``config.json``: resuming it as another is refused.
- ``--force`` deletes only a run folder this lab made (a ``config.json`` naming a kind); anything
  else is refused and left as it was.
- Format 1 is 0.1's folders (no ``format`` key, the same layout); they still resume.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prelu.lab.config import ConfigError
from prelu.lab.files import read_json, read_object, write_csv, write_json
from prelu.lab.lock import LOCK_NAME, FolderLock

CONFIG = "config.json"
RESULTS = "results.json"
REPORT = "report.html"
FORMAT = 2
"""The format version written into config.json and results.json."""
READABLE = (1, 2)
"""The formats this version reads (1: 0.1's folders, which carry no version)."""


def folder_path(out: str | Path, name: str) -> Path:
    """``out / name``, once ``name`` is known to be one folder name that stays under ``out``.

    >>> folder_path("runs", "tiny").as_posix()
    'runs/tiny'
    >>> folder_path("runs", "../keep")
    Traceback (most recent call last):
    ...
    prelu.lab.config.ConfigError: --name '../keep' must be a single folder name under --out (not '.', '..', \
an absolute path or a path with '/')
    """
    separators = [os.sep, "/", *([os.altsep] if os.altsep else [])]
    if (
        not name
        or name.strip() in (".", "..", "")
        or any(separator in name for separator in separators)
        or "\0" in name
        or Path(name).is_absolute()
    ):
        raise ConfigError(
            f"--name {name!r} must be a single folder name under --out (not '.', '..', an absolute path or a path "
            "with '/')"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    return out / name


def has_run_shape(value: object) -> bool:
    """Whether ``value`` has what every experiment's run record has: a ``final`` dict, a non-empty
    ``curve`` of rows (dicts) and an integer ``seed``."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("final"), dict)
        and isinstance(value.get("curve"), list)
        and bool(value["curve"])
        and all(isinstance(row, dict) for row in value["curve"])
        and isinstance(value.get("seed"), int)
    )


def is_record(value: object) -> bool:
    """Whether ``value`` has the shape of a run record (what :func:`prelu.lab.train.train_run` returns)."""
    return (
        has_run_shape(value)
        and isinstance(value, dict)
        and isinstance(value.get("layers"), list)
        and isinstance(value.get("epochs"), int)
    )


class RunFolder:
    """One experiment's folder (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.problems: list[str] = []
        """Run files that could not be read by the last :meth:`finished` (their runs are done again)."""

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    def run_path(self, run_id: str) -> Path:
        return self.path / "runs" / f"{run_id}.json"

    def curve_path(self, run_id: str) -> Path:
        return self.path / "curves" / f"{run_id}.csv"

    def is_fresh(self) -> bool:
        """Whether the folder is missing, or empty but for the lock (free to start in)."""
        if not self.path.is_dir() or self.path.is_symlink():
            return not self.path.exists() and not self.path.is_symlink()
        return all(entry.name == LOCK_NAME for entry in self.path.iterdir())

    def stored_config(self) -> dict[str, Any] | None:
        """The config the folder was made with (None when it has no config.json); a
        :class:`ConfigError` naming the file when it is unreadable, not a lab config, or of an unknown format."""
        if not self.config_path.is_file():
            return None
        stored = read_object(self.config_path)
        kind = stored.get("experiment")
        if not isinstance(kind, str):
            raise ConfigError(f"{self.config_path} names no experiment kind: it was not written by prelu's lab")
        version = stored.get("format", 1)
        if version not in READABLE:
            raise ConfigError(
                f"{self.config_path} has format {version!r}; this prelu reads formats "
                f"{', '.join(map(str, READABLE))} (was it made by a newer prelu?)"
            )
        return stored

    def finished(self, accept: Callable[[object], bool] = is_record) -> dict[str, dict[str, Any]]:
        """Every finished run's record, by run id; unreadable run files (and ones ``accept`` refuses: by
        default, anything not shaped as :func:`is_record`) are listed in :attr:`problems`."""
        self.problems = []
        folder = self.path / "runs"
        if not folder.is_dir():
            return {}
        found = {}
        for path in sorted(folder.glob("*.json")):
            try:
                record = read_json(path)
            except ConfigError as error:
                self.problems.append(f"{error}; its run is done again")
                continue
            if not accept(record):
                self.problems.append(f"{path} is not a run record (wrong shape); its run is done again")
                continue
            found[path.stem] = record
        return found

    def check(self, *, kind: str, resume: bool, force: bool) -> dict[str, Any] | None:
        """Decide what may happen to the folder, writing nothing; returns the stored config to resume from.

        Raises:
            ConfigError: ``--resume`` with ``--force``; the folder exists and neither is given; it is
                not a run folder (or not a folder) and ``--resume`` or ``--force`` is given; it was
                made by another kind of experiment and ``--resume`` is given; its config.json is
                unreadable (the error names the file).
        """
        if resume and force:
            raise ConfigError(
                "--resume and --force contradict each other: --resume keeps finished runs, --force deletes them"
            )
        if self.is_fresh():
            return None
        if self.path.is_symlink() or not self.path.is_dir():
            raise ConfigError(f"{self.path} exists and is not a folder (or is a link); choose another --name or --out")
        if force:
            try:
                stored = self.stored_config()
            except ConfigError as error:
                raise ConfigError(f"--force deletes only run folders made by prelu's lab: {error}") from None
            if stored is None:
                raise ConfigError(
                    f"{self.path} has no {CONFIG}: it is not a run folder made by prelu's lab, and --force deletes "
                    "only those; choose another --name or --out"
                )
            return None
        stored = self.stored_config()
        if resume:
            if stored is None:
                raise ConfigError(
                    f"{self.path} has no {CONFIG}: it is not a run folder to resume; choose another --name"
                )
            if stored["experiment"] != kind:
                raise ConfigError(
                    f"{self.path} holds a 'prelu {stored['experiment']}' experiment; resume it with prelu "
                    f"{stored['experiment']}, or choose another --name for prelu {kind}"
                )
            return stored
        count = len(self.finished())
        raise ConfigError(
            f"{self.path} exists ({count} finished run(s)); pass --resume to continue it, --force to delete it and "
            "start over, or choose another --name"
        )

    def lock(self, *, wait: bool = False) -> FolderLock:
        """Make the folder if needed and take its lock (see :mod:`prelu.lab.lock`)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return FolderLock(self.path, wait=wait).acquire()

    def create(self, kind: str, settings: Mapping[str, object], *, force: bool) -> None:
        """Fill the folder (after :meth:`check`, holding the lock): ``force`` first deletes everything in it
        but the lock; the config is written when the folder has none."""
        if force:
            for entry in self.path.iterdir():
                if entry.name == LOCK_NAME:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        (self.path / "runs").mkdir(parents=True, exist_ok=True)
        (self.path / "curves").mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            write_json(self.config_path, {"experiment": kind, "format": FORMAT, **settings})

    def save_run(
        self, run_id: str, record: Mapping[str, object], rows: Iterable[Mapping[str, object]], columns: Sequence[str]
    ) -> None:
        """Write one finished run: its curve CSV (``rows``) first, then its JSON (which marks it finished)."""
        write_csv(self.curve_path(run_id), rows, columns)
        write_json(self.run_path(run_id), record)

"""The run folder: atomic writes, what has finished, ``--resume`` and ``--force``.

Owns the layout of ``<out>/<name>/`` and every write into it; imports :mod:`prelu.lab.config`.

::

    <out>/<name>/config.json        the resolved settings (written once, when the folder is made)
    <out>/<name>/runs/<id>.json     one finished run (activation x seed): its record
    <out>/<name>/curves/<id>.csv    the same run's per-epoch numbers
    <out>/<name>/results.json       the summary of every finished run, rewritten after each one
    <out>/<name>/report.html        the report (self-contained)

Every file is written to a temporary file in the same folder and moved over the target with
``os.replace``, which is atomic on POSIX and Windows: a Ctrl-C or a kill leaves either the old
file or the new one, never half of one. A run counts as finished once its JSON exists, so an
interrupted experiment keeps every finished run and ``--resume`` skips them.

>>> import json, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_json(folder / "a.json", {"x": float("nan"), "y": [1.5]})
>>> json.loads((folder / "a.json").read_text())
{'x': None, 'y': [1.5]}
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from prelu.lab.config import ConfigError

CONFIG = "config.json"
RESULTS = "results.json"
REPORT = "report.html"


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def _clean(value: object) -> object:
    """JSON-ready: NaN and infinities become None (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


def write_json(path: str | Path, data: object) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (NaN and inf as null)."""
    return write_text(path, json.dumps(_clean(data), indent=1, allow_nan=False) + "\n")


def write_csv(path: str | Path, rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts; missing keys empty) as CSV with ``columns`` to ``path`` atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return write_text(path, buffer.getvalue())


def read_json(path: str | Path) -> object:
    """The JSON in ``path``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


class RunFolder:
    """One experiment's folder (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

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

    def stored_config(self) -> dict | None:
        """The config the folder was made with; None when there is none."""
        if not self.config_path.is_file():
            return None
        return read_json(self.config_path)  # type: ignore[return-value]

    def finished(self) -> dict[str, dict]:
        """Every finished run's record, by run id."""
        folder = self.path / "runs"
        if not folder.is_dir():
            return {}
        found = {}
        for path in sorted(folder.glob("*.json")):
            try:
                found[path.stem] = read_json(path)
            except (OSError, ValueError):
                continue  # not one of ours (atomic writes never leave a partial file)
        return found

    def check(self, *, resume: bool, force: bool) -> dict | None:
        """Decide what may happen to the folder, writing nothing; returns the stored config to resume from.

        Raises:
            ConfigError: ``--resume`` with ``--force``; the folder exists and neither is given; it
                exists but is not a run folder and ``--resume`` is given.
        """
        if resume and force:
            raise ConfigError(
                "--resume and --force contradict each other: --resume keeps finished runs, --force deletes them"
            )
        if not self.path.exists() or force:
            if force and self.path.exists() and not self.path.is_dir():
                raise ConfigError(f"{self.path} exists and is not a folder; --force only replaces run folders")
            return None
        if not self.path.is_dir():
            raise ConfigError(f"{self.path} exists and is not a folder; choose another --name or --out")
        stored = self.stored_config()
        if resume:
            if stored is None:
                raise ConfigError(
                    f"{self.path} has no {CONFIG}: it is not a run folder to resume; choose another --name"
                )
            return stored
        count = len(self.finished())
        raise ConfigError(
            f"{self.path} exists ({count} finished run(s)); pass --resume to continue it, --force to delete it and "
            "start over, or choose another --name"
        )

    def create(self, config: Mapping[str, object], *, force: bool) -> None:
        """Make the folder (after :meth:`check`): ``force`` deletes an existing one first; the config is written
        when the folder has none."""
        if force and self.path.exists():
            shutil.rmtree(self.path)
        (self.path / "runs").mkdir(parents=True, exist_ok=True)
        (self.path / "curves").mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            write_json(self.config_path, config)

    def save_run(
        self, run_id: str, record: Mapping[str, object], rows: Iterable[Mapping[str, object]], columns: Sequence[str]
    ) -> None:
        """Write one finished run: its curve CSV (``rows``) first, then its JSON (which marks it finished)."""
        write_csv(self.curve_path(run_id), rows, columns)
        write_json(self.run_path(run_id), record)

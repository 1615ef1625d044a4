"""The run folder: atomic writes, what has finished, ``--resume`` and ``--force``.

Owns the layout of ``<out>/<name>/`` and every write into it; imports :mod:`prelu.lab.config` and
writes through :mod:`prelu._io` (atomic writes, strict JSON, CSV).

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

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from prelu._io import csvio
from prelu._io.atomic import write_text as write_text  # re-exported: compare and depth write through runs
from prelu._io.jsonio import write_json
from prelu.lab.config import ConfigError

CONFIG = "config.json"
RESULTS = "results.json"
REPORT = "report.html"


def write_csv(path: str | Path, rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts; missing keys empty, extra keys left out) as CSV with ``columns`` atomically."""
    return csvio.write_csv(path, [{key: row.get(key) for key in columns} for row in rows], columns)


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

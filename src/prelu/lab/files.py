"""Safe file writes and reads for the lab: atomic, umask-respecting, strict JSON, errors naming the file.

Owns every byte the lab writes and every JSON file it reads back; imports :mod:`prelu.lab.config`.

Every file is written to a temporary file in the same folder and moved over the target with
``os.replace``, which is atomic on POSIX and Windows: a Ctrl-C, a kill or a full disk leaves
either the old file or the new one, never half of one. The temporary file is made by
``tempfile.mkstemp`` (mode 0600, so no other user can read it while it is written) and given
the mode an ordinary ``open()`` would have (0666 less the umask) before it takes the target's
place. JSON is strict: NaN and infinities are written as null.

>>> import json, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_json(folder / "a.json", {"x": float("nan"), "y": [1.5]})
>>> read_json(folder / "a.json")
{'x': None, 'y': [1.5]}
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prelu.lab.config import ConfigError


def _umask() -> int:
    """The process's umask (read by setting it and putting it back: POSIX has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
            if hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def strict(value: Any) -> Any:
    """JSON-ready: NaN and infinities become None (strict JSON has no NaN), tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    return value


def write_json(path: str | Path, data: object) -> Path:
    """Write ``data`` as indented strict JSON to ``path`` atomically (NaN and inf as null)."""
    return write_text(path, json.dumps(strict(data), indent=1, allow_nan=False) + "\n")


def write_csv(path: str | Path, rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts; missing keys and None empty) as CSV with ``columns`` to ``path`` atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return write_text(path, buffer.getvalue())


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a :class:`ConfigError` naming the file when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None


def read_object(path: str | Path) -> dict[str, Any]:
    """The JSON object (dict) in ``path``; a :class:`ConfigError` naming the file otherwise."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise ConfigError(f"{path} does not hold a JSON object (found {type(value).__name__})")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")

"""Safe file writes and reads for the lab: atomic, umask-respecting, strict JSON, errors naming the file.

Owns how the lab writes and reads its files: the writes are :mod:`prelu._io`'s (atomic, umask,
strict JSON), the reads name the file in a :class:`ConfigError`; imports :mod:`prelu._io` and
:mod:`prelu.lab.config`.

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

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prelu._io import csvio
from prelu._io.atomic import write_bytes as write_bytes  # re-exported: the lab writes through this module
from prelu._io.atomic import write_text as write_text
from prelu._io.jsonio import write_json as write_json
from prelu.lab.config import ConfigError


def write_csv(path: str | Path, rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts; missing keys and None empty, keys outside ``columns`` left out) as CSV atomically."""
    return csvio.write_csv(path, [{key: row.get(key) for key in columns} for row in rows], columns)


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

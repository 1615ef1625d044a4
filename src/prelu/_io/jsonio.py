"""Strict JSON: what ``json.dumps(..., allow_nan=False)`` accepts, and the one cleaner that makes it so.

Owns turning Python values into strict JSON (NaN and infinities become ``null``: RFC 8259 has no
NaN, and browsers and ``jq`` refuse Python's ``NaN``), writing it atomically, and reading JSON with
errors that name the file. Imports only :mod:`prelu._io.atomic`.

>>> strict_json({"loss": float("nan"), "steps": (1, 2.5), 3: float("inf")})
{'loss': None, 'steps': [1, 2.5], '3': None}
>>> import pathlib, tempfile
>>> path = write_json(pathlib.Path(tempfile.mkdtemp()) / "a.json", {"x": float("-inf")})
>>> read_json(path)
{'x': None}
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prelu._io.atomic import write_text


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, tuples and sets as lists, mapping
    keys as strings and dataclass instances as dicts; anything else is left for :mod:`json`."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return strict_json(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [strict_json(item) for item in value]
    return value


def dumps(value: Any, indent: int | None = 1) -> str:
    """``value`` as strict JSON text (see :func:`strict_json`), ending in a newline.

    >>> dumps([1.0, float("nan")], indent=None)
    '[1.0, null]\\n'
    """
    return json.dumps(strict_json(value), indent=indent, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write ``value`` as indented strict JSON to ``path``, atomically."""
    return write_text(path, dumps(value))


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON in ``path``; a ValueError naming the file when it is not JSON."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None

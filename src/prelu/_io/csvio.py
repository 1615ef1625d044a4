"""CSV files of dict rows: written atomically with fixed columns, read back as strings.

Owns the CSV dialect of every file :mod:`prelu` writes (comma, ``\\n`` line ends, a header row)
and reading such files. Imports only :mod:`prelu._io.atomic`.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
>>> _ = write_csv(path, [{"name": "conv1", "value": 0.25}, {"name": "fc"}], ["name", "value"])
>>> print(path.read_text(), end="")
name,value
conv1,0.25
fc,
>>> read_csv(path)
[{'name': 'conv1', 'value': '0.25'}, {'name': 'fc', 'value': ''}]
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from prelu._io.atomic import write_text


def csv_text(rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> str:
    """``rows`` under the header ``columns`` as CSV text.

    A key missing from a row, or None, is written empty; keys not in ``columns`` are refused
    (ValueError), so a misspelt column cannot vanish silently.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> Path:
    """Write :func:`csv_text` of ``rows`` to ``path`` atomically."""
    return write_text(path, csv_text(rows, columns))


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of the CSV at ``path``, each a dict from the header's names to strings."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))

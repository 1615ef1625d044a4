"""prelu._io: output plumbing shared by every layer.

Owns one table type rendered to plain text, markdown, rich and HTML (:mod:`~prelu._io.table`),
atomic file writes (:mod:`~prelu._io.atomic`), strict JSON (:mod:`~prelu._io.jsonio`), CSV
(:mod:`~prelu._io.csvio`) and the description of the machine a number was measured on
(:mod:`~prelu._io.machine`).

Imports nothing from :mod:`prelu` (it is the lowest layer); torch only in :mod:`~prelu._io.machine`,
rich only when a table is rendered with it.
"""

from prelu._io.atomic import write_bytes, write_text
from prelu._io.csvio import read_csv, write_csv
from prelu._io.jsonio import read_json, strict_json, write_json
from prelu._io.machine import cpu_model, machine_info
from prelu._io.table import Table

__all__ = [
    "Table",
    "cpu_model",
    "machine_info",
    "read_csv",
    "read_json",
    "strict_json",
    "write_bytes",
    "write_csv",
    "write_json",
    "write_text",
]

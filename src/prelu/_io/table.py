"""Plain-text tables for the tools' reports (convert, init, slopes).

Owns only the layout of rows of strings into aligned columns; imports nothing from :mod:`prelu`.

>>> print(format_table(["name", "count"], [["conv1", "64"], ["fc", "10"]]))
name   count
-----  -----
conv1     64
fc        10
"""

from __future__ import annotations

from collections.abc import Sequence


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Align ``rows`` under ``headers``; number columns, except the first (names), are right-aligned."""
    columns = list(zip(*([list(headers)] + [list(row) for row in rows]), strict=True))
    widths = [max(len(cell) for cell in column) for column in columns]
    numeric = [
        i > 0 and bool(rows) and all(_is_number(row[i]) or row[i] == "" for row in rows) for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * width for width in widths])]
    out.extend(line(row) for row in rows)
    return "\n".join(out)

"""One table type, rendered four ways: plain text, markdown, rich and HTML.

Owns the layout of a titled grid of strings. Every report in :mod:`prelu` (convert, init, slopes,
the benchmarks) builds a :class:`Table` and picks a renderer, so a table looks the same everywhere
and HTML is escaped in one place. Imports nothing from :mod:`prelu`; rich only in
:meth:`Table.to_rich`.

>>> table = Table(["name", "count"], [["conv1", "64"], ["fc", "10"]])
>>> print(table.to_text())
name   count
-----  -----
conv1     64
fc        10
>>> print(table.to_markdown())
| name | count |
|---|---|
| conv1 | 64 |
| fc | 10 |
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from typing import Any, Literal

Align = Literal["left", "right"]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Table:
    """A titled grid of strings.

    Attributes:
        columns: the header, one name per column.
        rows: the cells, each row as long as ``columns`` (checked: ValueError naming the row).
        title: printed above the table ('' for none).
        align: 'left' or 'right' per column; default: columns whose every cell is a number (or
            empty) are right-aligned, except the first, which holds names.
    """

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    title: str = ""
    align: Sequence[str] | None = None

    def __post_init__(self) -> None:
        for number, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"row {number} has {len(row)} cells, the table {len(self.columns)} columns "
                    f"({', '.join(self.columns)}): {list(row)}"
                )
        if self.align is not None and len(self.align) != len(self.columns):
            raise ValueError(f"align has {len(self.align)} entries for {len(self.columns)} columns")
        if self.align is not None and not set(self.align) <= {"left", "right"}:
            raise ValueError(f"align entries must be 'left' or 'right', got {list(self.align)}")

    def alignment(self) -> list[Align]:
        """The alignment of each column (see the class docstring)."""
        if self.align is not None:
            return ["right" if side == "right" else "left" for side in self.align]
        return [
            "right"
            if index > 0 and self.rows and all(_is_number(row[index]) or row[index] == "" for row in self.rows)
            else "left"
            for index in range(len(self.columns))
        ]

    def to_text(self) -> str:
        """Columns padded to one width and separated by two spaces; a dashed rule under the header."""
        grid = [list(self.columns), *(list(row) for row in self.rows)]
        widths = [max(len(row[index]) for row in grid) for index in range(len(self.columns))]
        right = [side == "right" for side in self.alignment()]

        def line(cells: Sequence[str]) -> str:
            parts = [
                cell.rjust(width) if is_right else cell.ljust(width)
                for cell, width, is_right in zip(cells, widths, right, strict=True)
            ]
            return "  ".join(parts).rstrip()

        lines = [self.title] if self.title else []
        lines += [line(self.columns), line(["-" * width for width in widths])]
        lines += [line(row) for row in self.rows]
        return "\n".join(lines)

    def to_markdown(self, heading: str = "##") -> str:
        """A GitHub markdown table, the title as a ``heading`` line above it; ``|`` in cells escaped.

        >>> print(Table(["a|b"], [["1"]], title="T").to_markdown())
        ## T
        <BLANKLINE>
        | a\\|b |
        |---|
        | 1 |
        """

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        lines = [f"{heading} {self.title}", ""] if self.title else []
        lines += [line(self.columns), "|" + "---|" * len(self.columns)]
        lines += [line(row) for row in self.rows]
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML ``<table>`` with the title as ``<caption>``; every cell and the title escaped.

        >>> print(Table(["name"], [["<script>"]], title="a & b").to_html())
        <table>
        <caption>a &amp; b</caption>
        <thead><tr><th>name</th></tr></thead>
        <tbody>
        <tr><td>&lt;script&gt;</td></tr>
        </tbody>
        </table>
        """
        styles = [' class="num"' if side == "right" else "" for side in self.alignment()]
        lines = ["<table>"]
        if self.title:
            lines.append(f"<caption>{html.escape(self.title)}</caption>")
        header = "".join(
            f"<th{style}>{html.escape(name)}</th>" for name, style in zip(self.columns, styles, strict=True)
        )
        lines += [f"<thead><tr>{header}</tr></thead>", "<tbody>"]
        for row in self.rows:
            cells = "".join(f"<td{style}>{html.escape(cell)}</td>" for cell, style in zip(row, styles, strict=True))
            lines.append(f"<tr>{cells}</tr>")
        lines += ["</tbody>", "</table>"]
        return "\n".join(lines)

    def to_rich(self) -> Any:
        """A ``rich.table.Table`` (needs rich, the ``bench`` extra); cells are not read as markup.

        >>> Table(["a"], [["[red]x"]]).to_rich().row_count
        1
        """
        from rich.table import Table as RichTable
        from rich.text import Text

        table = RichTable(title=self.title or None, title_justify="left")
        for name, side in zip(self.columns, self.alignment(), strict=True):
            table.add_column(Text(name), justify=side)
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))
        return table

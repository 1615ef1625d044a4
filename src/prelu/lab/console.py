"""What the lab prints: a rich progress bar over the epochs of every run, and rich tables.

Owns terminal output only; imports nothing from :mod:`prelu`. The progress bar goes to stderr and
is drawn only on a terminal; a one-line note per finished run goes to stderr either way, so a log
file shows the experiment advancing. Tables go to stdout. Text is printed as text: a ``[`` in a
model or layer name is not read as rich markup.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any


class Progress:
    """A progress bar over ``total`` epochs (all runs together) when ``bar``; :meth:`note` lines when ``notes``."""

    def __init__(self, total: int, *, bar: bool = True, notes: bool = True) -> None:
        self.enabled = bar
        self.notes = notes
        self.total = total
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True)
        self._progress = rich_progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        rich_progress.start()
        self._task = rich_progress.add_task("starting", total=self.total)
        return self

    def describe(self, text: str) -> None:
        """Show ``text`` beside the bar (the run being trained)."""
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def advance(self, epochs: int = 1) -> None:
        """Move the bar on by ``epochs``."""
        if self._progress is not None:
            self._progress.update(self._task, advance=epochs)

    def note(self, text: str) -> None:
        """One line on stderr (above the bar when there is one)."""
        if not self.notes:
            return
        if self._progress is not None and self._progress.console.is_terminal:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


def print_claims_and_files(
    claims: Sequence[Mapping[str, Any]], folder: os.PathLike[str], results: os.PathLike[str], report: os.PathLike[str]
) -> None:
    """The claims table (each claim's verdict with its interval where it has one) and where the run
    folder's files are: the last thing every experiment prints."""
    print_table(
        "claims",
        ["claim", "our number", "verdict"],
        [[claim["claim"], claim["number"], claim.get("verdict_text", claim["verdict"])] for claim in claims],
    )
    print(f"wrote {results}, {report}, runs/ and curves/ in {folder}")


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[bool] = ()
) -> None:
    """A rich table on stdout (plain columns when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left", show_lines=False)
    for index, header in enumerate(headers):
        if index < len(right) and right[index]:
            table.add_column(Text(header), justify="right", overflow="fold")
        else:
            table.add_column(Text(header), justify="left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))
    Console(width=max(Console().width, 160) if not sys.stdout.isatty() else None).print(table)

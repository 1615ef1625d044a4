"""Reports made of rows with a ``name``: :class:`NamedRows`, the base of the slope table
(:class:`prelu.tools.slope_table.SlopeTable`) and the init report (:class:`prelu.init.InitReport`).

Owns iterating, counting and looking rows up by name; imports nothing from prelu.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Row:
...     name: str
...     value: int
>>> @dataclass(frozen=True)
... class Report(NamedRows[Row]):
...     rows: tuple[Row, ...]
...     def named_rows(self) -> tuple[Row, ...]:
...         return self.rows
>>> report = Report((Row("conv1", 1), Row("conv2", 2)))
>>> len(report), report["conv2"].value, [row.name for row in report]
(2, 2, ['conv1', 'conv2'])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


RowT = TypeVar("RowT", bound=Named)


class NamedRows(Generic[RowT]):
    """Iterate a report for its rows, ``len()`` it, ``report[name]`` for the row called ``name``."""

    def named_rows(self) -> tuple[RowT, ...]:
        """The rows, in order (each subclass says where they are kept)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[RowT]:
        return iter(self.named_rows())

    def __len__(self) -> int:
        return len(self.named_rows())

    def __getitem__(self, name: str) -> RowT:
        """The row called ``name``."""
        for row in self.named_rows():
            if row.name == name:
                return row
        raise KeyError(name)

"""What :func:`prelu.convert` did: :class:`ConversionReport`, one :class:`Replacement` per module.

Owns the report's records and its text table; imports :mod:`prelu.tools.walk` (the functional
rectifiers it lists) and :mod:`prelu._io.table`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prelu._io.table import Table
from prelu.tools import walk


@dataclass(frozen=True)
class Replacement:
    """One activation module replaced by :func:`convert` (one row of the report)."""

    names: tuple[str, ...]
    """Every qualified name under which the module was registered."""
    before: str
    """``repr`` of the module replaced."""
    after: str
    """``repr`` of its replacement."""
    calls: int
    """How many times the forward pass on ``example_input`` called it (0 without one)."""
    input_shapes: tuple[tuple[int, ...], ...]
    """The distinct input shapes it saw, in call order."""
    channel_dim: int | None
    """The channel axis of a per-channel replacement, else None."""
    note: str = ""
    """Why the axis or a flag was chosen, or that the module is tied."""

    @property
    def name(self) -> str:
        """Its first qualified name."""
        return self.names[0]

    @property
    def tied(self) -> bool:
        """True when one module serves several places (called more than once, or registered
        under several names): its replacement is one module too, so those places share slopes."""
        return self.calls > 1 or len(self.names) > 1


@dataclass(frozen=True)
class ConversionReport:
    """What :func:`convert` replaced, and the functional rectifiers it could not replace."""

    to: str
    per: str
    replacements: tuple[Replacement, ...] = ()
    functional: tuple[walk.FunctionalRectifier, ...] = ()
    """Rectifiers called as functions (``F.relu(x)``) in a forward: not replaced."""
    traced: bool = True
    """False when the model does not trace with ``torch.fx`` (functional calls were not searched)."""
    trace_error: str | None = None

    @property
    def replaced(self) -> int:
        """The number of modules replaced."""
        return len(self.replacements)

    def __str__(self) -> str:
        target = f"to={self.to!r}" + (f", per={self.per!r}" if self.to == "prelu" else "")
        lines = []
        if self.replacements:
            lines.append(f"convert({target}): replaced {self.replaced} activation module(s)")
            rows = [
                [
                    ", ".join(r.names),
                    r.before,
                    r.after,
                    str(r.calls),
                    " ".join("x".join(map(str, shape)) or "()" for shape in r.input_shapes) or "-",
                    "-" if r.channel_dim is None else str(r.channel_dim),
                    r.note,
                ]
                for r in self.replacements
            ]
            lines.append(Table(["name", "before", "after", "calls", "input", "channel_dim", "note"], rows).to_text())
        else:
            lines.append(
                f"convert({target}): no ReLU, LeakyReLU or PReLU modules (torch.nn or prelu) in the model; "
                "nothing replaced"
            )
        if not self.traced:
            lines.append(
                f"functional rectifiers: not searched, the model does not trace with torch.fx ({self.trace_error}); "
                "F.relu / torch.relu / F.leaky_relu calls in a forward(), if any, were not replaced"
            )
        elif self.functional:
            lines.append(
                f"{len(self.functional)} functional rectifier call(s) NOT replaced (found with torch.fx); "
                "make them modules to convert them:"
            )
            rows = [
                [f.node, f.function, f.module or "(model)", "?" if f.slope is None else f"{f.slope:g}"]
                for f in self.functional
            ]
            lines.append(Table(["node", "function", "called in", "slope"], rows).to_text())
        else:
            lines.append("functional rectifiers: none (checked with torch.fx)")
        return "\n".join(lines)

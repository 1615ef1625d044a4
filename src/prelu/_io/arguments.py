"""Command-line argument types every ``prelu`` command shares: shapes, bounded integers, and
one-line errors.

Owns turning flag text into values with an error that names the text; imports argparse only.

>>> parse_shape("32x64x56x56")
(32, 64, 56, 56)
>>> positive_int("0")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: '0' must be >= 1
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def parse_shape(text: str) -> tuple[int, ...]:
    """``32x64x56x56`` or ``32,64,56,56`` -> (32, 64, 56, 56); at least 2 positive dims."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        shape = tuple(int(part) for part in parts if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r} is not like 32x64x56x56") from None
    if len(shape) < 2 or any(size < 1 for size in shape):
        raise argparse.ArgumentTypeError(f"shape {text!r} needs at least 2 positive dims (batch, channels, ...)")
    return shape


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``, with a one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser`` report a bad flag in one line (no usage block), exit code 2."""

    def error(message: str) -> None:
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error  # type: ignore[method-assign,assignment]  # argparse's documented way to change errors is to override
    return parser

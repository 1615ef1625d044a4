"""Command-line pieces every ``prelu bench`` mode shares: the output flags and the argument types.

Owns the ``--out`` / ``--force`` / ``--threads`` flags; re-exports the argument types of
:mod:`prelu._io.arguments`. Imports argparse, :mod:`prelu._io` and :mod:`prelu.bench.output`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from prelu._io.arguments import int_at_least, non_negative_int, parse_shape, positive_int
from prelu.bench.output import OutFolder

__all__ = ["add_output_arguments", "int_at_least", "non_negative_int", "open_out", "parse_shape", "positive_int"]


def add_output_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--out``, ``--force`` and ``--threads``; ``what`` names the files written."""
    parser.add_argument(
        "--out", default="bench-out", metavar="DIR", help=f"output folder for {what} (default bench-out/)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="use a non-empty --out that an earlier prelu bench wrote: replaces only its files (never others)",
    )
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help="torch.set_num_threads(N)")


def open_out(args: argparse.Namespace, mode: str, planned: Sequence[str]) -> OutFolder:
    """The checked ``--out`` folder of ``args`` (raises :class:`prelu.bench.output.OutFolderError`)."""
    return OutFolder(args.out, mode=mode, force=getattr(args, "force", False), planned=planned)

"""The ``prelu`` command: subcommands over the library's tools, benchmarks and lab.

Owns the top-level parser, dispatch and exit codes; sits at the top of the dependency chain and
may import everything in :mod:`prelu`. Each group of subcommands registers itself with one
``add_parsers(subparsers)`` function (:data:`COMMAND_GROUPS`): ``prelu bench ...`` from
:mod:`prelu.bench.commands`, ``prelu slopes`` from :mod:`prelu.tools.commands`, ``prelu compare``
and ``prelu depth`` (the lab) from :mod:`prelu.lab.commands`.

Exit codes: 0 success, 2 bad arguments (argparse's own, or refused by a command), 1 a failure
while running, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import prelu
from prelu._io.arguments import parse_shape
from prelu.bench import commands as bench_commands
from prelu.lab import commands as lab_commands
from prelu.tools import commands as tools_commands

__all__ = ["COMMAND_GROUPS", "build_parser", "main", "parse_shape"]


COMMAND_GROUPS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    bench_commands.add_parsers,
    tools_commands.add_parsers,
    lab_commands.add_parsers,
)
"""Who registers which subcommands, in the order ``prelu --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The ``prelu`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="prelu", description="Fused PReLU / Leaky ReLU for PyTorch: tools and benchmarks."
    )
    parser.add_argument("--version", action="version", version=f"prelu {prelu.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parsers in COMMAND_GROUPS:
        add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prelu`` console script and ``python -m prelu``; returns the exit code.

    Bad arguments exit with 2 (argparse); ``--help`` and ``--version`` exit with 0.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, ValueError, OSError) as error:
        print(f"prelu {args.command}: error: {error}", file=sys.stderr)
        return 1

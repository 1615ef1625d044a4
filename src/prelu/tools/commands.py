"""The ``prelu`` subcommands over the model tools: ``prelu slopes``.

Owns their flags and output; imports :mod:`prelu.tools.slope_table`. :mod:`prelu.cli` registers
them with :func:`add_parsers`.
"""

from __future__ import annotations

import argparse

from prelu.tools.slope_table import slopes_from_checkpoint


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu slopes``."""
    parser = subparsers.add_parser(
        "slopes",
        help="print the learned PReLU slopes of a saved model or state_dict, layer by layer",
        description=(
            "Per-layer slopes (mode, count, mean, min, max), like He et al.'s Table 1, from a file written by "
            "torch.save: a whole model, a state_dict, or a checkpoint dict holding one. In a plain state_dict the "
            "slopes are guessed (see prelu.slopes_from_state_dict); a whole model gives exact results."
        ),
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="path to the .pt / .pth file")
    parser.add_argument(
        "--trust",
        action="store_true",
        help="allow unpickling a whole model (runs code from the file; only for files you trust)",
    )
    parser.set_defaults(handler=run_slopes)


def run_slopes(args: argparse.Namespace) -> int:
    """Run ``prelu slopes`` with parsed arguments; returns the exit code."""
    print(slopes_from_checkpoint(args.checkpoint, trusted=args.trust))
    return 0

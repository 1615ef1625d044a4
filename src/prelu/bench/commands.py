"""``prelu bench`` and its modes: the table of subcommands and the aliases of the old flags.

Each mode is one module with ``add_arguments(parser)`` and ``main(args) -> int``, and one line in
:data:`MODES`; ``prelu bench <mode> --help`` lists its flags. Plain ``prelu bench [flags]`` is
``prelu bench run``; ``--memory`` and ``--merge RUN...`` are the old spellings of ``memory`` and
``merge``. A :class:`prelu.bench.output.UsageError` (a refused ``--out``, no cases) exits with 2
and one line. Imports the mode modules; only :mod:`prelu.cli` imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable

from prelu.bench import e2e, memory, merge, monitor_overhead, run
from prelu.bench.output import UsageError
from prelu.bench.results import CSV_NAME, MARKDOWN_NAME, PNG_NAME


@dataclasses.dataclass(frozen=True)
class Mode:
    """One ``prelu bench`` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    main: Callable[[argparse.Namespace], int]


MODES: tuple[Mode, ...] = (
    Mode("run", "time prelu against torch.nn.PReLU, LeakyReLU, ReLU and a clone roofline", run.add_arguments, run.main),
    Mode(
        "memory", "autograd-saved bytes and step time of conv-BN-activation stacks", memory.add_arguments, memory.main
    ),
    Mode("merge", "combine earlier runs, keeping each block's least contended timing", merge.add_arguments, merge.main),
    Mode(
        "monitor-overhead",
        "what a prelu.Monitor costs a training step",
        monitor_overhead.add_arguments,
        monitor_overhead.main,
    ),
    Mode(
        "e2e",
        "training-step time of five model families per activation, as ratios to ReLU",
        e2e.add_arguments,
        e2e.run_command,
    ),
)
"""Every mode, in the order ``--help`` lists them. Adding a mode: a module and a line here."""

DESCRIPTION = (
    "Benchmarks. Without a mode, 'prelu bench [flags]' is 'prelu bench run': median forward and "
    "forward+backward time of prelu.PReLU (fused and native backends) against torch.nn.PReLU eager, "
    "nn.LeakyReLU, nn.ReLU, optionally torch.compile(nn.PReLU), and a same-size clone as the bandwidth "
    f"roofline; prints ms, ratios and % of roofline; writes {CSV_NAME} (long format), {PNG_NAME} and "
    f"{MARKDOWN_NAME} to --out. A non-empty --out is refused unless --force, which replaces only files "
    "prelu bench wrote there (listed in its bench.json)."
)
EPILOG = (
    "Default cases: 32x64x56x56 NCHW and channels-last, 64x256x14x14, 4096x1024 (features last), "
    "each with per-channel and shared slopes. Roofline: clone ms x bytes moved by the fused op / "
    "bytes moved by the clone (fwd 2/2, fwd+bwd 5/2). Page faults per call are reported too; "
    "--keep-freed-memory times without them. Old spellings: --memory = memory, --merge RUN... = merge RUN..."
)


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu bench`` and its modes on the ``prelu`` parser's subparsers."""
    parser = subparsers.add_parser("bench", help=MODES[0].help, description=DESCRIPTION, epilog=EPILOG)
    run.add_arguments(parser)
    parser.add_argument("--memory", action="store_true", help="the same as 'prelu bench memory'")
    parser.add_argument(
        "--merge", nargs="+", default=None, metavar="RUN", help="the same as 'prelu bench merge RUN...'"
    )
    modes = parser.add_subparsers(dest="bench_mode", metavar="MODE", title="modes")
    for mode in MODES:
        sub = modes.add_parser(mode.name, help=mode.help, description=mode.help)
        mode.add_arguments(sub)
        sub.set_defaults(bench_main=mode.main)
    parser.set_defaults(handler=main, bench_main=None)


def main(args: argparse.Namespace) -> int:
    """Run the chosen mode; a UsageError exits with 2 and one line on stderr."""
    if args.bench_main is not None:
        chosen = args.bench_main
    elif args.memory:
        chosen = memory.main
    elif args.merge is not None:
        chosen = merge.main
    else:
        chosen = run.main
    try:
        return int(chosen(args))
    except UsageError as error:
        print(f"prelu bench: error: {error}", file=sys.stderr)
        return 2

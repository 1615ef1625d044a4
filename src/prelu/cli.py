"""The ``prelu`` command: subcommands over the library's tools, benchmarks and lab.

Owns the top-level parser, dispatch and exit codes; sits at the top of the dependency chain and
may import everything in :mod:`prelu`. Each group of subcommands registers itself with one
``add_parsers(subparsers)`` function (:data:`COMMAND_GROUPS`): ``prelu bench ...`` from
:mod:`prelu.bench.commands`, ``prelu slopes`` from :mod:`prelu.tools.commands`, ``prelu compare``
and ``prelu depth`` (the lab) from this module until :mod:`prelu.lab` registers its own.

Exit codes: 0 success, 2 bad arguments (argparse's own, or refused by a command), 1 a failure
while running, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import prelu
from prelu._io.arguments import one_line_errors, parse_shape, positive_int
from prelu.bench import commands as bench_commands
from prelu.tools import commands as tools_commands

__all__ = ["COMMAND_GROUPS", "build_parser", "main", "parse_shape"]


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100.0 if text.endswith("%") else 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 0.95 or 95%") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be an accuracy in (0, 1], like 0.95 or 95%")
    return value


def _names(values: Sequence[str] | None) -> list[str] | None:
    """``--activations relu prelu`` or ``--activations relu,prelu``."""
    if values is None:
        return None
    return [name for value in values for name in value.split(",") if name.strip()]


def _add_training_flags(parser: argparse.ArgumentParser, defaults: dict[str, Any], datasets: Sequence[str]) -> None:
    """Flags shared by ``compare`` and ``depth``; every default is None so --resume can tell given flags apart."""
    parser.add_argument("--dataset", choices=datasets, default=None, help=f"default {defaults['dataset']}")
    parser.add_argument(
        "--seeds", type=positive_int, default=None, metavar="N", help=f"seeds 0..N-1 (default {defaults['seeds']})"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=None, metavar="N", help=f"default {defaults['epochs'] or 'per dataset'}"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"global batch (default {defaults['batch_size']})",
    )
    parser.add_argument(
        "--optimizer", choices=["sgd", "adam", "adamw"], default=None, help=f"default {defaults['optimizer']}"
    )
    parser.add_argument("--lr", type=float, default=None, help=f"learning rate (default {defaults['lr']})")
    parser.add_argument("--momentum", type=float, default=None, help=f"SGD momentum (default {defaults['momentum']})")
    parser.add_argument(
        "--weight-decay", type=float, default=None, help=f"for weights (default {defaults['weight_decay']})"
    )
    parser.add_argument(
        "--slope-weight-decay", type=float, default=None, help="for PReLU slopes (default 0: none, as He et al.)"
    )
    parser.add_argument("--width", type=positive_int, default=None, metavar="N", help="units or channels per layer")
    parser.add_argument(
        "--limit", type=positive_int, default=None, metavar="N", help="use the first N train and test samples"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default cpu")
    parser.add_argument("--name", default=None, help="run folder name under --out (default: from the settings)")
    parser.add_argument("--out", default="runs", metavar="DIR", help="parent of run folders (default runs/)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run folder, keeping finished runs"
    )
    parser.add_argument("--force", action="store_true", help="delete an existing run folder and start over")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help="torch.set_num_threads(N)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (one line per finished run stays)")


def add_compare_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu compare``."""
    from prelu.lab import compare, datasets

    parser = subparsers.add_parser(
        "compare",
        help="train ReLU, Leaky ReLU and PReLU alike over several seeds; tables, report.html and claims",
        description=(
            "Trains one model per activation and seed with the same initial weights and data order per seed, then "
            "prints mean ± std of test accuracy and loss, epochs to a target accuracy, dead units, learned slopes "
            "and seconds per epoch, checks the PReLU paper's claims against them, and writes results.json, per-run "
            "curves and a self-contained report.html to runs/<name>/. Under torchrun it trains with "
            "DistributedDataParallel (gloo on CPU, nccl on CUDA)."
        ),
        epilog=(
            "Folder datasets (mnist, fashion-mnist, cifar10) are read with torchvision from --data-dir, never "
            "downloaded. --model pkg.module:fn imports fn; fn(act) builds a model with act(channels, channel_dim=1) "
            "for each activation (it may also take input_shape= and num_classes=), or fn() builds a ReLU model that "
            "prelu.convert swaps."
        ),
    )
    one_line_errors(parser)
    _add_training_flags(parser, compare.DEFAULTS, datasets.DATASETS)
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="folder holding mnist / fashion-mnist / cifar10"
    )
    parser.add_argument("--model", default=None, help="mlp (default), cnn, resnet, or pkg.module:fn")
    parser.add_argument(
        "--depth", type=positive_int, default=None, metavar="N", help="hidden layers / conv layers / stages"
    )
    parser.add_argument(
        "--activations", nargs="+", default=None, metavar="NAME", help=f"default {' '.join(compare.ACTIVATIONS)}"
    )
    parser.add_argument(
        "--target",
        type=_fraction,
        default=None,
        metavar="ACC",
        help="accuracy for 'epochs to target' (default: per dataset)",
    )
    parser.add_argument(
        "--init", choices=compare.INITS, default=None, help="kaiming (default, prelu.init_model_) or torch's own"
    )
    parser.set_defaults(handler=run_compare)


def _lab_options(args: argparse.Namespace, keys: Sequence[str]) -> dict[str, Any]:
    options = {key: getattr(args, key) for key in keys if hasattr(args, key)}
    if "activations" in options:
        options["activations"] = _names(options["activations"])
    return options


def _run_lab(args: argparse.Namespace, experiment: object, keys: Sequence[str]) -> int:
    import torch

    from prelu.lab import ConfigError

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        experiment.run(  # type: ignore[attr-defined]  # a lab module (compare or depth), typed as object here
            name=args.name,
            out=args.out,
            resume=args.resume,
            force=args.force,
            progress=not args.no_progress,
            **_lab_options(args, keys),
        )
    except ConfigError as error:
        print(f"prelu {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Run ``prelu compare`` with parsed arguments; returns the exit code (2: bad settings, nothing written)."""
    from prelu.lab import compare

    return _run_lab(args, compare, list(compare.DEFAULTS))


def add_depth_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu depth``."""
    from prelu.lab import depth

    parser = subparsers.add_parser(
        "depth",
        help="a 30-layer plain net with Xavier vs Kaiming init, ReLU and PReLU (He et al., Fig. 3)",
        description=(
            "Trains a plain deep net (Linear layers, no normalisation) from Xavier and from slope-aware Kaiming "
            "init (prelu.init_model_), with ReLU and PReLU, over several seeds; reports loss curves, whether each "
            "trains (final train loss < 0.9 x initial), the signal at init, learned slopes by depth and the claims; "
            "writes results.json, curves and report.html to runs/<name>/."
        ),
    )
    one_line_errors(parser)
    _add_training_flags(parser, depth.DEFAULTS, depth.DATASETS)
    parser.add_argument(
        "--layers",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"Linear layers (default {depth.DEFAULTS['layers']})",
    )
    parser.add_argument("--activations", nargs="+", default=None, metavar="NAME", help="default relu prelu")
    parser.add_argument("--inits", nargs="+", default=None, choices=depth.INITS, help="default xavier kaiming")
    parser.set_defaults(handler=run_depth)


def run_depth(args: argparse.Namespace) -> int:
    """Run ``prelu depth`` with parsed arguments; returns the exit code (2: bad settings, nothing written)."""
    from prelu.lab import depth

    return _run_lab(args, depth, list(depth.DEFAULTS))


def add_lab_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu compare`` and ``prelu depth``."""
    add_compare_parser(subparsers)
    add_depth_parser(subparsers)


COMMAND_GROUPS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    bench_commands.add_parsers,
    tools_commands.add_parsers,
    add_lab_parsers,
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

"""The ``prelu`` command: subcommands over the library's tools (``prelu bench`` first).

Owns argument parsing and exit codes; sits at the top of the dependency chain with
:mod:`prelu.bench` and may import everything in :mod:`prelu`. Each subcommand is one
``add_<name>_parser`` function plus one ``run_<name>`` function, so ``prelu compare``,
``prelu depth`` and ``prelu slopes`` can be added beside ``bench`` without touching it.

Exit codes: 0 success, 2 bad arguments (argparse's own), 1 a failure while running.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import prelu
from prelu.lab import commands as lab_commands


def parse_shape(text: str) -> tuple[int, ...]:
    """``32x64x56x56`` or ``32,64,56,56`` -> (32, 64, 56, 56); at least 2 positive dims.

    >>> parse_shape("4096x1024")
    (4096, 1024)
    """
    parts = text.replace(",", "x").lower().split("x")
    try:
        shape = tuple(int(part) for part in parts if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r} is not like 32x64x56x56") from None
    if len(shape) < 2 or any(size < 1 for size in shape):
        raise argparse.ArgumentTypeError(f"shape {text!r} needs at least 2 positive dims (batch, channels, ...)")
    return shape


def _int_at_least(minimum: int) -> Callable[[str], int]:
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


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def add_bench_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prelu bench``."""
    from prelu.bench import harness as bench

    parser = subparsers.add_parser(
        "bench",
        help="time prelu against torch.nn.PReLU, LeakyReLU, ReLU and a clone roofline",
        description=(
            "Median forward and forward+backward time of prelu.PReLU (fused and native backends) against "
            "torch.nn.PReLU eager, nn.LeakyReLU, nn.ReLU, optionally torch.compile(nn.PReLU), and a "
            "same-size clone as the bandwidth roofline. Prints ms, ratios and % of roofline; writes "
            f"{bench.CSV_NAME} (long format), {bench.PNG_NAME} and {bench.MARKDOWN_NAME} to --out."
        ),
        epilog=(
            "Default cases: 32x64x56x56 NCHW and channels-last, 64x256x14x14, 4096x1024 (features last), "
            "each with per-channel and shared slopes. Roofline: clone ms x bytes moved by the fused op / "
            "bytes moved by the clone (fwd 2/2, fwd+bwd 5/2). Page faults per call are reported too; "
            "--keep-freed-memory times without them."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"32x64x56x56 only (per channel NCHW and channels-last, shared NCHW), {bench.QUICK_REPEATS} repeats",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(nn.PReLU) (compiles per case)")
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=None,
        metavar="N",
        help=f"timed calls per provider and mode (default {bench.DEFAULT_REPEATS}, --quick {bench.QUICK_REPEATS})",
    )
    parser.add_argument(
        "--warmup",
        type=_non_negative_int,
        default=bench.DEFAULT_WARMUP,
        metavar="N",
        help=f"untimed rounds before timing (default {bench.DEFAULT_WARMUP})",
    )
    parser.add_argument("--out", default="bench-out", metavar="DIR", help="output directory (default bench-out/)")
    parser.add_argument(
        "--shapes",
        nargs="+",
        type=parse_shape,
        default=None,
        metavar="SHAPE",
        help="shapes like 32x64x56x56 (dim 1 = channels; 2-D = (batch, features)); replaces the default cases",
    )
    parser.add_argument(
        "--layouts",
        nargs="+",
        choices=bench.LAYOUTS,
        default=list(bench.LAYOUTS),
        help="with --shapes: memory layouts (channels_last applies to 4-D shapes only)",
    )
    parser.add_argument(
        "--slopes", nargs="+", choices=bench.SLOPES, default=list(bench.SLOPES), help="with --shapes: slope layouts"
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        choices=list(bench.PROVIDERS),
        default=None,
        metavar="PROVIDER",
        help=f"from {', '.join(bench.PROVIDERS)} (default: all but compile_torch_prelu; roofline needs clone)",
    )
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="default float32")
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="torch.set_num_threads(N)")
    parser.add_argument(
        "--max-contention",
        type=float,
        default=None,
        metavar="PCT",
        help="time a case again when other processes used more than PCT %% of the CPU meanwhile (shared machines)",
    )
    parser.add_argument(
        "--tries",
        type=_positive_int,
        default=3,
        metavar="N",
        help="with --max-contention: attempts per case and mode (default 3)",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="make glibc malloc keep freed memory (no fresh-page faults per call): time the kernels, not the allocator",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="RUN",
        help=(
            "instead of timing: combine earlier runs (their --out folders or CSVs), keeping the least "
            "contended block of each case and mode, and write the result to --out"
        ),
    )
    parser.add_argument("--no-first-call", action="store_true", help="skip timing the first call in fresh processes")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="instead: autograd-saved bytes and step time of 8 conv-BN-activation blocks with nn.ReLU(inplace), "
        "nn.PReLU, prelu.PReLU and prelu.PReLU(inplace=True); writes memory.md",
    )
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Run ``prelu bench`` with parsed arguments; returns the exit code."""
    import torch

    from prelu.bench import harness as bench

    if args.memory:
        return run_memory_bench(args)
    if args.merge is not None:
        paths = [Path(run) / bench.CSV_NAME if Path(run).is_dir() else Path(run) for run in args.merge]
        result = bench.merge(paths, out_dir=args.out, make_plot=not args.no_plot)
        written = [str(path) for path in (result.csv_path, result.png_path, result.markdown_path) if path is not None]
        print(f"merged {len(paths)} runs into {', '.join(written)}")
        return 0
    if args.shapes is not None:
        cases = bench.make_cases(args.shapes, args.layouts, args.slopes)
    elif args.quick:
        cases = list(bench.QUICK_CASES)
    else:
        cases = list(bench.DEFAULT_CASES)
    if not cases:
        print("prelu bench: no cases (channels_last needs 4-D shapes)", file=sys.stderr)
        return 2
    repeats = args.repeats or (bench.QUICK_REPEATS if args.quick else bench.DEFAULT_REPEATS)
    started = time.perf_counter()
    result = bench.run(
        cases,
        providers=args.providers,
        dtype=getattr(torch, args.dtype),
        repeats=repeats,
        warmup=args.warmup,
        threads=args.threads,
        compile=args.compile,
        keep_memory=args.keep_freed_memory,
        max_contention=args.max_contention,
        tries=args.tries,
        first_call=not args.no_first_call,
        out_dir=args.out,
        make_plot=not args.no_plot,
    )
    written = [str(path) for path in (result.csv_path, result.png_path, result.markdown_path) if path is not None]
    print(f"wrote {', '.join(written)} in {time.perf_counter() - started:.1f} s")
    return 0


def run_memory_bench(args: argparse.Namespace) -> int:
    """``prelu bench --memory``: print the table and write memory.md to ``--out``."""
    from pathlib import Path

    from prelu.bench import memory as bench_memory

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    shape = {"batch": 16, "channels": 64, "size": 32, "blocks": 8}
    if args.quick:
        shape = {"batch": 8, "channels": 32, "size": 16, "blocks": 8}
    repeats = args.repeats or (3 if args.quick else 10)
    results = bench_memory.run(**shape, repeats=repeats)
    text = bench_memory.to_markdown(results, **shape)
    out = Path(args.out or "bench-out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.md").write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {out / 'memory.md'}")
    return 0


def add_slopes_parser(subparsers: argparse._SubParsersAction) -> None:
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
    print(prelu.slopes_from_checkpoint(args.checkpoint, trusted=args.trust))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``prelu`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="prelu", description="Fused PReLU / Leaky ReLU for PyTorch: tools and benchmarks."
    )
    parser.add_argument("--version", action="version", version=f"prelu {prelu.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_bench_parser(subparsers)
    add_slopes_parser(subparsers)
    lab_commands.add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prelu`` console script and ``python -m prelu``; returns the exit code.

    Bad arguments exit with 2 (argparse); ``--help`` and ``--version`` exit with 0.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, ValueError, OSError) as error:
        print(f"prelu {args.command}: error: {error}", file=sys.stderr)
        return 1

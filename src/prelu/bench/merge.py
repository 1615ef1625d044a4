"""``prelu bench merge``: combine runs taken on a shared machine, keeping each block's quietest.

On a shared machine no single run may be quiet throughout; but each block (one case, one mode,
every provider taking turns) is self-contained, and every ratio compares providers within one
block, so the quietest block of each from several runs makes a consistent result. Owns that
choice and the command; imports :mod:`prelu.bench.results`, :mod:`prelu.bench.run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from prelu.bench import options
from prelu.bench.output import OutFolder, UsageError
from prelu.bench.ratios import derive_ratios
from prelu.bench.results import CSV_NAME, MARKDOWN_NAME, PNG_NAME, Measurement, read_csv
from prelu.bench.run import BenchResult, write_outputs

MERGE_KEYS: tuple[str, ...] = ("machine", "cores", "threads", "torch", "prelu", "allocator", "device")
"""Fields of :class:`prelu.bench.results.RunInfo` that must agree across merged runs."""


def _contention(measurements: Iterable[Measurement]) -> float:
    """The worst others' CPU % of a block (inf where unknown, so a known one is preferred)."""
    values = [m.others_cpu_pct for m in measurements if m.others_cpu_pct is not None]
    return max(values) if values else math.inf


def merge(runs: Sequence[Sequence[Measurement]], names: Sequence[str] | None = None) -> BenchResult:
    """Combine runs of ``prelu bench run``, keeping for each (case, mode) block the least contended one.

    The first-call rows come from the run where they were least contended. Runs must agree on
    :data:`MERGE_KEYS` (else ValueError naming the run, from ``names``).
    """
    started = time.perf_counter()
    names = list(names or [f"run {index + 1}" for index in range(len(runs))])
    reference = next((run[0] for run in runs if run), None)
    if reference is None:
        raise ValueError("the runs to merge hold no rows")
    for name, run in zip(names, runs, strict=True):
        for m in run:
            for field in MERGE_KEYS:
                mine, theirs = getattr(m.info, field), getattr(reference.info, field)
                if mine != theirs:
                    raise ValueError(f"cannot merge {name}: its {field} is {mine!r}, another run's is {theirs!r}")
    best: dict[tuple[str, ...], list[Measurement]] = {}
    first_call: list[Measurement] = []
    for run in runs:
        blocks: dict[tuple[str, ...], list[Measurement]] = {}
        for m in run:
            if m.op != "first_call":
                blocks.setdefault(m.block_key, []).append(m)
        for key, block in blocks.items():
            if key not in best or _contention(block) < _contention(best[key]):
                best[key] = block
        timed_first_call = [m for m in run if m.op == "first_call"]
        if timed_first_call and (not first_call or _contention(timed_first_call) < _contention(first_call)):
            first_call = timed_first_call
    measurements = [m for block in best.values() for m in block] + first_call

    seconds: dict[str, float] = {}
    for m in first_call:
        if m.mode == "import_torch":
            seconds["import_torch"] = m.value
        elif m.metric == "s_prelu_attributable":
            seconds["prelu_attributable"] = m.value
        elif m.metric.startswith("s_run"):
            seconds["first_call_run" + m.metric.removeprefix("s_run")] = m.value
    stamps = sorted({m.info.timestamp for m in measurements})
    span = f"{stamps[0]} … {stamps[-1]} (quietest blocks of {len(runs)} runs)"
    info = dataclasses.replace(reference.info, timestamp=span, load="per block: see others' CPU %", python="")
    return BenchResult(measurements, derive_ratios(measurements), seconds, info, seconds=time.perf_counter() - started)


def csv_of(run: str | os.PathLike[str]) -> Path:
    """The CSV of a run: the folder's ``bench.csv``, or the path itself."""
    path = Path(run)
    return path / CSV_NAME if path.is_dir() else path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``prelu bench merge``."""
    parser.add_argument("runs", nargs="*", metavar="RUN", help="earlier runs: their --out folders or CSVs")
    parser.add_argument("--merge", nargs="+", default=None, metavar="RUN", help=argparse.SUPPRESS)
    options.add_output_arguments(parser, f"{CSV_NAME}, {PNG_NAME}, {MARKDOWN_NAME}")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG")


def main(args: argparse.Namespace, console: Any = None) -> int:
    """Run ``prelu bench merge``: read every run first, then check and write ``--out``."""
    paths = [csv_of(run) for run in [*getattr(args, "runs", []), *(args.merge or [])]]
    if not paths:
        raise UsageError("merge needs at least one run (a --out folder or a bench.csv)")
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path} is not a file: give a prelu bench --out folder or its {CSV_NAME}")
    result = merge([read_csv(path) for path in paths], [str(path) for path in paths])
    planned = [CSV_NAME, MARKDOWN_NAME, *([] if args.no_plot else [PNG_NAME])]
    out: OutFolder = options.open_out(args, "run", planned)
    write_outputs(result, out, make_plot=not args.no_plot, console=console)
    written = [str(path) for path in (result.csv_path, result.png_path, result.markdown_path) if path is not None]
    print(f"merged {len(paths)} runs into {', '.join(written)}")
    return 0

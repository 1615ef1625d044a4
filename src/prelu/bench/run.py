"""``prelu bench run``: prelu against torch's activations and a bandwidth roofline.

Owns the run's settings (:class:`BenchSettings`), the loop over cases and modes, and writing the
CSV, PNG and markdown into the ``--out`` folder; the pieces it puts together are
:mod:`~prelu.bench.cases`, :mod:`~prelu.bench.providers`, :mod:`~prelu.bench.timing`,
:mod:`~prelu.bench.results`, :mod:`~prelu.bench.ratios`, :mod:`~prelu.bench.report` and
:mod:`~prelu.bench.plot`. Its command-line flags are here too (:func:`add_arguments`, :func:`main`).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from prelu.bench import options
from prelu.bench.allocator import keep_freed_memory
from prelu.bench.cases import DEFAULT_CASES, DEVICES, DTYPES, LAYOUTS, QUICK_CASES, SLOPES, Case, make_cases, make_input
from prelu.bench.first_call import measure_first_call
from prelu.bench.output import OutFolder, UsageError
from prelu.bench.plot import plot_png
from prelu.bench.providers import (
    MODES,
    OP_OF_PROVIDER,
    PROVIDER_ALIASES,
    PROVIDERS,
    backend_of,
    make_call,
    resolve_providers,
)
from prelu.bench.ratios import CaseRatios, derive_ratios, roofline_ms
from prelu.bench.report import print_report, report_notes, result_tables, to_markdown
from prelu.bench.results import CSV_NAME, MARKDOWN_NAME, PNG_NAME, Measurement, RunInfo, csv_text, to_csv_text_rows
from prelu.bench.timing import ContentionMeter, Timings, log, summarize, time_block

DEFAULT_REPEATS = 100
QUICK_REPEATS = 12
DEFAULT_WARMUP = 3
FIRST_CALL_CASE = Case((8, 4, 16, 16))


@dataclasses.dataclass
class BenchResult:
    """What ``prelu bench run`` (or ``merge``) measured and wrote.

    Attributes:
        measurements: every number, in CSV order.
        ratios: one :class:`prelu.bench.ratios.CaseRatios` per case.
        first_call: seconds from :func:`prelu.bench.first_call.measure_first_call`, or empty.
        info: the run's :class:`RunInfo` (of a merge: the shared machine and the time span).
        csv_path, png_path, markdown_path: files written (``png_path`` None without matplotlib).
        seconds: wall time of the whole run.
    """

    measurements: list[Measurement]
    ratios: list[CaseRatios]
    first_call: dict[str, float]
    info: RunInfo
    csv_path: Path | None = None
    png_path: Path | None = None
    markdown_path: Path | None = None
    seconds: float = 0.0

    @property
    def rows(self) -> list[dict[str, str]]:
        """The CSV rows, as written."""
        return to_csv_text_rows(self.measurements)


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """What :func:`run` times and how.

    Attributes:
        cases: what to run (see :func:`prelu.bench.cases.make_cases` for your own).
        providers: names from :data:`prelu.bench.providers.PROVIDERS`; None: all but
            ``compile_torch_prelu`` (added when ``compile``). ``roofline`` rows appear whenever
            ``clone`` runs.
        modes: ``fwd`` and/or ``full``.
        dtype, device: of input, gradient and slopes (on CUDA, calls are timed with CUDA events).
        repeats, warmup: timed calls per provider and untimed rounds before them.
        threads: ``torch.set_num_threads`` for the run (prelu's CPU kernels follow it).
        compile: add ``compile_torch_prelu`` (its compile time is spent in the warm-up).
        keep_memory: call :func:`prelu.bench.allocator.keep_freed_memory` first (process-wide,
            irreversible): time the kernels without the page faults of fresh outputs.
        max_contention: when other processes used more than this % of the machine's CPU while a
            (case, mode) block was timed, time it again, up to ``tries`` times in all, keeping the
            least contended attempt. None times each block once.
        first_call: also time a fresh process's first call.
    """

    cases: tuple[Case, ...] = DEFAULT_CASES
    providers: tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    repeats: int = DEFAULT_REPEATS
    warmup: int = DEFAULT_WARMUP
    threads: int | None = None
    compile: bool = False
    keep_memory: bool = False
    max_contention: float | None = None
    tries: int = 3
    first_call: bool = True

    def __post_init__(self) -> None:
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {self.repeats} and {self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: torch sees no CUDA device here")
        resolve_providers(self.providers, self.compile)  # unknown names fail here, before any timing

    @property
    def provider_list(self) -> list[str]:
        """The providers that run, aliases resolved."""
        return resolve_providers(self.providers, self.compile)


@dataclasses.dataclass(frozen=True)
class _Block:
    """One (case, mode) block being recorded: what every measurement of it shares."""

    case: Case
    mode: str
    dtype: str
    info: RunInfo
    settings: BenchSettings
    backends: dict[str, str]
    timings: Timings

    def measurement(self, provider: str, metric: str, value: float) -> Measurement:
        return Measurement(
            OP_OF_PROVIDER[provider],
            provider,
            self.mode,
            metric,
            value,
            *self.case.key,
            self.dtype,
            self.info,
            self.backends.get(provider, ""),
            self.timings.others_pct,
            self.settings.repeats,
            self.settings.warmup,
        )

    def measurements(self) -> list[Measurement]:
        """ms, ms_min, ms_iqr and faults of every provider; the roofline from the clone."""
        out = []
        for provider, seconds in self.timings.seconds.items():
            metrics = summarize(seconds)
            # the mean, not the median: calls fault in a mixture (some do, some don't)
            metrics["faults"] = statistics.fmean(self.timings.faults[provider])
            out += [self.measurement(provider, metric, value) for metric, value in metrics.items()]
        if "clone" in self.timings.seconds:
            clone = summarize(self.timings.seconds["clone"])
            out += [self.measurement("roofline", m, roofline_ms(clone[m], self.mode)) for m in ("ms", "ms_min")]
        return out


def _time_cases(settings: BenchSettings, info: RunInfo, console: Any) -> list[Measurement]:
    providers = settings.provider_list
    dtype_name = str(settings.dtype).removeprefix("torch.")
    measurements: list[Measurement] = []
    for number, case in enumerate(settings.cases, 1):
        log(console, f"[{number}/{len(settings.cases)}] {case.label} {dtype_name} {settings.device}")
        x, grad = make_input(case, settings.dtype, device=settings.device)
        backends = {provider: backend_of(provider, case, x) for provider in providers}
        for mode in settings.modes:
            x_mode = x.detach().requires_grad_(mode == "full")
            calls = {p: make_call(p, case, mode, x_mode, grad) for p in providers}
            timings = time_block(
                calls,
                settings.repeats,
                settings.warmup,
                max_contention=settings.max_contention,
                tries=settings.tries,
                device=settings.device,
                console=console,
            )
            measurements += _Block(case, mode, dtype_name, info, settings, backends, timings).measurements()
    return measurements


def first_call_measurements(seconds: dict[str, float], info: RunInfo, others_pct: float | None) -> list[Measurement]:
    """The first-call seconds as measurements (``op`` ``first_call``; the import alone as mode ``import_torch``)."""
    names = [
        (key, "first_call", "s_run" + key.removeprefix("first_call_run"))
        for key in seconds
        if key.startswith("first_call_run")
    ]
    names += [("import_torch", "import_torch", "s"), ("prelu_attributable", "first_call", "s_prelu_attributable")]
    case = FIRST_CALL_CASE
    return [
        Measurement(
            "first_call",
            "prelu",
            mode,
            metric,
            seconds[key],
            case.shape_text,
            case.layout,
            case.slopes,
            "float32",
            info,
            others_cpu_pct=others_pct,
            repeats=1,
            warmup=0,
        )
        for key, mode, metric in names
    ]


def run(settings: BenchSettings = BenchSettings(), *, console: Any = None) -> BenchResult:
    """Time every case of ``settings`` in both modes, providers in turns; nothing is written.

    Returns a :class:`BenchResult` (write it with :func:`write_outputs`).

    >>> result = run(BenchSettings(cases=(Case((2, 3, 4, 4)),), providers=("relu", "clone"), modes=("fwd",),
    ...                            repeats=1, warmup=0, first_call=False))
    >>> sorted({(m.provider, m.metric) for m in result.measurements if m.metric == "ms"})
    [('clone', 'ms'), ('relu', 'ms'), ('roofline', 'ms')]
    """
    started = time.perf_counter()
    if settings.keep_memory:
        keep_freed_memory()
    previous_threads = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    try:
        info = RunInfo.now(settings.device)
        measurements = _time_cases(settings, info, console)
        first_call: dict[str, float] = {}
        first_call_contention = None
        if settings.first_call:
            log(console, "first call in fresh processes ...")
            with ContentionMeter() as meter:
                first_call = measure_first_call()
            first_call_contention = meter.others_pct
            measurements += first_call_measurements(first_call, info, first_call_contention)
    finally:
        torch.set_num_threads(previous_threads)
    return BenchResult(
        measurements, derive_ratios(measurements), first_call, info, seconds=time.perf_counter() - started
    )


def first_call_contention(result: BenchResult) -> float | None:
    """Others' CPU % while the first call was timed (None when unknown or not measured)."""
    return next((m.others_cpu_pct for m in result.measurements if m.op == "first_call"), None)


def write_outputs(
    result: BenchResult, out: OutFolder | None, *, make_plot: bool = True, report: bool = True, console: Any = None
) -> BenchResult:
    """Write CSV, PNG and markdown into ``out`` (None: nothing) and print the report."""
    tables = result_tables(result.measurements, result.ratios, result.first_call, first_call_contention(result))
    notes = report_notes(result.measurements)
    if out is not None:
        result.csv_path = out.write_text(CSV_NAME, csv_text(result.measurements))
        if make_plot:
            info = result.info
            title = (
                f"prelu bench: {info.machine}, {info.cores} cores, {info.threads} threads, "
                f"torch {info.torch}\nroofline = clone ms × bytes moved by the fused op ÷ bytes moved by clone"
            )
            png = plot_png(result.measurements, title)
            result.png_path = None if png is None else out.write_bytes(PNG_NAME, png)
        result.markdown_path = out.write_text(MARKDOWN_NAME, to_markdown(tables, result.info, notes))
        out.finish()
    if report:
        print_report(tables, result.info, notes, console)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``prelu bench run`` (also those of plain ``prelu bench``)."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"32x64x56x56 only (per channel NCHW and channels-last, shared NCHW), {QUICK_REPEATS} repeats",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(nn.PReLU) (compiles per case)")
    counts = (
        (
            "--repeats",
            options.positive_int,
            None,
            f"timed calls per provider and mode (default {DEFAULT_REPEATS}, --quick {QUICK_REPEATS})",
        ),
        (
            "--warmup",
            options.non_negative_int,
            DEFAULT_WARMUP,
            f"untimed rounds before timing (default {DEFAULT_WARMUP})",
        ),
    )
    for flag, kind, default, text in counts:
        parser.add_argument(flag, type=kind, default=default, metavar="N", help=text)
    options.add_output_arguments(parser, f"{CSV_NAME}, {PNG_NAME}, {MARKDOWN_NAME}")
    parser.add_argument(
        "--shapes",
        nargs="+",
        type=options.parse_shape,
        default=None,
        metavar="SHAPE",
        help="shapes like 32x64x56x56 (dim 1 = channels; 2-D = (batch, features)); replaces the default cases",
    )
    parser.add_argument(
        "--layouts",
        nargs="+",
        choices=LAYOUTS,
        default=list(LAYOUTS),
        help="with --shapes: memory layouts (channels_last applies to 4-D shapes only)",
    )
    parser.add_argument(
        "--slopes", nargs="+", choices=SLOPES, default=list(SLOPES), help="with --shapes: slope layouts"
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        choices=[*PROVIDERS, *PROVIDER_ALIASES],
        default=None,
        metavar="PROVIDER",
        help=f"from {', '.join(PROVIDERS)} (default: all but compile_torch_prelu; roofline needs clone)",
    )
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32", help="default float32")
    parser.add_argument(
        "--device", choices=DEVICES, default="cpu", help="default cpu; on cuda, calls are timed with CUDA events"
    )
    parser.add_argument(
        "--max-contention",
        type=float,
        default=None,
        metavar="PCT",
        help="time a case again when other processes used more than PCT %% of the CPU meanwhile (shared machines)",
    )
    parser.add_argument(
        "--tries",
        type=options.positive_int,
        default=3,
        metavar="N",
        help="with --max-contention: attempts per case and mode (default 3)",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="make glibc malloc keep freed memory (no fresh-page faults per call): time the kernels, not the allocator",
    )
    parser.add_argument("--no-first-call", action="store_true", help="skip timing the first call in fresh processes")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG")


def settings_from(args: argparse.Namespace) -> BenchSettings:
    """The :class:`BenchSettings` the parsed flags ask for (UsageError on impossible ones)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device here")
    if args.shapes is not None:
        cases = tuple(make_cases(args.shapes, args.layouts, args.slopes))
        if not cases:
            raise UsageError("no cases (channels_last needs 4-D shapes)")
    else:
        cases = QUICK_CASES if args.quick else DEFAULT_CASES
    return BenchSettings(
        cases=cases,
        providers=None if args.providers is None else tuple(args.providers),
        dtype=DTYPES[args.dtype],
        device=args.device,
        repeats=args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS),
        warmup=args.warmup,
        threads=args.threads,
        compile=args.compile,
        keep_memory=args.keep_freed_memory,
        max_contention=args.max_contention,
        tries=args.tries,
        first_call=not args.no_first_call,
    )


def main(args: argparse.Namespace) -> int:
    """Run ``prelu bench run``; every setting and the ``--out`` folder are checked before timing."""
    settings = settings_from(args)
    planned = [CSV_NAME, MARKDOWN_NAME, *([] if args.no_plot else [PNG_NAME])]
    out = options.open_out(args, "run", planned)
    result = write_outputs(run(settings), out, make_plot=not args.no_plot)
    written = [str(path) for path in (result.csv_path, result.png_path, result.markdown_path) if path is not None]
    print(f"wrote {', '.join(written)} in {result.seconds:.1f} s")
    return 0

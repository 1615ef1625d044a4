"""The report of ``prelu bench run``: tables of median ms, page faults, ratios and the first call,
with the machine named first, as markdown on disk and rich on the terminal.

Owns what the tables hold and the notes under them; the rendering is :class:`prelu._io.Table`'s.
Imports :mod:`prelu._io`, :mod:`prelu.bench.results`, :mod:`prelu.bench.ratios`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prelu._io import Table
from prelu.bench.cases import TARGET_SHAPE
from prelu.bench.providers import MODES, PROVIDER_HEADERS, PROVIDERS
from prelu.bench.ratios import CaseRatios
from prelu.bench.results import Measurement, RunInfo, case_keys, values_by_key

# (field of CaseRatios, header, format, target test or None); targets apply to per-channel fp32 cases.
RATIO_COLUMNS: tuple[tuple[str, str, str, Callable[[float], bool] | None], ...] = (
    ("speedup_vs_torch_prelu_full", "vs nn.PReLU fwd+bwd (≥5×)", "{:.1f}×", lambda value: value >= 5.0),
    ("speedup_vs_torch_prelu_fwd", "vs nn.PReLU fwd", "{:.2f}×", None),
    ("vs_leaky_relu_full", "÷ LeakyReLU fwd+bwd (≤1.0)", "{:.2f}", lambda value: value <= 1.0),
    ("vs_relu_fwd", "÷ ReLU fwd (≤1.1)", "{:.2f}", lambda value: value <= 1.1),
    ("roofline_pct_full", "% roofline fwd+bwd (≥85)", "{:.0f} %", lambda value: value >= 85.0),
    ("roofline_pct_fwd", "% roofline fwd", "{:.0f} %", None),
    ("native_over_fused_full", "native ÷ fused fwd+bwd", "{:.2f}", None),
    ("compile_over_prelu_full", "compiled nn.PReLU ÷ prelu fwd+bwd", "{:.2f}", None),
)

ROOFLINE_NOTE = (
    "Roofline: measured clone ms × (bytes the fused op moves ÷ bytes a clone moves): fwd = clone × 2/2 "
    "(read x, write y); fwd+bwd = clone × 5/2 (fwd's 2 passes + backward reads x and g, writes grad_x), "
    "with the clone timed in the same block as the providers. % of roofline = roofline ms ÷ prelu ms."
)
TIMING_NOTE = (
    "Each call timed alone ({clock}); providers take turns per round; median of {repeats} calls "
    "after {warmup} warm-up rounds; fwd under torch.no_grad(), fwd+bwd = forward + torch.autograd.grad(y, "
    "[x, weight], g) with a fixed g. Full spread (min, IQR) in the CSV."
)

CONTENTION_WARNING_PCT = 10.0
"""Above this share of the machine's CPU used by other processes, the report warns."""


def _format_ratio(ratio: CaseRatios, key: str, fmt: str, target: Callable[[float], bool] | None) -> str:
    value = getattr(ratio, key)
    if value is None:
        return "–"
    text = fmt.format(value)
    applies = target is not None and ratio.dtype == "float32"
    if key != "vs_relu_fwd":  # the fwd+bwd targets name one case: 32x64x56x56, per channel
        applies = applies and ratio.shape == TARGET_SHAPE and ratio.slopes == "channel"
    if target is not None and applies:
        text += " ✓" if target(value) else " ✗"
    return text


def _mode_name(mode: str) -> str:
    return "fwd+bwd" if mode == "full" else "fwd"


def _per_block_table(
    measurements: Sequence[Measurement], metric: str, cell: str, title: str, contention: bool
) -> Table | None:
    values = values_by_key(measurements, metric)
    present = {key[3] for key in values}
    providers = [p for p in (*PROVIDERS, "roofline") if p in present]
    busy = {
        (*m.case_key, m.mode): m.others_cpu_pct for m in measurements if m.metric == "ms" and m.provider != "roofline"
    }
    rows = []
    for key in case_keys(measurements):
        for mode in MODES:
            found = [values.get((*key, provider, mode)) for provider in providers]
            if all(value is None for value in found):
                continue
            cells = ["–" if value is None else cell.format(value) for value in found]
            if contention:
                pct = busy.get((*key, mode))
                cells.append("–" if pct is None else f"{pct:.1f}")
            rows.append([*key, _mode_name(mode), *cells])
    if not rows:
        return None
    headers = ["shape", "layout", "slopes", "mode", *(PROVIDER_HEADERS[p] for p in providers)]
    headers += ["others' CPU %"] if contention else []
    return Table(headers, rows, title, ["left"] * 3 + ["right"] * (len(headers) - 3))


def _first_call_table(first_call: dict[str, float], contention: float | None) -> Table:
    runs = sorted(key for key in first_call if key.startswith("first_call_run"))
    rows = [[f"first call, run {key.removeprefix('first_call_run')}", f"{first_call[key]:.2f}"] for key in runs]
    rows.append(["import torch alone (fastest)", f"{first_call['import_torch']:.2f}"])
    attributable = first_call["prelu_attributable"]
    rows.append(["prelu-attributable (fastest warm run - import torch)", f"{attributable:.2f}"])
    rows.append(["target: ≤ 2 s attributable to prelu, cache warm", "✓" if attributable <= 2.0 else "✗"])
    if contention is not None:
        rows.append(["others' CPU % meanwhile", f"{contention:.1f}"])
    title = "First call in a fresh process: import torch, prelu; PReLU(4) fwd+bwd on 8x4x16x16 (s)"
    return Table(["what", "seconds"], rows, title, ["left", "left"])


def result_tables(
    measurements: Sequence[Measurement],
    ratios: Sequence[CaseRatios],
    first_call: dict[str, float],
    first_call_contention: float | None = None,
) -> list[Table]:
    """The report's tables: median ms, page faults, ratios, and the first call when measured."""
    tables = []
    median = _per_block_table(measurements, "ms", "{:.2f}", "Median ms per call (lower is better)", True)
    if median is not None:
        tables.append(median)
    faults_title = (
        "Mean minor page faults per call (a fresh 4 KiB page each; 25.7 MB = 6272 pages; "
        "faulting calls are the slow ones in a wide IQR)"
    )
    faults = _per_block_table(measurements, "faults", "{:.0f}", faults_title, False)
    if faults is not None:
        tables.append(faults)
    used = [column for column in RATIO_COLUMNS if any(getattr(r, column[0]) is not None for r in ratios)]
    rows = [
        [r.shape, r.layout, r.slopes, *(_format_ratio(r, key, fmt, target) for key, _, fmt, target in used)]
        for r in ratios
    ]
    title = (
        f"Ratios (✓/✗: design targets; fwd+bwd ones judged on {TARGET_SHAPE} per channel fp32, "
        "the ReLU one on every fp32 case)"
    )
    headers = ["shape", "layout", "slopes", *(column[1] for column in used)]
    tables.append(Table(headers, rows, title, ["left"] * 3 + ["right"] * len(used)))
    if first_call:
        tables.append(_first_call_table(first_call, first_call_contention))
    return tables


def contention_warning(measurements: Iterable[Measurement]) -> str:
    """A warning line when other processes used much CPU during any timed block ('' otherwise)."""
    worst = max((m.others_cpu_pct for m in measurements if m.others_cpu_pct is not None), default=0.0)
    if worst <= CONTENTION_WARNING_PCT:
        return ""
    return (
        f"Warning: other processes used up to {worst:.0f} % of the machine's CPU while timing "
        '(column "others\' CPU %"); those timings are inflated. Rerun on a quiet machine.'
    )


def _spread(values: Iterable[int]) -> str:
    """'40' when every value is 40, '12–40' when they differ.

    >>> _spread([12, 40, 12]), _spread([])
    ('12–40', '?')
    """
    numbers = sorted(set(values))
    if not numbers:
        return "?"
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}–{numbers[-1]}"


def report_notes(measurements: Sequence[Measurement]) -> list[str]:
    """The lines under the tables: a contention warning if any, the roofline and timing method."""
    timed = [m for m in measurements if m.metric == "ms" and m.provider != "roofline"]
    cuda = any(m.info.device.startswith("cuda") for m in timed)
    clock = "CUDA events after a synchronize" if cuda else "time.perf_counter"
    timing = TIMING_NOTE.format(
        clock=clock, repeats=_spread(m.repeats for m in timed), warmup=_spread(m.warmup for m in timed)
    )
    warning = contention_warning(measurements)
    return [*([warning] if warning else []), ROOFLINE_NOTE, timing]


def header_lines(info: RunInfo) -> list[str]:
    """Machine and software, the lines every report starts with."""
    python = f", Python {info.python}" if info.python else ""
    device = "" if info.device == "cpu" else f", device {info.device}"
    return [
        f"Machine: {info.machine}, {info.cores} cores, torch threads {info.threads}, "
        f"load average at start {info.load}{device}",
        f"torch {info.torch}, prelu {info.prelu}{python}, allocator {info.allocator or 'n/a'}",
    ]


def to_markdown(tables: Sequence[Table], info: RunInfo, notes: Sequence[str]) -> str:
    """The report as markdown: machine first, then each table, then the notes."""
    lines = ["# prelu bench results", ""]
    lines += [f"- {line}" for line in header_lines(info)]
    lines += [f"- Run at {info.timestamp}", ""]
    for table in tables:
        lines += [table.to_markdown(), ""]
    for note in notes:
        lines += [note, ""]
    return "\n".join(lines)


def print_report(tables: Sequence[Table], info: RunInfo, notes: Sequence[str], console: Any = None) -> None:
    """Print the tables with rich (plain markdown when rich is not installed), machine named first."""
    try:
        from rich.console import Console
    except ImportError:
        print(to_markdown(tables, info, notes))
        return
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or redirected: keep each table row on one line
            console = Console(width=240)
    for line in header_lines(info):
        console.print(line, style="bold", markup=False)
    for table in tables:
        console.print(table.to_rich())
    for note in notes:
        console.print(note, markup=False, style="bold red" if note.startswith("Warning") else None)

"""The benchmark behind ``prelu bench``: prelu against torch's activations and a bandwidth roofline.

Owns the timing harness, the long-format CSV, the derived ratios, the results tables (rich on the
terminal, markdown on disk) and the PNG plot. Sits at the top of the dependency chain with
:mod:`prelu.cli`: it may import everything in :mod:`prelu`; nothing in :mod:`prelu` imports it.
rich and matplotlib (the ``bench`` extra) are imported only when a table or plot is made.

One harness, the provider is a parameter (the Liger-Kernel pattern):

======================= ==========================================================================
provider                what runs
======================= ==========================================================================
``prelu``               :class:`prelu.PReLU`, ``auto`` backend (fused numba kernels where they apply)
``prelu_native``        :class:`prelu.PReLU` under ``prelu.use_backend("native")`` (plain torch ops)
``torch_prelu``         ``torch.nn.PReLU`` eager
``compile_torch_prelu`` ``torch.compile(torch.nn.PReLU)`` (only with ``compile=True``)
``leaky_relu``          ``torch.nn.LeakyReLU`` eager
``relu``                ``torch.nn.ReLU`` eager
``clone``               ``x.clone()``: reads and writes each byte once (no autograd, in both modes)
``roofline``            derived, not run: see below
======================= ==========================================================================

Modes: ``fwd`` runs the forward under ``torch.no_grad()``; ``full`` runs forward and backward with
a fixed, precomputed incoming gradient through ``torch.autograd.grad(y, [x, weight], g)``, so
``.grad`` accumulation is not timed. Each call is timed alone with ``time.perf_counter``; the
providers of a case take turns (one call each per round) so drift on a shared machine hits them
alike. The CSV keeps the median (``ms``), the fastest call (``ms_min``), the inter-quartile
range (``ms_iqr``) and the mean minor page faults per call (``faults``: fresh multi-MB outputs
fault in page by page, and glibc's malloc returns or keeps freed memory depending on history, so
the same op can run in a faulting or a non-faulting regime; this column tells which). To time the
kernels without page faults, ``prelu bench --keep-freed-memory`` (:func:`keep_freed_memory`); the
report names the allocator settings.

Roofline (definition). A fused PReLU moves 2 tensor-sized passes of bytes forward (read x, write
y) and 5 for forward+backward (forward's 2, then backward reads x and g and writes grad_x; the
slope gradient is a reduction that adds no pass). A clone moves 2. So::

    roofline_ms(mode) = measured clone ms * passes(mode) / 2,   passes(fwd) = 2, passes(full) = 5

where the clone is the one timed in the same (case, mode) block, beside the providers it is
compared with (so a neighbour's burst or the allocator's state hits both alike), and "% of
roofline" is ``roofline_ms / prelu_ms``: 100 % means prelu moves its bytes as fast as torch
copies memory.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import prelu

try:
    import resource
except ImportError:  # not on Windows: page faults are then reported as 0
    resource = None  # type: ignore[assignment]

PROVIDERS: tuple[str, ...] = (
    "prelu",
    "prelu_native",
    "torch_prelu",
    "compile_torch_prelu",
    "leaky_relu",
    "relu",
    "clone",
)
"""Every provider that runs; ``roofline`` is derived from ``clone`` and never runs."""

MODES: tuple[str, ...] = ("fwd", "full")
LAYOUTS: tuple[str, ...] = ("contiguous", "channels_last")
SLOPES: tuple[str, ...] = ("channel", "shared")

OP_OF_PROVIDER: dict[str, str] = {
    "prelu": "prelu",
    "prelu_native": "prelu",
    "torch_prelu": "prelu",
    "compile_torch_prelu": "prelu",
    "leaky_relu": "leaky_relu",
    "relu": "relu",
    "clone": "clone",
    "roofline": "roofline",
}

# Tensor-sized passes over memory (see the module docstring); a clone makes 2.
PASSES: dict[str, int] = {"fwd": 2, "full": 5}
CLONE_PASSES = 2

CSV_COLUMNS: tuple[str, ...] = (
    "op",
    "provider",
    "mode",
    "metric",
    "value",
    "shape",
    "layout",
    "slopes",
    "dtype",
    "backend",
    "others_cpu_pct",
    "repeats",
    "warmup",
    "threads",
    "allocator",
    "machine",
    "cores",
    "torch",
    "prelu",
    "timestamp",
)
"""Columns of the long-format CSV, in order: one row per (case, provider, mode, metric)."""

TARGET_SHAPE = "32x64x56x56"
"""The shape the design's fwd+bwd targets are stated for."""

CSV_NAME = "bench.csv"
PNG_NAME = "bench.png"
MARKDOWN_NAME = "results.md"

FIRST_CALL_SCRIPT = (
    "import time; t=time.perf_counter(); import torch, prelu; "
    "x=torch.randn(8,4,16,16,requires_grad=True); m=prelu.PReLU(4); m(x).sum().backward(); "
    "print(time.perf_counter()-t)"
)
IMPORT_TORCH_SCRIPT = "import time; t=time.perf_counter(); import torch; print(time.perf_counter()-t)"


@dataclasses.dataclass(frozen=True)
class Case:
    """One input to benchmark: shape, memory layout, and one shared slope or one per channel.

    The channel axis is dim 1 (NCHW; also the last dim of a 2-D (batch, features) input, which is
    where ``torch.nn.PReLU`` puts it too). ``channels_last`` only applies to 4-D shapes.

    >>> Case((4096, 1024), slopes="shared").label
    '4096x1024 contiguous shared'
    """

    shape: tuple[int, ...]
    layout: str = "contiguous"
    slopes: str = "channel"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.slopes not in SLOPES:
            raise ValueError(f"slopes must be one of {SLOPES}, got {self.slopes!r}")
        if len(self.shape) < 2 or any(size < 1 for size in self.shape):
            raise ValueError(f"shape needs at least 2 positive dims (batch, channels, ...), got {self.shape}")
        if self.layout == "channels_last" and len(self.shape) != 4:
            raise ValueError(f"channels_last needs a 4-D shape, got {self.shape}")

    @property
    def shape_text(self) -> str:
        """The shape as ``32x64x56x56``."""
        return "x".join(str(size) for size in self.shape)

    @property
    def label(self) -> str:
        """Shape, layout and slopes in one line."""
        return f"{self.shape_text} {self.layout} {self.slopes}"

    @property
    def channels(self) -> int:
        """Number of slopes: the size of dim 1, or 1 for a shared slope."""
        return self.shape[1] if self.slopes == "channel" else 1

    @property
    def channel_dim(self) -> int:
        """The channel axis prelu is told: -1 for 2-D inputs (features last), 1 otherwise."""
        return -1 if len(self.shape) == 2 else 1


DEFAULT_CASES: tuple[Case, ...] = (
    Case((32, 64, 56, 56), "contiguous", "channel"),
    Case((32, 64, 56, 56), "channels_last", "channel"),
    Case((32, 64, 56, 56), "contiguous", "shared"),
    Case((32, 64, 56, 56), "channels_last", "shared"),
    Case((64, 256, 14, 14), "contiguous", "channel"),
    Case((64, 256, 14, 14), "contiguous", "shared"),
    Case((4096, 1024), "contiguous", "channel"),
    Case((4096, 1024), "contiguous", "shared"),
)
"""The full run: the issue's shapes, NCHW and channels-last, shared and per-channel slopes."""

QUICK_CASES: tuple[Case, ...] = DEFAULT_CASES[:3]
"""``--quick``: (32,64,56,56) per channel in NCHW and channels-last, and shared in NCHW."""

DEFAULT_REPEATS = 100
QUICK_REPEATS = 12
DEFAULT_WARMUP = 3


def make_cases(
    shapes: Iterable[Sequence[int]], layouts: Iterable[str] = LAYOUTS, slopes: Iterable[str] = SLOPES
) -> list[Case]:
    """Every (shape, layout, slopes) combination, skipping ``channels_last`` for shapes not 4-D.

    >>> [case.label for case in make_cases([(2, 3, 4, 4), (8, 16)], slopes=["channel"])]
    ['2x3x4x4 contiguous channel', '2x3x4x4 channels_last channel', '8x16 contiguous channel']
    """
    layouts, slopes = list(layouts), list(slopes)
    cases = []
    for shape in shapes:
        for layout in layouts:
            if layout == "channels_last" and len(shape) != 4:
                continue
            cases.extend(Case(tuple(int(size) for size in shape), layout, slope) for slope in slopes)
    return cases


# ---------------------------------------------------------------------------------------------
# Machine description


def cpu_model() -> str:
    """The CPU's name: ``model name`` from /proc/cpuinfo, else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info() -> dict[str, str]:
    """What a result depends on: CPU, core count, threads, torch, prelu, platform."""
    return {
        "machine": f"{cpu_model()} ({platform.machine()}, {platform.system()})",
        "cores": str(os.cpu_count() or 0),
        "threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "prelu": prelu.__version__,
        "python": platform.python_version(),
        "load": " ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
        "allocator": allocator_settings(),
    }


ALLOCATOR_VARIABLES: tuple[str, ...] = (
    "LD_PRELOAD",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_ARENA_MAX",
    "GLIBC_TUNABLES",
)


_allocator_changes: list[str] = []


def allocator_settings() -> str:
    """What changes how freed memory is kept (and so page faults): :func:`keep_freed_memory` and
    the allocator environment variables; 'defaults' when nothing does."""
    found = [f"{name}={os.environ[name]}" for name in ALLOCATOR_VARIABLES if os.environ.get(name)]
    return " ".join([*_allocator_changes, *found]) or "defaults"


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the largest glibc accepts on 64-bit


def keep_freed_memory() -> str:
    """Make glibc's malloc keep freed memory for reuse, so multi-MB outputs stop faulting in fresh
    pages on every call; then the timings show the kernels rather than the allocator's history.

    Sets ``M_MMAP_THRESHOLD`` to 32 MiB (blocks up to that come from the heap, not fresh mmaps)
    and ``M_TRIM_THRESHOLD`` to 1 GiB (the heap is not handed back). Process-wide and for the rest
    of the process. Raises RuntimeError where malloc is not glibc's. Returns what was set.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        raise RuntimeError("keeping freed memory needs glibc's mallopt, which this process does not have") from None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and mallopt(M_TRIM_THRESHOLD, 1 << 30)):
        raise RuntimeError("glibc's mallopt refused the thresholds")
    setting = "mallopt(M_MMAP_THRESHOLD=32MiB, M_TRIM_THRESHOLD=1GiB)"
    if setting not in _allocator_changes:
        _allocator_changes.append(setting)
    return setting


# ---------------------------------------------------------------------------------------------
# Providers: each builds a callable for one (case, mode) that runs the op once


def _slope_module(provider: str, case: Case, dtype: torch.dtype) -> nn.Module:
    if provider in ("prelu", "prelu_native"):
        return prelu.PReLU(case.channels, channel_dim=case.channel_dim, dtype=dtype)
    module: nn.Module = nn.PReLU(case.channels, dtype=dtype)
    if provider == "compile_torch_prelu":
        # dynamic=False: every case is a new module and shape; one static graph each.
        module = torch.compile(module, dynamic=False)  # type: ignore[assignment]
    return module


def make_call(provider: str, case: Case, mode: str, x: Tensor, grad: Tensor) -> Callable[[], object]:
    """A zero-argument callable that runs ``provider`` once on ``x`` in ``mode`` (fwd or full).

    ``x`` must already require grad for ``full``; ``grad`` is the incoming gradient for ``full``.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; valid: {', '.join(PROVIDERS)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    dtype = x.dtype
    if provider == "clone":
        return x.detach().clone  # in full mode too: the reference for that block's roofline
    if provider == "leaky_relu":
        module: nn.Module = nn.LeakyReLU(0.01)
    elif provider == "relu":
        module = nn.ReLU()
    else:
        module = _slope_module(provider, case, dtype)
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]

    if mode == "fwd":

        def forward() -> object:
            with torch.no_grad():
                return module(x)

        call: Callable[[], object] = forward
    else:
        inputs = [x, *parameters]

        def full() -> object:
            return torch.autograd.grad(module(x), inputs, grad)

        call = full

    if provider == "prelu_native":
        inner = call

        def native() -> object:
            # Backward picks its backend when it runs, so the whole call sits inside the block.
            with prelu.use_backend("native"):
                return inner()

        return native
    return call


def backend_of(provider: str, case: Case, x: Tensor) -> str:
    """The backend a prelu provider runs ('fused'/'native'); '' for the torch providers."""
    if provider not in ("prelu", "prelu_native"):
        return ""
    weight = torch.full((case.channels,), 0.25, dtype=x.dtype)
    if provider == "prelu_native":
        with prelu.use_backend("native"):
            return prelu.backend_for(x, weight, channel_dim=case.channel_dim)
    return prelu.backend_for(x, weight, channel_dim=case.channel_dim)


def make_input(case: Case, dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The input ``x`` (standard normal, half negative, in the case's layout) and an incoming gradient
    in the same layout, both seeded."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(case.shape, generator=generator, dtype=dtype)
    grad = torch.randn(case.shape, generator=generator, dtype=dtype)
    if case.layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
        grad = grad.to(memory_format=torch.channels_last)
    return x, grad


# ---------------------------------------------------------------------------------------------
# Timing


def _machine_busy_seconds() -> float | None:
    """CPU seconds every process on the machine has spent (from /proc/stat), or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal: everything but idle and iowait is busy
    busy = sum(int(fields[index]) for index in (1, 2, 3, 6, 7, 8) if index < len(fields))
    return busy / os.sysconf("SC_CLK_TCK")


class ContentionMeter:
    """Measures how much of the machine's CPU other processes used while a block ran.

    Timings on a shared machine are inflated when another process holds a core: a parallel
    region then waits for the scheduler (multiples of its 4 ms tick were seen here). The
    percentage is of all cores over the block's wall time; None where /proc/stat is missing.

    >>> with ContentionMeter() as meter:
    ...     pass
    >>> meter.others_pct is None or 0.0 <= meter.others_pct <= 100.0
    True
    """

    def __init__(self) -> None:
        self.others_pct: float | None = None

    def __enter__(self) -> ContentionMeter:
        self._busy = _machine_busy_seconds()
        self._own = sum(os.times()[:4])  # this process and its waited-for children
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        busy = _machine_busy_seconds()
        wall = time.perf_counter() - self._wall
        if busy is None or self._busy is None or wall <= 0:
            return
        others = (busy - self._busy) - (sum(os.times()[:4]) - self._own)
        self.others_pct = min(100.0, max(0.0, 100.0 * others / (wall * (os.cpu_count() or 1))))


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Median, minimum and inter-quartile range of call times, in milliseconds.

    >>> summarize([0.001, 0.002, 0.003, 0.004])
    {'ms': 2.5, 'ms_min': 1.0, 'ms_iqr': 1.5}
    """
    ms = sorted(1e3 * value for value in seconds)
    if len(ms) >= 2:
        quartiles = statistics.quantiles(ms, n=4, method="inclusive")
        iqr = quartiles[2] - quartiles[0]
    else:
        iqr = 0.0
    return {"ms": statistics.median(ms), "ms_min": ms[0], "ms_iqr": iqr}


def _minor_faults() -> int:
    """Minor page faults of this process so far (all threads); 0 where getrusage is missing."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource is not None else 0


def time_round_robin(
    calls: dict[str, Callable[[], object]], repeats: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Time every callable ``repeats`` times, one call each per round, after ``warmup`` rounds.

    Returns (seconds per call, minor page faults per call) for each key. Each call's result is
    dropped after its clock stops, so no call pays for freeing another provider's output. Page
    faults are counted because fresh multi-MB outputs fault in page by page: on this machine that,
    more than the arithmetic, separated fused PReLU from LeakyReLU (DESIGN.md).
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    faults: dict[str, list[int]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            faults_before = _minor_faults()
            start = time.perf_counter()
            result = call()
            elapsed = time.perf_counter() - start
            faults[name].append(_minor_faults() - faults_before)
            del result
            seconds[name].append(elapsed)
    return seconds, faults


def measure_first_call(runs: int = 3, timeout: float = 300.0) -> dict[str, float]:
    """Seconds for a fresh interpreter to import torch and prelu and run one forward+backward.

    Runs :data:`FIRST_CALL_SCRIPT` ``runs`` times in new subprocesses (the first may fill the
    numba on-disk cache; later ones find it warm) and ``import torch`` alone ``runs`` times, so the
    part attributable to prelu is visible: ``prelu_attributable`` = fastest warm run (2nd on)
    - fastest ``import torch`` (single runs differ by ~0.3 s here, enough to make one difference
    negative). Keys: ``first_call_run1`` ... ``first_call_runN``, ``import_torch`` (fastest),
    ``prelu_attributable``.
    """

    def seconds_of(script: str) -> float:
        completed = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, check=False
        )
        if completed.returncode != 0:
            raise RuntimeError(f"first-call subprocess failed ({completed.returncode}):\n{completed.stderr.strip()}")
        return float(completed.stdout.strip().splitlines()[-1])

    result = {f"first_call_run{index + 1}": seconds_of(FIRST_CALL_SCRIPT) for index in range(runs)}
    result["import_torch"] = min(seconds_of(IMPORT_TORCH_SCRIPT) for _ in range(runs))
    warm = min(result[f"first_call_run{index + 1}"] for index in range(min(1, runs - 1), runs))
    result["prelu_attributable"] = warm - result["import_torch"]
    return result


# ---------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass
class BenchResult:
    """What :func:`run` measured and wrote.

    Attributes:
        rows: the long-format rows, as written to the CSV (every value a string).
        ratios: one dict per case with the derived ratios (see :func:`derive_ratios`).
        first_call: seconds from :func:`measure_first_call`, or empty when not measured.
        info: :func:`machine_info` at the time of the run.
        csv_path, png_path, markdown_path: files written (``png_path`` is None without matplotlib).
        seconds: wall time of the whole run.
    """

    rows: list[dict[str, str]]
    ratios: list[dict[str, Any]]
    first_call: dict[str, float]
    info: dict[str, str]
    csv_path: Path | None
    png_path: Path | None
    markdown_path: Path | None
    seconds: float


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a CSV written by :func:`run`."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _median_ms(rows: Iterable[dict[str, str]], metric: str = "ms") -> dict[tuple[str, str, str, str, str], float]:
    """(shape, layout, slopes, provider, mode) -> value of ``metric`` (default: median ms)."""
    return {
        (row["shape"], row["layout"], row["slopes"], row["provider"], row["mode"]): float(row["value"])
        for row in rows
        if row["metric"] == metric
    }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def derive_ratios(rows: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
    """Per case, from the CSV rows (``metric == "ms"``): the ratios the design's targets name.

    Keys: ``shape``, ``layout``, ``slopes``, ``dtype`` and

    - ``speedup_vs_torch_prelu_fwd`` / ``_full``: torch_prelu ms / prelu ms (target full >= 5);
    - ``vs_leaky_relu_full``: prelu ms / leaky_relu ms (target <= 1.0);
    - ``vs_relu_fwd``: prelu fwd ms / relu fwd ms (target <= 1.1);
    - ``roofline_pct_fwd`` / ``_full``: 100 * roofline ms / prelu ms (target full >= 85);
    - ``native_over_fused_full``: prelu_native ms / prelu ms;
    - ``compile_over_prelu_full``: compile_torch_prelu ms / prelu ms.

    A ratio whose rows are missing is None.
    """
    rows = list(rows)
    ms = _median_ms(rows)
    cases: dict[tuple[str, str, str], str] = {}
    for row in rows:
        if row["metric"] == "ms":
            cases.setdefault((row["shape"], row["layout"], row["slopes"]), row["dtype"])
    ratios = []
    for (shape, layout, slopes), dtype in cases.items():

        def get(provider: str, mode: str, key: tuple[str, str, str] = (shape, layout, slopes)) -> float | None:
            return ms.get((*key, provider, mode))

        roofline_fwd, roofline_full = _ratio(get("roofline", "fwd"), 0.01), _ratio(get("roofline", "full"), 0.01)
        ratios.append(
            {
                "shape": shape,
                "layout": layout,
                "slopes": slopes,
                "dtype": dtype,
                "speedup_vs_torch_prelu_fwd": _ratio(get("torch_prelu", "fwd"), get("prelu", "fwd")),
                "speedup_vs_torch_prelu_full": _ratio(get("torch_prelu", "full"), get("prelu", "full")),
                "vs_leaky_relu_full": _ratio(get("prelu", "full"), get("leaky_relu", "full")),
                "vs_relu_fwd": _ratio(get("prelu", "fwd"), get("relu", "fwd")),
                "roofline_pct_fwd": _ratio(roofline_fwd, get("prelu", "fwd")),
                "roofline_pct_full": _ratio(roofline_full, get("prelu", "full")),
                "native_over_fused_full": _ratio(get("prelu_native", "full"), get("prelu", "full")),
                "compile_over_prelu_full": _ratio(get("compile_torch_prelu", "full"), get("prelu", "full")),
            }
        )
    return ratios


# (key, header, format, target test or None); targets apply to per-channel fp32 cases.
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

PROVIDER_HEADERS: dict[str, str] = {
    "prelu": "prelu",
    "prelu_native": "prelu native",
    "torch_prelu": "nn.PReLU",
    "compile_torch_prelu": "compiled nn.PReLU",
    "leaky_relu": "nn.LeakyReLU",
    "relu": "nn.ReLU",
    "clone": "clone",
    "roofline": "roofline",
}


def _format_ratio(ratio: dict[str, Any], key: str, fmt: str, target: Callable[[float], bool] | None) -> str:
    value = ratio[key]
    if value is None:
        return "–"
    text = fmt.format(value)
    applies = target is not None and ratio["dtype"] == "float32"
    if key != "vs_relu_fwd":  # the fwd+bwd targets name one case: 32x64x56x56, per channel
        applies = applies and ratio["shape"] == TARGET_SHAPE and ratio["slopes"] == "channel"
    if applies:
        text += " ✓" if target(value) else " ✗"
    return text


def result_tables(
    rows: Sequence[dict[str, str]],
    ratios: Sequence[dict[str, Any]],
    first_call: dict[str, float],
    first_call_contention: float | None = None,
) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, headers, cells) tables: median ms, page faults, ratios, first call."""
    ms = _median_ms(rows)
    present = {provider for (*_, provider, _mode) in ms}
    providers = [p for p in (*PROVIDERS, "roofline") if p in present]
    case_keys = list(dict.fromkeys((r["shape"], r["layout"], r["slopes"]) for r in rows if r["metric"] == "ms"))
    contention = {
        (row["shape"], row["layout"], row["slopes"], row["mode"]): row.get("others_cpu_pct", "")
        for row in rows
        if row["metric"] == "ms" and row["provider"] != "roofline"
    }
    tables = []
    ms_cells = []
    for key in case_keys:
        for mode in MODES:
            values = [ms.get((*key, provider, mode)) for provider in providers]
            if all(value is None for value in values):
                continue
            cells = ["–" if value is None else f"{value:.2f}" for value in values]
            busy = contention.get((*key, mode)) or "–"
            ms_cells.append([key[0], key[1], key[2], "fwd+bwd" if mode == "full" else "fwd", *cells, busy])
    tables.append(
        (
            "Median ms per call (lower is better)",
            ["shape", "layout", "slopes", "mode", *(PROVIDER_HEADERS[p] for p in providers), "others' CPU %"],
            ms_cells,
        )
    )
    faults = _median_ms(rows, "faults")
    fault_providers = [p for p in providers if any(key[3] == p for key in faults)]
    fault_cells = []
    for key in case_keys:
        for mode in MODES:
            values = [faults.get((*key, provider, mode)) for provider in fault_providers]
            if any(value is not None for value in values):
                cells = ["–" if value is None else f"{value:.0f}" for value in values]
                fault_cells.append([key[0], key[1], key[2], "fwd+bwd" if mode == "full" else "fwd", *cells])
    if fault_cells:
        tables.append(
            (
                "Mean minor page faults per call (a fresh 4 KiB page each; 25.7 MB = 6272 pages; "
                "faulting calls are the slow ones in a wide IQR)",
                ["shape", "layout", "slopes", "mode", *(PROVIDER_HEADERS[p] for p in fault_providers)],
                fault_cells,
            )
        )
    used = [column for column in RATIO_COLUMNS if any(ratio[column[0]] is not None for ratio in ratios)]
    ratio_cells = [
        [
            ratio["shape"],
            ratio["layout"],
            ratio["slopes"],
            *(_format_ratio(ratio, key, fmt, target) for key, _, fmt, target in used),
        ]
        for ratio in ratios
    ]
    tables.append(
        (
            f"Ratios (✓/✗: design targets; fwd+bwd ones judged on {TARGET_SHAPE} per channel fp32, "
            "the ReLU one on every fp32 case)",
            ["shape", "layout", "slopes", *(column[1] for column in used)],
            ratio_cells,
        )
    )
    if first_call:
        runs = sorted(key for key in first_call if key.startswith("first_call_run"))
        cells = [[f"first call, run {key.removeprefix('first_call_run')}", f"{first_call[key]:.2f}"] for key in runs]
        cells.append(["import torch alone (fastest)", f"{first_call['import_torch']:.2f}"])
        attributable = first_call["prelu_attributable"]
        cells.append(["prelu-attributable (fastest warm run - import torch)", f"{attributable:.2f}"])
        cells.append(["target: ≤ 2 s attributable to prelu, cache warm", "✓" if attributable <= 2.0 else "✗"])
        if first_call_contention is not None:
            cells.append(["others' CPU % meanwhile", f"{first_call_contention:.1f}"])
        tables.append(
            (
                "First call in a fresh process: import torch, prelu; PReLU(4) fwd+bwd on 8x4x16x16 (s)",
                ["what", "seconds"],
                cells,
            )
        )
    return tables


ROOFLINE_NOTE = (
    "Roofline: measured clone ms × (bytes the fused op moves ÷ bytes a clone moves): fwd = clone × 2/2 "
    "(read x, write y); fwd+bwd = clone × 5/2 (fwd's 2 passes + backward reads x and g, writes grad_x), "
    "with the clone timed in the same block as the providers. % of roofline = roofline ms ÷ prelu ms."
)
TIMING_NOTE = (
    "Each call timed alone (time.perf_counter); providers take turns per round; median of {repeats} calls "
    "after {warmup} warm-up rounds; fwd under torch.no_grad(), fwd+bwd = forward + torch.autograd.grad(y, "
    "[x, weight], g) with a fixed g. Full spread (min, IQR) in the CSV."
)


CONTENTION_WARNING_PCT = 10.0
"""Above this share of the machine's CPU used by other processes, the report warns."""


def contention_warning(rows: Iterable[dict[str, str]]) -> str:
    """A warning line when other processes used much CPU during any timed block ('' otherwise)."""
    values = [float(row["others_cpu_pct"]) for row in rows if row.get("others_cpu_pct")]
    worst = max(values, default=0.0)
    if worst <= CONTENTION_WARNING_PCT:
        return ""
    return (
        f"Warning: other processes used up to {worst:.0f} % of the machine's CPU while timing "
        '(column "others\' CPU %"); those timings are inflated. Rerun on a quiet machine.'
    )


def _header_lines(info: dict[str, str]) -> list[str]:
    python = f", Python {info['python']}" if info.get("python") else ""
    return [
        f"Machine: {info['machine']}, {info['cores']} cores, torch threads {info['threads']}, "
        f"load average at start {info.get('load', 'n/a')}",
        f"torch {info['torch']}, prelu {info['prelu']}{python}, allocator {info.get('allocator', 'n/a')}",
    ]


def _spread(values: Iterable[str]) -> str:
    """'40' when every value is 40, '12–40' when they differ."""
    numbers = sorted({int(value) for value in values if value})
    if not numbers:
        return "?"
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}–{numbers[-1]}"


def report_notes(rows: Sequence[dict[str, str]]) -> list[str]:
    """The lines under the tables: a contention warning if any, the roofline and timing method."""
    timed = [row for row in rows if row["metric"] == "ms" and row["provider"] != "roofline"]
    repeats = _spread(row.get("repeats", "") for row in timed)
    warmup = _spread(row.get("warmup", "") for row in timed)
    warning = contention_warning(rows)
    return [*([warning] if warning else []), ROOFLINE_NOTE, TIMING_NOTE.format(repeats=repeats, warmup=warmup)]


def to_markdown(
    tables: Sequence[tuple[str, list[str], list[list[str]]]], info: dict[str, str], notes: Sequence[str]
) -> str:
    """The report as markdown: machine first, then each table, then the notes."""
    lines = ["# prelu bench results", ""]
    lines += [f"- {line}" for line in _header_lines(info)]
    lines += [f"- Run at {info.get('timestamp', '')}", ""]
    for title, headers, cells in tables:
        lines += [f"## {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        lines.append("")
    for note in notes:
        lines += [note, ""]
    return "\n".join(lines)


def print_report(
    tables: Sequence[tuple[str, list[str], list[list[str]]]],
    info: dict[str, str],
    notes: Sequence[str],
    console: Any = None,
) -> None:
    """Print the tables with rich (plain markdown when rich is not installed), machine named first."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(to_markdown(tables, info, notes))
        return
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or redirected: keep each table row on one line
            console = Console(width=240)
    for line in _header_lines(info):
        console.print(line, style="bold", markup=False)
    for title, headers, cells in tables:
        table = Table(title=title, title_justify="left")
        for index, header in enumerate(headers):
            table.add_column(header, justify="left" if index < 3 or len(headers) == 2 else "right")
        for row in cells:
            table.add_row(*row)
        console.print(table)
    for note in notes:
        console.print(note, markup=False, style="bold red" if note.startswith("Warning") else None)


def plot(rows: Sequence[dict[str, str]], path: str | os.PathLike[str], title: str = "") -> Path | None:
    """A bar plot of median ms per provider per case (fwd and fwd+bwd panels), saved as PNG.

    Returns the path, or None when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ms = _median_ms(rows)
    case_keys = list(dict.fromkeys((r["shape"], r["layout"], r["slopes"]) for r in rows if r["metric"] == "ms"))
    present = {provider for (*_, provider, _mode) in ms}
    providers = [p for p in (*PROVIDERS, "roofline") if p in present]
    figure, axes = plt.subplots(2, 1, figsize=(max(8.0, 1.6 * len(case_keys) + 3), 8), squeeze=False)
    width = 0.8 / max(1, len(providers))
    for axis, mode in zip(axes[:, 0], MODES, strict=True):
        for index, provider in enumerate(providers):
            values = [ms.get((*key, provider, mode), math.nan) for key in case_keys]
            positions = [case + (index - (len(providers) - 1) / 2) * width for case in range(len(case_keys))]
            axis.bar(positions, values, width, label=PROVIDER_HEADERS[provider])
        axis.set_xticks(range(len(case_keys)))
        axis.set_xticklabels([f"{s}\n{layout}\n{slopes}" for s, layout, slopes in case_keys], fontsize=8)
        axis.set_ylabel("median ms (lower is better)")
        axis.set_title("forward" if mode == "fwd" else "forward + backward")
        axis.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=min(4, len(providers)))
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# ---------------------------------------------------------------------------------------------
# The run


RETRY_PAUSE_S = 3.0


def _time_block(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    max_contention: float | None,
    tries: int,
    console: Any,
) -> tuple[dict[str, list[float]], dict[str, list[int]], float | None]:
    """Time one (case, mode) block, again while others hold the CPU; the least contended attempt
    as (seconds, page faults, others' CPU %)."""
    best: tuple[dict[str, list[float]], dict[str, list[int]], float | None] | None = None
    for attempt in range(1, max(1, tries) + 1):
        with ContentionMeter() as meter:
            seconds, faults = time_round_robin(calls, repeats, warmup)
        pct = meter.others_pct
        if best is None or (pct is not None and (best[2] is None or pct < best[2])):
            best = (seconds, faults, pct)
        if max_contention is None or pct is None or pct <= max_contention or attempt >= tries:
            break
        _log(console, f"    other processes used {pct:.0f} % of the CPU; timing again ({attempt + 1}/{tries})")
        time.sleep(RETRY_PAUSE_S)  # let a neighbour's burst pass
    assert best is not None
    return best


def _log(console: Any, message: str) -> None:
    if console is not None:
        console.print(message, markup=False)
    else:
        print(message, file=sys.stderr, flush=True)


def run(
    cases: Sequence[Case] | None = None,
    *,
    providers: Sequence[str] | None = None,
    modes: Sequence[str] = MODES,
    dtype: torch.dtype = torch.float32,
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    threads: int | None = None,
    compile: bool = False,
    keep_memory: bool = False,
    max_contention: float | None = None,
    tries: int = 3,
    first_call: bool = True,
    out_dir: str | os.PathLike[str] | None = "bench-out",
    make_plot: bool = True,
    report: bool = True,
    console: Any = None,
) -> BenchResult:
    """Benchmark prelu against torch's activations and the clone roofline; write CSV, PNG, markdown.

    Parameters:
        cases: what to run; default :data:`DEFAULT_CASES` (see :func:`make_cases` for your own).
        providers: which of :data:`PROVIDERS` to run; default all but ``compile_torch_prelu``
            (added when ``compile=True``). ``roofline`` rows appear whenever ``clone`` runs.
        modes: ``fwd`` and/or ``full``.
        dtype: of input, gradient and slopes (float32 default; float64 also takes the fused path).
        repeats, warmup: timed calls per provider and untimed rounds before them.
        threads: ``torch.set_num_threads`` for the run (prelu's numba kernels follow it).
        compile: add ``compile_torch_prelu`` (its compile time is spent in the warm-up).
        keep_memory: call :func:`keep_freed_memory` first (process-wide, irreversible): time the
            kernels without the page faults of fresh outputs.
        max_contention: when other processes used more than this % of the machine's CPU while a
            (case, mode) block was timed, time it again, up to ``tries`` times in all, keeping the
            least contended attempt. None (default) times each block once.
        first_call: also time a fresh process's first call (:func:`measure_first_call`).
        out_dir: where ``bench.csv``, ``bench.png`` and ``results.md`` go (created); None writes nothing.
        make_plot: write the PNG (skipped without matplotlib).
        report: print the tables.
        console: a ``rich.console.Console`` for the report and progress (default: a new one / stderr).

    Returns:
        A :class:`BenchResult`. The CSV has :data:`CSV_COLUMNS`, one row per (case, provider, mode,
        metric) with metrics ``ms`` (median), ``ms_min``, ``ms_iqr``, ``faults`` (mean minor page
        faults per call, this process), plus derived ``roofline``
        rows and, with ``first_call``, rows with ``mode`` ``first_call`` / ``import_torch`` in seconds.
    """
    started = time.perf_counter()
    cases = list(DEFAULT_CASES if cases is None else cases)
    if providers is None:
        providers = [p for p in PROVIDERS if p != "compile_torch_prelu" or compile]
    elif compile and "compile_torch_prelu" not in providers:
        providers = [*providers, "compile_torch_prelu"]
    for provider in providers:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; valid: {', '.join(PROVIDERS)}")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    if keep_memory:
        keep_freed_memory()
    previous_threads = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        info = machine_info()
        info["timestamp"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        rows: list[dict[str, str]] = []
        dtype_name = str(dtype).removeprefix("torch.")

        def add(
            case: Case,
            provider: str,
            mode: str,
            metric: str,
            value: float,
            backend: str = "",
            op: str = "",
            contention: str = "",
            repeats_of_row: int = repeats,
            warmup_of_row: int = warmup,
        ) -> None:
            rows.append(
                {
                    "op": op or OP_OF_PROVIDER[provider],
                    "provider": provider,
                    "mode": mode,
                    "metric": metric,
                    "value": repr(float(value)),
                    "shape": case.shape_text,
                    "layout": case.layout,
                    "slopes": case.slopes,
                    "dtype": dtype_name,
                    "backend": backend,
                    "others_cpu_pct": contention,
                    "repeats": str(repeats_of_row),
                    "warmup": str(warmup_of_row),
                    "threads": info["threads"],
                    "allocator": info["allocator"],
                    "machine": info["machine"],
                    "cores": info["cores"],
                    "torch": info["torch"],
                    "prelu": info["prelu"],
                    "timestamp": info["timestamp"],
                }
            )

        for number, case in enumerate(cases, 1):
            _log(console, f"[{number}/{len(cases)}] {case.label} {dtype_name}")
            x, grad = make_input(case, dtype)
            backends = {provider: backend_of(provider, case, x) for provider in providers}
            for mode in modes:
                x_mode = x.detach().requires_grad_(mode == "full")
                calls = {p: make_call(p, case, mode, x_mode, grad) for p in providers}
                seconds, faults, others_pct = _time_block(calls, repeats, warmup, max_contention, tries, console)
                contention = "" if others_pct is None else f"{others_pct:.1f}"
                for provider, values in seconds.items():
                    for metric, value in summarize(values).items():
                        add(case, provider, mode, metric, value, backends[provider], contention=contention)
                    # the mean, not the median: calls fault in a mixture (some do, some don't)
                    mean_faults = statistics.fmean(faults[provider])
                    add(case, provider, mode, "faults", mean_faults, backends[provider], contention=contention)
                if "clone" in providers:
                    clone = summarize(seconds["clone"])
                    for metric in ("ms", "ms_min"):
                        value = clone[metric] * PASSES[mode] / CLONE_PASSES
                        add(case, "roofline", mode, metric, value, contention=contention)

        first_call_seconds: dict[str, float] = {}
        first_call_contention: float | None = None
        if first_call:
            _log(console, "first call in fresh processes ...")
            with ContentionMeter() as meter:
                first_call_seconds = measure_first_call()
            busy = "" if meter.others_pct is None else f"{meter.others_pct:.1f}"
            first_call_contention = meter.others_pct
            shape_case = Case((8, 4, 16, 16))
            for key, value in first_call_seconds.items():
                if key.startswith("first_call_run"):
                    metric = "s_run" + key.removeprefix("first_call_run")
                    add(
                        shape_case,
                        "prelu",
                        "first_call",
                        metric,
                        value,
                        op="first_call",
                        contention=busy,
                        repeats_of_row=1,
                        warmup_of_row=0,
                    )
            import_torch = first_call_seconds["import_torch"]
            add(
                shape_case,
                "prelu",
                "import_torch",
                "s",
                import_torch,
                op="first_call",
                contention=busy,
                repeats_of_row=1,
                warmup_of_row=0,
            )
            attributable = first_call_seconds["prelu_attributable"]
            add(
                shape_case,
                "prelu",
                "first_call",
                "s_prelu_attributable",
                attributable,
                op="first_call",
                contention=busy,
                repeats_of_row=1,
                warmup_of_row=0,
            )

        return _finish(
            rows, info, first_call_seconds, first_call_contention, out_dir, make_plot, report, console, started
        )
    finally:
        torch.set_num_threads(previous_threads)


def _finish(
    rows: list[dict[str, str]],
    info: dict[str, str],
    first_call_seconds: dict[str, float],
    first_call_contention: float | None,
    out_dir: str | os.PathLike[str] | None,
    make_plot: bool,
    report: bool,
    console: Any,
    started: float,
) -> BenchResult:
    """Derive the ratios, write CSV, PNG and markdown, print the report."""
    ratios = derive_ratios(rows)
    tables = result_tables(rows, ratios, first_call_seconds, first_call_contention)
    notes = report_notes(rows)
    csv_path = png_path = markdown_path = None
    if out_dir is not None:
        directory = Path(out_dir)
        directory.mkdir(parents=True, exist_ok=True)
        csv_path = directory / CSV_NAME
        with open(csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        if make_plot:
            title = (
                f"prelu bench: {info['machine']}, {info['cores']} cores, {info['threads']} threads, "
                f"torch {info['torch']}\nroofline = clone ms × bytes moved by the fused op ÷ bytes moved by clone"
            )
            png_path = plot(rows, directory / PNG_NAME, title)
        markdown_path = directory / MARKDOWN_NAME
        markdown_path.write_text(to_markdown(tables, info, notes), encoding="utf-8")
    if report:
        print_report(tables, info, notes, console)
    return BenchResult(
        rows=rows,
        ratios=ratios,
        first_call=first_call_seconds,
        info=info,
        csv_path=csv_path,
        png_path=png_path,
        markdown_path=markdown_path,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------------------------
# Merging runs taken on a shared machine

MERGE_KEYS: tuple[str, ...] = ("machine", "cores", "threads", "torch", "prelu", "allocator")
"""Columns that must agree across merged runs: the same machine, software and allocator regime."""


def _block_key(row: dict[str, str]) -> tuple[str, ...]:
    return (row["shape"], row["layout"], row["slopes"], row["dtype"], row["mode"])


def _contention_value(rows: Iterable[dict[str, str]]) -> float:
    values = [float(row["others_cpu_pct"]) for row in rows if row.get("others_cpu_pct")]
    return max(values) if values else math.inf


def merge(
    csv_paths: Sequence[str | os.PathLike[str]],
    *,
    out_dir: str | os.PathLike[str] | None = "bench-out",
    make_plot: bool = True,
    report: bool = True,
    console: Any = None,
) -> BenchResult:
    """Combine runs of :func:`run`, keeping for each (case, mode) block the least contended one.

    On a shared machine no single run may be quiet throughout; but each block (one case, one mode,
    every provider taking turns) is self-contained, and every ratio compares providers within one
    block, so the quietest block of each from several runs makes a consistent result. The first-call
    rows come from the run where they were least contended. Runs must agree on
    :data:`MERGE_KEYS` (else ValueError). Writes and reports like :func:`run`.
    """
    started = time.perf_counter()
    if not csv_paths:
        raise ValueError("merge needs at least one CSV")
    runs = [read_csv(path) for path in csv_paths]
    reference = next((run[0] for run in runs if run), None)
    if reference is None:
        raise ValueError("the CSVs to merge hold no rows")
    for path, run_rows in zip(csv_paths, runs, strict=True):
        for row in run_rows:
            for key in MERGE_KEYS:
                if row.get(key, "") != reference.get(key, ""):
                    raise ValueError(
                        f"cannot merge {path}: its {key} is {row.get(key)!r}, another run's is {reference.get(key)!r}"
                    )
    best: dict[tuple[str, ...], list[dict[str, str]]] = {}
    first_call_rows: list[dict[str, str]] = []
    for run_rows in runs:
        blocks: dict[tuple[str, ...], list[dict[str, str]]] = {}
        for row in run_rows:
            if row["op"] != "first_call":
                blocks.setdefault(_block_key(row), []).append(row)
        for key, block in blocks.items():
            if key not in best or _contention_value(block) < _contention_value(best[key]):
                best[key] = block
        timed_first_call = [row for row in run_rows if row["op"] == "first_call"]
        if timed_first_call and (
            not first_call_rows or _contention_value(timed_first_call) < _contention_value(first_call_rows)
        ):
            first_call_rows = timed_first_call
    rows = [row for block in best.values() for row in block] + first_call_rows

    first_call: dict[str, float] = {}
    for row in first_call_rows:
        if row["mode"] == "import_torch":
            first_call["import_torch"] = float(row["value"])
        elif row["metric"] == "s_prelu_attributable":
            first_call["prelu_attributable"] = float(row["value"])
        elif row["metric"].startswith("s_run"):
            first_call["first_call_run" + row["metric"].removeprefix("s_run")] = float(row["value"])
    first_call_contention = _contention_value(first_call_rows) if first_call_rows else None
    if first_call_contention == math.inf:
        first_call_contention = None

    stamps = sorted({row["timestamp"] for row in rows})
    info = {key: reference.get(key, "") for key in MERGE_KEYS}
    info.update(
        load="per block: see others' CPU %",
        timestamp=f"{stamps[0]} … {stamps[-1]} (quietest blocks of {len(runs)} runs)" if stamps else "",
    )
    return _finish(rows, info, first_call, first_call_contention, out_dir, make_plot, report, console, started)

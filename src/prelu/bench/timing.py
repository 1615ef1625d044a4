"""The one timing harness of :mod:`prelu.bench`: warm-up, repeats, contenders in turns, page
faults, the contention meter, and CUDA events on a GPU.

Every benchmark (``run``, ``memory``, ``monitor-overhead``) times through :func:`time_in_turns`:
the contenders take turns (one turn each per round) so drift on a shared machine hits them alike;
each call is timed alone (``time.perf_counter`` on the CPU; on CUDA a pair of CUDA events around
the call, after a synchronize, so queued work of another call is never counted); each call's result
is dropped after its clock stops, so no call pays for freeing another's output. Minor page faults
are counted per call because fresh multi-MB outputs fault in page by page: on a 2-core machine
that, more than the arithmetic, separated fused PReLU from LeakyReLU. :class:`ContentionMeter`
says how much CPU other processes took meanwhile; :func:`time_block` times again while it is too
much. Imports torch only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

try:
    import resource
except ImportError:  # not on Windows: page faults are then reported as 0
    resource = None  # type: ignore[assignment]  # the module is optional; None marks it missing

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
"""CPU clocks :func:`time_in_turns` offers: ``cpu`` (process time) leaves out the time a one-thread
process waited for a core on a shared machine (it still includes caches other jobs evicted)."""

RETRY_PAUSE_S = 3.0
"""Pause before timing a contended block again: lets a neighbour's burst pass."""


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
    region then waits for the scheduler (multiples of its 4 ms tick were seen). The percentage is
    of all cores over the block's wall time; None where /proc/stat is missing.

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


def _timed(
    call: Callable[[], object], cuda: bool, now: Callable[[], float] = time.perf_counter
) -> tuple[float, object]:
    """(seconds, result) of one call; on CUDA measured with events between synchronizations."""
    if cuda:
        torch.cuda.synchronize()
        # torch.cuda.Event has no annotations in torch 2.13
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        start.record()
        result = call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3, result
    started = now()
    result = call()
    return now() - started, result


@dataclasses.dataclass
class Timings:
    """Seconds and minor page faults of every timed call, per contender; others' CPU % meanwhile."""

    seconds: dict[str, list[float]]
    faults: dict[str, list[int]]
    others_pct: float | None = None


def time_in_turns(
    calls: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    *,
    device: str | torch.device = "cpu",
    calls_per_turn: int = 1,
    setup: Mapping[str, Callable[[], contextlib.AbstractContextManager[Any]]] | None = None,
    untimed_per_turn: int = 0,
    clock: str = "wall",
) -> Timings:
    """Time every contender ``repeats`` rounds, after ``warmup`` untimed rounds.

    In each round every contender takes one turn: ``setup[name]()`` is entered (e.g. a monitor
    attached), ``untimed_per_turn`` calls run untimed, then ``calls_per_turn`` calls are timed one
    by one, and the setup is left. So each contender gets ``repeats * calls_per_turn`` times.
    ``clock`` names a CPU clock of :data:`CLOCKS` (CUDA devices always use CUDA events).

    >>> timings = time_in_turns({"a": lambda: 1, "b": lambda: 2}, repeats=3, warmup=1, calls_per_turn=2)
    >>> [len(timings.seconds[name]) for name in ("a", "b")], len(timings.faults["a"])
    ([6, 6], 6)
    """
    if repeats < 1 or warmup < 0 or calls_per_turn < 1 or untimed_per_turn < 0:
        raise ValueError(
            f"need repeats >= 1, warmup >= 0, calls_per_turn >= 1, untimed_per_turn >= 0; got {repeats}, "
            f"{warmup}, {calls_per_turn}, {untimed_per_turn}"
        )
    cuda = torch.device(device).type == "cuda"
    now = CLOCKS[clock]
    setup = setup or {}
    timings = Timings({name: [] for name in calls}, {name: [] for name in calls})
    for round_number in range(warmup + repeats):
        timed = round_number >= warmup
        for name, call in calls.items():
            with setup[name]() if name in setup else contextlib.nullcontext():
                for _ in range(untimed_per_turn if timed else 0):
                    call()
                for _ in range(calls_per_turn if timed else 1):
                    faults_before = _minor_faults()
                    elapsed, result = _timed(call, cuda, now)
                    faults = _minor_faults() - faults_before
                    del result
                    if timed:
                        timings.seconds[name].append(elapsed)
                        timings.faults[name].append(faults)
    if cuda:
        torch.cuda.synchronize()
    return timings


def log(console: Any, message: str) -> None:
    """A progress line: on ``console`` (a rich Console) if given, else on stderr."""
    if console is not None:
        console.print(message, markup=False)
    else:
        print(message, file=sys.stderr, flush=True)


def time_block(
    calls: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    *,
    max_contention: float | None = None,
    tries: int = 3,
    device: str | torch.device = "cpu",
    console: Any = None,
) -> Timings:
    """:func:`time_in_turns` under a :class:`ContentionMeter`; while other processes used more than
    ``max_contention`` % of the CPU, time again (``tries`` attempts in all), keeping the least
    contended attempt. ``max_contention=None`` times once."""
    best: Timings | None = None
    for attempt in range(1, max(1, tries) + 1):
        with ContentionMeter() as meter:
            timings = time_in_turns(calls, repeats, warmup, device=device)
        timings.others_pct = pct = meter.others_pct
        if best is None or (pct is not None and (best.others_pct is None or pct < best.others_pct)):
            best = timings
        if max_contention is None or pct is None or pct <= max_contention or attempt >= tries:
            break
        log(console, f"    other processes used {pct:.0f} % of the CPU; timing again ({attempt + 1}/{tries})")
        time.sleep(RETRY_PAUSE_S)
    assert best is not None  # the loop runs at least once
    return best

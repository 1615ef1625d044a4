"""Typed results of ``prelu bench run``: one :class:`Measurement` per (case, provider, mode, metric),
the :class:`RunInfo` it was measured under, and the long-format CSV written from them.

The CSV (:data:`CSV_COLUMNS`, one row per measurement) is the file plots and merges are made from:
every value is a number in ``value``, and each row carries its machine, software and allocator,
so rows of different runs can be merged and compared safely. Imports :mod:`prelu._io`, torch and
:mod:`prelu` (for the version).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Iterable, Sequence

import torch

import prelu
from prelu._io import csvio, machine
from prelu.bench.allocator import allocator_settings

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
    "device",
)
"""Columns of the long-format CSV, in order (``device`` was added last: older files lack it, and
their rows read as ``cpu``)."""

CSV_NAME = "bench.csv"
PNG_NAME = "bench.png"
MARKDOWN_NAME = "results.md"


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a measurement depends on: machine, cores, threads, device, software, allocator, time."""

    machine: str
    cores: str
    threads: str
    torch: str
    prelu: str
    allocator: str
    timestamp: str
    device: str = "cpu"
    python: str = ""
    load: str = "n/a"

    @classmethod
    def now(cls, device: str = "cpu") -> RunInfo:
        """This process, now; ``device`` is recorded as ``cpu`` or ``cuda: <name>``."""
        info = machine.machine_info()
        kind = torch.device(device).type
        return cls(
            machine=info["machine"],
            cores=info["cores"],
            threads=info["threads"],
            torch=info["torch"],
            prelu=prelu.__version__,
            allocator=allocator_settings(),
            timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            device=kind if kind == "cpu" else f"{kind}: {info['device']}",
            python=info["python"],
            load=info["load"],
        )


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One number: ``metric`` of ``provider`` on a case in ``mode``.

    ``metric`` is ``ms`` (median), ``ms_min``, ``ms_iqr``, ``faults`` (mean minor page faults per
    call) or, for the first-call rows (``op == "first_call"``), ``s_run<N>``, ``s``,
    ``s_prelu_attributable`` in seconds. ``others_cpu_pct`` is the share of the machine's CPU other
    processes used while the block was timed (None where unknown).
    """

    op: str
    provider: str
    mode: str
    metric: str
    value: float
    shape: str
    layout: str
    slopes: str
    dtype: str
    info: RunInfo
    backend: str = ""
    others_cpu_pct: float | None = None
    repeats: int = 1
    warmup: int = 0

    @property
    def case_key(self) -> tuple[str, str, str]:
        """(shape, layout, slopes)."""
        return (self.shape, self.layout, self.slopes)

    @property
    def block_key(self) -> tuple[str, str, str, str, str]:
        """(shape, layout, slopes, dtype, mode): the block whose providers were timed in turns."""
        return (self.shape, self.layout, self.slopes, self.dtype, self.mode)

    def to_row(self) -> dict[str, str]:
        """The CSV row (every value a string; floats exact via ``repr``)."""
        return {
            "op": self.op,
            "provider": self.provider,
            "mode": self.mode,
            "metric": self.metric,
            "value": repr(float(self.value)),
            "shape": self.shape,
            "layout": self.layout,
            "slopes": self.slopes,
            "dtype": self.dtype,
            "backend": self.backend,
            "others_cpu_pct": "" if self.others_cpu_pct is None else f"{self.others_cpu_pct:.1f}",
            "repeats": str(self.repeats),
            "warmup": str(self.warmup),
            "threads": self.info.threads,
            "allocator": self.info.allocator,
            "machine": self.info.machine,
            "cores": self.info.cores,
            "torch": self.info.torch,
            "prelu": self.info.prelu,
            "timestamp": self.info.timestamp,
            "device": self.info.device,
        }

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Measurement:
        """The measurement of a CSV row (a missing ``device`` reads as ``cpu``)."""
        info = RunInfo(
            machine=row["machine"],
            cores=row["cores"],
            threads=row["threads"],
            torch=row["torch"],
            prelu=row["prelu"],
            allocator=row.get("allocator", ""),
            timestamp=row["timestamp"],
            device=row.get("device") or "cpu",
        )
        return cls(
            op=row["op"],
            provider=row["provider"],
            mode=row["mode"],
            metric=row["metric"],
            value=float(row["value"]),
            shape=row["shape"],
            layout=row["layout"],
            slopes=row["slopes"],
            dtype=row["dtype"],
            info=info,
            backend=row.get("backend", ""),
            others_cpu_pct=float(row["others_cpu_pct"]) if row.get("others_cpu_pct") else None,
            repeats=int(row["repeats"] or 1),
            warmup=int(row["warmup"] or 0),
        )


def to_csv_text_rows(measurements: Iterable[Measurement]) -> list[dict[str, str]]:
    """The CSV rows of ``measurements``, in order."""
    return [measurement.to_row() for measurement in measurements]


def csv_text(measurements: Iterable[Measurement]) -> str:
    """The long-format CSV of ``measurements``, header first."""
    return csvio.csv_text(to_csv_text_rows(measurements), CSV_COLUMNS)


def read_csv(path: str | os.PathLike[str]) -> list[Measurement]:
    """The measurements in a CSV written by ``prelu bench run``; a ValueError naming the file and
    the missing columns when it is not one."""
    rows = csvio.read_csv(path)
    needed = set(CSV_COLUMNS) - {"device"}
    missing = sorted(needed - set(rows[0])) if rows else []
    if missing:
        raise ValueError(f"{path} is not a prelu bench CSV: it lacks the columns {', '.join(missing)}")
    try:
        return [Measurement.from_row(row) for row in rows]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} has a malformed row: {error}") from None


def values_by_key(
    measurements: Iterable[Measurement], metric: str = "ms"
) -> dict[tuple[str, str, str, str, str], float]:
    """(shape, layout, slopes, provider, mode) -> value of ``metric`` (default: median ms)."""
    return {(*m.case_key, m.provider, m.mode): m.value for m in measurements if m.metric == metric}


def case_keys(measurements: Sequence[Measurement]) -> list[tuple[str, str, str]]:
    """The timed cases, in order of first appearance."""
    return list(dict.fromkeys(m.case_key for m in measurements if m.metric == "ms"))

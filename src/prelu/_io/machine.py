"""The machine a number was measured on: CPU, cores, threads, accelerator, torch, Python, load.

Owns the description every benchmark and report prints beside its numbers, so numbers from
different machines are never compared unknowingly. Imports torch, nothing from :mod:`prelu`.

>>> info = machine_info()
>>> sorted(info)
['cores', 'device', 'load', 'machine', 'python', 'threads', 'torch']
>>> int(info["cores"]) >= 1
True
"""

from __future__ import annotations

import os
import platform

import torch


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


def accelerator() -> str:
    """The first CUDA device's name, or 'none'."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "none"


def machine_info() -> dict[str, str]:
    """What a measurement depends on, as strings: CPU (``machine``), ``cores``, torch ``threads``,
    the CUDA ``device``, ``torch`` and ``python`` versions, and the load average (``load``)."""
    return {
        "machine": f"{cpu_model()} ({platform.machine()}, {platform.system()})",
        "cores": str(os.cpu_count() or 0),
        "threads": str(torch.get_num_threads()),
        "device": accelerator(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load": " ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
    }

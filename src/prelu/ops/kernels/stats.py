"""Fused CPU kernel for :class:`prelu.Monitor`: input counts and a histogram in one pass (C++).

Owns the wrapper around ``torch.ops.prelu_cpu.summarise`` (``csrc/prelu_cpu.cpp``, built by
:mod:`prelu.ops.kernels.extension`, run on torch's own thread pool); imports torch and
:mod:`prelu.ops.kernels.extension`. Where the extension cannot be built, :func:`supports` is
False and the monitor uses torch ops.

Per element ``v`` of a dense float32/float64 CPU tensor (memory order does not matter)::

    nonpositive += v <= 0         underflow += v < low (-inf too)     overflow += v > high (+inf too)
    nan += v is NaN               inf += v is +-inf
    hist[floor((v - low) * bins / (high - low))] += 1   for low <= v <= high (v == high: last bin)

so ``underflow + sum(hist) + overflow + nan == numel``. The same counts from torch ops cost a pass
each (``torch.histc`` alone took 6.0 ms for 2**20 float32 values on one core).
"""

from __future__ import annotations

import numpy as np
import torch

from prelu.ops.kernels import extension
from prelu.ops.layout import memory_order

COUNTS = ("nonpositive", "underflow", "overflow", "nan", "inf")
"""The order of the counts ahead of the histogram in :func:`summarise`'s result."""

SUPPORTED_DTYPES = (torch.float32, torch.float64)


def supports(tensor: torch.Tensor) -> bool:
    """CPU, float32/float64, dense in some memory order (any permutation of dims, no gaps), and
    the C++ kernels available."""
    return (
        tensor.device.type == "cpu"
        and tensor.dtype in SUPPORTED_DTYPES
        and tensor.numel() > 0
        and memory_order(tensor) is not None
        and extension.load() is not None
    )


def summarise(tensor: torch.Tensor, bins: int, low: float, high: float) -> np.ndarray:
    """``[nonpositive, underflow, overflow, nan, inf, *hist]`` as int64 for a tensor that
    :func:`supports` accepts (the caller checks).

    >>> x = torch.tensor([-3.0, -1.0, 0.0, 0.5, 2.0, float("nan"), float("-inf")])
    >>> summarise(x, bins=2, low=-1.0, high=1.0).tolist()
    [4, 2, 1, 1, 1, 1, 2]
    """
    counts: torch.Tensor = extension.load().summarise(tensor.detach(), int(bins), float(low), float(high))
    result: np.ndarray = counts.numpy()
    return result

"""Streaming statistics of one rectifier's inputs over one window, for :class:`prelu.Monitor`.

Owns :class:`LayerStats` (the record) and :class:`LayerWindow` (its running counts: fixed size,
whatever the number of batches); imports :mod:`prelu.nn.rectifiers` (labels and slopes) and
:mod:`prelu.ops.kernels.stats` (one fused pass on CPU; torch ops elsewhere).

>>> import torch
>>> from torch import nn
>>> window = LayerWindow("act", nn.ReLU(), channel_dim=None, bins=4)
>>> window.observe(torch.tensor([[-1.0, 0.5], [-2.0, -0.5]]), low=-2.0, high=2.0)
>>> record = window.stats(window=0, step=0, hist_range=(-2.0, 2.0), dead_eps=0.0)
>>> record.units, record.dead_indices, record.negative_fraction, record.hist_counts
(2, [0], 0.75, [1, 2, 1, 0])
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from prelu.nn import rectifiers

try:
    from prelu.ops.kernels import stats as stats_kernel
except ImportError:  # the C++ extension could not be built: torch ops count everything
    # The name holds the module or None (checked before every use); mypy types it as the module.
    stats_kernel = None  # type: ignore[assignment]

_COUNTS = 5  # nonpositive, underflow, overflow, nan, inf: the kernel's order
# torch.histc returns counts in the input's dtype: float32 rounds a bin's count above 2**24.
_HISTC_CHUNK = 2**24


@dataclass
class LayerStats:
    """What one rectifier saw during one observation window (``x``: the layer's input).

    - ``units``: channels (conv layouts) or features (linear and sequence layouts) along the
      layer's channel axis ``channel_dim`` (None when the layer was seen with several).
    - A unit is **dead** when none of its inputs in the window exceeded ``dead_eps``: ``x <=
      dead_eps`` for every sample and position of that unit (a NaN input never makes a unit alive).
      ``dead_indices``: their positions on the channel axis (a module seen with several unit counts
      lists its groups one after another, in the order first seen); ``dead_fraction`` =
      ``dead_units / units``.
    - ``negative_fraction``: the fraction of all inputs with ``x <= 0``.
    - Histogram: ``len(hist_counts)`` equal bins over ``hist_range`` (a value equal to the upper
      edge goes in the last bin); ``underflow`` (``x <`` low, -inf too) + ``sum(hist_counts)`` +
      ``overflow`` (``x >`` high, +inf too) + ``nan_inputs`` == ``inputs``. ``nonfinite_inputs``
      counts NaN and +-inf.
    - Slopes, as they are at the end of the window: learned (``learnable``; ``slopes`` lists every
      one, ``nonfinite_slopes`` counts NaN/inf ones, which mean/min/max leave out) or fixed (ReLU
      and ReLU6: 0, Leaky ReLU, RReLU: its bounds); None for user-named types.
    - ``grad_abs_mean``: mean ``|dL/dy|`` at the layer's output (``grads=True``).
    - ``calls``: forward calls observed; ``inputs``: input elements seen. Fractions and means are
      None when nothing was seen.
    """

    name: str
    kind: str
    window: int
    step: int
    calls: int
    inputs: int
    units: int
    dead_units: int
    dead_indices: list[int]
    dead_fraction: float | None
    negative_fraction: float | None
    nonfinite_inputs: int
    nan_inputs: int
    underflow: int
    overflow: int
    hist_counts: list[int]
    hist_range: tuple[float, float]
    learnable: bool
    slope_mean: float | None
    slope_min: float | None
    slope_max: float | None
    slopes: list[float] | None
    nonfinite_slopes: int
    grad_abs_mean: float | None
    channel_dim: int | None


def slopes(module: nn.Module) -> tuple[bool, Tensor | None]:
    """(learnable, the slopes now as a 1-D float64 CPU tensor), read through the rectifier table;
    (False, None) for a type not in it (one the user added with ``types=``). RReLU's slopes are
    ``[lower, upper]``: it draws them from that range in training and uses their mean in eval."""
    entry = rectifiers.rectifier_for(module)
    if entry is None:
        return False, None
    return entry.learnable, entry.slopes(module).reshape(-1)


def _histc(x: Tensor, bins: int, low: float, high: float) -> Tensor:
    """torch.histc as exact float64 counts, however many values fall in one bin."""
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    if x.dtype == torch.float64 or x.numel() <= _HISTC_CHUNK:
        return torch.histc(x, bins, low, high).double()
    if x[0].numel() > _HISTC_CHUNK:
        return torch.histc(x.double(), bins, low, high)
    parts = torch.split(x, _HISTC_CHUNK // x[0].numel())
    return torch.stack([torch.histc(part, bins, low, high) for part in parts]).double().sum(0)


class _UnitGroup:
    """Running per-unit maximum for one (channel axis, unit count) that a layer has seen."""

    __slots__ = ("channel_dim", "maximum", "reduce_dims", "units")

    def __init__(self, channel_dim: int | None, units: int, ndim: int, device: torch.device) -> None:
        self.channel_dim = channel_dim
        self.units = units
        self.reduce_dims = tuple(d for d in range(ndim) if d != channel_dim)
        self.maximum = torch.full((units,), -math.inf, dtype=torch.float64, device=device)

    def observe(self, x: Tensor, has_nan: bool) -> None:
        """``has_nan``: whether ``x`` may hold NaN (amax would return NaN for the whole unit)."""
        if self.maximum.device != x.device:
            self.maximum = self.maximum.to(x.device)
        if has_nan:  # a NaN input never makes a unit alive, and hides none of the unit's other inputs
            x = torch.where(torch.isnan(x), -math.inf, x)
        batch_max = x.amax(dim=self.reduce_dims) if self.reduce_dims else x
        torch.maximum(self.maximum, batch_max.reshape(self.units), out=self.maximum)

    def dead(self, dead_eps: float) -> list[int]:
        return torch.nonzero(self.maximum <= dead_eps).reshape(-1).tolist()


class LayerWindow:
    """One hooked module and its running counts for the current window.

    ``channel_dim``: the user's override (None: the module's own ``channel_dim`` attribute, else
    dim 1 for ndim >= 3 and the last dim for 2-D inputs).
    """

    def __init__(self, name: str, module: nn.Module, channel_dim: int | None, bins: int) -> None:
        self.name = name
        self.module = module
        self.kind = rectifiers.label(module)
        self.channel_dim = channel_dim
        self.bins = bins
        self.warned_channel_dim = False
        self.reset()

    def reset(self) -> None:
        """Zero every count (a new window)."""
        self.calls = 0
        self.inputs = 0
        self.groups: dict[tuple[int | None, int], _UnitGroup] = {}
        self.host_counts = np.zeros(_COUNTS + self.bins, dtype=np.int64)  # from the CPU kernel
        self.device_counts: Tensor | None = None  # from torch ops, int64, on the input's device
        self.device_hist: Tensor | None = None
        self.grad_sum: Tensor | None = None
        self.grad_count = 0

    def resolve_channel_dim(self, ndim: int) -> int | None:
        """The unit axis for an ``ndim``-d input (None: a 0-d input, one unit)."""
        dim = self.channel_dim
        if dim is None:
            own = getattr(self.module, "channel_dim", None)
            if isinstance(own, int) and not isinstance(own, bool):
                dim = own
        if dim is not None and -ndim <= dim < ndim:
            return dim % ndim
        if dim is not None and not self.warned_channel_dim:
            self.warned_channel_dim = True
            warnings.warn(
                f"Monitor: channel_dim={dim} does not fit the {ndim}-d input of layer {self.name!r}; "
                "using the default (dim 1 for ndim >= 3, the last dim otherwise)",
                stacklevel=2,
            )
        if ndim == 0:
            return None
        return 1 if ndim >= 3 else ndim - 1

    def observe(self, x: Tensor, low: float, high: float) -> None:
        """Add one input (detached, under no_grad) to the window."""
        if x.numel() == 0:
            return
        channel_dim = self.resolve_channel_dim(x.ndim)
        units = 1 if channel_dim is None else x.shape[channel_dim]
        group = self.groups.get((channel_dim, units))
        if group is None:
            group = self.groups[(channel_dim, units)] = _UnitGroup(channel_dim, units, x.ndim, x.device)
        if stats_kernel is not None and stats_kernel.supports(x):
            counts = stats_kernel.summarise(x, self.bins, low, high)
            self.host_counts += counts
            group.observe(x, has_nan=bool(counts[3]))
        else:
            self._observe_with_torch(x, low, high)
            group.observe(x, has_nan=True)  # checking would cost a host sync
        self.calls += 1
        self.inputs += x.numel()

    def _observe_with_torch(self, x: Tensor, low: float, high: float) -> None:
        # Accumulated on the input's device without a host sync (GPU, float16/bfloat16, strided).
        counts = torch.stack(((x <= 0).sum(), (x < low).sum(), (x > high).sum(), x.isnan().sum(), x.isinf().sum()))
        hist = _histc(x, self.bins, low, high)
        if self.device_counts is None or self.device_hist is None:
            self.device_counts, self.device_hist = counts, hist
        elif self.device_counts.device != x.device:
            self.device_counts = counts + self.device_counts.to(x.device)
            self.device_hist = hist + self.device_hist.to(x.device)
        else:
            self.device_counts += counts
            self.device_hist += hist

    def observe_grad(self, grad: Tensor) -> None:
        """Tensor hook on the layer's output: add ``|dL/dy|``."""
        # One pass without a |grad|-sized temporary (abs().sum() allocates one).
        total = torch.linalg.vector_norm(grad.detach(), ord=1).double()
        self.grad_sum = total if self.grad_sum is None else self.grad_sum + total.to(self.grad_sum.device)
        self.grad_count += grad.numel()

    def stats(self, window: int, step: int, hist_range: tuple[float, float], dead_eps: float) -> LayerStats:
        """The window's record (reads the module's slopes now)."""
        counts = self.host_counts.copy()
        if self.device_counts is not None and self.device_hist is not None:
            counts[:_COUNTS] += np.asarray(self.device_counts.tolist(), dtype=np.int64)
            counts[_COUNTS:] += np.rint(self.device_hist.cpu().numpy()).astype(np.int64)
        nonpositive, underflow, overflow, nan, inf = (int(c) for c in counts[:_COUNTS])
        units = 0
        dead_indices: list[int] = []
        for group in self.groups.values():
            dead_indices += [units + index for index in group.dead(dead_eps)]
            units += group.units
        dead = len(dead_indices)
        learnable, values = slopes(self.module)
        slope_mean = slope_min = slope_max = None
        nonfinite_slopes = 0
        if values is not None:
            finite = values[torch.isfinite(values)]
            nonfinite_slopes = values.numel() - finite.numel()
            if finite.numel():
                slope_mean, slope_min, slope_max = float(finite.mean()), float(finite.min()), float(finite.max())
        channel_dims = {group.channel_dim for group in self.groups.values()}
        return LayerStats(
            name=self.name,
            kind=self.kind,
            window=window,
            step=step,
            calls=self.calls,
            inputs=self.inputs,
            units=units,
            dead_units=dead,
            dead_indices=dead_indices,
            dead_fraction=dead / units if units else None,
            negative_fraction=nonpositive / self.inputs if self.inputs else None,
            nonfinite_inputs=nan + inf,
            nan_inputs=nan,
            underflow=underflow,
            overflow=overflow,
            hist_counts=[int(c) for c in counts[_COUNTS:]],
            hist_range=hist_range,
            learnable=learnable,
            slope_mean=slope_mean,
            slope_min=slope_min,
            slope_max=slope_max,
            slopes=values.tolist() if learnable and values is not None else None,
            nonfinite_slopes=nonfinite_slopes,
            grad_abs_mean=float(self.grad_sum) / self.grad_count
            if self.grad_sum is not None and self.grad_count
            else None,
            channel_dim=channel_dims.pop() if len(channel_dims) == 1 else None,
        )

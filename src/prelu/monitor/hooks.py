"""Training diagnostics for rectifier networks: dead units, negative fraction, slopes, histograms.

Owns :class:`Monitor`: finding the layers, the hooks, the windows and the history. Imports
:mod:`prelu.nn.rectifiers` (every type in the rectifier table is watched), :mod:`prelu.monitor.stats`
(the running counts and the :class:`LayerStats` record) and :mod:`prelu.monitor.export` (CSV, JSON,
TensorBoard, PNG).
Imported by the root and the lab; nothing in nn, ops or tools imports it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from prelu.monitor import export as monitor_report
from prelu.monitor.stats import LayerStats, LayerWindow
from prelu.nn.rectifiers import RECTIFIER_TYPES


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_finite(name: str, value: object) -> float:
    # Takes object: a float annotation would let a type checker assume the isinstance test away.
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_channel_dim(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"channel_dim must be an int or None, got {value!r}")
    return int(value)


class Monitor:
    r"""Watches every rectifier in a model: dead units, negative fraction, slopes, histograms.

    Hooks each ``prelu.PReLU``, ``prelu.LeakyReLU`` and ``torch.nn`` ``ReLU``, ``LeakyReLU``,
    ``PReLU``, ``RReLU``, ``ReLU6`` (plus any module type in ``types``) with a forward *pre*-hook, so
    in-place layers are seen before they overwrite their input. Statistics are running counts over
    an observation window (memory does not grow with the number of batches); :meth:`new_window` /
    :meth:`epoch_end` close the window into :attr:`history`, :meth:`reset` drops it.

    Per layer and window, with :math:`x` the layer's input and units along its channel axis:

    .. math::
        \text{negative\_fraction} = \frac{\#\{x \le 0\}}{\#\{x\}}, \qquad
        \text{unit } c \text{ dead} \iff \max_{\text{samples, positions}} x_{c} \le \text{dead\_eps},
        \qquad \text{dead\_fraction} = \frac{\text{dead\_units}}{\text{units}}

    The channel axis: ``channel_dim`` if given (an int for every layer, or a mapping from a layer
    name or module type to an int; names win over types), else the layer's own ``channel_dim``
    attribute (``prelu.PReLU``), else dim 1 for inputs with ``ndim >= 3`` (N, C, ...) and the last
    dim for 2-D (N, features); a 1-D input's elements are its units, a 0-d input is one unit. A
    module called several times per forward (torchvision's ResNet reuses one ReLU per block) pools
    its calls: a unit is dead only if dead at every call (calls with another unit count are kept
    apart and listed after the first).

    Cost: on CPU one fused pass per observed input (:mod:`prelu.ops.kernels.stats`), plus a per-unit
    max; elsewhere torch ops (``torch.histc``) that never sync with the host. Measured with
    ``prelu bench monitor-overhead`` on 2 cores: 1.13x a conv-BN-ReLU CNN training step, 1.14x a
    ReLU MLP step; ``every=4``: 1.03-1.04x. ``history`` grows by one record per layer per closed
    window, never per batch.

    Args:
        model: the network; its modules are searched once, here (layers added later are not seen).
        types: extra module types to hook.
        bins, range: the fixed-bin histogram of inputs over ``range`` (values outside are counted
            in ``underflow``/``overflow``, NaN in ``nan_inputs``). Default 50 bins over (-5, 5).
        dead_eps: a unit whose inputs never exceed this is dead. Default 0.0.
        every: observe every ``every``-th forward call of ``model`` (the first one included).
            Counted by a pre-hook on ``model``: calling submodules directly observes every call.
        grads: also record the mean :math:`|\partial L / \partial y|` at each layer's output (a
            tensor hook on the output; full backward hooks refuse in-place layers).
        channel_dim: overrides the channel axis, see above.

    Examples::

        >>> import torch, prelu
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        >>> with torch.no_grad():
        ...     _ = model[0].weight.zero_()
        ...     _ = model[0].bias.copy_(torch.tensor([-1.0, 0.0, 1.0]))
        >>> with prelu.Monitor(model) as monitor:
        ...     _ = model(torch.randn(8, 4))
        >>> [(s.name, s.units, s.dead_units, s.negative_fraction) for s in monitor.summary()]
        [('1', 3, 2, 0.6666666666666666)]
        >>> records = monitor.epoch_end(0)
        >>> len(monitor.history), monitor.summary()[0].calls
        (1, 0)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        types: Iterable[type[nn.Module]] = (),
        bins: int = 50,
        range: tuple[float, float] = (-5.0, 5.0),
        dead_eps: float = 0.0,
        every: int = 1,
        grads: bool = False,
        channel_dim: int | Mapping[str | type[nn.Module], int] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        extra = tuple(types)
        for cls in extra:
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
                raise TypeError(f"types must hold nn.Module subclasses, got {cls!r}")
        self.bins = _check_positive_int("bins", bins)
        low, high = (float(v) for v in range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"range must be two finite numbers, low < high, got {range!r}")
        self.range = (low, high)
        self.dead_eps = _check_finite("dead_eps", dead_eps)
        self.every = _check_positive_int("every", every)
        self.grads = bool(grads)
        self.model = model
        self.types = RECTIFIER_TYPES + extra
        self._layers = [
            LayerWindow(
                name or type(module).__name__, module, self._channel_dim_for(name, module, channel_dim), self.bins
            )
            for name, module in model.named_modules()
            if isinstance(module, self.types)
        ]
        if not self._layers:
            warnings.warn(
                f"Monitor: {type(model).__name__} has no rectifier layers "
                f"({', '.join(t.__name__ for t in self.types)}); the summary will be empty",
                stacklevel=2,
            )
        self._history: list[LayerStats] = []
        self._handles: list[RemovableHandle] = []
        self._forward_calls = 0
        self._observing = True
        self._window = 0

    @staticmethod
    def _channel_dim_for(name: str, module: nn.Module, channel_dim: object) -> int | None:
        if channel_dim is None or isinstance(channel_dim, numbers.Integral):
            return _check_channel_dim(channel_dim)
        if not isinstance(channel_dim, Mapping):
            raise TypeError(f"channel_dim must be an int, a mapping or None, got {channel_dim!r}")
        if name in channel_dim:
            return _check_channel_dim(channel_dim[name])
        for cls in type(module).__mro__:
            if cls in channel_dim:
                return _check_channel_dim(channel_dim[cls])
        return None

    # hooks -------------------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """Whether the hooks are in place."""
        return bool(self._handles)

    def attach(self) -> Monitor:
        """Register the hooks (a no-op when attached). Returns ``self``."""
        if self._handles:
            return self
        self._handles.append(self.model.register_forward_pre_hook(self._count_forward))
        for layer in self._layers:
            self._handles.append(layer.module.register_forward_pre_hook(self._pre_hook(layer), with_kwargs=True))
            if self.grads:
                self._handles.append(layer.module.register_forward_hook(self._grad_hook(layer)))
        return self

    def detach(self) -> None:
        """Remove every hook this monitor registered; the statistics stay readable."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> Monitor:
        return self.attach()

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    def _count_forward(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._observing = self._forward_calls % self.every == 0
        self._forward_calls += 1

    def _pre_hook(self, layer: LayerWindow) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], None]:
        low, high = self.range

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not self._observing:
                return
            x = next((a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)), None)
            if x is None or not x.is_floating_point():
                return
            if torch.is_inference_mode_enabled():
                # Running counts made here would be inference tensors, which later in-place updates refuse.
                with torch.inference_mode(False), torch.no_grad():
                    layer.observe(x.detach(), low, high)
            else:
                with torch.no_grad():
                    layer.observe(x.detach(), low, high)

        return hook

    def _grad_hook(self, layer: LayerWindow) -> Callable[[nn.Module, tuple[Any, ...], object], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: object) -> None:
            if self._observing and isinstance(output, Tensor) and output.requires_grad:
                # torch declares Tensor.register_hook without annotations; the hook's signature matches.
                output.register_hook(layer.observe_grad)  # type: ignore[no-untyped-call]

        return hook

    # windows -----------------------------------------------------------------------------------

    def summary(self) -> list[LayerStats]:
        """One :class:`LayerStats` per layer for the current (open) window; changes nothing."""
        return [layer.stats(self._window, self._window, self.range, self.dead_eps) for layer in self._layers]

    def new_window(self, step: int | None = None) -> list[LayerStats]:
        """Close the current window: its records (stamped with ``step``, default the window index)
        go to :attr:`history` and are returned; the counts restart from zero."""
        label = self._window if step is None else int(step)
        records = [layer.stats(self._window, label, self.range, self.dead_eps) for layer in self._layers]
        self._history.extend(records)
        self._window += 1
        for layer in self._layers:
            layer.reset()
        return records

    def epoch_end(self, epoch: int | None = None) -> list[LayerStats]:
        """:meth:`new_window` with the epoch as the step."""
        return self.new_window(epoch)

    def reset(self) -> None:
        """Drop the current window's counts without recording them."""
        for layer in self._layers:
            layer.reset()

    @property
    def history(self) -> list[LayerStats]:
        """The closed windows' records, oldest first: one per layer per window, each with its
        ``window`` index and ``step`` (or epoch)."""
        return list(self._history)

    def records(self) -> list[LayerStats]:
        """:attr:`history` plus the open window if it has seen any input: what the exports write."""
        current = self.summary()
        return self.history + (current if any(r.calls for r in current) else [])

    # reports -----------------------------------------------------------------------------------

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`records` as CSV (one row per layer per window; lists as JSON text)."""
        return monitor_report.write_csv(self.records(), [f.name for f in dataclasses.fields(LayerStats)], path)

    def to_json(self, path: str | Path) -> Path:
        """Write the settings and :meth:`records` as JSON (NaN written as null)."""
        settings = {"bins": self.bins, "range": list(self.range), "dead_eps": self.dead_eps, "every": self.every}
        return monitor_report.write_json(self.records(), settings, path)

    def log_to(self, writer: Any, step: int, *, prefix: str = "monitor") -> None:
        """Log the latest window with data (the open one, else the last closed one) to a TensorBoard
        ``SummaryWriter`` or anything with ``add_scalar(tag, value, step)`` and
        ``add_histogram(tag, values, step)``."""
        current = self.summary()
        if not any(r.calls for r in current) and self._history:
            last = self._history[-1].window
            current = [r for r in self._history if r.window == last]
        monitor_report.log_records(current, writer, step, prefix=prefix)

    def plot(self, path: str | Path) -> Path:
        """Save a PNG: dead fraction per layer over time, slope trajectories, latest histograms."""
        return monitor_report.plot_records(self.records(), path)

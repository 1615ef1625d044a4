"""Plan one replacement for :func:`prelu.convert`: the channel axis and count, the starting slopes,
and the new module, built by the activation registry.

Owns the channel axis rule and the keyword arguments each built-in target gets; imports
:mod:`prelu.tools.walk` (the recorded forward pass), :mod:`prelu.tools.registry` (which builds every
replacement, built-in names too, so a name re-registered with ``overwrite=True`` is what convert
builds) and :mod:`prelu.nn` (the rectifier table, PReLU's bounds).

Channel axis rule (``per="channel"``, ``channel_dim=None``), for each activation:

1. an activation that already has one slope per channel (``PReLU(C)``) keeps its axis and ``C``;
2. otherwise its input in the forward pass on ``example_input`` decides: an input of at most 2
   dims, ``(N, F)``, uses the last dim; an input of 3 or more dims uses the last dim if the layer
   that produced it works on features-last data (Linear, LayerNorm, Embedding, MultiheadAttention:
   ``(batch, sequence, features)``), and dim 1 if it works on channels-first data (ConvNd,
   BatchNorm, GroupNorm, InstanceNorm, pooling, upsampling: ``(N, C, ...)``) or if no such layer
   is found (torch's convention). Element-wise layers (Dropout, other activations, ...) are looked
   through. The producer of an input made by a function (a residual ``+``) is the last layer that
   ran before it.
3. ``channel_dim=`` overrides both for every activation.

The rule fits the common layouts. A channels-last CNN that permutes to ``(N, H, W, C)`` before
its activations, or a features-last model whose activations follow a function rather than a
layer, needs ``channel_dim``; the report shows the axis chosen for each activation.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm
from torch.nn.modules.pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _MaxPoolNd

from prelu.nn import rectifiers
from prelu.nn.modules import PReLU
from prelu.tools import registry, walk

TARGETS = ("prelu", "prelu_shared", "leaky_relu", "relu")
"""The built-in names convert knows the arguments of (channel counts, slopes, in-place flags)."""
PER = ("channel", "shared")

_FEATURES_LAST: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Bilinear,
    nn.LayerNorm,
    nn.Embedding,
    nn.EmbeddingBag,
    nn.MultiheadAttention,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())
_CHANNELS_FIRST: tuple[type[nn.Module], ...] = (
    _ConvNd,
    _BatchNorm,
    _InstanceNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    _MaxPoolNd,
    _AvgPoolNd,
    _AdaptiveAvgPoolNd,
    _AdaptiveMaxPoolNd,
    nn.Upsample,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
)
_DEFAULT_SLOPE = {"prelu": 0.25, "prelu_shared": 0.25, "leaky_relu": 0.01}

DtypeDevice = tuple[torch.dtype | None, torch.device | None]


@dataclass(frozen=True)
class Options:
    """convert()'s checked arguments, as every site's plan reads them."""

    to: str
    per: str
    init: float | str | None
    """None (the target's default), ``"keep"`` or a number."""
    channel_dim: int | None
    bounds: tuple[float, float] | None


@dataclass
class Site:
    """One activation module of the model and every place it is registered and called."""

    module: nn.Module
    names: list[str]
    slots: list[tuple[nn.Module, str]]
    calls: list[walk.Call] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.names[0]!r} ({self.module!r})"

    def shapes(self) -> list[tuple[int, ...]]:
        """The distinct input shapes it was called with, in call order."""
        shapes: list[tuple[int, ...]] = []
        for call in self.calls:
            if call.input_shape is not None and call.input_shape not in shapes:
                shapes.append(call.input_shape)
        return shapes


def check_init(init: object, to: str) -> float | str | None:
    """``init`` checked against the target: None, ``"keep"`` or a finite number."""
    if init is None or init == "keep":
        return "keep" if init == "keep" else None
    if isinstance(init, bool) or not isinstance(init, numbers.Real) or not math.isfinite(init):
        raise ValueError(f"init must be None (the target's default), 'keep' or a finite number, got {init!r}")
    if to == "relu" and init != 0:
        raise ValueError(f"to='relu' has no slope to initialise; got init={init!r} (leave init=None)")
    if to not in TARGETS:
        raise ValueError(f"init={init!r} applies to the built-in targets {TARGETS}, not to {to!r}")
    return float(init)


def _axis_from_producer(calls: list[walk.Call], call: walk.Call) -> tuple[int, str]:
    """The channel axis for ``call``'s input by the rule in the module docstring, and why."""
    ndim = len(call.input_shape or ())
    if ndim <= 2:
        return -1, ""
    producer = call.producer
    seen = set()
    while producer is not None and producer not in seen:
        seen.add(producer)
        module = calls[producer].module
        if isinstance(module, _FEATURES_LAST):
            return -1, f"features last (after {type(module).__name__})"
        if isinstance(module, _CHANNELS_FIRST):
            return 1, ""
        producer = calls[producer].producer
    return 1, "no Conv/Linear before it: dim 1 assumed (pass channel_dim to change)"


def _normalize_dim(dim: int, ndim: int) -> int | None:
    return dim + ndim if -ndim <= dim < 0 else (dim if 0 <= dim < ndim else None)


def _channel_layout(
    site: Site, all_calls: list[walk.Call], channel_dim: int | None, errors: list[str]
) -> tuple[int, int, str] | None:
    """(channel axis, channel count, note) for a per-channel replacement, or None after adding an error."""
    shapes = site.shapes()
    own_axis = rectifiers.channel_dim(site.module)
    if channel_dim is not None:
        candidates, note = [channel_dim], ""
    elif own_axis is not None:
        candidates, note = [own_axis], ""
    elif site.calls:
        inferred = [_axis_from_producer(all_calls, call) for call in site.calls]
        candidates = list(dict.fromkeys(axis for axis, _ in inferred))
        note = inferred[0][1]
    else:
        candidates, note = [], ""

    if not shapes:
        if own_axis is not None and channel_dim in (None, own_axis):
            return own_axis, rectifiers.slope_weight(site.module).numel(), ""
        if all_calls:
            errors.append(
                f"{site.describe()} was not called by the forward pass on example_input, so its channel count is "
                "unknown: pass an example_input that reaches it, or per='shared'"
            )
        else:
            errors.append(
                f"per='channel' needs the channel count of {site.describe()}: pass example_input=<a batch the "
                "model accepts> (one forward pass finds the counts), or per='shared'"
            )
        return None
    if all(len(shape) == 0 for shape in shapes):
        return -1, 1, "0-d input: one slope"
    for axis in candidates:
        counts = []
        for shape in shapes:
            dim = _normalize_dim(axis, len(shape))
            counts.append(shape[dim] if dim is not None else None)
        count = counts[0]
        if count is not None and None not in counts and len(set(counts)) == 1:
            if own_axis is not None and count != rectifiers.slope_weight(site.module).numel() and channel_dim is None:
                break
            return axis, count, note
    described = (
        "; ".join(
            f"input {shape} has {shape[d] if (d := _normalize_dim(candidates[0], len(shape))) is not None else 'no'} "
            f"channels along dim {candidates[0]}"
            for shape in shapes
        )
        if candidates
        else ""
    )
    places = f"is called at {len(site.calls)} places with" if len(site.calls) > 1 else "has"
    errors.append(
        f"{site.describe()} {places} inputs whose channel counts do not agree ({described}); one module holds one "
        "set of slopes: give each place its own activation module, pass channel_dim=, or use per='shared'"
    )
    return None


def _kept_scalar(site: Site, to: str, errors: list[str]) -> float | None:
    slopes = rectifiers.slopes(site.module)
    if slopes.numel() and bool((slopes == slopes.reshape(-1)[0]).all()):
        return float(slopes.reshape(-1)[0])
    errors.append(
        f"init='keep' cannot keep {site.describe()} as {to!r}: its {slopes.numel()} slopes differ "
        f"(from {slopes.min().item():.6g} to {slopes.max().item():.6g}); use to='prelu' with per='channel'"
    )
    return None


def _dtype_device(site: Site, model_default: DtypeDevice) -> dict[str, Any]:
    for call in site.calls:
        if call.dtype is not None:
            return {"dtype": call.dtype, "device": call.device}
    for tensor in list(site.module.parameters()) + list(site.module.buffers()):
        if tensor.is_floating_point():
            return {"dtype": tensor.dtype, "device": tensor.device}
    dtype, device = model_default
    return {"dtype": dtype, "device": device}


def model_default(model: nn.Module) -> DtypeDevice:
    """The dtype and device of the model's first floating-point tensor (None, None without one)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return None, None


def _build(site: Site, name: str, kwargs: dict[str, Any], errors: list[str]) -> nn.Module | None:
    """``registry.get_activation(name, **kwargs)``, or None after adding the factory's error."""
    try:
        return registry.get_activation(name, **kwargs)
    except (TypeError, ValueError) as error:
        errors.append(f"{site.describe()}: {error}")
        return None


def _plan_fixed(site: Site, options: Options, errors: list[str]) -> tuple[dict[str, Any], str] | None:
    """(keyword arguments, note) for a fixed-slope target (``relu``, ``leaky_relu``), or None after an error."""
    inplace = bool(getattr(site.module, "inplace", False))
    if options.to == "relu":
        if options.init == "keep" and bool((rectifiers.slopes(site.module) != 0).any()):
            errors.append(f"init='keep' cannot keep {site.describe()} as 'relu': its slope is not 0")
            return None
        return {"inplace": inplace}, ""
    init = options.init
    if init == "keep":
        slope = _kept_scalar(site, options.to, errors)
        if slope is None:
            return None
    else:
        slope = _DEFAULT_SLOPE[options.to] if init is None else float(init)
    keep_inplace = inplace and slope > 0
    note = "inplace dropped (needs slope > 0)" if inplace and not keep_inplace else ""
    return {"negative_slope": slope, "inplace": keep_inplace}, note


def plan_site(
    site: Site, options: Options, all_calls: list[walk.Call], default: DtypeDevice, errors: list[str]
) -> tuple[nn.Module, int | None, str] | None:
    """(new module, its channel axis, note) for one site, or None after adding errors."""
    to, init = options.to, options.init
    if to not in TARGETS:
        if init == "keep":
            errors.append(f"init='keep' needs a built-in target {TARGETS}; {to!r} is a registered factory")
            return None
        module = _build(site, to, {}, errors)
        return None if module is None else (module, None, "")
    if to in ("relu", "leaky_relu"):
        fixed = _plan_fixed(site, options, errors)
        if fixed is None:
            return None
        module = _build(site, to, fixed[0], errors)
        return None if module is None else (module, None, fixed[1])

    # PReLU targets: learnable slopes, never in place (a learned slope can reach 0).
    notes = ["inplace dropped (learned slopes)"] if getattr(site.module, "inplace", False) else []
    source_bounds = site.module.bounds if isinstance(site.module, PReLU) else None
    kwargs: dict[str, Any] = {
        "bounds": options.bounds if options.bounds is not None else source_bounds,
        **_dtype_device(site, default),
    }
    if to == "prelu_shared" or options.per == "shared":
        value = _kept_scalar(site, to, errors) if init == "keep" else init
        if init == "keep" and value is None:
            return None
        kwargs["init"] = _DEFAULT_SLOPE["prelu"] if value is None else float(value)
        if to == "prelu":
            kwargs["num_parameters"] = 1
        module = _build(site, to, kwargs, errors)
        return None if module is None else (module, None, "; ".join(notes))

    layout = _channel_layout(site, all_calls, options.channel_dim, errors)
    if layout is None:
        return None
    axis, count, axis_note = layout
    if axis_note:
        notes.insert(0, axis_note)
    kept: Tensor | None = None
    if init == "keep":
        source_slopes = rectifiers.slopes(site.module).reshape(-1)
        if source_slopes.numel() not in (1, count):
            errors.append(
                f"init='keep' cannot keep {site.describe()}: it has {source_slopes.numel()} slopes, the replacement "
                f"has {count} channels"
            )
            return None
        kept = source_slopes.expand(count)
        start = float(getattr(site.module, "init", kept[0].item()))
        bounds = kwargs["bounds"]
        if bounds is not None and not bounds[0] <= start <= bounds[1]:
            start = float(kept[0])
    else:
        start = _DEFAULT_SLOPE["prelu"] if init is None else float(init)
    kwargs.update(num_parameters=count, init=start, channel_dim=axis)
    module = _build(site, to, kwargs, errors)
    if module is None:
        return None
    if kept is not None:
        weight = rectifiers.slope_weight(module)
        with torch.no_grad():
            weight.copy_(kept.to(weight.dtype))
    return module, axis, "; ".join(notes)

"""Swap the rectifiers of a model: :func:`convert` and its :class:`ConversionReport`.

Owns planning and applying the replacement of ReLU / Leaky ReLU / PReLU modules (torch.nn's and
prelu's) by the activation named in :mod:`prelu.tools.registry`; imports :mod:`prelu.tools.walk` (what the
forward pass calls, on what shapes), :mod:`prelu.tools.registry`, :mod:`prelu.nn.modules`.

All or nothing: every replacement is planned and checked before the first one is applied, so a
refused conversion leaves the model's modules and state_dict as they were.

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

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm
from torch.nn.modules.pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _MaxPoolNd

from prelu._io.table import Table
from prelu.nn.modules import LeakyReLU, PReLU
from prelu.tools import registry, walk

TARGETS = ("prelu", "prelu_shared", "leaky_relu", "relu")
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


@dataclass(frozen=True)
class Replacement:
    """One activation module replaced by :func:`convert` (one row of the report)."""

    names: tuple[str, ...]
    """Every qualified name under which the module was registered."""
    before: str
    """``repr`` of the module replaced."""
    after: str
    """``repr`` of its replacement."""
    calls: int
    """How many times the forward pass on ``example_input`` called it (0 without one)."""
    input_shapes: tuple[tuple[int, ...], ...]
    """The distinct input shapes it saw, in call order."""
    channel_dim: int | None
    """The channel axis of a per-channel replacement, else None."""
    note: str = ""
    """Why the axis or a flag was chosen, or that the module is tied."""

    @property
    def name(self) -> str:
        """Its first qualified name."""
        return self.names[0]

    @property
    def tied(self) -> bool:
        """True when one module serves several places (called more than once, or registered
        under several names): its replacement is one module too, so those places share slopes."""
        return self.calls > 1 or len(self.names) > 1


@dataclass(frozen=True)
class ConversionReport:
    """What :func:`convert` replaced, and the functional rectifiers it could not replace."""

    to: str
    per: str
    replacements: tuple[Replacement, ...] = ()
    functional: tuple[walk.FunctionalRectifier, ...] = ()
    """Rectifiers called as functions (``F.relu(x)``) in a forward: not replaced."""
    traced: bool = True
    """False when the model does not trace with ``torch.fx`` (functional calls were not searched)."""
    trace_error: str | None = None

    @property
    def replaced(self) -> int:
        """The number of modules replaced."""
        return len(self.replacements)

    def __str__(self) -> str:
        target = f"to={self.to!r}" + (f", per={self.per!r}" if self.to == "prelu" else "")
        lines = []
        if self.replacements:
            lines.append(f"convert({target}): replaced {self.replaced} activation module(s)")
            rows = [
                [
                    ", ".join(r.names),
                    r.before,
                    r.after,
                    str(r.calls),
                    " ".join("x".join(map(str, shape)) or "()" for shape in r.input_shapes) or "-",
                    "-" if r.channel_dim is None else str(r.channel_dim),
                    r.note,
                ]
                for r in self.replacements
            ]
            lines.append(Table(["name", "before", "after", "calls", "input", "channel_dim", "note"], rows).to_text())
        else:
            lines.append(
                f"convert({target}): no ReLU, LeakyReLU or PReLU modules (torch.nn or prelu) in the model; "
                "nothing replaced"
            )
        if not self.traced:
            lines.append(
                f"functional rectifiers: not searched, the model does not trace with torch.fx ({self.trace_error}); "
                "F.relu / torch.relu / F.leaky_relu calls in a forward(), if any, were not replaced"
            )
        elif self.functional:
            lines.append(
                f"{len(self.functional)} functional rectifier call(s) NOT replaced (found with torch.fx); "
                "make them modules to convert them:"
            )
            rows = [
                [f.node, f.function, f.module or "(model)", "?" if f.slope is None else f"{f.slope:g}"]
                for f in self.functional
            ]
            lines.append(Table(["node", "function", "called in", "slope"], rows).to_text())
        else:
            lines.append("functional rectifiers: none (checked with torch.fx)")
        return "\n".join(lines)


@dataclass
class _Site:
    module: nn.Module
    names: list[str]
    slots: list[tuple[nn.Module, str]]
    calls: list[walk.Call] = field(default_factory=list)


def _check_init(init: object, to: str) -> float | str | None:
    if init is None or init == "keep":
        return init  # type: ignore[return-value]
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


def _describe(site: _Site) -> str:
    return f"{site.names[0]!r} ({site.module!r})"


def _shapes(site: _Site) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    for call in site.calls:
        if call.input_shape is not None and call.input_shape not in shapes:
            shapes.append(call.input_shape)
    return shapes


def _channel_layout(
    site: _Site, all_calls: list[walk.Call], channel_dim: int | None, errors: list[str]
) -> tuple[int, int, str] | None:
    """(channel axis, channel count, note) for a per-channel replacement, or None after adding an error."""
    shapes = _shapes(site)
    own_axis = walk.module_channel_dim(site.module)
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
            return own_axis, site.module.weight.numel(), ""
        if all_calls:
            errors.append(
                f"{_describe(site)} was not called by the forward pass on example_input, so its channel count is "
                "unknown: pass an example_input that reaches it, or per='shared'"
            )
        else:
            errors.append(
                f"per='channel' needs the channel count of {_describe(site)}: pass example_input=<a batch the "
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
        if None not in counts and len(set(counts)) == 1:
            count = counts[0]
            if own_axis is not None and count != site.module.weight.numel() and channel_dim is None:
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
        f"{_describe(site)} {places} inputs whose channel counts do not agree ({described}); one module holds one "
        "set of slopes: give each place its own activation module, pass channel_dim=, or use per='shared'"
    )
    return None


def _kept_scalar(site: _Site, to: str, errors: list[str]) -> float | None:
    slopes = walk.module_slopes(site.module)
    if slopes.numel() and bool((slopes == slopes.reshape(-1)[0]).all()):
        return float(slopes.reshape(-1)[0])
    errors.append(
        f"init='keep' cannot keep {_describe(site)} as {to!r}: its {slopes.numel()} slopes differ "
        f"(from {slopes.min().item():.6g} to {slopes.max().item():.6g}); use to='prelu' with per='channel'"
    )
    return None


def _factory_kwargs(site: _Site, model_default: tuple[torch.dtype | None, torch.device | None]) -> dict:
    for call in site.calls:
        if call.dtype is not None:
            return {"dtype": call.dtype, "device": call.device}
    for tensor in list(site.module.parameters()) + list(site.module.buffers()):
        if tensor.is_floating_point():
            return {"dtype": tensor.dtype, "device": tensor.device}
    dtype, device = model_default
    return {"dtype": dtype, "device": device}


def _model_default(model: nn.Module) -> tuple[torch.dtype | None, torch.device | None]:
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return None, None


def _source_bounds(module: nn.Module) -> tuple[float, float] | None:
    return module.bounds if isinstance(module, PReLU) else None


def _plan_one(
    site: _Site,
    to: str,
    per: str,
    init: float | str | None,
    channel_dim: int | None,
    bounds: tuple[float, float] | None,
    all_calls: list[walk.Call],
    model_default: tuple[torch.dtype | None, torch.device | None],
    errors: list[str],
) -> tuple[nn.Module, int | None, str] | None:
    """(new module, its channel axis, note) for one site, or None after adding errors."""
    source = site.module
    inplace = bool(getattr(source, "inplace", False))
    notes = []
    if to not in TARGETS:
        if init == "keep":
            errors.append(f"init='keep' needs a built-in target {TARGETS}; {to!r} is a registered factory")
            return None
        return registry.get_activation(to), None, ""
    if to == "relu":
        if init == "keep" and bool((walk.module_slopes(source) != 0).any()):
            errors.append(f"init='keep' cannot keep {_describe(site)} as 'relu': its slope is not 0")
            return None
        return nn.ReLU(inplace=inplace), None, ""
    if to == "leaky_relu":
        slope = _kept_scalar(site, to, errors) if init == "keep" else (_DEFAULT_SLOPE[to] if init is None else init)
        if slope is None:
            return None
        keep_inplace = inplace and slope > 0
        if inplace and not keep_inplace:
            notes.append("inplace dropped (needs slope > 0)")
        return LeakyReLU(float(slope), inplace=keep_inplace), None, "; ".join(notes)

    # PReLU targets: learnable slopes, never in place (a learned slope can reach 0).
    if inplace:
        notes.append("inplace dropped (learned slopes)")
    bounds = bounds if bounds is not None else _source_bounds(source)
    kwargs = _factory_kwargs(site, model_default)
    if to == "prelu_shared" or per == "shared":
        if init == "keep":
            value = _kept_scalar(site, to, errors)
            if value is None:
                return None
        else:
            value = _DEFAULT_SLOPE["prelu"] if init is None else float(init)  # type: ignore[arg-type]
        try:
            module = PReLU(1, init=value, bounds=bounds, **kwargs)
        except ValueError as error:
            errors.append(f"{_describe(site)}: {error}")
            return None
        return module, None, "; ".join(notes)

    layout = _channel_layout(site, all_calls, channel_dim, errors)
    if layout is None:
        return None
    axis, count, axis_note = layout
    if axis_note:
        notes.insert(0, axis_note)
    slopes: Tensor | None = None
    if init == "keep":
        source_slopes = walk.module_slopes(source).reshape(-1)
        if source_slopes.numel() not in (1, count):
            errors.append(
                f"init='keep' cannot keep {_describe(site)}: it has {source_slopes.numel()} slopes, the replacement "
                f"has {count} channels"
            )
            return None
        slopes = source_slopes.expand(count)
        start = float(getattr(source, "init", slopes[0].item()))
        if bounds is not None and not bounds[0] <= start <= bounds[1]:
            start = float(slopes[0])
    else:
        start = _DEFAULT_SLOPE["prelu"] if init is None else float(init)  # type: ignore[arg-type]
    try:
        module = PReLU(count, init=start, channel_dim=axis, bounds=bounds, **kwargs)
    except ValueError as error:
        errors.append(f"{_describe(site)}: {error}")
        return None
    if slopes is not None:
        with torch.no_grad():
            module.weight.copy_(slopes.to(module.weight.dtype))
    return module, axis, "; ".join(notes)


def convert(
    model: nn.Module,
    to: str = "prelu",
    *,
    per: str = "channel",
    init: float | str | None = None,
    example_input: object = None,
    channel_dim: int | None = None,
    bounds: tuple[float, float] | None = None,
) -> ConversionReport:
    """Replace every ReLU, LeakyReLU and PReLU module (torch.nn's and prelu's) in ``model`` by ``to``.

    >>> import torch, prelu
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                             torch.nn.Linear(8 * 4 * 4, 10), torch.nn.ReLU())
    >>> report = prelu.convert(model, "prelu", example_input=torch.randn(2, 3, 6, 6))
    >>> model[1], model[4]
    (PReLU(num_parameters=8, init=0.25, channel_dim=1), PReLU(num_parameters=10, init=0.25, channel_dim=-1))
    >>> report.replaced
    2

    ``init="keep"`` keeps the function (ReLU -> slopes 0, LeakyReLU -> its slope, PReLU -> its
    slopes), so outputs do not change until training moves the slopes:

    >>> relu_net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    >>> x = torch.randn(3, 4)
    >>> before = relu_net(x)
    >>> _ = prelu.convert(relu_net, init="keep", example_input=x)
    >>> torch.equal(relu_net(x), before), relu_net[1].weight.tolist()
    (True, [0.0, 0.0, 0.0, 0.0])

    Parameters:
        model: changed in place (the model itself cannot be an activation: wrap it).
        to: ``"prelu"`` (``prelu.PReLU``, per ``per``), ``"prelu_shared"`` (``prelu.PReLU(1)``),
            ``"leaky_relu"`` (``prelu.LeakyReLU``), ``"relu"`` (``torch.nn.ReLU``), or a name
            added with :func:`prelu.register_activation` (built by its factory with no arguments).
        per: for ``to="prelu"``: ``"channel"`` (one slope per channel, the paper's default; needs
            the channel counts: ``example_input``, or activations that are per-channel PReLUs
            already) or ``"shared"`` (one slope per layer).
        init: the starting slope: None for the target's default (0.25 for PReLU, He et al.; 0.01
            for Leaky ReLU, Maas et al.), a number, or ``"keep"``: the function each module
            computes now (refused where the target cannot express it, e.g. a LeakyReLU as relu).
        example_input: a tensor (one argument), tuple (positional arguments) or dict (keyword
            arguments) for one forward pass, run under no_grad on a clone with the buffers
            restored afterwards; it gives the channel counts and axes.
        channel_dim: the channel axis of every per-channel replacement, overriding the rule in
            :mod:`prelu.tools.convert` (e.g. ``-1`` for a transformer MLP).
        bounds: ``(low, high)`` for every new PReLU (see :func:`prelu.bind_bounds`); by default a
            bounded ``prelu.PReLU`` passes its bounds on.

    A module called at several places (a ResNet block's ``self.relu``) becomes one module, so
    those places share one set of slopes (reported as tied); if its inputs there have different
    channel counts, convert refuses (``per="shared"`` works). In-place flags are kept where the
    new activation allows it (ReLU; LeakyReLU with slope > 0); new PReLUs are never in place.
    Rectifiers called as functions in a ``forward`` (``F.relu``, ``torch.relu``, ``x.relu()``,
    ``F.leaky_relu``) cannot be replaced: they are listed in the report (found with torch.fx; if
    the model does not trace, the report says so).

    Returns:
        A :class:`ConversionReport`; ``print(report)`` shows a table.

    Raises:
        ValueError: bad arguments, or a replacement cannot be planned (all reasons at once); the
            model is then unchanged.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(to, str):
        raise ValueError(f"to must be an activation name, one of {registry.activation_names()}; got {to!r}")
    to = to.strip().lower()
    if to not in registry.activation_names():
        raise ValueError(f"unknown target to={to!r}; valid names: {', '.join(map(repr, registry.activation_names()))}")
    if per not in PER:
        raise ValueError(f"per must be one of {PER}, got {per!r}")
    init = _check_init(init, to)
    if channel_dim is not None and (isinstance(channel_dim, bool) or not isinstance(channel_dim, int)):
        raise ValueError(f"channel_dim must be None or an int, got {channel_dim!r}")
    if isinstance(model, walk.RECTIFIER_MODULES):
        raise ValueError(f"model is itself a {type(model).__name__}; wrap it (nn.Sequential(model)) to convert it")

    names = walk.name_modules(model)
    sites: dict[int, _Site] = {}
    for parent in model.modules():
        for child_name, child in parent._modules.items():  # named_children() skips repeats
            if isinstance(child, walk.RECTIFIER_MODULES):
                site = sites.setdefault(id(child), _Site(child, names[id(child)], []))
                site.slots.append((parent, child_name))

    graph, trace_error = walk.trace(model)
    functional = tuple(walk.functional_rectifiers(graph, model)) if graph is not None else ()
    if not sites:
        return ConversionReport(to, per, (), functional, graph is not None, trace_error)

    if example_input is None and to == "prelu" and per == "channel":
        unknown = [repr(site.names[0]) for site in sites.values() if walk.module_channel_dim(site.module) is None]
        if unknown:
            raise ValueError(
                f"per='channel' needs the channel count of {len(unknown)} activation(s) ({', '.join(unknown)}): pass "
                "example_input=<a batch the model accepts> (one forward pass finds the counts), or per='shared'; "
                "convert() changed nothing"
            )
    all_calls = walk.record_forward(model, example_input) if example_input is not None else []
    for call in all_calls:
        if id(call.module) in sites:
            sites[id(call.module)].calls.append(call)

    errors: list[str] = []
    plans = []
    model_default = _model_default(model)
    for site in sites.values():
        planned = _plan_one(site, to, per, init, channel_dim, bounds, all_calls, model_default, errors)
        if planned is not None:
            plans.append((site, *planned))
    if errors:
        raise ValueError("convert() changed nothing: " + "; ".join(errors))

    replacements = []
    for site, new, axis, note in plans:
        for parent, child_name in site.slots:
            setattr(parent, child_name, new)
        tied_note = ""
        if len(site.calls) > 1 or len(site.names) > 1:
            tied_note = f"tied: one module for {max(len(site.calls), len(site.names))} places"
        replacements.append(
            Replacement(
                names=tuple(site.names),
                before=repr(site.module),
                after=repr(new),
                calls=len(site.calls),
                input_shapes=tuple(_shapes(site)),
                channel_dim=axis,
                note="; ".join(part for part in (tied_note, note) if part),
            )
        )
    return ConversionReport(to, per, tuple(replacements), functional, graph is not None, trace_error)

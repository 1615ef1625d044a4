"""Swap the rectifiers of a model: :func:`convert`.

Owns the entry point: checking the arguments, finding every convertible rectifier module (the
rectifier table's convertible rows, :mod:`prelu.nn.rectifiers`) and the places it sits, and applying
the planned replacements all at once. Imports :mod:`prelu.tools.convert_plan` (one replacement:
channel axis, slopes, the module the registry builds), :mod:`prelu.tools.convert_report` (the
report), :mod:`prelu.tools.walk` and :mod:`prelu.tools.registry`.

All or nothing: every replacement is planned and checked before the first one is applied, so a
refused conversion leaves the model's modules and state_dict as they were.
"""

from __future__ import annotations

from torch import nn

from prelu.nn import rectifiers
from prelu.tools import registry, walk
from prelu.tools.convert_plan import PER, TARGETS, Options, Site, check_init, model_default, plan_site
from prelu.tools.convert_report import ConversionReport, Replacement

__all__ = ["PER", "TARGETS", "ConversionReport", "Replacement", "convert"]


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
    """Replace every ReLU, LeakyReLU and PReLU module (torch.nn's and prelu's) in ``model`` by ``to``,
    built by the activation registry (:func:`prelu.get_activation`).

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
            Every replacement comes from the registry: a built-in name re-registered with
            ``overwrite=True`` gets the keyword arguments the built-in takes (``inplace``;
            ``negative_slope``; ``num_parameters``, ``init``, ``channel_dim``, ``bounds``,
            ``dtype``, ``device``).
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
            :mod:`prelu.tools.convert_plan` (e.g. ``-1`` for a transformer MLP).
        bounds: ``(low, high)`` for every new PReLU (see :func:`prelu.bind_bounds`); by default a
            bounded ``prelu.PReLU`` passes its bounds on.

    Which modules count: the convertible rows of the rectifier table
    (:data:`prelu.nn.rectifiers.CONVERTIBLE_TYPES`); ``torch.nn.RReLU`` and ``ReLU6`` are left as
    they are (no fixed slope reproduces them).

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
    checked_init = check_init(init, to)
    if channel_dim is not None and (isinstance(channel_dim, bool) or not isinstance(channel_dim, int)):
        raise ValueError(f"channel_dim must be None or an int, got {channel_dim!r}")
    if isinstance(model, rectifiers.CONVERTIBLE_TYPES):
        raise ValueError(f"model is itself a {type(model).__name__}; wrap it (nn.Sequential(model)) to convert it")

    names = walk.name_modules(model)
    sites: dict[int, Site] = {}
    for parent in model.modules():
        for child_name, child in parent._modules.items():  # named_children() skips repeats
            if isinstance(child, rectifiers.CONVERTIBLE_TYPES):
                site = sites.setdefault(id(child), Site(child, names[id(child)], []))
                site.slots.append((parent, child_name))

    graph, trace_error = walk.trace(model)
    functional = tuple(walk.functional_rectifiers(graph, model)) if graph is not None else ()
    if not sites:
        return ConversionReport(to, per, (), functional, graph is not None, trace_error)

    if example_input is None and to == "prelu" and per == "channel":
        unknown = [repr(site.names[0]) for site in sites.values() if rectifiers.channel_dim(site.module) is None]
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
    options = Options(to, per, checked_init, channel_dim, bounds)
    default = model_default(model)
    for site in sites.values():
        planned = plan_site(site, options, all_calls, default, errors)
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
                input_shapes=tuple(site.shapes()),
                channel_dim=axis,
                note="; ".join(part for part in (tied_note, note) if part),
            )
        )
    return ConversionReport(to, per, tuple(replacements), functional, graph is not None, trace_error)

r"""Slope-aware Kaiming (He) initialisation: :func:`gain`, :func:`kaiming_normal_`,
:func:`kaiming_uniform_` and :func:`init_model_`.

Owns the initialisation formulas; imports :mod:`prelu.tools.walk` (to find the rectifier after each
layer), :mod:`prelu.nn.rectifiers` (which modules are rectifiers, their slopes) and
:mod:`prelu.tools.named_rows` (the report's rows).

He et al. 2015 (Sec. 2.2) keep the variance of the responses constant from layer to layer when, for
a rectifier of negative slope :math:`a` (ReLU: 0; Leaky ReLU, PReLU: :math:`a`),

.. math::
    \tfrac12 (1 + a^2)\, n\, \mathrm{Var}[w] = 1
    \quad\Longleftrightarrow\quad
    \mathrm{std}[w] = \frac{\text{gain}(a)}{\sqrt{n}}, \qquad \text{gain}(a) = \sqrt{\frac{2}{1 + a^2}},

with :math:`n` = fan_in = :math:`k^2 c` (forward pass, their eq. 10) or fan_out = :math:`k^2 d`
(backward pass, their eq. 14), biases 0. With Xavier's :math:`\mathrm{Var}[w] = 2/(n_{in} + n_{out})`
the variance of a plain ReLU net halves at every layer instead (their Fig. 3: a 30-layer net
stalls). ``torch.nn.init.kaiming_normal_(w, a=slope, nonlinearity="leaky_relu")`` uses the same gain.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor, fx, nn

from prelu._io.table import Table
from prelu.nn import rectifiers
from prelu.tools import walk
from prelu.tools.named_rows import NamedRows

MODES = ("fan_in", "fan_out")


def gain(slope: float) -> float:
    r"""The He gain for a rectifier of negative slope ``slope``: :math:`\sqrt{2 / (1 + \text{slope}^2)}`.

    >>> import prelu
    >>> round(prelu.init.gain(0.0), 6), round(prelu.init.gain(0.25), 6), prelu.init.gain(1.0)
    (1.414214, 1.371989, 1.0)
    """
    if isinstance(slope, bool) or not isinstance(slope, numbers.Real) or not math.isfinite(slope):
        raise ValueError(f"slope must be a finite number, got {slope!r}")
    return math.sqrt(2.0 / (1.0 + float(slope) ** 2))


def _check_mode(mode: object) -> str:
    if mode not in MODES:
        raise ValueError(
            f"mode must be 'fan_in' (forward, He et al. eq. 10) or 'fan_out' (backward, eq. 14), got {mode!r}"
        )
    return str(mode)


def fans(shape: tuple[int, ...] | torch.Size, groups: int = 1) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` ``(out, in / groups, *kernel)``.

    fan_out counts the outputs one input feeds: ``out / groups * kernel`` (torch.nn.init counts
    ``out * kernel``, the same for ``groups=1``).

    >>> fans((64, 3, 7, 7)), fans((10, 512)), fans((32, 1, 3, 3), groups=32)
    ((147, 3136), (512, 10), (9, 9))
    """
    if len(shape) < 2:
        raise ValueError(
            f"Kaiming init needs a weight with at least 2 dims (out, in, *kernel), got shape {tuple(shape)}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] // groups * receptive


def _std(shape: tuple[int, ...] | torch.Size, slope: float, mode: str, groups: int = 1) -> float:
    fan_in, fan_out = fans(shape, groups)
    return gain(slope) / math.sqrt(fan_in if _check_mode(mode) == "fan_in" else fan_out)


def kaiming_normal_(
    tensor: Tensor, slope: float = 0.25, mode: str = "fan_in", *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill ``tensor`` from :math:`\mathcal N(0, \text{std}^2)`, std = gain(slope) / sqrt(fan); returns it.

    >>> import torch, prelu
    >>> w = prelu.init.kaiming_normal_(torch.empty(256, 512), slope=0.0)
    >>> round(w.std().item() * (512 ** 0.5), 1)     # gain(0) = sqrt(2)
    1.4

    Parameters:
        tensor: a weight ``(out, in, *kernel)``, filled in place under no_grad.
        slope: the negative slope of the rectifier after this layer (0 for ReLU; 0.25 is the
            PReLU paper's initial slope). Default 0.25.
        mode: ``"fan_in"`` keeps the forward variance, ``"fan_out"`` the backward one.
        generator: a ``torch.Generator`` for reproducible draws.
    """
    std = _std(tensor.shape, slope, mode)
    if tensor.numel() == 0:
        return tensor
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def kaiming_uniform_(
    tensor: Tensor, slope: float = 0.25, mode: str = "fan_in", *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill ``tensor`` from :math:`\mathcal U(-b, b)`, b = sqrt(3) gain(slope) / sqrt(fan) (same std); returns it.

    >>> import torch, prelu
    >>> w = prelu.init.kaiming_uniform_(torch.empty(64, 3, 3, 3), slope=0.25)
    >>> bool(w.abs().max() <= 3 ** 0.5 * prelu.init.gain(0.25) / 27 ** 0.5)
    True
    """
    bound = math.sqrt(3.0) * _std(tensor.shape, slope, mode)
    if tensor.numel() == 0:
        return tensor
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@dataclass(frozen=True)
class LayerInit:
    """What :func:`init_model_` set for one layer."""

    name: str
    layer: str
    """The layer type (``Linear``, ``Conv2d``...)."""
    rectifier: str
    """The rectifier found after it (a module name and type, or a function), or ``"none"``."""
    slope: float | None
    """That rectifier's (mean) slope; None: no rectifier, gain 1."""
    fan: int
    gain: float
    std: float


@dataclass(frozen=True)
class InitReport(NamedRows[LayerInit]):
    """The layers :func:`init_model_` initialised, in ``named_modules`` order."""

    layers: tuple[LayerInit, ...]
    mode: str
    found_by: str
    """How the rectifier after each layer was found: ``torch.fx`` (the data flow),
    ``forward order`` (hooks on a pass over example_input) or ``registration order``."""
    skipped: tuple[str, ...] = ()
    """Layers left as they were: never called in the traced or recorded forward pass (unused, or
    used by a module through its weight rather than its forward, as in ``nn.MultiheadAttention``)."""

    def named_rows(self) -> tuple[LayerInit, ...]:
        return self.layers

    def __str__(self) -> str:
        rows = [
            [
                layer.name,
                layer.layer,
                layer.rectifier,
                "-" if layer.slope is None else f"{layer.slope:.4g}",
                str(layer.fan),
                f"{layer.gain:.4f}",
                f"{layer.std:.4g}",
            ]
            for layer in self.layers
        ]
        head = f"init_model_(mode={self.mode!r}): {len(self.layers)} layer(s), rectifiers found by {self.found_by}"
        text = head + "\n" + Table(["name", "layer", "rectifier", "slope", self.mode, "gain", "std"], rows).to_text()
        if self.skipped:
            text += f"\nleft as they were (not called in the forward pass): {', '.join(self.skipped)}"
        return text


def _describe_module(model: nn.Module, target: str) -> str:
    return f"{target} ({type(model.get_submodule(target)).__name__})"


def _successors_fx(graph: fx.Graph, model: nn.Module) -> dict[str, tuple[str, float | None]]:
    """layer name -> (rectifier description, slope) following the data flow of a traced graph."""
    found: dict[str, tuple[str, float | None]] = {}
    for node in graph.nodes:
        if node.op != "call_module" or node.target in found:
            continue
        if not isinstance(model.get_submodule(str(node.target)), walk.WEIGHT_LAYERS):
            continue
        frontier, seen, result = list(node.users), set(), None
        while frontier and result is None:
            following = []
            for user in frontier:
                if user in seen:
                    continue
                seen.add(user)
                is_rectifier, slope = walk.node_rectifier_slope(user, model)
                if is_rectifier:
                    if user.op == "call_module":
                        description = _describe_module(model, str(user.target))
                    else:
                        function = user.target if user.op == "call_method" else user.target.__name__
                        description = f"{user.name} ({function})"
                    result = (description + ("" if slope is not None else ", slope unknown: gain 1"), slope)
                    break
                if user.op == "call_module" and isinstance(model.get_submodule(str(user.target)), walk.WEIGHT_LAYERS):
                    continue  # another layer: the path ends without a rectifier
                following.extend(user.users)
            frontier = following
        found[str(node.target)] = result if result is not None else ("none", None)
    return found


def _successors_in_order(sequence: list[tuple[str, nn.Module]]) -> dict[str, tuple[str, float | None]]:
    """layer name -> the first rectifier called after it and before the next weight layer."""
    found: dict[str, tuple[str, float | None]] = {}
    for position, (name, module) in enumerate(sequence):
        if not isinstance(module, walk.WEIGHT_LAYERS) or name in found:
            continue
        result: tuple[str, float | None] = ("none", None)
        for later_name, later in sequence[position + 1 :]:
            if isinstance(later, walk.WEIGHT_LAYERS):
                break
            if isinstance(later, rectifiers.CONVERTIBLE_TYPES):
                result = (f"{later_name} ({type(later).__name__})", float(rectifiers.slopes(later).mean()))
                break
        found[name] = result
    return found


def init_model_(model: nn.Module, example_input: object = None, mode: str = "fan_in") -> InitReport:
    """Kaiming-initialise every Linear and Conv1d/2d/3d of ``model`` for the rectifier that follows it.

    Each layer gets std = gain(a) / sqrt(fan) with ``a`` the slope of the first rectifier its output
    reaches (ReLU 0, LeakyReLU its slope, PReLU its current mean slope; torch.nn's and prelu's
    modules, and ``F.relu``-style calls when the model traces), and bias 0. A layer whose output
    reaches another layer or the model's output first (a classifier) gets gain 1.

    The rectifier is found from the ``torch.fx`` data flow when the model traces; otherwise from
    the order of the calls in one forward pass on ``example_input`` (modules only); otherwise from
    the order in which modules are registered (right for ``nn.Sequential``; the report says which).
    Layers the forward pass never calls (unused, or used through their weight, as the output
    projection of ``nn.MultiheadAttention``) are left as they were and listed in ``skipped``.

    "Follows" matches ``torch.nn.init`` and the paper's backward condition (eq. 14). The forward
    condition (eq. 10) involves the rectifier before a layer; for a net whose rectifiers share one
    slope the two agree, and for mixed slopes the product telescopes, so the variance drifts by at
    most (1 + a_first²) / (1 + a_last²) <= 2 over the whole net.

    >>> import torch, prelu
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(100, 50), prelu.PReLU(50, channel_dim=-1), torch.nn.Linear(50, 10))
    >>> report = prelu.init_model_(net)
    >>> [(row.name, row.slope, round(row.gain, 4)) for row in report]
    [('0', 0.25, 1.372), ('2', None, 1.0)]
    >>> round(net[0].weight.std().item(), 2), net[0].bias.abs().max().item()
    (0.14, 0.0)

    Returns:
        An :class:`InitReport`, one :class:`LayerInit` per layer: name, rectifier, slope, fan,
        gain, std. ``print(report)`` shows a table.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_mode(mode)
    graph, _ = walk.trace(model)
    if graph is not None:
        successors, found_by = _successors_fx(graph, model), "torch.fx"
    elif example_input is not None:
        calls = walk.record_forward(model, example_input)
        successors, found_by = _successors_in_order([(call.name, call.module) for call in calls]), "forward order"
    else:
        sequence = [(name, module) for name, module in model.named_modules() if next(module.children(), None) is None]
        successors, found_by = _successors_in_order(sequence), "registration order"

    rows, skipped = [], []
    for name, module in model.named_modules():
        if not isinstance(module, walk.WEIGHT_LAYERS):
            continue
        if name not in successors:  # unused, or inside a module that calls it functionally (attention)
            skipped.append(name)
            continue
        rectifier, slope = successors[name]
        groups = getattr(module, "groups", 1)
        fan_in, fan_out = fans(module.weight.shape, groups)
        fan = fan_in if mode == "fan_in" else fan_out
        layer_gain = gain(slope) if slope is not None else 1.0
        std = layer_gain / math.sqrt(fan)
        with torch.no_grad():
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        rows.append(LayerInit(name, type(module).__name__, rectifier, slope, fan, layer_gain, std))
    return InitReport(tuple(rows), mode, found_by, tuple(skipped))

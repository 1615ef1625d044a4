"""Training the slopes: :func:`param_groups`, :func:`bind_bounds`, :func:`clamp_slopes_`, :func:`tie_slopes`.

Owns how slopes meet an optimizer; imports :mod:`prelu.nn.modules` (bounds) and
:mod:`prelu.nn.rectifiers`. The slopes are the ``weight`` of every learnable type in the rectifier
table (``prelu.PReLU`` and ``torch.nn.PReLU``). He et al. 2015 (Sec. 2.1) apply no weight decay to
them: decay pulls every slope towards 0, i.e. towards ReLU.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from prelu.nn.modules import PReLU
from prelu.nn.rectifiers import LEARNABLE_TYPES, slope_weight


def _check_non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def slope_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The slope Parameters of ``model`` (every prelu.PReLU's and torch.nn.PReLU's ``weight``),
    each once even when several modules share it, in ``named_modules`` order.

    >>> import torch, prelu
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), prelu.PReLU(2, channel_dim=-1), torch.nn.PReLU())
    >>> [tuple(p.shape) for p in prelu.slope_parameters(model)]
    [(2,), (1,)]
    """
    found: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, LEARNABLE_TYPES):
            weight = slope_weight(module)
            if isinstance(weight, nn.Parameter):
                found.setdefault(id(weight), weight)
    return list(found.values())


def param_groups(
    model: nn.Module, *, weight_decay: float, slope_weight_decay: float = 0.0, slope_lr: float | None = None
) -> list[dict[str, Any]]:
    """Parameter groups for any ``torch.optim`` optimizer, with the slopes in a group of their own.

    >>> import torch, prelu
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), prelu.PReLU(4, channel_dim=-1))
    >>> groups = prelu.param_groups(model, weight_decay=5e-4)
    >>> [(g["name"], len(g["params"]), g["weight_decay"]) for g in groups]
    [('weights', 2, 0.0005), ('slopes', 1, 0.0)]
    >>> optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)

    Parameters:
        weight_decay: for every other parameter.
        slope_weight_decay: for the slopes; default 0 (He et al.).
        slope_lr: a learning rate for the slopes only; None (default) uses the optimizer's.

    Returns:
        ``[{"name": "weights", "params": [...], "weight_decay": ...}, {"name": "slopes", ...}]``
        in that order; parameters with ``requires_grad=False`` are left out, each Parameter appears
        once (shared ones too), and a group with no parameters is left out.

    Raises:
        ValueError: negative or non-finite decays, a learning rate <= 0, or no trainable parameters.
    """
    weight_decay = _check_non_negative("weight_decay", weight_decay)
    slope_weight_decay = _check_non_negative("slope_weight_decay", slope_weight_decay)
    if slope_lr is not None and (
        isinstance(slope_lr, bool)
        or not isinstance(slope_lr, numbers.Real)
        or not math.isfinite(slope_lr)
        or slope_lr <= 0
    ):
        raise ValueError(f"slope_lr must be None or a finite number > 0, got {slope_lr!r}")
    slopes = [p for p in slope_parameters(model) if p.requires_grad]
    slope_ids = {id(p) for p in slopes}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in slope_ids]
    groups: list[dict[str, Any]] = []
    if others:
        groups.append({"name": "weights", "params": others, "weight_decay": weight_decay})
    if slopes:
        group = {"name": "slopes", "params": slopes, "weight_decay": slope_weight_decay}
        if slope_lr is not None:
            group["lr"] = float(slope_lr)
        groups.append(group)
    if not groups:
        raise ValueError("model has no parameter with requires_grad=True; nothing to optimise")
    return groups


def clamp_slopes_(model: nn.Module) -> int:
    """Project the slopes of every ``prelu.PReLU`` with ``bounds`` into ``[low, high]``, in place
    under no_grad; returns how many modules have bounds. :func:`bind_bounds` calls it after every
    optimizer step; call it yourself after loading a state_dict whose slopes may lie outside.

    >>> import torch, prelu
    >>> model = torch.nn.Sequential(prelu.PReLU(2, bounds=(0.0, 0.5)))
    >>> with torch.no_grad():
    ...     _ = model[0].weight.copy_(torch.tensor([-1.0, 3.0]))
    >>> prelu.clamp_slopes_(model), model[0].weight.tolist()
    (1, [0.0, 0.5])
    """
    count = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, PReLU) and module.bounds is not None:
                module.weight.clamp_(*module.bounds)
                count += 1
    return count


def bind_bounds(optimizer: torch.optim.Optimizer, model: nn.Module) -> RemovableHandle:
    """After every ``optimizer.step()``, project the slopes of ``model``'s bounded PReLUs into their bounds.

    Keras constraint semantics: the optimizer updates, then the slopes are clamped in place (under
    no_grad), so they lie within bounds (in the slopes' dtype) after every step whatever the
    learning rate. The bounded
    modules are looked up at each step, so modules added later (e.g. by :func:`prelu.convert`)
    count too. Optimizer state (momentum, Adam's moments) is not touched. A NaN slope (from a NaN
    gradient) stays NaN: the projection does not hide a diverged run. Uses
    ``optimizer.register_step_post_hook``; the returned handle's ``.remove()`` unbinds.

    >>> import torch, prelu
    >>> model = torch.nn.Sequential(prelu.PReLU(3, bounds=(0.01, 1.0)))
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=1e6)
    >>> handle = prelu.bind_bounds(optimizer, model)
    >>> model(torch.full((2, 3), -1.0)).sum().backward()   # gradient -2 per slope
    >>> optimizer.step()                                    # 0.25 + 2e6, projected
    >>> model[0].weight.tolist()
    [1.0, 1.0, 1.0]
    >>> handle.remove()

    With in-place PReLU, ``bounds=(low, high)`` with ``low > 0`` keeps every slope valid.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")

    def project(optimizer: torch.optim.Optimizer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        clamp_slopes_(model)

    return optimizer.register_step_post_hook(project)


def tie_slopes(*modules: nn.Module) -> nn.Parameter:
    """Make several PReLU modules share one slope Parameter (the first module's); returns it.

    Every use then adds to the same gradient, an optimizer sees the Parameter once (tie before
    building the optimizer), and ``state_dict`` keeps one key per module (``load_state_dict`` into
    a model tied the same way restores it). The same as assigning ``b.weight = a.weight``, with
    checks: prelu.PReLU or torch.nn.PReLU modules, same weight shape, dtype and device, same bounds.

    >>> import torch, prelu
    >>> a, b = prelu.PReLU(4), prelu.PReLU(4)
    >>> shared = prelu.tie_slopes(a, b)
    >>> a.weight is b.weight is shared
    True
    """
    if not modules:
        raise ValueError("tie_slopes() needs at least one PReLU module")
    for module in modules:
        if not isinstance(module, LEARNABLE_TYPES):
            raise TypeError(f"tie_slopes() takes prelu.PReLU or torch.nn.PReLU modules, got {type(module).__name__}")
    first = modules[0]
    shared = slope_weight(first)
    if not isinstance(shared, nn.Parameter):
        raise TypeError(f"tie_slopes(): module 0's weight is a {type(shared).__name__}, not a Parameter")
    for index, module in enumerate(modules[1:], start=1):
        weight = slope_weight(module)
        for what in ("shape", "dtype", "device"):
            if getattr(weight, what) != getattr(shared, what):
                raise ValueError(
                    f"tie_slopes(): module {index} has slopes of {what} {getattr(weight, what)}, "
                    f"module 0 has {getattr(shared, what)}"
                )
        if getattr(module, "bounds", None) != getattr(first, "bounds", None):
            raise ValueError(
                f"tie_slopes(): module {index} has bounds={getattr(module, 'bounds', None)}, module 0 has "
                f"bounds={getattr(first, 'bounds', None)}; tied slopes need the same bounds"
            )
    for module in modules[1:]:
        module.weight = shared
    return shared

r"""The one table of what counts as a rectifier: :data:`RECTIFIERS`, looked up with :func:`rectifier_for`.

Owns which module types are rectifiers, how to read each one's slopes and channel axis, and its
label. Every part of the package that recognises a rectifier asks this table: the model walk,
:func:`prelu.convert` and :func:`prelu.init_model_` (:data:`CONVERTIBLE_TYPES`), the slope tables
(:data:`SLOPE_WEIGHT_TYPES`), the optimizer helpers, :func:`prelu.freeze` and the lab
(:data:`LEARNABLE_TYPES`), and :class:`prelu.Monitor` (:data:`RECTIFIER_TYPES`). Imports torch,
:mod:`prelu.nn.modules` and :mod:`prelu.nn.frozen`.

A rectifier computes :math:`f(x) = x` for :math:`x > 0` and :math:`a x` for :math:`x \le 0`, with
one fixed or learned slope :math:`a` per layer, channel or element; the table also holds the two
near relatives the monitor watches (RReLU, ReLU6)::

    type                  label               slopes            learnable    convertible  channel axis
    prelu.PReLU           prelu.PReLU         weight            yes          yes          channel_dim
    prelu.LeakyReLU       prelu.LeakyReLU     negative_slope    no           yes          -
    prelu.FrozenPReLU     prelu.FrozenPReLU   weight (buffer)   no           yes          channel_dim
    torch.nn.ReLU         nn.ReLU             0                 no           yes          -
    torch.nn.LeakyReLU    nn.LeakyReLU        negative_slope    no           yes          -
    torch.nn.PReLU        nn.PReLU            weight            yes          yes          1
    torch.nn.RReLU        nn.RReLU            [lower, upper]    no           no           -
    torch.nn.ReLU6        nn.ReLU6            0                 no           no           -

Decisions, and why:

- **Convertible** types (``f(x) = x`` above zero, one fixed or learned slope below) are the ones
  :func:`prelu.convert` replaces and :func:`prelu.init_model_` reads a slope from: for them a PReLU
  with the same slopes computes the same function, and Kaiming's gain ``sqrt(2 / (1 + a²))``
  holds.
- ``torch.nn.RReLU`` is a rectifier (identity above zero) whose slope is drawn from
  ``U(lower, upper)`` at every training step and fixed to the mean in eval. It is watched by the
  monitor, which reports ``[lower, upper]`` as its slopes, but not converted: no fixed or learned
  slope reproduces its training-time noise, which is the reason to use it.
- ``torch.nn.ReLU6`` clips at 6, so it is not identity above zero: the monitor watches it (dead
  units mean the same), but neither a PReLU slope nor Kaiming's gain describes it.
- The channel axis is the axis the slopes run along: a module's own ``channel_dim`` for a
  per-channel ``prelu`` module, dim 1 for a per-channel ``torch.nn.PReLU`` (its only choice), and
  None for one shared slope, element-wise slopes and fixed slopes.
- Lookups follow the class's MRO, so a subclass of a listed type counts as that type; a label is
  the listed one for the exact type, else ``prelu.Name`` / ``nn.Name`` / ``Name`` from the class.

>>> import torch, prelu
>>> from prelu.nn.rectifiers import rectifier_for
>>> entry = rectifier_for(prelu.PReLU(3, channel_dim=-1))
>>> entry.label, entry.learnable, entry.channel_dim(prelu.PReLU(3, channel_dim=-1))
('prelu.PReLU', True, -1)
>>> rectifier_for(torch.nn.LeakyReLU(0.2)).slopes(torch.nn.LeakyReLU(0.2)).tolist()
[0.2]
>>> rectifier_for(torch.nn.Linear(2, 2)) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from prelu.nn.frozen import FrozenPReLU
from prelu.nn.modules import LeakyReLU, PReLU


@dataclass(frozen=True)
class Rectifier:
    """One row of the rectifier table: a module type and how to read it."""

    module_type: type[nn.Module]
    label: str
    """The short name reports use: ``prelu.PReLU``, ``nn.ReLU``..."""
    read_slopes: Callable[[nn.Module], Tensor]
    read_channel_dim: Callable[[nn.Module], int | None]
    learnable: bool
    """Its slopes are Parameters an optimizer trains (``weight``)."""
    slope_weight: bool
    """Its slopes are a tensor ``module.weight`` (learned, or frozen in a buffer)."""
    convertible: bool
    """Identity above zero and one fixed or learned slope below: convert and init_model_ use it."""

    def slopes(self, module: nn.Module) -> Tensor:
        """The module's slopes now: a new float64 CPU tensor, the weight's shape or 1-D."""
        return self.read_slopes(module)

    def channel_dim(self, module: nn.Module) -> int | None:
        """The axis the module's slopes run along (per-channel slopes only), else None."""
        return self.read_channel_dim(module)


def slope_weight(module: nn.Module) -> Tensor:
    """The live slope tensor ``module.weight`` (not a copy) of a :data:`SLOPE_WEIGHT_TYPES` module.

    Raises:
        TypeError: the module has no tensor ``weight``.
    """
    weight = getattr(module, "weight", None)
    if not isinstance(weight, Tensor):
        raise TypeError(f"{type(module).__name__} has no slope tensor 'weight' (got {type(weight).__name__})")
    return weight


def _weight(module: nn.Module) -> Tensor:
    return slope_weight(module).detach().to("cpu", torch.float64).clone()


def _number(module: nn.Module, name: str) -> float:
    # A plain number attribute; read by name because nn.Module's __getattr__ types attributes as Tensor | Module.
    return float(getattr(module, name))


def _negative_slope(module: nn.Module) -> Tensor:
    return torch.tensor([_number(module, "negative_slope")], dtype=torch.float64)


def _zero(module: nn.Module) -> Tensor:
    return torch.zeros(1, dtype=torch.float64)


def _random_range(module: nn.Module) -> Tensor:
    return torch.tensor([_number(module, "lower"), _number(module, "upper")], dtype=torch.float64)


def _no_axis(module: nn.Module) -> int | None:
    return None


def _own_axis(module: nn.Module) -> int | None:
    weight = slope_weight(module)
    return int(_number(module, "channel_dim")) if weight.ndim == 1 and weight.numel() > 1 else None


def _torch_prelu_axis(module: nn.Module) -> int | None:
    return 1 if slope_weight(module).numel() > 1 else None  # torch.nn.PReLU's channel axis is always dim 1


RECTIFIERS: tuple[Rectifier, ...] = (
    # type, label, slopes, channel axis, learnable, slope_weight, convertible
    Rectifier(PReLU, "prelu.PReLU", _weight, _own_axis, True, True, True),
    Rectifier(LeakyReLU, "prelu.LeakyReLU", _negative_slope, _no_axis, False, False, True),
    Rectifier(FrozenPReLU, "prelu.FrozenPReLU", _weight, _own_axis, False, True, True),
    Rectifier(nn.ReLU, "nn.ReLU", _zero, _no_axis, False, False, True),
    Rectifier(nn.LeakyReLU, "nn.LeakyReLU", _negative_slope, _no_axis, False, False, True),
    Rectifier(nn.PReLU, "nn.PReLU", _weight, _torch_prelu_axis, True, True, True),
    Rectifier(nn.RReLU, "nn.RReLU", _random_range, _no_axis, False, False, False),
    Rectifier(nn.ReLU6, "nn.ReLU6", _zero, _no_axis, False, False, False),
)
"""Every rectifier type, prelu's first (the order the docs list them in)."""

_BY_TYPE: dict[type[nn.Module], Rectifier] = {entry.module_type: entry for entry in RECTIFIERS}

RECTIFIER_TYPES: tuple[type[nn.Module], ...] = tuple(entry.module_type for entry in RECTIFIERS)
"""Every type in the table: what :class:`prelu.Monitor` watches."""
CONVERTIBLE_TYPES: tuple[type[nn.Module], ...] = tuple(e.module_type for e in RECTIFIERS if e.convertible)
"""What :func:`prelu.convert` replaces, :func:`prelu.init_model_` reads, the fx walk keeps as leaves."""
SLOPE_WEIGHT_TYPES: tuple[type[nn.Module], ...] = tuple(e.module_type for e in RECTIFIERS if e.slope_weight)
"""Types whose slopes are a tensor ``weight``: the rows of :func:`prelu.slopes`."""
LEARNABLE_TYPES: tuple[type[nn.Module], ...] = tuple(e.module_type for e in RECTIFIERS if e.learnable)
"""Types with trained slopes: :func:`prelu.param_groups`, :func:`prelu.tie_slopes`, :func:`prelu.freeze`."""


def rectifier_for(module: nn.Module | type[nn.Module]) -> Rectifier | None:
    """The table's row for a module (or module type), following the MRO; None if it is no rectifier."""
    cls = module if isinstance(module, type) else type(module)
    for base in cls.__mro__:
        entry = _BY_TYPE.get(base)
        if entry is not None:
            return entry
    return None


def slopes(module: nn.Module) -> Tensor:
    """The slopes of a rectifier module (float64, CPU, a new tensor).

    Raises:
        TypeError: the module is not in the table.

    >>> import torch, prelu
    >>> slopes(torch.nn.ReLU()).tolist(), slopes(prelu.PReLU(2)).tolist()
    ([0.0], [0.25, 0.25])
    """
    entry = rectifier_for(module)
    if entry is None:
        raise TypeError(f"{type(module).__name__} is not a rectifier module")
    return entry.slopes(module)


def channel_dim(module: nn.Module) -> int | None:
    """The axis a rectifier module's slopes run along (per-channel slopes only), else None.

    >>> import torch, prelu
    >>> channel_dim(torch.nn.PReLU(8)), channel_dim(torch.nn.PReLU()), channel_dim(torch.nn.ReLU())
    (1, None, None)
    """
    entry = rectifier_for(module)
    return None if entry is None else entry.channel_dim(module)


def label(module: nn.Module | type[nn.Module]) -> str:
    """A short type name for reports: the table's label for a listed type, else ``prelu.Name``,
    ``nn.Name`` or the class's own name.

    >>> import torch, prelu
    >>> label(prelu.PReLU()), label(torch.nn.PReLU()), label(torch.nn.Tanh())
    ('prelu.PReLU', 'nn.PReLU', 'nn.Tanh')
    """
    cls = module if isinstance(module, type) else type(module)
    entry = _BY_TYPE.get(cls)
    if entry is not None:
        return entry.label
    if cls.__module__.startswith("prelu."):
        return f"prelu.{cls.__qualname__}"
    if cls.__module__.startswith("torch.nn."):
        return f"nn.{cls.__qualname__}"
    return cls.__qualname__

"""A name -> activation-module registry: :func:`get_activation` and :func:`register_activation`.

Used by :func:`prelu.convert` and the lab to build activations from a name (as timm's
``get_act_layer``). Owns the table of names; imports :mod:`prelu.nn.modules` and ``torch.nn``.

Built-in names (lookups ignore case):

=================  ==============================================================
``"relu"``         ``torch.nn.ReLU(**kwargs)`` (slope 0)
``"leaky_relu"``   ``prelu.LeakyReLU(**kwargs)`` (default slope 0.01)
``"prelu"``        ``prelu.PReLU(**kwargs)`` (default one slope, 0.25)
``"prelu_shared"`` ``prelu.PReLU(1, **kwargs)``: always one slope for the whole layer
=================  ==============================================================

>>> import prelu
>>> prelu.get_activation("prelu", num_parameters=8)
PReLU(num_parameters=8, init=0.25, channel_dim=1)
>>> prelu.get_activation("leaky_relu", negative_slope=0.2)
LeakyReLU(negative_slope=0.2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from prelu.nn.modules import LeakyReLU, PReLU

ActivationFactory = Callable[..., nn.Module]


def _prelu_shared(**kwargs: Any) -> nn.Module:
    if "num_parameters" in kwargs and kwargs["num_parameters"] != 1:
        raise ValueError(
            f"'prelu_shared' has exactly one slope; got num_parameters={kwargs['num_parameters']!r} "
            f"(use 'prelu' for one slope per channel)"
        )
    kwargs.pop("num_parameters", None)
    return PReLU(1, **kwargs)


_BUILT_IN: dict[str, ActivationFactory] = {
    "relu": nn.ReLU,
    "leaky_relu": LeakyReLU,
    "prelu": PReLU,
    "prelu_shared": _prelu_shared,
}
BUILT_IN_NAMES: tuple[str, ...] = tuple(_BUILT_IN)

_FACTORIES: dict[str, ActivationFactory] = dict(_BUILT_IN)


def _normalize(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an activation name must be a non-empty string, got {name!r}")
    return name.strip().lower()


def activation_names() -> tuple[str, ...]:
    """Every registered name, built-in ones first, then in registration order.

    >>> import prelu
    >>> prelu.activation_names()[:4]
    ('relu', 'leaky_relu', 'prelu', 'prelu_shared')
    """
    return tuple(_FACTORIES)


def get_activation(name: str, **kwargs: object) -> nn.Module:
    """A new activation module for ``name``, built by its factory with ``kwargs``.

    Raises:
        ValueError: ``name`` is not registered (the message lists the valid names).
    """
    key = _normalize(name)
    if key not in _FACTORIES:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(repr(n) for n in _FACTORIES)}")
    return _FACTORIES[key](**kwargs)


def register_activation(name: str, factory: ActivationFactory, *, overwrite: bool = False) -> ActivationFactory:
    """Make ``get_activation(name, **kwargs)`` return ``factory(**kwargs)``; returns ``factory``.

    ``name`` is matched without regard to case. Registering a name that exists (built-in or not)
    is a ValueError unless ``overwrite=True``; :func:`unregister_activation` removes a name you added.

    >>> import torch, prelu
    >>> _ = prelu.register_activation("prelu_half", lambda **kw: prelu.PReLU(init=0.5, **kw))
    >>> prelu.get_activation("prelu_half")(torch.tensor([-2.0])).tolist()
    [-1.0]
    >>> prelu.unregister_activation("prelu_half")
    """
    key = _normalize(name)
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable (a class or a function), got {factory!r}")
    if key in _FACTORIES and not overwrite:
        raise ValueError(f"activation {key!r} is already registered; pass overwrite=True to replace it")
    _FACTORIES[key] = factory
    return factory


def unregister_activation(name: str) -> None:
    """Remove a name added with :func:`register_activation`; a built-in name goes back to its built-in factory."""
    key = _normalize(name)
    if key not in _FACTORIES:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(repr(n) for n in _FACTORIES)}")
    if key in _BUILT_IN:
        _FACTORIES[key] = _BUILT_IN[key]
    else:
        del _FACTORIES[key]

"""Freeze a trained model's slopes for inference: :func:`freeze`.

Owns replacing learnable PReLUs by :class:`prelu.FrozenPReLU` in a model (:class:`FrozenPReLU`
itself, a module, lives in :mod:`prelu.nn.frozen`); imports :mod:`prelu.nn` (the modules and the
rectifier table: which types have learned slopes).
"""

from __future__ import annotations

from torch import Tensor, nn

from prelu.nn.frozen import FrozenPReLU
from prelu.nn.modules import PReLU
from prelu.nn.rectifiers import LEARNABLE_TYPES, slope_weight


def freeze(model: nn.Module) -> list[str]:
    """Replace every ``prelu.PReLU`` and ``torch.nn.PReLU`` in ``model`` by a :class:`FrozenPReLU`
    with the same slopes; returns the names replaced, in ``named_modules`` order.

    Outputs are bit-identical before and after; the slopes stop being parameters (an optimizer
    built afterwards does not see them). Modules that shared one slope Parameter (see
    :func:`prelu.tie_slopes`) share one buffer afterwards; a module registered under several names
    becomes one frozen module under all of them. ``model`` itself cannot be a PReLU (wrap it).

    >>> import torch, prelu
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), prelu.PReLU(4, channel_dim=-1))
    >>> x = torch.randn(2, 3)
    >>> before = model(x)
    >>> prelu.freeze(model)
    ['1']
    >>> model[1]
    FrozenPReLU(num_parameters=4, channel_dim=-1)
    >>> torch.equal(model(x), before)
    True
    """
    if isinstance(model, LEARNABLE_TYPES):
        raise ValueError("freeze() replaces PReLUs inside a model; wrap a lone PReLU in nn.Sequential first")
    replacements: dict[int, FrozenPReLU] = {}
    buffers: dict[int, Tensor] = {}
    slots: list[tuple[nn.Module, str, FrozenPReLU]] = []
    names: list[str] = []
    for parent_name, parent in model.named_modules(remove_duplicate=False):
        for child_name, child in parent._modules.items():  # named_children() skips repeats
            if not isinstance(child, LEARNABLE_TYPES):
                continue
            if id(child) not in replacements:
                channel_dim = child.channel_dim if isinstance(child, PReLU) else 1
                weight = slope_weight(child)
                frozen = FrozenPReLU(weight, channel_dim=channel_dim, inplace=bool(getattr(child, "inplace", False)))
                shared = buffers.setdefault(id(weight), frozen.weight)
                frozen.weight = shared  # tied slopes stay one tensor
                replacements[id(child)] = frozen
                names.append(f"{parent_name}.{child_name}" if parent_name else child_name)
            slots.append((parent, child_name, replacements[id(child)]))
    for parent, child_name, frozen in slots:
        setattr(parent, child_name, frozen)
    return names

"""The forward that :class:`prelu.PReLU` and :class:`prelu.FrozenPReLU` share, as their ``forward``.

Owns one function, assigned as ``forward`` in both classes, so a frozen module runs exactly the
trained one's call with no frame between (a Python frame costs a training step ~1.5 µs a call on
the lab's model); imports :mod:`prelu.ops.functional` and :mod:`prelu.ops.route`.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from prelu.ops import functional, route


class SlopeModule(Protocol):
    """What the forward reads from its module."""

    weight: Tensor
    channel_dim: int
    inplace: bool


def slope_module_forward(self: SlopeModule, input: Tensor) -> Tensor:
    r"""``prelu.prelu(input, self.weight, channel_dim=self.channel_dim, inplace=self.inplace)``.

    .. math:: y = \max(0, x) + a \min(0, x)

    :func:`prelu.prelu`'s first step is inlined here: the C entry, which runs the common call
    (plain eager, CPU float32/float64, one or per-channel slopes) or returns None, and then the
    full call, which decides and raises.

    >>> import torch, prelu
    >>> prelu.PReLU.forward is prelu.FrozenPReLU.forward is slope_module_forward
    True
    >>> slope_module_forward(prelu.FrozenPReLU(torch.tensor([0.5])), torch.tensor([-2.0, 3.0])).tolist()
    [-1.0, 3.0]
    """
    weight = self.weight
    if not torch.compiler.is_dynamo_compiling():
        output = route.fast_entry(input, weight, self.channel_dim, self.inplace)
        if output is not None:
            return output
    return functional.prelu(input, weight, channel_dim=self.channel_dim, inplace=self.inplace)

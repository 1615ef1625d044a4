"""Drop-in modules: :class:`PReLU` and :class:`LeakyReLU`.

Owns parameters, argument validation and state_dict compatibility with ``torch.nn.PReLU``;
imports :mod:`prelu.ops.functional` and the forward it shares with FrozenPReLU
(:mod:`prelu.nn.forward`).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from prelu.nn.forward import slope_module_forward
from prelu.ops import functional


def _check_num_parameters(num_parameters: object) -> int:
    # nn.PReLU(num_parameters=True) fails cryptically in torch (pytorch#133535); say what is wrong.
    if isinstance(num_parameters, bool) or not isinstance(num_parameters, numbers.Integral):
        raise TypeError(f"num_parameters must be a positive int, got {num_parameters!r}")
    if num_parameters < 1:
        raise ValueError(f"num_parameters must be a positive int, got {num_parameters}")
    return int(num_parameters)


def _check_slope(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _check_inplace(inplace: object) -> bool:
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be True or False, got {inplace!r}")
    return inplace


def _check_bounds(bounds: object, init: float) -> tuple[float, float] | None:
    if bounds is None:
        return None
    pair = tuple(itertools.islice(bounds, 3)) if isinstance(bounds, Iterable) else ()
    if len(pair) != 2:
        raise ValueError(f"bounds must be None or a pair (low, high) of finite numbers, got {bounds!r}")
    values = []
    for value in pair:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"bounds must be a pair (low, high) of finite numbers, got {bounds!r}")
        values.append(float(value))
    low, high = values
    if low > high:
        raise ValueError(f"bounds must have low <= high, got low={low} > high={high}")
    if not low <= init <= high:
        raise ValueError(f"init={init} lies outside bounds=({low}, {high}); pick an init within them")
    return low, high


def _check_channel_dim(channel_dim: object) -> int:
    if isinstance(channel_dim, bool) or not isinstance(channel_dim, numbers.Integral):
        raise TypeError(f"channel_dim must be an int, got {channel_dim!r}")
    return int(channel_dim)


class PReLU(nn.Module):
    r"""Applies PReLU element-wise with learnable slopes (He et al. 2015).

    .. math::
        \text{PReLU}(x) = \begin{cases} x, & x > 0 \\ a x, & x \le 0 \end{cases}

    ``a`` is one learnable slope shared by every element (``num_parameters=1``) or one per channel
    (``num_parameters=C``, the paper's default), channel = ``input.shape[channel_dim]``. The paper
    initialises ``a = 0.25`` and applies no weight decay to it (see :func:`prelu.param_groups`).
    Loads a ``torch.nn.PReLU`` state_dict and the reverse (same key ``weight``, same shape).

    Args:
        num_parameters: 1 (shared) or the number of channels. Default 1.
        init: initial value of every slope. Default 0.25.
        channel_dim: the channel axis of the input (negative counts from the end; ``-1`` for
            channels-last and (batch, sequence, features)). Default 1, as torch.nn.PReLU.
        inplace: overwrite the input and keep only the output for backward (slopes must stay
            > 0; see :func:`prelu.prelu`). Default False.
        bounds: ``(low, high)``, finite, ``low <= high``: the slopes are projected into
            ``[low, high]`` after every optimizer step once :func:`prelu.bind_bounds` ties the
            optimizer to the model (Keras constraint semantics: update, then project). The forward
            pass does not clamp. ``init`` must lie within. Not part of the state_dict. Default None.
        device, dtype: of the ``weight`` parameter.

    Shape:
        - Input: :math:`(*)`, any number of dims; with ``num_parameters > 1`` it must have
          ``num_parameters`` entries along ``channel_dim``.
        - Output: :math:`(*)`, same shape (and memory layout) as the input.

    Attributes:
        weight: the learnable slopes, shape ``(num_parameters,)``.

    Examples::

        >>> import torch, prelu
        >>> m = prelu.PReLU(3)
        >>> m
        PReLU(num_parameters=3, init=0.25, channel_dim=1)
        >>> m(torch.tensor([[-4.0, 0.0, 4.0]])).tolist()
        [[-1.0, 0.0, 4.0]]
        >>> tokens = torch.randn(2, 7, 16)              # (batch, sequence, features)
        >>> prelu.PReLU(16, channel_dim=-1)(tokens).shape
        torch.Size([2, 7, 16])
        >>> prelu.PReLU(3, bounds=(0.01, 1.0))         # projected by prelu.bind_bounds
        PReLU(num_parameters=3, init=0.25, channel_dim=1, bounds=(0.01, 1.0))
    """

    bounds: tuple[float, float] | None = None  # class default: modules pickled before bounds existed

    def __init__(
        self,
        num_parameters: int = 1,
        init: float = 0.25,
        *,
        channel_dim: int = 1,
        inplace: bool = False,
        bounds: tuple[float, float] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_parameters = _check_num_parameters(num_parameters)
        self.init = _check_slope("init", init)
        self.channel_dim = _check_channel_dim(channel_dim)
        self.inplace = _check_inplace(inplace)
        self.bounds = _check_bounds(bounds, self.init)
        self.weight = nn.Parameter(torch.empty(self.num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every slope to ``init``."""
        with torch.no_grad():
            self.weight.fill_(self.init)

    forward = slope_module_forward  # prelu.prelu(input, weight, channel_dim, inplace), the C entry inlined

    def extra_repr(self) -> str:
        text = f"num_parameters={self.num_parameters}, init={self.init}, channel_dim={self.channel_dim}"
        text += ", inplace=True" if self.inplace else ""
        return text + (f", bounds={self.bounds}" if self.bounds is not None else "")


class LeakyReLU(nn.Module):
    r"""Applies Leaky ReLU element-wise with a fixed slope (Maas et al. 2013).

    .. math::
        \text{LeakyReLU}(x) = \begin{cases} x, & x > 0 \\ \text{negative\_slope} \cdot x, & x \le 0 \end{cases}

    Args:
        negative_slope: the slope for ``x <= 0``. Default 0.01.
        inplace: overwrite the input and keep only the output for backward (needs
            ``negative_slope > 0``). Default False.

    Shape:
        - Input: :math:`(*)`, any number of dims.
        - Output: :math:`(*)`, same shape (and memory layout) as the input.

    Examples::

        >>> import torch, prelu
        >>> m = prelu.LeakyReLU(0.1)
        >>> m
        LeakyReLU(negative_slope=0.1)
        >>> m(torch.tensor([-10.0, 5.0])).tolist()
        [-1.0, 5.0]
    """

    def __init__(self, negative_slope: float = 0.01, *, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = _check_slope("negative_slope", negative_slope)
        self.inplace = _check_inplace(inplace)

    def forward(self, input: Tensor) -> Tensor:
        return functional.leaky_relu(input, self.negative_slope, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")

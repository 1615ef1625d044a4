"""Trained slopes, fixed: :class:`FrozenPReLU` (:func:`prelu.freeze` puts it in a model).

Owns the fixed-slope PReLU module used for inference and export; imports the forward it shares with
:class:`prelu.PReLU` (:mod:`prelu.nn.forward`).
A frozen module computes exactly what the trained one did (same call to
:func:`prelu.prelu`, same slopes) but holds the slopes in a buffer: no gradient, not returned by
``parameters()``, still in the state_dict under the same key ``weight`` (so a frozen model loads
the trained model's state_dict and the reverse), still exported as an ONNX ``PRelu`` node.
"""

from __future__ import annotations

from torch import Tensor, nn

from prelu.nn.forward import slope_module_forward


class FrozenPReLU(nn.Module):
    r"""PReLU with fixed slopes held in a buffer: ``x`` where ``x > 0``, ``a x`` elsewhere.

    .. math::
        \text{FrozenPReLU}(x) = \max(0, x) + a \min(0, x), \quad a \text{ fixed}

    Args:
        weight: the slopes, any layout :func:`prelu.prelu` accepts (copied).
        channel_dim: the channel axis for a 1-D ``weight`` of length > 1. Default 1.
        inplace: overwrite the input (every slope must be finite and > 0). Default False.

    Shape:
        - Input: :math:`(*)`; Output: :math:`(*)`, same shape.

    Examples::

        >>> import torch, prelu
        >>> frozen = prelu.FrozenPReLU(torch.tensor([0.1, 0.5]))
        >>> frozen
        FrozenPReLU(num_parameters=2, channel_dim=1)
        >>> frozen(torch.tensor([[-1.0, -1.0]])).tolist()
        [[-0.10000000149011612, -0.5]]
        >>> list(frozen.parameters()), list(frozen.state_dict())
        ([], ['weight'])
    """

    weight: Tensor

    def __init__(self, weight: Tensor, *, channel_dim: int = 1, inplace: bool = False) -> None:
        super().__init__()
        if not isinstance(weight, Tensor) or not weight.is_floating_point():
            raise TypeError(f"weight must be a floating-point tensor, got {weight!r}")
        if not isinstance(channel_dim, int) or isinstance(channel_dim, bool):
            raise TypeError(f"channel_dim must be an int, got {channel_dim!r}")
        if not isinstance(inplace, bool):
            raise TypeError(f"inplace must be True or False, got {inplace!r}")
        self.channel_dim = channel_dim
        self.inplace = inplace
        self.register_buffer("weight", weight.detach().clone())

    @property
    def num_parameters(self) -> int:
        """The number of slopes (as :attr:`prelu.PReLU.num_parameters`)."""
        return self.weight.numel()

    forward = slope_module_forward  # prelu.PReLU's own forward: the same call, slopes from the buffer

    def extra_repr(self) -> str:
        text = f"num_parameters={self.num_parameters}, channel_dim={self.channel_dim}"
        return text + (", inplace=True" if self.inplace else "")

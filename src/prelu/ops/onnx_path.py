"""What :func:`prelu.prelu` and :func:`prelu.leaky_relu` compute while ``torch.onnx.export`` traces.

Owns the export formulation; imports only torch. The custom ops have no ONNX translation, so
during export the same functions are written with the torch ops the exporter maps to standard
ONNX nodes (``torch.onnx.export(..., dynamo=True)``, the default):

- one shared slope: ``F.prelu`` with a 0-d slope -> ``PRelu`` with a scalar slope (valid for any
  input rank, 0-d included: pytorch#70570 was a slope of higher rank than the input);
- one slope per channel: ``F.prelu`` on the input with the channel axis moved to dim 1 -> ``PRelu``
  with a ``[C, 1, ..., 1]`` slope (pytorch#21271 was a bare ``[C]``), wrapped in ``Transpose``
  nodes when ``channel_dim`` is not 1 (the exporter reshapes every ``PRelu`` slope as
  ``[1, C, 1, ...]``, so a right-aligned ``[C]`` slope cannot be passed through as is);
- element-wise slopes (``weight.ndim >= 2``): ``Greater``/``Mul``/``Where``;
- Leaky ReLU: ``F.leaky_relu`` -> ``LeakyRelu``.

In-place calls export as their out-of-place twin (an ONNX graph is functional).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def prelu(input: Tensor, weight: Tensor, view_shape: tuple[int, ...]) -> Tensor:
    """PReLU from export-friendly torch ops; ``view_shape`` is the canonical slope view."""
    if weight.numel() == 1:
        return F.prelu(input, weight.reshape(()))
    varying = [d for d, size in enumerate(view_shape) if size != 1]
    if weight.ndim == 1 and len(varying) == 1:
        channel_dim = varying[0]
        if input.ndim == 1:
            return F.prelu(input.unsqueeze(0), weight).squeeze(0)
        if channel_dim == 1:
            return F.prelu(input, weight)
        return F.prelu(input.movedim(channel_dim, 1), weight).movedim(1, channel_dim)
    return torch.where(input > 0, input, input * weight.reshape(view_shape))


def leaky_relu(input: Tensor, negative_slope: float) -> Tensor:
    """Leaky ReLU as ``F.leaky_relu`` (ONNX ``LeakyRelu``)."""
    return F.leaky_relu(input, negative_slope)

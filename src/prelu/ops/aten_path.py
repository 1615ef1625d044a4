"""The aten path: :func:`prelu.prelu` and :func:`prelu.leaky_relu` written as plain aten ops.

Owns the formulation every call takes except the plain-eager fused one (see
:mod:`prelu.ops.route`): tracers (``torch.compile``, ``torch.export``, ONNX export, ``make_fx``,
``jit.trace``), functorch transforms, forward-mode AD, tensor subclasses, and small tensors.
Imports only torch. Each call is one or two of torch's own ops, so torch supplies everything
around them: autograd (first and higher order), forward-mode AD, vmap batching rules, inductor
decompositions (fused with their neighbours), export to any runtime that reads aten, and ONNX
nodes. With ``weight`` viewed as ``view_shape`` (the canonical form of :mod:`prelu.ops.layout`):

- one shared slope, or one per channel on dim 1 of an input with ndim >= 2: ``F.prelu``
  (``aten.prelu``; ONNX ``PRelu``), the layout torch's own PReLU has;
- any other channel axis, and element-wise slopes: ``aten._prelu_kernel(input, weight)``, the
  broadcasting kernel under ``F.prelu`` (it has autograd and forward-AD formulas, a batching rule
  and an inductor decomposition; ONNX ``PRelu``, whose slope broadcasts from the right as here);
- Leaky ReLU: ``F.leaky_relu`` / ``F.leaky_relu_`` (ONNX ``LeakyRelu``).

Under ONNX export the second case is written as the exporter needs it (see :func:`_onnx_prelu`).

In place, PReLU is ``input.copy_(prelu(input.clone()))`` while autograd may record (torch has no
in-place PReLU; the clone keeps the saved input intact, and inductor removes it), and Leaky ReLU
is torch's ``F.leaky_relu_``.

>>> import torch
>>> prelu(torch.tensor([[-2.0, 3.0]]), torch.tensor([0.5, 0.25]), (1, 2))
tensor([[-1.,  3.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from prelu.ops import dtypes


def _kernel_weight(weight: Tensor, view_shape: tuple[int, ...]) -> Tensor:
    """``weight`` as ``_prelu_kernel`` broadcasts it onto ``input``: as is when its dims line up with
    the input's from the right (element-wise slopes, channels on the last axis), else viewed."""
    if weight.ndim >= 2 or view_shape[-1] != 1:
        return weight
    return weight.view(view_shape)


def _prelu(input: Tensor, weight: Tensor, view_shape: tuple[int, ...]) -> Tensor:
    if weight.dtype != input.dtype:
        # Mixed precision, by the rule of prelu.ops.dtypes that every path follows: the math runs in
        # the compute dtype (float32 for float32 slopes on bfloat16 activations) and the output takes
        # the input's dtype; autograd casts the slope gradient back to the weight's dtype through .to().
        common = dtypes.compute_dtype(input.dtype, weight.dtype)
        return _prelu(input.to(common), weight.to(common), view_shape).to(input.dtype)
    if weight.numel() == 1:  # torch's own layout: one shared slope
        return F.prelu(input, weight if weight.ndim <= 1 else weight.reshape(()))
    if weight.ndim == 1 and len(view_shape) >= 2 and view_shape[1] != 1:  # and one per channel on dim 1
        return F.prelu(input, weight)
    if torch.onnx.is_in_onnx_export():
        return _onnx_prelu(input, weight, view_shape)
    return torch._prelu_kernel(input, _kernel_weight(weight, view_shape))


def _onnx_prelu(input: Tensor, weight: Tensor, view_shape: tuple[int, ...]) -> Tensor:
    """The other layouts in the forms the ONNX exporter maps to standard nodes. It reshapes every
    ``PRelu`` slope as ``[1, C, 1, ...]`` (pytorch#21271 was a bare ``[C]``), so a channel axis
    other than 1 is moved there around ``F.prelu`` (Transpose, PRelu, Transpose), and element-wise
    slopes become ``Greater``/``Mul``/``Where``."""
    if weight.ndim == 1:
        channel_dim = view_shape.index(weight.shape[0])
        if input.ndim == 1:
            return F.prelu(input.unsqueeze(0), weight).squeeze(0)
        return F.prelu(input.movedim(channel_dim, 1), weight).movedim(1, channel_dim)
    return torch.where(input > 0, input, input * weight.view(view_shape))


def prelu(input: Tensor, weight: Tensor, view_shape: tuple[int, ...], inplace: bool = False) -> Tensor:
    """PReLU from aten ops; ``view_shape`` is the canonical slope view (see module doc)."""
    if not inplace:
        return _prelu(input, weight, view_shape)
    source = input.clone() if torch.is_grad_enabled() else input
    return input.copy_(_prelu(source, weight, view_shape))


def leaky_relu(input: Tensor, negative_slope: float, inplace: bool = False) -> Tensor:
    """Leaky ReLU as torch's ``F.leaky_relu`` (in place: ``F.leaky_relu_``, needs a slope > 0)."""
    if inplace:
        return F.leaky_relu_(input, negative_slope)
    return F.leaky_relu(input, negative_slope)

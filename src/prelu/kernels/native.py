"""Native path: PReLU forward and backward in plain torch ops.

Owns the formulas for every device and dtype the fused kernels do not take (float16, bfloat16,
CUDA, strided inputs, numba missing), and the differentiable backward used for double backward.
Imports only torch. ``weight_view`` is always the canonical form of :mod:`prelu.layout`: it has
``input.ndim`` dims, each 1 or equal to the input's.

Math (``x == 0`` and NaN take the negative branch, as in ``torch.nn.functional.prelu``)::

    y     = x if x > 0 else a * x
    dL/dx = g if x > 0 else a * g
    dL/da = sum over the positions sharing a of (0 if x > 0 else g * x)
"""

from __future__ import annotations

import torch


def forward(input: torch.Tensor, weight_view: torch.Tensor) -> torch.Tensor:
    """``y`` with ``input``'s strides (so it matches the fake kernel's output)."""
    out = torch.empty_like(input)
    return torch.where(input > 0, input, input * weight_view, out=out)


def forward_(input: torch.Tensor, weight_view: torch.Tensor | float) -> None:
    """``y`` written over ``input``. Multiplying by 1 where ``x > 0`` keeps NaN, +-inf and -0.0
    exactly as the out-of-place path; torch itself refuses an ``input`` whose elements overlap."""
    input.mul_(torch.where(input > 0, 1.0, weight_view))


def input_backward(grad: torch.Tensor, input: torch.Tensor, slope: torch.Tensor | float) -> torch.Tensor:
    """The input gradient alone (``input``'s strides); ``slope`` may be a float (Leaky ReLU)."""
    return torch.where(input > 0, grad, grad * slope, out=torch.empty_like(input))


def backward(
    grad: torch.Tensor, saved: torch.Tensor, weight_view: torch.Tensor, *, from_output: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients for input (``saved``'s strides) and slope (``weight_view``'s shape).

    ``saved`` is ``x``, or with ``from_output=True`` the output ``y`` of an in-place call (slopes
    > 0): ``y > 0`` exactly where ``x > 0``, and ``x = y / a`` elsewhere.
    """
    negative_part = saved / weight_view if from_output else saved
    grad_weight = torch.where(saved > 0, 0, grad * negative_part).sum_to_size(weight_view.shape)
    return input_backward(grad, saved, weight_view), grad_weight


def differentiable_backward(
    grad: torch.Tensor, input: torch.Tensor, weight_view: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same gradients built from differentiable ops, for ``create_graph=True``.

    Second derivatives: d(dL/dx)/da = g where x <= 0; d(dL/da)/dx = g where x <= 0; and
    d(dL/da)/dg = x where x <= 0; the kink at x = 0 has derivative 0 almost everywhere.
    """
    positive = input > 0
    grad_input = torch.where(positive, grad, grad * weight_view)
    grad_weight = torch.where(positive, torch.zeros_like(input), grad * input)
    return grad_input, grad_weight.sum_to_size(weight_view.shape)

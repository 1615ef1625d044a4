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


def input_backward(grad: torch.Tensor, input: torch.Tensor, slope: torch.Tensor | float) -> torch.Tensor:
    """The input gradient alone (``input``'s strides); ``slope`` may be a float (Leaky ReLU)."""
    return torch.where(input > 0, grad, grad * slope, out=torch.empty_like(input))


def backward(grad: torch.Tensor, input: torch.Tensor, weight_view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients for input (``input``'s strides) and slope (``weight_view``'s shape)."""
    grad_weight = torch.where(input > 0, 0, grad * input).sum_to_size(weight_view.shape)
    return input_backward(grad, input, weight_view), grad_weight


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

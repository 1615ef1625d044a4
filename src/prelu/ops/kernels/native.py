"""Native path: PReLU and Leaky ReLU forward and backward with torch's own kernels.

Owns the formulas for every case the fused kernels do not take (float16, bfloat16, CUDA,
strided inputs, small tensors, no C++ compiler), and the differentiable backward used for double
backward. Imports only torch. ``weight_view`` is always the canonical form of
:mod:`prelu.ops.layout`: it has ``input.ndim`` dims, each 1 or equal to the input's.

Math (``x == 0`` and NaN take the negative branch, as in ``torch.nn.functional.prelu``)::

    y     = x if x > 0 else a * x
    dL/dx = g if x > 0 else a * g
    dL/da = sum over the positions sharing a of (0 if x > 0 else g * x)

``aten._prelu_kernel`` and ``aten._prelu_kernel_backward`` are torch's element-wise kernels for
exactly these formulas (the broadcasting half of ``F.prelu``): one op each way, any device and
dtype. Composing them from ``torch.where`` took three ops and 16 us against 3 us on a (64, 128)
tensor, which showed in small-model training steps.

Mixed precision follows :mod:`prelu.ops.dtypes`: aten's kernels want one dtype, so a pair of
dtypes (bfloat16 input, float32 slopes) runs on copies in the compute dtype, and the slope
gradient of a half input is always summed from float32 products (aten's own half backward rounds
every ``g * x`` to half first). Same-dtype half forwards need no copy: aten computes each product
in float32 and rounds it once, which is the rule.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prelu.ops import dtypes


def _in_compute_dtype(tensor: torch.Tensor, compute: torch.dtype) -> torch.Tensor:
    return tensor if tensor.dtype == compute else tensor.to(compute)


def _strided_like(result: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``result`` with ``torch.empty_like(reference)``'s strides: the layout every path returns."""
    if result.stride() == reference.stride():  # torch's kernels returned a dense result laid out as
        return result  # the reference, so the reference is dense and empty_like keeps its strides
    target = torch.empty_like(reference)
    return result if result.stride() == target.stride() else target.copy_(result)


def forward(input: torch.Tensor, weight_view: torch.Tensor) -> torch.Tensor:
    """``y``, with ``input``'s memory layout and dtype."""
    if input.dtype != weight_view.dtype:
        compute = dtypes.compute_dtype(input.dtype, weight_view.dtype)
        x, a = _in_compute_dtype(input, compute), _in_compute_dtype(weight_view, compute)
        return _strided_like(torch.ops.aten._prelu_kernel(x, a).to(input.dtype), input)
    return _strided_like(torch.ops.aten._prelu_kernel(input, weight_view), input)


def forward_(input: torch.Tensor, weight_view: torch.Tensor) -> None:
    """``y`` written over ``input``. Multiplying by 1 where ``x > 0`` keeps NaN, +-inf and -0.0
    exactly as the out-of-place path; torch itself refuses an ``input`` whose elements overlap.
    With float32 slopes on a half input the factor is float32, so ``mul_`` computes in float32 and
    rounds once into ``input``."""
    input.mul_(torch.where(input > 0, 1.0, weight_view))


def backward(
    grad: torch.Tensor, saved: torch.Tensor, weight_view: torch.Tensor, *, from_output: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients for input (``saved``'s layout and dtype) and slope (``weight_view``'s shape and
    dtype, summed in the compute dtype).

    ``saved`` is ``x``, or with ``from_output=True`` the output ``y`` of an in-place call (slopes
    > 0): ``y > 0`` exactly where ``x > 0``, and ``x = y / a`` elsewhere.
    """
    compute = dtypes.compute_dtype(saved.dtype, weight_view.dtype)
    g, x, a = (_in_compute_dtype(t, compute) for t in (grad, saved, weight_view))
    if from_output:
        # x = y / a, per element before the sum (g * (y / a), not (g * y) / a): finite wherever g * x is.
        output, x = x, torch.where(x > 0, x, x / a)
    grad_input, grad_weight = torch.ops.aten._prelu_kernel_backward(g, x, a)
    grad_weight = grad_weight.sum_to_size(weight_view.shape)
    if from_output and not bool(torch.isfinite(grad_weight).all()):  # only then can x have been lost
        check_recoverable(output, a)
    return _strided_like(grad_input.to(saved.dtype), saved), grad_weight.to(weight_view.dtype)


def check_recoverable(output: torch.Tensor, weight_view: torch.Tensor) -> None:
    """ValueError where an in-place output cannot be turned back into its input: ``y / a`` is not
    finite although ``y`` is not NaN and not ``-inf`` from an input of ``-inf`` (which it is when
    ``a <= 1``). That is ``y = -inf`` with ``a > 1`` (the forward overflowed) or a finite ``y``
    that overflows when divided by a tiny slope."""
    recovered = output / weight_view
    lost = (output <= 0) & ~torch.isfinite(recovered) & (torch.isfinite(output) | (weight_view > 1))
    count = int(lost.sum())
    if count:
        raise ValueError(
            f"in-place prelu backward: {count} output element(s) are -inf (or overflow when divided by "
            "their slope) where the slope is > 1, so the input cannot be recovered as output / slope: the "
            "forward overflowed. The slope gradient would not be the one torch.nn.functional.prelu gives; "
            "call prelu with inplace=False"
        )


def differentiable_backward(
    grad: torch.Tensor, input: torch.Tensor, weight_view: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same gradients built from differentiable ops, for ``create_graph=True``.

    Second derivatives: d(dL/dx)/da = g where x <= 0; d(dL/da)/dx = g where x <= 0; and
    d(dL/da)/dg = x where x <= 0; the kink at x = 0 has derivative 0 almost everywhere.
    """
    compute = dtypes.compute_dtype(input.dtype, weight_view.dtype)
    g, x, a = (_in_compute_dtype(t, compute) for t in (grad, input, weight_view))
    positive = x > 0
    grad_input = torch.where(positive, g, g * a)
    grad_weight = torch.where(positive, torch.zeros_like(x), g * x)
    return grad_input.to(input.dtype), grad_weight.sum_to_size(weight_view.shape).to(weight_view.dtype)


def leaky_relu(input: torch.Tensor, negative_slope: float) -> torch.Tensor:
    """Leaky ReLU forward, as ``F.leaky_relu``, with ``input``'s memory layout."""
    return _strided_like(F.leaky_relu(input, negative_slope), input)


def leaky_relu_(input: torch.Tensor, negative_slope: float) -> None:
    """Leaky ReLU written over ``input``."""
    F.leaky_relu_(input, negative_slope)


def leaky_relu_backward(grad: torch.Tensor, input: torch.Tensor, negative_slope: float) -> torch.Tensor:
    """Leaky ReLU's input gradient, with ``input``'s memory layout."""
    result = torch.ops.aten.leaky_relu_backward(grad, input, negative_slope, False)
    return _strided_like(result, input)

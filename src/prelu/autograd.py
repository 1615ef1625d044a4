"""The custom ops: ``torch.ops.prelu.prelu`` / ``leaky_relu`` and their backward ops.

Owns the torch.library registration (real kernels, fake kernels for tracing, autograd wiring);
imports :mod:`prelu.backend` and :mod:`prelu.kernels`. Registering through ``torch.library``
(not an ``autograd.Function`` that calls numba directly) is what lets
``torch.compile(fullgraph=True)`` trace a model using these ops with no graph break.

Contract of the ops: ``weight`` is already in the canonical form of :mod:`prelu.layout`
(``input.ndim`` dims, each 1 or equal to the input's); :mod:`prelu.functional` puts it there.

Backward runs the fused backward op when no graph is being built, and differentiable torch ops
when ``create_graph=True`` (so second derivatives exist and ``gradgradcheck`` passes).
"""

from __future__ import annotations

import torch
from torch import Tensor

from prelu import backend
from prelu.kernels import native

_LIBRARY = "prelu"


def _check_canonical(input: Tensor, weight: Tensor) -> None:
    if weight.ndim != input.ndim or any(w not in (1, i) for w, i in zip(weight.shape, input.shape, strict=True)):
        raise ValueError(
            f"torch.ops.prelu.prelu takes a weight with one dim per input dim, each 1 or equal to the "
            f"input's; got weight {tuple(weight.shape)} for input {tuple(input.shape)} (prelu.prelu "
            f"does this reshaping for you)"
        )


@torch.library.custom_op(f"{_LIBRARY}::prelu", mutates_args=())
def prelu_op(input: Tensor, weight: Tensor) -> Tensor:
    """PReLU forward; see :func:`prelu.prelu` for the public entry point."""
    _check_canonical(input, weight)
    walk = backend.choose(input, tuple(weight.shape))
    if walk is None:
        return native.forward(input, weight) if input.numel() else torch.empty_like(input)
    return backend.fused_kernels.forward(input, weight, walk)


@prelu_op.register_fake
def _prelu_fake(input: Tensor, weight: Tensor) -> Tensor:
    _check_canonical(input, weight)
    return torch.empty_like(input)


@torch.library.custom_op(f"{_LIBRARY}::prelu_backward", mutates_args=())
def prelu_backward_op(grad: Tensor, saved: Tensor, weight: Tensor, from_output: bool = False) -> tuple[Tensor, Tensor]:
    """Gradients of PReLU for input and weight, in one pass over memory when fused.

    ``saved`` is the input, or with ``from_output=True`` the output of an in-place call.
    """
    if saved.numel() == 0:
        return torch.empty_like(saved), torch.zeros_like(weight)
    walk = backend.choose(saved, tuple(weight.shape))
    laid_out = None if walk is None else backend.gradient_in_layout(grad, saved, walk)
    if laid_out is None:
        grad_input, grad_weight = native.backward(grad, saved, weight, from_output=from_output)
    else:
        grad_input, grad_weight = backend.fused_kernels.backward(laid_out, saved, weight, walk, from_output=from_output)
    # The weight gradient must have the weight's strides, as the fake kernel promises.
    return grad_input, torch.empty_like(weight).copy_(grad_weight)


@prelu_backward_op.register_fake
def _prelu_backward_fake(
    grad: Tensor, saved: Tensor, weight: Tensor, from_output: bool = False
) -> tuple[Tensor, Tensor]:
    return torch.empty_like(saved), torch.empty_like(weight)


def _prelu_setup_context(ctx, inputs, output) -> None:
    input, weight = inputs
    ctx.save_for_backward(input, weight)


def _prelu_backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
    input, weight = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: build the gradient from differentiable ops
        grad_input, grad_weight = native.differentiable_backward(grad, input, weight)
    else:
        grad_input, grad_weight = prelu_backward_op(grad, input, weight, False)
    return (
        grad_input if ctx.needs_input_grad[0] else None,
        grad_weight if ctx.needs_input_grad[1] else None,
    )


prelu_op.register_autograd(_prelu_backward, setup_context=_prelu_setup_context)


def _shared_slope(input: Tensor, negative_slope: float) -> Tensor:
    """The fixed slope as a tensor of the input's dtype, for the fused kernels. Built on every path:
    it refuses a slope the dtype cannot hold, as F.leaky_relu does. The native path multiplies by
    the Python float, as F.leaky_relu does, so half-precision results match it bit for bit."""
    return torch.full((1,) * input.ndim, negative_slope, dtype=input.dtype, device=input.device)


@torch.library.custom_op(f"{_LIBRARY}::leaky_relu", mutates_args=())
def leaky_relu_op(input: Tensor, negative_slope: float) -> Tensor:
    """Leaky ReLU forward; see :func:`prelu.leaky_relu`."""
    slope = _shared_slope(input, negative_slope)
    walk = backend.choose(input, (1,) * input.ndim)
    if walk is None:
        return native.forward(input, negative_slope) if input.numel() else torch.empty_like(input)
    return backend.fused_kernels.forward(input, slope, walk)


@leaky_relu_op.register_fake
def _leaky_relu_fake(input: Tensor, negative_slope: float) -> Tensor:
    return torch.empty_like(input)


@torch.library.custom_op(f"{_LIBRARY}::leaky_relu_backward", mutates_args=())
def leaky_relu_backward_op(grad: Tensor, input: Tensor, negative_slope: float) -> Tensor:
    """Gradient of Leaky ReLU for its input."""
    if input.numel() == 0:
        return torch.empty_like(input)
    slope = _shared_slope(input, negative_slope)
    walk = backend.choose(input, (1,) * input.ndim)
    laid_out = None if walk is None else backend.gradient_in_layout(grad, input, walk)
    if laid_out is None:
        return native.input_backward(grad, input, negative_slope)
    return backend.fused_kernels.backward(laid_out, input, slope, walk)[0]


@leaky_relu_backward_op.register_fake
def _leaky_relu_backward_fake(grad: Tensor, input: Tensor, negative_slope: float) -> Tensor:
    return torch.empty_like(input)


def _leaky_relu_setup_context(ctx, inputs, output) -> None:
    input, negative_slope = inputs
    ctx.save_for_backward(input)
    ctx.negative_slope = negative_slope


def _leaky_relu_backward(ctx, grad: Tensor) -> tuple[Tensor | None, None]:
    (input,) = ctx.saved_tensors
    if torch.is_grad_enabled():
        grad_input = torch.where(input > 0, grad, grad * ctx.negative_slope)
    else:
        grad_input = leaky_relu_backward_op(grad, input, ctx.negative_slope)
    return grad_input, None


leaky_relu_op.register_autograd(_leaky_relu_backward, setup_context=_leaky_relu_setup_context)


# In place. torch.library cannot attach autograd to a mutating op, so a mutating op does the
# writing and a small autograd.Function (which dynamo traces through) marks the input dirty and
# saves only the output: backward recovers x = y / a where y <= 0 (slopes > 0; prelu.functional
# refuses anything else before this runs).


def inplace_slope_message(layer: str, smallest: str, non_finite: int) -> str:
    """The refusal for an in-place call whose slopes are not all finite and > 0."""
    return (
        f"{layer} with inplace=True needs every slope finite and > 0 (backward recovers the input "
        f"as output / slope), but its smallest slope is {smallest}"
        + (f" and {non_finite} slope(s) are not finite" if non_finite else "")
        + "; keep the slopes positive with prelu.PReLU(..., bounds=(low, high)), low > 0, projected after "
        "every optimizer step by prelu.bind_bounds(optimizer, model), or use inplace=False"
    )


def check_inplace_slopes(slopes: Tensor, layer: str = "prelu") -> None:
    """ValueError unless every slope is finite and > 0 (runs on real values, before any write)."""
    if not bool((torch.isfinite(slopes) & (slopes > 0)).all()):
        finite = slopes[torch.isfinite(slopes)]
        smallest = f"{finite.min().item():.6g}" if finite.numel() else "none finite"
        raise ValueError(inplace_slope_message(layer, smallest, slopes.numel() - finite.numel()))


@torch.library.custom_op(f"{_LIBRARY}::prelu_", mutates_args=("input",))
def prelu_inplace_op(input: Tensor, weight: Tensor) -> None:
    """PReLU written over ``input``; refuses slopes that are not finite and > 0 before writing."""
    _check_canonical(input, weight)
    check_inplace_slopes(weight)
    walk = backend.choose(input, tuple(weight.shape))
    if walk is None:
        if input.numel():
            native.forward_(input, weight)
    else:
        backend.fused_kernels.forward(input, weight, walk, out=input)


@prelu_inplace_op.register_fake
def _prelu_inplace_fake(input: Tensor, weight: Tensor) -> None:
    _check_canonical(input, weight)


@torch.library.custom_op(f"{_LIBRARY}::leaky_relu_", mutates_args=("input",))
def leaky_relu_inplace_op(input: Tensor, negative_slope: float) -> None:
    """Leaky ReLU written over ``input``."""
    slope = _shared_slope(input, negative_slope)
    walk = backend.choose(input, (1,) * input.ndim)
    if walk is None:
        if input.numel():
            native.forward_(input, negative_slope)
    else:
        backend.fused_kernels.forward(input, slope, walk, out=input)


@leaky_relu_inplace_op.register_fake
def _leaky_relu_inplace_fake(input: Tensor, negative_slope: float) -> None:
    return None


_NO_DOUBLE_BACKWARD = (
    "double backward through an in-place {name} is not supported: its input was overwritten, and "
    "the second derivative would need it; call it with inplace=False"
)


class PReLUInplace(torch.autograd.Function):
    """In-place PReLU: overwrites ``input``, saves only the output (and the slopes)."""

    @staticmethod
    def forward(ctx, input: Tensor, weight: Tensor) -> Tensor:
        prelu_inplace_op(input, weight)
        ctx.mark_dirty(input)
        ctx.save_for_backward(input, weight)
        return input

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD.format(name="PReLU"))
        output, weight = ctx.saved_tensors
        grad_input, grad_weight = prelu_backward_op(grad, output, weight, True)
        return (
            grad_input if ctx.needs_input_grad[0] else None,
            grad_weight if ctx.needs_input_grad[1] else None,
        )


class LeakyReLUInplace(torch.autograd.Function):
    """In-place Leaky ReLU (slope > 0): overwrites ``input``, saves only the output."""

    @staticmethod
    def forward(ctx, input: Tensor, negative_slope: float) -> Tensor:
        leaky_relu_inplace_op(input, negative_slope)
        ctx.mark_dirty(input)
        ctx.save_for_backward(input)
        ctx.negative_slope = negative_slope
        return input

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD.format(name="Leaky ReLU"))
        (output,) = ctx.saved_tensors
        # For a slope > 0 the output has the input's sign, so the input's formula applies as is.
        return leaky_relu_backward_op(grad, output, ctx.negative_slope), None

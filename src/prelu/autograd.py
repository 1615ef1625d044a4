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
def prelu_backward_op(grad: Tensor, input: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of PReLU for input and weight, in one pass over memory when fused."""
    if input.numel() == 0:
        return torch.empty_like(input), torch.zeros_like(weight)
    walk = backend.choose(input, tuple(weight.shape), grad)
    if walk is None:
        grad_input, grad_weight = native.backward(grad, input, weight)
    else:
        grad_input, grad_weight = backend.fused_kernels.backward(grad, input, weight, walk)
    # The weight gradient must have the weight's strides, as the fake kernel promises.
    return grad_input, torch.empty_like(weight).copy_(grad_weight)


@prelu_backward_op.register_fake
def _prelu_backward_fake(grad: Tensor, input: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    return torch.empty_like(input), torch.empty_like(weight)


def _prelu_setup_context(ctx, inputs, output) -> None:
    input, weight = inputs
    ctx.save_for_backward(input, weight)


def _prelu_backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
    input, weight = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: build the gradient from differentiable ops
        grad_input, grad_weight = native.differentiable_backward(grad, input, weight)
    else:
        grad_input, grad_weight = prelu_backward_op(grad, input, weight)
    return (
        grad_input if ctx.needs_input_grad[0] else None,
        grad_weight if ctx.needs_input_grad[1] else None,
    )


prelu_op.register_autograd(_prelu_backward, setup_context=_prelu_setup_context)


def _shared_slope(input: Tensor, negative_slope: float) -> Tensor:
    return torch.full((1,) * input.ndim, negative_slope, dtype=input.dtype, device=input.device)


@torch.library.custom_op(f"{_LIBRARY}::leaky_relu", mutates_args=())
def leaky_relu_op(input: Tensor, negative_slope: float) -> Tensor:
    """Leaky ReLU forward; see :func:`prelu.leaky_relu`."""
    shape = (1,) * input.ndim
    walk = backend.choose(input, shape)
    if walk is None:
        return native.forward(input, negative_slope) if input.numel() else torch.empty_like(input)
    return backend.fused_kernels.forward(input, _shared_slope(input, negative_slope), walk)


@leaky_relu_op.register_fake
def _leaky_relu_fake(input: Tensor, negative_slope: float) -> Tensor:
    return torch.empty_like(input)


@torch.library.custom_op(f"{_LIBRARY}::leaky_relu_backward", mutates_args=())
def leaky_relu_backward_op(grad: Tensor, input: Tensor, negative_slope: float) -> Tensor:
    """Gradient of Leaky ReLU for its input."""
    if input.numel() == 0:
        return torch.empty_like(input)
    walk = backend.choose(input, (1,) * input.ndim, grad)
    if walk is None:
        return native.input_backward(grad, input, negative_slope)
    return backend.fused_kernels.backward(grad, input, _shared_slope(input, negative_slope), walk)[0]


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

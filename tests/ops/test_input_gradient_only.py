"""Backward when only the input needs a gradient (frozen slopes): grad_input alone, exactly F.prelu's.

The fused backward then skips the slope gradient's float64 sums (one select instead), and an
in-place call's output needs no recovery of x: a forward that overflowed (y = -inf from a finite x,
slope > 1), which must refuse when the slope gradient is wanted, gives grad_input here. Reference:
``g`` where ``x > 0``, ``a * g`` elsewhere, in float64 (exact in float32 too: a product of two
float32 values is exact in float64, so rounding it once gives the float32 product).
"""

from __future__ import annotations

import pytest
import torch

import prelu
from conftest import assert_same, slope_broadcast

NAN, INF = float("nan"), float("inf")

# (shape, channel_dim, layout, backend): the walks of the fused kernel (rows, period), channels-last
# memory and a 1-D tensor, under auto (the C entry) and forced fused (the Python route to the same
# op); and one the fused kernel cannot walk (runs of 3 elements, a period of 15,000), which auto
# sends to aten and forced fused refuses.
WALKS = [
    ((4, 3, 50), 1, "contiguous"),
    ((4, 50, 3), -1, "contiguous"),
    ((2, 5, 7, 9), 1, "channels_last"),
    ((6,), 0, "contiguous"),
]
CASES = [(*walk, backend) for walk in WALKS for backend in ("auto", "fused")] + [
    ((2, 5000, 3), 1, "contiguous", "auto")
]


def _input(shape, layout, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    flat = x.view(-1)
    flat[: min(6, flat.numel())] = torch.tensor([0.0, -0.0, NAN, INF, -INF, 1e-30], dtype=torch.float64)[: flat.numel()]
    x = x.to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def _reference(x, weight, grad, channel_dim):
    a = slope_broadcast(x.shape, weight.to(torch.float64), channel_dim)
    g = grad.to(torch.float64)
    return torch.where(x.to(torch.float64) > 0, g, g * a).to(x.dtype)


@pytest.mark.parametrize("inplace", [False, True], ids=["out-of-place", "in-place"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("shape", "channel_dim", "layout", "backend"), CASES, ids=lambda v: str(v))
def test_frozen_slopes_give_f_prelus_input_gradient(shape, channel_dim, layout, backend, dtype, inplace):
    x = _input(shape, layout, dtype, seed=1)
    channels = 1 if len(shape) == 1 else shape[channel_dim]
    weight = torch.rand(channels, generator=torch.Generator().manual_seed(2), dtype=dtype) + 0.05
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    grad.view(-1)[-3:] = torch.tensor([INF, NAN, -INF], dtype=dtype)
    leaf = x.clone().requires_grad_()
    source = leaf * 1 if inplace else leaf  # in place needs a non-leaf; * 1 passes the gradient as is
    with prelu.use_backend(backend):
        out = prelu.prelu(source, weight, channel_dim=channel_dim, inplace=inplace)
        (grad_input,) = torch.autograd.grad(out, (leaf,), grad)
    assert_same(grad_input, _reference(x, weight, grad, channel_dim))
    assert weight.grad is None


@pytest.mark.parametrize(("shape", "channel_dim"), [((4, 3, 50), 1), ((2, 5000, 3), 1)], ids=["fused", "aten"])
def test_in_place_overflow_refuses_the_slope_gradient_but_not_the_input_gradient(shape, channel_dim):
    """y = 4 * -1e38 = -inf: x can't be recovered from y, which only the slope gradient needs."""
    x = torch.full(shape, -1e38, dtype=torch.float32)
    weight = torch.full((shape[channel_dim],), 4.0)
    grad = torch.ones(shape)
    leaf = x.clone().requires_grad_()
    out = prelu.prelu(leaf * 1, weight, channel_dim=channel_dim, inplace=True)
    assert torch.isneginf(out).all()
    (grad_input,) = torch.autograd.grad(out, (leaf,), grad)
    assert_same(grad_input, torch.full(shape, 4.0))
    learned = weight.clone().requires_grad_()
    out = prelu.prelu(x.clone().requires_grad_() * 1, learned, channel_dim=channel_dim, inplace=True)
    with pytest.raises(ValueError, match="cannot be recovered"):
        out.backward(grad)

"""Gradients of prelu.prelu / prelu.leaky_relu: gradcheck and gradgradcheck in float64, and the
fused, native and torch gradients compared with each other and with a float64 reference.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

import prelu
from conftest import (
    RTOL,
    assert_close_scaled,
    assert_same,
    away_from_zero,
    reference_grads,
    reference_prelu,
    torch_threads,
)

FLOATS = (torch.float32, torch.float64)
NAN, INF = float("nan"), float("inf")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _slopes(shape, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    n = max(1, math.prod(shape))
    return (torch.rand(n, generator=_gen(seed), dtype=torch.float64) * 3.0 - 1.0).to(dtype).reshape(shape)


# ---------------------------------------------------------------------------------------------
# gradcheck / gradgradcheck (float64, points away from the kink at 0).
#
# These make thousands of calls on tiny tensors; they run with one torch thread: on a loaded
# 2-core machine a 2-thread parallel region on a tiny tensor (numba's, in 0.1) was measured at
# ~10 ms per call (vs ~0.1 ms with one thread), which made these tests minutes long. Thread
# counts are exercised by the comparison and determinism tests further down.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def single_thread():
    with torch_threads(1):
        yield


def _contiguous(t):
    return t


def _channels_last(t):
    return t.contiguous(memory_format=torch.channels_last)


def _channels_last_3d(t):
    return t.contiguous(memory_format=torch.channels_last_3d)


def _reversed(t):
    return t.permute(*reversed(range(t.ndim))).contiguous().permute(*reversed(range(t.ndim)))


def _sliced_last(t):
    """Same logical values, but a non-dense view: every other element of a wider tensor."""
    wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    wide[..., ::2] = t
    return wide[..., ::2]


# (input shape, weight shape, channel_dim, memory transform)
GRADCHECK_CASES = [
    ((), (), 1, _contiguous),
    ((), (1,), 1, _contiguous),
    ((), (1, 1), 1, _contiguous),
    ((6,), (1,), 1, _contiguous),
    ((6,), (6,), 0, _contiguous),
    ((40,), (40,), -1, _contiguous),
    ((4, 5), (5,), 1, _contiguous),
    ((4, 5), (4,), 0, _contiguous),
    ((3, 4, 5), (), 1, _contiguous),
    ((3, 4, 5), (4,), 1, _contiguous),
    ((3, 4, 5), (3,), 0, _contiguous),
    ((3, 4, 5), (5,), -1, _contiguous),
    ((2, 3, 4, 5), (3,), 1, _contiguous),  # short rows: period walk
    ((2, 3, 6, 6), (3,), 1, _contiguous),  # rows walk
    ((2, 3, 4, 5), (4,), 2, _contiguous),  # middle dim
    ((2, 3, 4, 5), (4,), -2, _contiguous),
    ((2, 3, 4, 5), (3, 1, 1), 1, _contiguous),
    ((2, 3, 4, 5), (1, 3, 1, 1), 1, _contiguous),
    ((2, 3, 4, 5), (4, 5), 1, _contiguous),
    ((2, 3, 4, 5), (3, 1, 5), 1, _contiguous),
    ((2, 3, 4, 5), (2, 3, 4, 5), 1, _contiguous),
    ((2, 3, 4, 5), (2, 1, 1, 1), 1, _contiguous),
    ((2, 3, 2, 3, 2), (3,), 1, _contiguous),
    ((2, 3, 2, 3, 2), (2,), -1, _contiguous),
    ((2, 3, 4, 5), (3,), 1, _channels_last),
    ((2, 3, 4, 5), (), 1, _channels_last),
    ((2, 3, 4, 5), (4, 5), 1, _channels_last),
    ((2, 3, 2, 3, 4), (3,), 1, _channels_last_3d),
    ((2, 3, 4, 5), (5,), -1, _reversed),
    ((2, 3, 4, 5), (3,), 1, _sliced_last),
    ((3, 4, 6), (4,), 1, _sliced_last),
    ((8,), (1,), 1, _sliced_last),
]


def _gc_id(case) -> str:
    x_shape, w_shape, channel_dim, transform = case
    x_text, w_text = "x".join(map(str, x_shape)) or "0d", "x".join(map(str, w_shape)) or "0d"
    return f"{x_text}-w{w_text}-cd{channel_dim}-{transform.__name__[1:]}"


def _gradcheck_inputs(x_shape, w_shape, transform, seed=0):
    x = transform(away_from_zero(x_shape, generator=_gen(seed))).detach().requires_grad_()
    w = _slopes(w_shape, seed=seed + 1).detach().requires_grad_()
    return x, w


@pytest.mark.parametrize("name", ["auto", "native"])
@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=_gc_id)
@pytest.mark.usefixtures("single_thread")
def test_gradcheck_and_gradgradcheck(case, name):
    x_shape, w_shape, channel_dim, transform = case
    x, w = _gradcheck_inputs(x_shape, w_shape, transform)
    layout = x.stride()

    def fn(x, w):
        return prelu.prelu(x, w, channel_dim=channel_dim)

    with prelu.use_backend(name):
        if name == "auto" and transform is not _sliced_last:
            assert prelu.backend_for(x, w, channel_dim=channel_dim) == "fused"
        assert gradcheck(fn, (x, w), eps=1e-6, atol=1e-8, rtol=1e-6)
        assert gradgradcheck(fn, (x, w), eps=1e-6, atol=1e-8, rtol=1e-6)
    assert x.stride() == layout


@pytest.mark.parametrize("name", ["auto", "native"])
@pytest.mark.parametrize(
    ("base_shape", "shape", "w_shape", "channel_dim"),
    [((1, 3, 1, 5), (2, 3, 4, 5), (3,), 1), ((4, 1), (4, 6), (6,), -1), ((), (7,), (1,), 1), ((1,), (3, 40), (3,), 0)],
)
@pytest.mark.usefixtures("single_thread")
def test_gradcheck_expanded_input(base_shape, shape, w_shape, channel_dim, name):
    """Expanded (stride-0) inputs: gradcheck cannot perturb them directly, so expand inside."""
    base = away_from_zero(base_shape, generator=_gen(3)).requires_grad_()
    w = _slopes(w_shape, seed=4).requires_grad_()

    def fn(base, w):
        return prelu.prelu(base.expand(shape), w, channel_dim=channel_dim)

    with prelu.use_backend(name):
        assert gradcheck(fn, (base, w), eps=1e-6, atol=1e-8, rtol=1e-6)
        assert gradgradcheck(fn, (base, w), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.usefixtures("single_thread")
def test_gradcheck_expanded_and_transposed_weight():
    """The weight itself may be a view: expanded from one value, or a transposed 2-D tensor."""
    x = away_from_zero((2, 3, 5), generator=_gen(5)).requires_grad_()
    w0 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    w2 = _slopes((5, 3), seed=6).requires_grad_()
    assert gradcheck(lambda x, w0: prelu.prelu(x, w0.expand(3)), (x, w0))
    assert gradgradcheck(lambda x, w0: prelu.prelu(x, w0.expand(3)), (x, w0))
    assert gradcheck(lambda x, w2: prelu.prelu(x, w2.t()), (x, w2))
    assert gradgradcheck(lambda x, w2: prelu.prelu(x, w2.t()), (x, w2))


@pytest.mark.parametrize("name", ["auto", "native"])
@pytest.mark.parametrize(
    ("shape", "transform"),
    [
        ((), _contiguous),
        ((7,), _contiguous),
        ((3, 40), _contiguous),
        ((2, 3, 4, 5), _channels_last),
        ((3, 8), _sliced_last),
    ],
    ids=["0d", "1d", "2d", "channels_last", "sliced"],
)
@pytest.mark.parametrize("negative_slope", [0.01, 0.3, -0.5, 1.5])
@pytest.mark.usefixtures("single_thread")
def test_leaky_relu_gradcheck_and_gradgradcheck(shape, transform, negative_slope, name):
    x = transform(away_from_zero(shape, generator=_gen(7))).detach().requires_grad_()

    def fn(x):
        return prelu.leaky_relu(x, negative_slope)

    with prelu.use_backend(name):
        assert gradcheck(fn, (x,), eps=1e-6, atol=1e-8, rtol=1e-6)
        assert gradgradcheck(fn, (x,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_only_one_of_input_and_weight_requires_grad(backend):
    x = away_from_zero((2, 3, 40), generator=_gen(8))
    w = _slopes((3,), seed=9)
    g = torch.randn(2, 3, 40, generator=_gen(10), dtype=torch.float64)
    ref_gx, ref_gw, scale = reference_grads(x, w, g)
    (gx,) = torch.autograd.grad(prelu.prelu(x.requires_grad_(), w), (x,), g)
    assert_same(gx, ref_gx)
    x.requires_grad_(False)
    w.requires_grad_()
    (gw,) = torch.autograd.grad(prelu.prelu(x, w), (w,), g)
    assert_close_scaled(gw, ref_gw, scale, RTOL[torch.float64], "weight gradient")


# ---------------------------------------------------------------------------------------------
# The kink at x == 0: the negative branch, exactly as F.prelu.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(4, 3, 50), (4, 3, 5), (6,)], ids=["rows", "period", "1d-shared"])
def test_gradient_at_exact_zero_is_negative_branch(shape, dtype, backend):
    gen = _gen(11)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    zeros = torch.rand(shape, generator=gen) < 0.3
    x[zeros] = 0.0
    x.view(-1)[1] = -0.0
    x.view(-1)[0] = 0.0
    zeros = x == 0
    channels = 1 if len(shape) == 1 else shape[1]
    w = _slopes((channels,), dtype, seed=12)
    g = torch.randn(shape, generator=gen, dtype=dtype)

    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    gx, gw = torch.autograd.grad(prelu.prelu(xr, wr), (xr, wr), g)
    xt, wt = x.clone().requires_grad_(), w.clone().requires_grad_()
    tgx, tgw = torch.autograd.grad(F.prelu(xt, wt), (xt, wt), g)

    # analytically: at x == 0, dL/dx = a * g and the slope gets g * 0 = 0 from that element
    a = w.reshape(-1, *([1] * (len(shape) - 2))) if len(shape) > 1 else w
    assert_same(gx[zeros], (g * a.expand(shape))[zeros])
    assert_same(gx, tgx)
    only_zeros = torch.where(zeros, x, torch.ones_like(x))  # every x <= 0 is an exact zero
    (gw_zero,) = torch.autograd.grad(prelu.prelu(only_zeros.requires_grad_(), wr), (wr,), g)
    assert torch.equal(gw_zero, torch.zeros_like(w))
    assert_close_scaled(gw, tgw.double(), reference_grads(x, w, g)[2], RTOL[dtype], "weight gradient")


# ---------------------------------------------------------------------------------------------
# Fused vs native vs F.prelu vs the float64 reference, with several incoming-gradient layouts.
# ---------------------------------------------------------------------------------------------


def _other_layout(t: torch.Tensor) -> torch.Tensor:
    """Same values, a different dense memory layout from ``t``'s."""
    if t.ndim == 4:
        if t.is_contiguous():
            return t.contiguous(memory_format=torch.channels_last)
        return t.contiguous()
    if t.ndim >= 2:
        return _reversed(t) if t.is_contiguous() else t.contiguous()
    return t


def _incoming(kind: str, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
    shape, dtype = x.shape, x.dtype
    if kind == "sum":
        return None  # y.sum().backward(): an expanded (stride-0) gradient of ones
    g = torch.randn(shape, generator=gen, dtype=dtype)
    if kind == "same-layout":
        return torch.empty_like(x).copy_(g)
    if kind == "non-contiguous":
        return _sliced_last(g) if x.ndim else g
    if kind == "other-layout":
        return _other_layout(torch.empty_like(x).copy_(g))
    if kind == "expanded-row":
        return g[(slice(0, 1),) * x.ndim].expand(shape) if x.ndim else g
    raise AssertionError(kind)


def _grads(fn, x, w, grad):
    # detach() keeps x's strides (also for non-dense views); nothing here writes to x
    xr, wr = x.detach().requires_grad_(), w.detach().requires_grad_()
    assert xr.stride() == x.stride()
    out = fn(xr, wr)
    if grad is None:
        gx, gw = torch.autograd.grad(out.sum(), (xr, wr))
    else:
        gx, gw = torch.autograd.grad(out, (xr, wr), grad)
    return out.detach(), gx, gw


# (input shape, memory transform, weight shape); all torch-compatible (weight 0-d/1-D, channel dim 1)
COMPARE_CASES = [
    ((), _contiguous, ()),
    ((7,), _contiguous, (1,)),
    ((4, 5), _contiguous, (5,)),
    ((3, 5, 7), _contiguous, ()),
    ((3, 5, 40), _contiguous, (5,)),
    ((8, 16, 20, 20), _contiguous, (16,)),
    ((8, 16, 20, 20), _channels_last, (16,)),
    ((8, 16, 20, 20), _contiguous, (1,)),
    ((2, 3, 4, 5, 6), _channels_last_3d, (3,)),
    ((2, 3, 200, 200), _contiguous, (3,)),  # rows of 40000 > one 32768-element chunk
    ((1, 2, 32768 + 5), _contiguous, (2,)),  # a 5-element tail chunk per row
    ((64, 3, 40, 40), _channels_last, (3,)),  # period walk over more rows than one task
    ((3, 4, 10, 12), _sliced_last, (4,)),
]

GRAD_KINDS = ["same-layout", "sum", "non-contiguous", "other-layout", "expanded-row"]
BIG = {(2, 3, 200, 200), (1, 2, 32773), (64, 3, 40, 40)}


def _cmp_id(case) -> str:
    shape, transform, w_shape = case
    return f"{'x'.join(map(str, shape)) or '0d'}-{transform.__name__[1:]}-w{'x'.join(map(str, w_shape)) or '0d'}"


# The big shapes exist for the kernels' chunking; the slow gradient kinds are covered on the
# smaller shapes, so those pairs are left out of the grid (not skipped) to keep the suite fast.
COMPARE_GRID = [
    (case, kind)
    for case in COMPARE_CASES
    for kind in GRAD_KINDS
    if not (tuple(case[0]) in BIG and kind in ("non-contiguous", "expanded-row"))
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("case", "kind"), COMPARE_GRID, ids=[f"{_cmp_id(case)}-{kind}" for case, kind in COMPARE_GRID])
def test_fused_native_torch_gradients_agree(case, kind, dtype):
    shape, transform, w_shape = case
    gen = _gen(13)
    x = transform(torch.randn(shape, generator=gen, dtype=dtype))
    w = _slopes(w_shape, dtype, seed=14)
    grad = _incoming(kind, x, gen)

    results = {}
    for name in ("auto", "native"):
        with prelu.use_backend(name):
            results[name] = _grads(prelu.prelu, x, w, grad)
    results["torch"] = _grads(F.prelu, x, w, grad)

    g = torch.ones(shape, dtype=dtype) if grad is None else grad
    ref_gx, ref_gw, scale = reference_grads(x, w, g)
    rtol = RTOL[dtype]
    for name, (out, gx, gw) in results.items():
        assert gw.shape == w.shape and gw.dtype == dtype, name
        assert_close_scaled(gw, ref_gw, scale, rtol, f"{name} weight gradient vs float64 reference")
        if name == "torch":
            continue
        assert_same(out, results["torch"][0])
        assert_same(gx, results["torch"][1])  # single products: exact
        assert_same(gx, ref_gx.to(dtype))
        if x.ndim and transform is not _sliced_last:
            assert gx.stride() == x.stride(), f"{name}: input gradient must have the input's layout"
    assert_close_scaled(results["auto"][2], results["native"][2].double(), scale, rtol, "fused vs native")
    assert_close_scaled(results["auto"][2], results["torch"][2].double(), scale, rtol, "fused vs torch")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("shape", "transform", "w_shape", "channel_dim"),
    [
        ((4, 30, 48), _contiguous, (48,), -1),
        ((8, 20, 20, 16), _contiguous, (16,), -1),  # NHWC addressed logically
        ((40, 5, 6), _contiguous, (40,), 0),
        ((4, 5, 50, 3), _reversed, (50,), 2),
        ((2, 3, 20, 20), _contiguous, (20, 20), 1),
        ((2, 3, 20, 20), _channels_last, (3, 1, 20), 1),
        ((6, 7, 50), _contiguous, (6, 1, 1), 1),
    ],
)
@pytest.mark.parametrize("kind", ["same-layout", "sum", "other-layout"])
def test_extended_layout_gradients_match_reference(shape, transform, w_shape, channel_dim, kind, dtype):
    gen = _gen(15)
    x = transform(torch.randn(shape, generator=gen, dtype=dtype))
    w = _slopes(w_shape, dtype, seed=16)
    grad = _incoming(kind, x, gen)
    g = torch.ones(shape, dtype=dtype) if grad is None else grad
    ref_gx, ref_gw, scale = reference_grads(x, w, g, channel_dim)
    gws = {}
    for name in ("auto", "native"):
        with prelu.use_backend(name):
            _, gx, gws[name] = _grads(lambda x, w: prelu.prelu(x, w, channel_dim=channel_dim), x, w, grad)
        assert_same(gx, ref_gx.to(dtype))
        assert_close_scaled(gws[name], ref_gw, scale, RTOL[dtype], f"{name} weight gradient")
    assert_close_scaled(gws["auto"], gws["native"].double(), scale, RTOL[dtype], "fused vs native")


@pytest.mark.parametrize("kind", ["same-layout", "sum", "other-layout", "non-contiguous"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_leaky_relu_gradients_match_torch(kind, dtype, backend):
    gen = _gen(17)
    x = _channels_last(torch.randn(3, 4, 10, 12, generator=gen, dtype=dtype))
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, NAN], dtype=dtype)
    grad = _incoming(kind, x, gen)
    xr = x.clone(memory_format=torch.preserve_format).requires_grad_()
    xt = x.clone(memory_format=torch.preserve_format).requires_grad_()
    out, expected = prelu.leaky_relu(xr, 0.2), F.leaky_relu(xt, 0.2)
    assert_same(out.detach(), expected.detach())
    # A gradient laid out unlike x (another order, a slice, stride 0 from .sum()) runs native under
    # auto and is copied into x's layout when 'fused' is forced: the result is the same either way.
    if grad is None:
        (gx,), (tgx,) = torch.autograd.grad(out.sum(), (xr,)), torch.autograd.grad(expected.sum(), (xt,))
    else:
        (gx,), (tgx,) = torch.autograd.grad(out, (xr,), grad), torch.autograd.grad(expected, (xt,), grad)
    assert_same(gx, tgx)


def test_double_backward_matches_torch(backend):
    """Second derivatives (create_graph=True) against torch's own PReLU double backward."""
    gen = _gen(18)
    x0 = _channels_last(torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64))
    w0 = _slopes((3,), seed=19)
    go0 = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64)
    v = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64)
    results = []
    for fn in (prelu.prelu, F.prelu):
        x, w, go = (t.clone().requires_grad_() for t in (x0, w0, go0))
        gx, gw = torch.autograd.grad(fn(x, w), (x, w), go, create_graph=True)
        second = torch.autograd.grad((gx * v).sum() + (gw * w0).sum(), (x, w, go), allow_unused=True)
        results.append([torch.zeros_like(t) if s is None else s for s, t in zip(second, (x, w, go), strict=True)])
    for ours, theirs in zip(*results, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Determinism across thread counts; inf/NaN in the incoming gradient.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("shape", "transform", "w_shape"),
    [
        ((8, 16, 20, 20), _contiguous, (16,)),
        ((8, 16, 20, 20), _channels_last, (16,)),
        ((2, 3, 200, 200), _contiguous, (3,)),
        ((64, 3, 40, 40), _channels_last, (3,)),
        ((4, 100, 200), _contiguous, (1,)),
        ((64, 3, 40, 40), _channels_last, (1, 40)),
        ((64, 3, 40, 40), _channels_last, (40, 1)),
    ],
    ids=["nchw", "nhwc", "multi-chunk-rows", "multi-task-period", "shared", "elementwise-period", "elementwise-rows"],
)
def test_weight_gradient_bit_identical_across_threads(shape, transform, w_shape, dtype):
    gen = _gen(20)
    x = transform(torch.randn(shape, generator=gen, dtype=dtype))
    w = _slopes(w_shape, dtype, seed=21)
    grad = torch.empty_like(x).copy_(torch.randn(shape, generator=gen, dtype=dtype))
    assert prelu.backend_for(x, w) == "fused"
    results = []
    for threads in (1, 2, 1):
        with torch_threads(threads), prelu.use_backend("fused"):
            results.append(_grads(prelu.prelu, x, w, grad))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert_same(a, b)
    _, _, scale = reference_grads(x, w, grad)
    assert_close_scaled(results[0][2], reference_grads(x, w, grad)[1], scale, RTOL[dtype], "weight gradient")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("shape", "transform", "w_shape"),
    [
        ((2, 3, 200, 200), _contiguous, (3,)),  # rows, several chunks per row
        ((4, 3, 50), _contiguous, (3,)),  # rows, one chunk
        ((4, 3, 20, 20), _channels_last, (3,)),  # period
        ((64, 3, 40, 40), _channels_last, (3,)),  # period, several tasks
        ((5, 40), _contiguous, (1,)),  # shared
        ((9,), _contiguous, (1,)),
    ],
    ids=["rows-multichunk", "rows", "period", "period-multitask", "shared", "1d"],
)
def test_nonfinite_incoming_gradient_where_positive(shape, transform, w_shape, dtype, backend):
    """inf/NaN in the incoming gradient where x > 0: torch's weight gradient selects 0 there
    (it never forms g * 0 = NaN), and so must every backend; where x <= 0 they do propagate."""
    gen = _gen(22)
    x = transform(torch.randn(shape, generator=gen, dtype=dtype))
    w = _slopes(w_shape, dtype, seed=23)
    grad = torch.empty_like(x).copy_(torch.randn(shape, generator=gen, dtype=dtype))
    flat_x = x.permute(*torch.argsort(torch.tensor(x.stride()), descending=True).tolist()).reshape(-1)
    positive = (flat_x > 0).nonzero().reshape(-1)
    flat_g = grad.permute(*torch.argsort(torch.tensor(x.stride()), descending=True).tolist())
    assert flat_g.is_contiguous()
    flat_g = flat_g.view(-1)
    # positive x: inf, -inf and NaN gradients, at the start, middle and end of memory
    picks = positive[torch.tensor([0, 1, 2, len(positive) // 2, len(positive) // 2 + 1, -1])]
    flat_g[picks] = torch.tensor([INF, -INF, NAN, NAN, INF, -INF], dtype=dtype)
    results = {name: _grads(fn, x, w, grad) for name, fn in (("ours", prelu.prelu), ("torch", F.prelu))}
    (_, gx, gw), (_, tgx, tgw) = results["ours"], results["torch"]
    assert_same(gx, tgx)
    assert torch.isfinite(tgw).all()
    scale = reference_grads(x, w, grad)[2]
    scale = torch.where(torch.isfinite(scale), scale, torch.zeros_like(scale))
    assert_close_scaled(gw, tgw.double(), scale, RTOL[dtype], "weight gradient with inf/NaN where x > 0")

    # now also a NaN where x <= 0 (in the first slope's positions) and an inf where x < 0
    negative = (flat_x < 0).nonzero().reshape(-1)
    flat_g[negative[0]] = NAN
    flat_g[negative[-1]] = INF
    (_, gx, gw), (_, tgx, tgw) = _grads(prelu.prelu, x, w, grad), _grads(F.prelu, x, w, grad)
    assert_same(gx, tgx)
    assert not torch.isfinite(tgw).all()
    assert_close_scaled(gw, tgw.double(), scale, RTOL[dtype], "weight gradient with NaN where x <= 0")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("shape", "transform", "w_shape"),
    [
        ((3, 4, 50), _contiguous, (4,)),  # rows
        ((3, 4, 5, 6), _channels_last, (4,)),  # period
        ((4, 60), _contiguous, (1,)),  # shared
    ],
    ids=["rows", "period", "shared"],
)
def test_nonfinite_input_gradients_match_torch(shape, transform, w_shape, dtype, backend):
    """NaN and +-inf in x: NaN takes the negative branch (its slope's gradient is NaN), -inf
    gives a slope gradient of -inf * g, exactly as F.prelu."""
    gen = _gen(24)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    flat = x.view(-1)
    channels = shape[1]
    per_channel = math.prod(shape[2:]) if len(shape) > 2 else 1
    # channel 0 (or the shared slope): a NaN; channel 1: -inf; channel 2: +inf only (x > 0)
    flat[0] = NAN
    flat[per_channel + 1] = -INF
    flat[2 * per_channel + 2] = INF
    if channels > 3:
        flat[3 * per_channel] = -0.0
    x = transform(x)
    w = _slopes(w_shape, dtype, seed=25)
    grad = torch.empty_like(x).copy_(torch.rand(shape, generator=gen, dtype=dtype) + 0.5)  # > 0: no inf - inf
    (out, gx, gw), (tout, tgx, tgw) = _grads(prelu.prelu, x, w, grad), _grads(F.prelu, x, w, grad)
    assert_same(out, tout)
    assert_same(gx, tgx)
    assert gw.isnan().any() and not gw.isnan().all() if w.numel() > 1 else gw.isnan().all()
    scale = reference_grads(x, w, grad)[2]
    scale = torch.where(torch.isfinite(scale), scale, torch.zeros_like(scale))
    assert_close_scaled(gw, tgw.double(), scale, RTOL[dtype], "weight gradient with NaN/inf inputs")


def _offset_view(t: torch.Tensor, offset: int) -> torch.Tensor:
    """The same values and strides as the dense ``t``, stored at a non-zero storage offset."""
    storage = torch.randn(t.numel() + offset + 3, dtype=t.dtype, generator=_gen(offset))
    view = torch.as_strided(storage, t.shape, t.stride(), offset)
    view.copy_(t)
    return view


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("make_x", "w_shape", "channel_dim"),
    [
        (lambda g, d: _offset_view(_channels_last(torch.randn(4, 16, 9, 9, generator=g, dtype=d)), 5), (16,), 1),
        (lambda g, d: _offset_view(torch.randn(3, 4, 50, generator=g, dtype=d), 7), (4,), 1),
        (lambda g, d: torch.randn(2, 3, 40, generator=g, dtype=d)[:, None], (3,), 2),  # size-1 dim, odd stride
        (lambda g, d: torch.randn(2, 3, 40, generator=g, dtype=d).unsqueeze(-1).unsqueeze(0), (3,), 2),
        (lambda g, d: torch.randn(2, 3, 40, generator=g, dtype=d).permute(2, 0, 1)[:, :, None, :], (3,), -1),
        (lambda g, d: torch.randn(2, 3, 40, generator=g, dtype=d)[:, None], (1, 3, 1), 1),
    ],
    ids=["offset-channels-last", "offset-rows", "size1-dim", "size1-dims-ends", "size1-permuted", "size1-bcast"],
)
def test_storage_offsets_and_size_one_dims(make_x, w_shape, channel_dim, dtype, backend):
    """Dense tensors with a storage offset or size-1 dims of arbitrary stride stay on the fused path;
    both backends must read and write at the right places (x, incoming gradient and weight)."""
    gen = _gen(26)
    x = make_x(gen, dtype)
    w = _offset_view(_slopes(w_shape, dtype, seed=27), 3)
    grad = _offset_view(torch.empty_like(x).copy_(torch.randn(x.shape, generator=gen, dtype=dtype)), 11)
    if backend == "fused":
        assert prelu.backend_for(x, w, channel_dim=channel_dim) == "fused"
    out, gx, gw = _grads(lambda x, w: prelu.prelu(x, w, channel_dim=channel_dim), x, w, grad)
    ref_gx, ref_gw, scale = reference_grads(x, w, grad, channel_dim)
    assert_same(out, reference_prelu(x, w, channel_dim).to(dtype))
    assert_same(gx, ref_gx.to(dtype))
    assert_close_scaled(gw, ref_gw, scale, RTOL[dtype], "weight gradient")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("shape", "transform"),
    [
        ((2, 4096, 2, 2), _channels_last),  # the longest period walk
        ((2, 4097, 2, 2), _channels_last),  # one more: no fused walk fits, native
        ((2, 3, 31), _contiguous),  # rows one short of the row-walk threshold
        ((2, 3, 32), _contiguous),
        ((1, 2, 32768), _contiguous),  # exactly one chunk per row
        ((1, 2, 32769), _contiguous),  # a 1-element second chunk
    ],
    ids=["period-4096", "period-4097", "inner-31", "inner-32", "inner-32768", "inner-32769"],
)
def test_walk_boundaries(shape, transform, dtype, backend):
    gen = _gen(28)
    x = transform(torch.randn(shape, generator=gen, dtype=dtype))
    w = _slopes((shape[1],), dtype, seed=29)
    grad = torch.empty_like(x).copy_(torch.randn(shape, generator=gen, dtype=dtype))
    if backend == "fused" and shape[1] == 4097:
        with pytest.raises(RuntimeError, match="fused"):
            prelu.prelu(x, w)
        return
    out, gx, gw = _grads(prelu.prelu, x, w, grad)
    _, tgx, _ = _grads(F.prelu, x, w, grad)
    ref_gx, ref_gw, scale = reference_grads(x, w, grad)
    assert_same(out, F.prelu(x, w))
    assert_same(gx, tgx)
    assert_same(gx, ref_gx.to(dtype))
    assert_close_scaled(gw, ref_gw, scale, RTOL[dtype], "weight gradient")

"""Forward correctness of prelu.prelu / prelu.leaky_relu, backend choice and overrides.

Expected values come from torch.nn.functional (where torch defines the layout) or from the
hand-written float64 reference in conftest.py; never from prelu itself.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import prelu
import prelu.ops.backend
from conftest import (
    BACKENDS,
    RTOL,
    assert_close_scaled,
    assert_same,
    dense_permuted,
    reference_grads,
    reference_prelu,
    torch_threads,
)

FLOATS = (torch.float32, torch.float64)
HALFS = (torch.float16, torch.bfloat16)
NAN, INF = float("nan"), float("inf")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _slopes(n: int, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    """Distinct slopes, some negative, some above 1, so a wrong channel mapping shows."""
    return (torch.rand(n, generator=_gen(seed), dtype=torch.float64) * 3.0 - 1.0).to(dtype)


# ---------------------------------------------------------------------------------------------
# Layouts torch defines: equal to F.prelu, bit for bit.
# ---------------------------------------------------------------------------------------------

# (input shape, weight shape) in torch's convention: weight 0-d or 1-D, channel = dim 1.
TORCH_CASES = [
    ((), ()),
    ((), (1,)),
    ((7,), (1,)),
    ((7,), ()),
    ((1,), (1,)),
    ((4, 5), (5,)),
    ((4, 5), (1,)),
    ((3, 5, 7), (5,)),
    ((3, 5, 7), ()),
    ((2, 3, 5, 7), (3,)),
    ((2, 3, 40, 40), (3,)),
    ((2, 64, 3, 3), (64,)),
    ((2, 3, 4, 5, 6), (3,)),
    ((2, 1, 4, 5), (1,)),
    ((6, 42, 123, 43), (42,)),
]


def _case_id(case) -> str:
    return "x".join(map(str, case[0])) + "-w" + "x".join(map(str, case[1]))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", TORCH_CASES, ids=_case_id)
def test_forward_equals_torch(case, dtype, backend):
    x_shape, w_shape = case
    x = torch.randn(x_shape, generator=_gen(1), dtype=dtype)
    w = _slopes(max(1, math.prod(w_shape)), dtype).reshape(w_shape)
    out = prelu.prelu(x, w)
    assert_same(out, F.prelu(x, w))
    assert out.stride() == x.stride()


@pytest.mark.parametrize("dtype", HALFS)
@pytest.mark.parametrize("case", TORCH_CASES[:-1], ids=_case_id)
def test_forward_half_equals_torch(case, dtype):
    x_shape, w_shape = case
    x = torch.randn(x_shape, generator=_gen(2)).to(dtype)
    w = _slopes(max(1, math.prod(w_shape)), dtype).reshape(w_shape)
    assert prelu.backend_for(x, w) == "native"
    out = prelu.prelu(x, w)
    expected = F.prelu(x, w)
    assert out.dtype == dtype and out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=RTOL[dtype], atol=0)
    # And the float64 reference, rounded once to the dtype (x * a of two halfs is exact in fp32).
    torch.testing.assert_close(out, reference_prelu(x, w).to(dtype), rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("negative_slope", [0.01, 0.2, 0.0, -0.3, 1.5, 2, 0])
@pytest.mark.parametrize("shape", [(), (9,), (4, 33), (2, 3, 40, 40), (2, 3, 5, 6, 7)], ids=str)
def test_leaky_relu_equals_torch(shape, negative_slope, dtype, backend):
    x = torch.randn(shape, generator=_gen(3), dtype=dtype)
    out = prelu.leaky_relu(x, negative_slope)
    assert_same(out, F.leaky_relu(x, negative_slope))
    assert out.stride() == x.stride()


def test_leaky_relu_default_slope_and_channels_last():
    x = torch.randn(2, 5, 6, 7, generator=_gen(4)).to(memory_format=torch.channels_last)
    out = prelu.leaky_relu(x)
    assert_same(out, F.leaky_relu(x, 0.01))
    assert out.stride() == x.stride()


@pytest.mark.parametrize("dtype", HALFS)
def test_leaky_relu_half_equals_torch(dtype):
    x = torch.randn(3, 4, 50, generator=_gen(5)).to(dtype)
    torch.testing.assert_close(prelu.leaky_relu(x, 0.1), F.leaky_relu(x, 0.1), rtol=RTOL[dtype], atol=0)


# ---------------------------------------------------------------------------------------------
# Layouts torch lacks: the float64 reference. Forward values are single products, correctly
# rounded, so even float32 must equal the rounded float64 reference exactly.
# ---------------------------------------------------------------------------------------------

# (input shape, weight shape, channel_dim)
EXTENDED_CASES = [
    ((2, 5, 3), (3,), -1),
    ((2, 5, 3), (3,), 2),
    ((2, 5, 40), (40,), -1),
    ((4, 3, 5, 6), (5,), 2),
    ((4, 3, 5, 6), (5,), -2),
    ((4, 3, 50, 6), (50,), -2),
    ((3, 4), (3,), 0),
    ((50, 40), (50,), 0),
    ((7,), (7,), 0),
    ((7,), (7,), -1),
    ((40,), (40,), 0),
    ((2, 8, 8, 3), (3,), -1),  # NHWC stored contiguously
    ((4, 10, 16), (16,), -1),  # (batch, seq, features)
    ((4, 100, 64), (64,), 2),
    ((3, 5, 7), (3,), 0),
    ((3, 5, 7), (7,), -1),
    ((2, 3, 4, 5, 6), (6,), -1),
    ((2, 3, 4, 5, 6), (5,), 3),
    ((6, 42, 123, 43), (43,), -1),
    ((6, 42, 123, 43), (123,), 2),
    ((6, 42, 123, 43), (6,), 0),
    # weight.ndim >= 2: NumPy broadcasting
    ((2, 3, 5, 5), (3, 1, 1), 1),
    ((2, 3, 5, 5), (1, 3, 1, 1), 1),
    ((2, 3, 5, 7), (5, 7), 1),
    ((2, 3, 5, 7), (2, 3, 5, 7), 1),
    ((2, 3, 5, 7), (1, 1), 1),
    ((2, 3, 5, 7), (5, 1), 1),
    ((2, 3, 5, 7), (3, 1, 7), 1),
    ((2, 3, 5, 7), (2, 1, 1, 1), 1),
    ((2, 3, 5, 7), (1, 1, 1, 7), 1),
    ((3, 5, 4), (3, 1, 1), 1),
    ((4, 6), (4, 6), 1),
    ((2, 40, 40), (40, 1), 1),
    ((2, 3, 4, 5, 6), (4, 1, 6), 1),
]


def _ext_id(case) -> str:
    return "x".join(map(str, case[0])) + "-w" + "x".join(map(str, case[1])) + f"-cd{case[2]}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", EXTENDED_CASES, ids=_ext_id)
def test_forward_extended_layouts_match_reference(case, dtype, backend):
    x_shape, w_shape, channel_dim = case
    x = torch.randn(x_shape, generator=_gen(6), dtype=dtype)
    w = _slopes(math.prod(w_shape), dtype).reshape(w_shape)
    out = prelu.prelu(x, w, channel_dim=channel_dim)
    assert out.shape == x.shape and out.dtype == dtype
    assert_same(out, reference_prelu(x, w, channel_dim).to(dtype))


@pytest.mark.parametrize("dtype", HALFS)
@pytest.mark.parametrize("case", EXTENDED_CASES[:12] + EXTENDED_CASES[21:25], ids=_ext_id)
def test_forward_half_extended_layouts(case, dtype):
    x_shape, w_shape, channel_dim = case
    x = torch.randn(x_shape, generator=_gen(7)).to(dtype)
    w = _slopes(math.prod(w_shape), dtype).reshape(w_shape)
    out = prelu.prelu(x, w, channel_dim=channel_dim)
    torch.testing.assert_close(out, reference_prelu(x, w, channel_dim).to(dtype), rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_long_elementwise_pattern_falls_back_to_native(dtype):
    """An element-wise slope pattern too long for the fused walks (documented in layout.py): auto
    takes the native path, still exact; forcing 'fused' says why instead of copying."""
    x = torch.randn(2, 64, 65, generator=_gen(16), dtype=dtype)
    w = _slopes(64 * 65, dtype).reshape(64, 65)
    assert prelu.backend_for(x, w) == "native"
    assert_same(prelu.prelu(x, w), reference_prelu(x, w).to(dtype))
    with prelu.use_backend("fused"), pytest.raises(RuntimeError, match="fused"):
        prelu.prelu(x, w)


def test_channel_dim_selects_the_right_axis():
    """A square input: only the channel axis decides which slope an element gets."""
    x = -torch.ones(3, 3)
    w = torch.tensor([1.0, 2.0, 3.0])
    assert prelu.prelu(x, w, channel_dim=0).tolist() == [[-1.0] * 3, [-2.0] * 3, [-3.0] * 3]
    assert prelu.prelu(x, w, channel_dim=1).tolist() == [[-1.0, -2.0, -3.0]] * 3
    assert prelu.prelu(x, w, channel_dim=-1).tolist() == [[-1.0, -2.0, -3.0]] * 3
    assert prelu.prelu(x, w, channel_dim=-2).tolist() == [[-1.0] * 3, [-2.0] * 3, [-3.0] * 3]


def test_default_channel_dim_is_one():
    x = torch.randn(2, 3, 3, generator=_gen(8))
    w = _slopes(3, torch.float32)
    assert_same(prelu.prelu(x, w), prelu.prelu(x, w, channel_dim=1))
    assert_same(prelu.prelu(x, w), reference_prelu(x, w, 1).float())
    assert not torch.equal(prelu.prelu(x, w), reference_prelu(x, w, 2).float())


# ---------------------------------------------------------------------------------------------
# Memory layouts: channels_last, channels_last_3d, permutations, slices, expansions.
# ---------------------------------------------------------------------------------------------

# (logical shape, memory order outermost first, weight shape, channel_dim)
PERMUTED_CASES = [
    ((2, 3, 6, 7), (0, 2, 3, 1), (3,), 1),  # channels_last, small C: period walk
    ((2, 64, 6, 7), (0, 2, 3, 1), (64,), 1),  # channels_last, rows would be short
    ((2, 3, 40, 40), (0, 2, 3, 1), (3,), 1),
    ((2, 3, 40, 40), (1, 0, 2, 3), (3,), 1),  # CNHW: channel outermost
    ((2, 3, 4, 5, 6), (0, 2, 3, 4, 1), (3,), 1),  # channels_last_3d
    ((5, 4, 3, 2), (3, 2, 1, 0), (4,), 1),  # fully reversed
    ((5, 4, 3, 2), (3, 2, 1, 0), (2,), -1),
    ((7, 40, 9), (2, 0, 1), (9,), -1),
    ((7, 40, 9), (2, 0, 1), (40, 1), 1),
    ((8, 6), (1, 0), (6,), 1),  # transposed matrix
    ((8, 6), (1, 0), (8,), 0),
    ((2, 3, 6, 7), (0, 2, 3, 1), (6, 7), 1),
    ((2, 3, 6, 7), (0, 2, 3, 1), (), 1),
    ((2, 3, 6, 7), (3, 1, 0, 2), (1, 3, 6, 1), 1),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", PERMUTED_CASES, ids=lambda c: f"{c[0]}-order{c[1]}-w{c[2]}-cd{c[3]}")
def test_forward_permuted_memory(case, dtype, backend):
    shape, order, w_shape, channel_dim = case
    x = dense_permuted(shape, order, dtype, generator=_gen(9))
    w = _slopes(max(1, math.prod(w_shape)), dtype).reshape(w_shape)
    out = prelu.prelu(x, w, channel_dim=channel_dim)
    assert_same(out, reference_prelu(x, w, channel_dim).to(dtype))
    assert out.stride() == x.stride(), "output must keep the input's memory layout"
    if backend == "fused":
        assert prelu.backend_for(x, w, channel_dim=channel_dim) == "fused"


@pytest.mark.parametrize("dtype", FLOATS + HALFS)
@pytest.mark.parametrize(
    ("shape", "memory_format"),
    [
        ((2, 3, 5, 7), torch.channels_last),
        ((2, 16, 9, 9), torch.channels_last),
        ((2, 3, 4, 5, 6), torch.channels_last_3d),
    ],
    ids=["cl-4d", "cl-4d-c16", "cl-3d"],
)
def test_channels_last_keeps_memory_format(shape, memory_format, dtype):
    x = torch.randn(shape, generator=_gen(10)).to(dtype).to(memory_format=memory_format)
    w = _slopes(shape[1], dtype)
    out = prelu.prelu(x, w)
    assert out.is_contiguous(memory_format=memory_format)
    assert out.stride() == x.stride()
    expected = F.prelu(x, w)
    if dtype in FLOATS:
        assert_same(out, expected)
        assert prelu.backend_for(x, w) == "fused"
    else:
        torch.testing.assert_close(out, expected, rtol=RTOL[dtype], atol=0)
    # channels-last data with the channel stored last, addressed logically as NHWC:
    nhwc = x.permute(0, *range(2, x.ndim), 1)
    assert nhwc.is_contiguous()
    out_nhwc = prelu.prelu(nhwc, w, channel_dim=-1)
    assert torch.equal(out_nhwc.permute(0, -1, *range(1, x.ndim - 1)), out)


def _sliced_inputs(dtype):
    base = torch.randn(4, 6, 10, 12, generator=_gen(11), dtype=dtype)
    return {
        "last-step2": base[:, :, :, ::2],
        "middle-step3": base[:, :, ::3],
        "channel-slice": base[:, 1:4],
        "crop": base[:, :, 2:8, 3:9],
        "narrow-last": base[..., :5],
        "cl-crop": base.to(memory_format=torch.channels_last)[:, :, 1:9, :],
    }


@pytest.mark.parametrize("dtype", FLOATS + HALFS)
@pytest.mark.parametrize("name", list(_sliced_inputs(torch.float32)))
def test_sliced_inputs_take_native_and_match(name, dtype):
    x = _sliced_inputs(dtype)[name]
    assert not x.is_contiguous()
    w = _slopes(x.shape[1], dtype)
    assert prelu.backend_for(x, w) == "native"
    out = prelu.prelu(x, w)
    expected = reference_prelu(x, w).to(dtype)
    if dtype in FLOATS:
        assert_same(out, expected)
        assert_same(out, F.prelu(x, w))
    else:
        torch.testing.assert_close(out, expected, rtol=RTOL[dtype], atol=0)
    with prelu.use_backend("fused"), pytest.raises(RuntimeError):
        prelu.prelu(x, w)


@pytest.mark.parametrize("dtype", FLOATS)
def test_dense_slice_with_storage_offset(dtype, backend):
    """A slice along the outermost dim stays dense (only a storage offset): the fused path takes it
    and must read and write at the offset."""
    base = torch.randn(6, 3, 20, 20, generator=_gen(12), dtype=dtype)
    x = base[2:5]
    assert x.storage_offset() > 0 and x.is_contiguous()
    w = _slopes(3, dtype)
    out = prelu.prelu(x, w)
    assert_same(out, F.prelu(x, w))
    if backend == "fused":
        assert prelu.backend_for(x, w) == "fused"
    cl = base.to(memory_format=torch.channels_last)[1:3]
    assert_same(prelu.prelu(cl, w), F.prelu(cl, w))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("base_shape", "shape", "w_shape", "channel_dim"),
    [
        ((1, 3, 1, 5), (4, 3, 6, 5), (3,), 1),
        ((4, 1, 7), (4, 6, 7), (7,), -1),
        ((1,), (50,), (), 1),
        ((), (3, 4), (4,), 1),
        ((2, 1), (2, 40), (2,), 0),
    ],
)
def test_expanded_inputs(base_shape, shape, w_shape, channel_dim, dtype, backend):
    x = torch.randn(base_shape, generator=_gen(13), dtype=dtype).expand(shape)
    w = _slopes(max(1, math.prod(w_shape)), dtype).reshape(w_shape)
    if backend == "fused":
        with pytest.raises(RuntimeError):
            prelu.prelu(x, w, channel_dim=channel_dim)
        return
    out = prelu.prelu(x, w, channel_dim=channel_dim)
    assert out.shape == x.shape
    assert_same(out, reference_prelu(x, w, channel_dim).to(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_expanded_inputs_auto_is_native(dtype):
    x = torch.randn(1, 3, 1, 5, dtype=dtype).expand(4, 3, 6, 5)
    w = _slopes(3, dtype)
    assert prelu.backend_for(x, w) == "native"
    out = prelu.prelu(x, w)
    assert_same(out, F.prelu(x, w))
    # the output is a fresh tensor: writing to it must not touch the (shared) input memory
    before = x.clone()
    out.add_(1.0)
    assert torch.equal(x, before)


# ---------------------------------------------------------------------------------------------
# Zero-size tensors.
# ---------------------------------------------------------------------------------------------

ZERO_CASES = [
    ((0,), (1,), 1),
    ((0, 3, 4), (3,), 1),
    ((2, 3, 0), (3,), 1),
    ((2, 3, 0, 5), (3,), 1),
    ((0, 4), (4,), -1),
    ((2, 0, 4), (1,), 1),
    ((2, 3, 0), (3, 1), 1),
]


@pytest.mark.parametrize("dtype", FLOATS + HALFS)
@pytest.mark.parametrize("case", ZERO_CASES, ids=_ext_id)
def test_zero_size(case, dtype):
    x_shape, w_shape, channel_dim = case
    x = torch.randn(x_shape, dtype=dtype, requires_grad=True)
    w = torch.full(w_shape, 0.25, dtype=dtype, requires_grad=True)
    for name in ("auto", "fused", "native"):
        if name == "fused" and dtype in HALFS:
            continue
        with prelu.use_backend(name):
            out = prelu.prelu(x, w, channel_dim=channel_dim)
            assert out.shape == x.shape and out.dtype == dtype
            gx, gw = torch.autograd.grad(out.sum(), (x, w))
        assert gx.shape == x.shape
        assert gw.shape == w.shape and torch.equal(gw, torch.zeros_like(w))
    assert prelu.backend_for(x, w, channel_dim=channel_dim) == "native"
    if channel_dim == 1 and len(x_shape) >= 2 and len(w_shape) <= 1:
        assert torch.equal(prelu.prelu(x, w).detach(), F.prelu(x, w).detach())


@pytest.mark.parametrize("dtype", FLOATS)
def test_zero_channels_with_empty_weight_like_torch(dtype):
    """Zero channels, one slope per channel: a weight of shape (0,). torch accepts it (C == 0) and
    so does the contract's "1-D of length C" layout."""
    x = torch.randn(2, 0, 4, dtype=dtype, requires_grad=True)
    w = torch.empty(0, dtype=dtype, requires_grad=True)
    expected = F.prelu(x, w)
    out = prelu.prelu(x, w)
    assert out.shape == expected.shape == (2, 0, 4)
    gx, gw = torch.autograd.grad(out.sum(), (x, w))
    assert gx.shape == x.shape and gw.shape == (0,)


@pytest.mark.parametrize("dtype", FLOATS)
def test_zero_size_channels_last_and_leaky(dtype, backend):
    x = torch.randn(0, 3, 4, 5, dtype=dtype).to(memory_format=torch.channels_last)
    out = prelu.prelu(x, torch.full((3,), 0.1, dtype=dtype))
    assert out.shape == x.shape
    assert prelu.leaky_relu(x).shape == x.shape


# ---------------------------------------------------------------------------------------------
# Special values: NaN, +-inf, -0.0 and exact zeros, exactly as F.prelu.
# ---------------------------------------------------------------------------------------------

SPECIALS = [0.0, -0.0, NAN, INF, -INF, 1e-30, -1e-30, 5e-324, -5e-324, 1.0, -1.0, 3e38, -3e38, 1e308, -1e308]


def _special_tensor(shape, dtype, seed=14):
    values = torch.tensor(SPECIALS, dtype=torch.float64).to(dtype)
    n = math.prod(shape)
    random = torch.randn(n, generator=_gen(seed), dtype=dtype)
    pick = torch.randint(0, 2 * len(SPECIALS), (n,), generator=_gen(seed + 1))
    flat = torch.where(pick < len(SPECIALS), values[pick.clamp(max=len(SPECIALS) - 1)], random)
    flat[: len(SPECIALS)] = values  # every special at least once, at the start
    return flat.reshape(shape)


SPECIAL_SLOPES = [0.25, -0.5, 0.0, 1.0, 3.0, INF, NAN]


@pytest.mark.parametrize("dtype", FLOATS + HALFS)
@pytest.mark.parametrize(
    ("shape", "memory_format"),
    [((len(SPECIALS),), None), ((2, 7, 50), None), ((3, 7, 4, 4), torch.channels_last), ((2, 7, 3), None)],
    ids=["1d", "rows", "channels_last", "period"],
)
def test_special_values_match_torch(shape, memory_format, dtype):
    x = _special_tensor(shape, dtype)
    if memory_format is not None:
        x = x.to(memory_format=memory_format)
    channels = 1 if len(shape) == 1 else shape[1]
    w = torch.tensor((SPECIAL_SLOPES * channels)[:channels], dtype=dtype)
    names = ("auto", "native") if dtype in HALFS else ("fused", "native")
    for slope in SPECIAL_SLOPES:
        shared = torch.tensor([slope], dtype=dtype)
        for name in names:
            with prelu.use_backend(name):
                assert_same(prelu.prelu(x, shared), F.prelu(x, shared))
                if isinstance(slope, float) and math.isfinite(slope):
                    assert_same(prelu.leaky_relu(x, slope), F.leaky_relu(x, slope))
    for name in names:
        with prelu.use_backend(name):
            assert_same(prelu.prelu(x, w), F.prelu(x, w))


@pytest.mark.parametrize("dtype", FLOATS)
def test_signed_zero_and_exact_zero(dtype, backend):
    x = torch.tensor([0.0, -0.0, 0.0, -0.0] * 16, dtype=dtype).reshape(4, 16)
    for slope in (0.25, -0.25, 0.0, -0.0):
        w = torch.full((4,), slope, dtype=dtype)
        out = prelu.prelu(x, w, channel_dim=0)
        # x == 0 takes the negative branch: out = x * a (signed zero by IEEE sign rules)
        expected = x * slope
        assert_same(out, expected)
        assert_same(out, F.prelu(x.T.contiguous(), w).T)


# ---------------------------------------------------------------------------------------------
# Backends agree, threads do not matter.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("shape", "order", "w_shape", "channel_dim"),
    [
        ((3, 16, 33, 35), (0, 1, 2, 3), (16,), 1),
        ((3, 16, 33, 35), (0, 2, 3, 1), (16,), 1),
        ((2, 3, 200, 200), (0, 1, 2, 3), (3,), 1),
        ((64, 3, 40, 40), (0, 2, 3, 1), (3,), 1),
        ((5, 7, 11), (2, 1, 0), (11,), -1),
        ((4, 100, 64), (0, 1, 2), (1,), 1),
        ((2, 3, 5, 7), (0, 1, 2, 3), (3, 1, 7), 1),
    ],
)
def test_backends_identical_and_thread_independent(shape, order, w_shape, channel_dim, dtype):
    x = dense_permuted(shape, order, dtype, generator=_gen(15))
    w = _slopes(math.prod(w_shape), dtype).reshape(w_shape)
    assert prelu.backend_for(x, w, channel_dim=channel_dim) == "fused"
    results = {}
    for threads in (1, 2):
        with torch_threads(threads):
            for name in BACKENDS:
                with prelu.use_backend(name):
                    results[name, threads] = prelu.prelu(x, w, channel_dim=channel_dim)
    reference = reference_prelu(x, w, channel_dim).to(dtype)
    for key, value in results.items():
        assert_same(value, reference), key
        assert value.stride() == x.stride(), key


def test_thread_count_is_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        prelu.prelu(torch.randn(2, 3, 40, 40), torch.rand(3))
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------------------------------------
# backend_for, use_backend, PRELU_BACKEND.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
def test_backend_for_dense_float_is_fused(dtype):
    w3 = torch.rand(3, dtype=dtype)
    assert prelu.backend_for(torch.randn(2, 3, 8, 8, dtype=dtype), w3) == "fused"
    assert prelu.backend_for(torch.randn(2, 3, 8, 8, dtype=dtype).to(memory_format=torch.channels_last), w3) == "fused"
    assert (
        prelu.backend_for(torch.randn(2, 3, 4, 8, 8, dtype=dtype).to(memory_format=torch.channels_last_3d), w3)
        == "fused"
    )
    assert prelu.backend_for(torch.randn(2, 8, 3, dtype=dtype), w3, channel_dim=-1) == "fused"
    assert prelu.backend_for(torch.randn(2, 3, 8, 8, dtype=dtype)) == "fused"  # weight=None: shared slope
    assert prelu.backend_for(torch.randn((), dtype=dtype), torch.rand(1, dtype=dtype)) == "fused"
    assert prelu.backend_for(dense_permuted((4, 3, 5), (2, 0, 1), dtype), w3) == "fused"


@pytest.mark.parametrize("dtype", HALFS)
def test_backend_for_half_is_native(dtype):
    x = torch.randn(2, 3, 8, 8).to(dtype)
    assert prelu.backend_for(x, torch.rand(3).to(dtype)) == "native"
    assert prelu.backend_for(x) == "native"
    with prelu.use_backend("auto"):
        assert prelu.backend_for(x) == "native"


def test_backend_for_sliced_and_expanded_is_native():
    base = torch.randn(2, 3, 8, 8)
    w = torch.rand(3)
    assert prelu.backend_for(base[..., ::2], w) == "native"
    assert prelu.backend_for(base[:, :, 1:7, 1:7], w) == "native"
    assert prelu.backend_for(torch.randn(1, 3, 1, 8).expand(2, 3, 8, 8), w) == "native"


def test_use_backend_forces_and_restores():
    x = torch.randn(2, 3, 8, 8)
    with prelu.use_backend("native"):
        assert prelu.backend_for(x) == "native"
        with prelu.use_backend("fused"):
            assert prelu.backend_for(x) == "fused"
        assert prelu.backend_for(x) == "native"
    assert prelu.backend_for(x) == "fused"


def test_use_backend_restores_after_exception():
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(KeyError), prelu.use_backend("native"):
        raise KeyError("boom")
    assert prelu.backend_for(x) == "fused"


def _spy_fused(monkeypatch):
    """Count calls into the fused paths (the real ones still run): the C++ autograd op on CPU
    ("cpu_op", through the C++ entry or from Python) and the kernels behind the Python Functions
    ("forward", "backward")."""
    calls = []
    kernels = prelu.ops.backend.fused_kernels
    for name in ("forward", "backward"):
        real = getattr(kernels, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(kernels, name, spy)
    real_op = prelu.ops.route._cpu_op

    def spy_op(inplace):
        calls.append("cpu_op")
        return real_op(inplace)

    monkeypatch.setattr(prelu.ops.route, "_cpu_op", spy_op)
    real_op(False)  # loads the extension, and with it the C++ entry
    real_entry = prelu.ops.route.fast_entry

    def spy_entry(*args):
        output = real_entry(*args)
        if output is not None:
            calls.append("cpu_op")
        return output

    monkeypatch.setattr(prelu.ops.route, "fast_entry", spy_entry)
    return calls


def test_use_backend_native_really_skips_fused_kernels(monkeypatch):
    calls = _spy_fused(monkeypatch)
    x = torch.randn(2, 3, 40, 40, requires_grad=True)
    w = torch.rand(3, requires_grad=True)
    fused = prelu.prelu(x, w)
    assert fused.grad_fn.name() == "prelu_cpu::PReLUBackward"
    fused.backward(torch.randn(2, 3, 40, 40))
    assert calls == ["cpu_op"]
    calls.clear()
    with prelu.use_backend("native"):
        out = prelu.prelu(x, w)
        assert out.grad_fn.name() == "PreluKernelBackward0"
        out.backward(torch.randn(2, 3, 40, 40))
        prelu.leaky_relu(x, 0.1).sum().backward()
    assert calls == []
    assert_same(out, F.prelu(x, w))


@pytest.mark.parametrize("value", ["native", "NATIVE", " native "])
def test_env_var_forces_native(monkeypatch, value):
    calls = _spy_fused(monkeypatch)
    monkeypatch.setenv("PRELU_BACKEND", value)
    x = torch.randn(2, 3, 40, 40)
    w = torch.rand(3)
    assert prelu.backend_for(x, w) == "native"
    assert_same(prelu.prelu(x, w), F.prelu(x, w))
    assert calls == []


def test_env_var_fused_and_auto(monkeypatch):
    x16 = torch.randn(2, 3, 8, 8, dtype=torch.float16)
    monkeypatch.setenv("PRELU_BACKEND", "fused")
    assert prelu.backend_for(torch.randn(2, 3, 8, 8)) == "fused"
    with pytest.raises(RuntimeError):
        prelu.backend_for(x16)
    with pytest.raises(RuntimeError):
        prelu.prelu(x16, torch.rand(3).half())
    with pytest.raises(RuntimeError):
        prelu.leaky_relu(x16)
    monkeypatch.setenv("PRELU_BACKEND", "auto")
    assert prelu.backend_for(x16) == "native"
    monkeypatch.setenv("PRELU_BACKEND", "")
    assert prelu.backend_for(torch.randn(4)) == "fused"


def test_use_backend_overrides_env_var(monkeypatch):
    monkeypatch.setenv("PRELU_BACKEND", "native")
    x = torch.randn(2, 3, 8, 8)
    with prelu.use_backend("fused"):
        assert prelu.backend_for(x) == "fused"
    with prelu.use_backend("auto"):
        assert prelu.backend_for(x) == "fused"
    assert prelu.backend_for(x) == "native"


@pytest.mark.parametrize("dtype", HALFS)
def test_forcing_fused_on_half_raises(dtype):
    x = torch.randn(2, 3, 8, 8).to(dtype)
    w = torch.rand(3).to(dtype)
    with prelu.use_backend("fused"):
        with pytest.raises(RuntimeError, match="fused"):
            prelu.backend_for(x, w)
        with pytest.raises(RuntimeError):
            prelu.prelu(x, w)
        with pytest.raises(RuntimeError):
            prelu.leaky_relu(x, 0.1)


@pytest.mark.parametrize("kind", ["channels_last", "expanded"])
def test_forcing_fused_copies_a_gradient_in_another_layout(kind):
    """Under auto, a gradient laid out unlike the input runs native; forced 'fused' copies it into
    the input's layout (documented) and gives the same gradients as native and torch."""
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    w = torch.rand(3, dtype=torch.float64)
    if kind == "channels_last":
        grad = torch.randn(2, 3, 8, 8, dtype=torch.float64).to(memory_format=torch.channels_last)
    else:
        grad = torch.tensor(1.5, dtype=torch.float64).expand(2, 3, 8, 8)
    results = {}
    for name in ("fused", "native"):
        source, slopes = x.clone().requires_grad_(), w.clone().requires_grad_()
        with prelu.use_backend(name):
            results[name] = torch.autograd.grad(prelu.prelu(source, slopes), [source, slopes], grad)
    source, slopes = x.clone().requires_grad_(), w.clone().requires_grad_()
    expected = torch.autograd.grad(F.prelu(source, slopes), [source, slopes], grad)
    for name, grads in results.items():
        assert torch.equal(grads[0], expected[0]), name
        torch.testing.assert_close(grads[1], expected[1], rtol=1e-12, atol=0)


def test_auto_runs_every_size_of_cpu_tensor_on_the_cpp_op():
    w = torch.rand(4, requires_grad=True)
    for shape in [(), (1,), (2, 4), (2, 4, 8, 8), (16, 4, 32, 16)]:
        x = torch.randn(shape)
        weight = w[:1] if x.ndim < 2 else w
        assert prelu.backend_for(x, weight) == "fused"
        out = prelu.prelu(x, weight)
        assert out.grad_fn.name() == "prelu_cpu::PReLUBackward"
        assert torch.equal(out, F.prelu(x, weight))
    with torch.no_grad():  # nothing to record: the op runs the kernel without a graph node
        assert prelu.prelu(torch.randn(2, 4), w).grad_fn is None


# ---------------------------------------------------------------------------------------------
# Property test: random shapes, channel axes, weight layouts and memory orders, forward and both
# gradients against the float64 reference.
# ---------------------------------------------------------------------------------------------


@st.composite
def prelu_problems(draw):
    ndim = draw(st.integers(0, 5))
    dims = draw(st.lists(st.sampled_from([1, 2, 3, 4, 5, 7, 33, 40]), min_size=ndim, max_size=ndim))
    if math.prod(dims) > 20_000:
        dims = [min(d, 7) for d in dims]
    shape = tuple(dims)
    order = tuple(draw(st.permutations(range(ndim)))) if draw(st.booleans()) else tuple(range(ndim))
    kind = draw(st.sampled_from(["shared", "channel", "broadcast"] if ndim else ["shared"]))
    channel_dim = 1
    if kind == "shared":
        w_shape = draw(st.sampled_from([(), (1,), (1, 1)]))
    elif kind == "channel":
        dim = draw(st.integers(0, ndim - 1))
        channel_dim = dim - ndim if draw(st.booleans()) else dim
        w_shape = (shape[dim],)
    else:
        k = draw(st.integers(1, ndim))
        tail = shape[ndim - k :]
        w_shape = tuple(s if draw(st.booleans()) else 1 for s in tail)
        if len(w_shape) < 2:  # a 1-D weight means per channel; use a 2-D broadcast instead
            w_shape = (1, *w_shape) if ndim >= 2 else w_shape
            if len(w_shape) < 2:
                w_shape, kind = (1,), "shared"
    dtype = draw(st.sampled_from(FLOATS))
    backend = draw(st.sampled_from(["auto", "native"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, order, w_shape, channel_dim, dtype, backend, seed


@given(prelu_problems())
def test_property_forward_and_gradients_match_reference(problem):
    shape, order, w_shape, channel_dim, dtype, backend, seed = problem
    gen = _gen(seed)
    x = dense_permuted(shape, order, dtype, generator=gen).requires_grad_()
    # some exact zeros in x: they take the negative branch
    x.data[torch.rand(shape, generator=gen) < 0.05] = 0.0
    w = (torch.rand(w_shape, generator=gen, dtype=torch.float64) * 2 - 0.5).to(dtype).requires_grad_()
    grad_out = dense_permuted(shape, order, dtype, generator=gen)
    with prelu.use_backend(backend):
        out = prelu.prelu(x, w, channel_dim=channel_dim)
        assert out.shape == x.shape and out.stride() == x.stride()
        gx, gw = torch.autograd.grad(out, (x, w), grad_out)
    assert_same(out.detach(), reference_prelu(x, w, channel_dim).to(dtype))
    ref_gx, ref_gw, scale = reference_grads(x, w, grad_out, channel_dim)
    assert_same(gx, ref_gx.to(dtype))
    assert gw.shape == w.shape and gw.dtype == dtype
    assert_close_scaled(gw, ref_gw, scale, RTOL[dtype], "weight gradient")

"""Refused calls: the right exception type, a message that helps, and nothing changed.

Every refusal is checked to leave the caller's tensors bit-identical and to write no ``.grad``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import prelu


@contextlib.contextmanager
def unchanged(*tensors: torch.Tensor) -> Iterator[None]:
    """Assert that the block leaves every tensor's values, shape, strides and .grad as they were."""
    before = [(t.detach().clone(), t.shape, t.stride(), t.dtype, t.device) for t in tensors]
    try:
        yield
    finally:
        for t, (values, shape, stride, dtype, device) in zip(tensors, before, strict=True):
            assert (t.shape, t.stride(), t.dtype, t.device) == (shape, stride, dtype, device)
            if device.type != "meta":
                assert torch.equal(t.detach(), values), "a refused call modified its input"
            assert t.grad is None, "a refused call wrote a .grad"


def _leaf(*shape, dtype=torch.float32, fill=None):
    t = torch.randn(shape, dtype=dtype) if fill is None else torch.full(shape, fill, dtype=dtype)
    return t.requires_grad_() if dtype.is_floating_point else t


def _shape_text(shape) -> str:
    return str(tuple(shape))


# ---------------------------------------------------------------------------------------------
# Slope layouts that fit nothing.
# ---------------------------------------------------------------------------------------------

# (input shape, weight shape, channel_dim)
BAD_LAYOUTS = [
    ((2, 4, 5), (3,), 1),  # 3 slopes, 4 channels
    ((2, 4, 5), (5,), 1),  # matches another axis, not the channel one
    ((2, 4, 5), (4,), -1),
    ((2, 4, 5), (2,), 2),
    ((7,), (5,), 0),
    ((2, 3, 5), (4, 1), 1),  # 2-D weight that does not broadcast
    ((2, 3, 5), (3, 4), 1),
    ((2, 3, 5), (2, 1, 1, 1), 1),  # more dims than the input
    ((2, 3, 5), (1, 3, 1, 1), 1),
    ((3,), (2, 3), 1),
    ((), (3,), 1),  # 0-d input has no channels
    ((), (1, 3), 1),
    ((2, 3, 5), (0,), 1),  # empty weight, input has channels
    ((2, 3, 5), (3, 0), 1),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "channel_dim"), BAD_LAYOUTS, ids=str)
def test_weight_fitting_no_layout_is_value_error_naming_both_shapes(x_shape, w_shape, channel_dim):
    x = _leaf(*x_shape)
    w = _leaf(*w_shape, fill=0.25)
    with unchanged(x, w), pytest.raises(ValueError) as info:
        prelu.prelu(x, w, channel_dim=channel_dim)
    message = str(info.value)
    assert _shape_text(x_shape) in message, message
    assert _shape_text(w_shape) in message, message
    with pytest.raises(ValueError):
        prelu.backend_for(x, w, channel_dim=channel_dim)


@pytest.mark.parametrize(
    ("x_shape", "channel_dim"), [((2, 3, 4), 3), ((2, 3, 4), -4), ((2, 3, 4), 100), ((5,), 1), ((5,), -2)]
)
def test_channel_dim_out_of_range_is_value_error(x_shape, channel_dim):
    x = _leaf(*x_shape)
    w = _leaf(3, fill=0.1) if len(x_shape) > 1 else _leaf(5, fill=0.1)
    with unchanged(x, w), pytest.raises(ValueError, match="channel_dim") as info:
        prelu.prelu(x, w, channel_dim=channel_dim)
    assert str(channel_dim) in str(info.value)


def test_torch_style_1d_input_with_many_slopes_is_refused_not_guessed():
    """torch refuses a 1-D input with C > 1 slopes (its channel dim is 1); so does the default
    channel_dim=1 here; channel_dim=0 states the intent explicitly and works."""
    x = _leaf(5)
    w = _leaf(5, fill=0.5)
    with unchanged(x, w), pytest.raises(ValueError):
        prelu.prelu(x, w)
    assert prelu.prelu(x.detach(), w.detach(), channel_dim=0).shape == (5,)


# ---------------------------------------------------------------------------------------------
# Types and dtypes.
# ---------------------------------------------------------------------------------------------

BAD_DTYPES = [torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool, torch.complex64]


def _tensor_of(dtype, shape):
    if dtype == torch.bool:
        return torch.ones(shape, dtype=torch.bool)
    if dtype.is_complex:
        return torch.randn(shape, dtype=dtype)
    return torch.arange(int(np.prod(shape))).reshape(shape).to(dtype)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
def test_non_float_input_is_type_error(dtype):
    x = _tensor_of(dtype, (2, 3, 4))
    w = _leaf(3, fill=0.25)
    with unchanged(x, w), pytest.raises(TypeError, match="input"):
        prelu.prelu(x, w)
    with unchanged(x), pytest.raises(TypeError):
        prelu.leaky_relu(x, 0.1)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
def test_non_float_weight_is_type_error(dtype):
    x = _leaf(2, 3, 4)
    w = _tensor_of(dtype, (3,))
    with unchanged(x, w), pytest.raises(TypeError, match="weight"):
        prelu.prelu(x, w)


@pytest.mark.parametrize(
    ("x_dtype", "w_dtype"),
    [
        (torch.float32, torch.float64),
        (torch.float32, torch.float16),
        (torch.float32, torch.bfloat16),
        (torch.bfloat16, torch.float16),
        (torch.float16, torch.bfloat16),
        (torch.bfloat16, torch.float64),
        (torch.float16, torch.float64),
    ],
    ids=str,
)
def test_dtype_pairs_outside_the_mixed_precision_rule_are_type_errors(x_dtype, w_dtype):
    """Slopes must be float32 or the input's dtype (prelu.ops.dtypes); the accepted mixed pairs
    are tested in test_mixed_precision.py."""
    x = _leaf(2, 3, 4, dtype=x_dtype)
    w = _leaf(3, dtype=w_dtype, fill=0.25)
    with unchanged(x, w), pytest.raises(TypeError) as info:
        prelu.prelu(x, w)
    message = str(info.value)
    assert str(x_dtype) in message and str(w_dtype) in message, message


@pytest.mark.parametrize(
    "bad", [[1.0, -2.0], 1.5, np.array([1.0, -2.0]), None, "x"], ids=["list", "float", "ndarray", "None", "str"]
)
def test_non_tensor_input_is_type_error(bad):
    w = _leaf(1, fill=0.25)
    with unchanged(w), pytest.raises(TypeError, match="input"):
        prelu.prelu(bad, w)
    with pytest.raises(TypeError, match="input"):
        prelu.leaky_relu(bad)


@pytest.mark.parametrize("bad", [0.25, [0.25], np.array([0.25]), None], ids=["float", "list", "ndarray", "None"])
def test_non_tensor_weight_is_type_error(bad):
    x = _leaf(2, 3)
    with unchanged(x), pytest.raises(TypeError, match="weight"):
        prelu.prelu(x, bad)


@pytest.mark.parametrize(
    "slope",
    ["0.1", None, [0.1], torch.tensor(0.1), True, 1j, np.array([0.1, 0.2])],
    ids=["str", "None", "list", "tensor", "bool", "complex", "ndarray"],
)
def test_leaky_relu_non_number_slope_is_type_error(slope):
    x = _leaf(2, 3)
    with unchanged(x), pytest.raises(TypeError, match="negative_slope"):
        prelu.leaky_relu(x, slope)


@pytest.mark.parametrize("slope", [np.float32(0.2), np.float64(-0.3), 2, np.int64(0)], ids=str)
def test_leaky_relu_accepts_real_numbers(slope):
    x = torch.randn(3, 4, dtype=torch.float64)
    expected = torch.where(x > 0, x, x * float(slope))
    assert torch.equal(prelu.leaky_relu(x, slope), expected)


# ---------------------------------------------------------------------------------------------
# Devices (the 'meta' device stands in for a second device).
# ---------------------------------------------------------------------------------------------


def test_weight_on_another_device_is_a_clear_error():
    x = _leaf(2, 3, 4)
    w = torch.full((3,), 0.25, device="meta", requires_grad=True)
    with unchanged(x, w), pytest.raises((RuntimeError, ValueError, TypeError)) as info:
        prelu.prelu(x, w)
    message = str(info.value)
    assert "cpu" in message and "meta" in message, message


def test_input_on_another_device_is_a_clear_error():
    x = torch.randn(2, 3, 4, device="meta", requires_grad=True)
    w = _leaf(3, fill=0.25)
    with unchanged(x, w), pytest.raises((RuntimeError, ValueError, TypeError)) as info:
        prelu.prelu(x, w)
    message = str(info.value)
    assert "cpu" in message and "meta" in message, message


# ---------------------------------------------------------------------------------------------
# Backend names; refused backward leaves .grad alone.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpu", "Fused", "", "numba"])
def test_unknown_backend_name_is_value_error(name):
    with pytest.raises(ValueError, match="backend"), prelu.use_backend(name):
        pass
    assert prelu.backend_for(torch.randn(2, 3)) == "fused"  # nothing stuck


@pytest.mark.parametrize("value", ["gpu", "fast", "numba"])
def test_unknown_env_backend_is_value_error(monkeypatch, value):
    monkeypatch.setenv("PRELU_BACKEND", value)
    x = _leaf(2, 3, 4)
    w = _leaf(3, fill=0.25)
    with pytest.raises(ValueError, match="PRELU_BACKEND"):
        prelu.backend_for(x, w)
    with unchanged(x, w), pytest.raises(ValueError, match="PRELU_BACKEND"):
        prelu.prelu(x, w)


def test_refused_forward_leaves_graph_usable():
    """A refused call must not break later valid calls on the same tensors."""
    x = _leaf(2, 3, 4)
    w = _leaf(3, fill=0.25)
    with unchanged(x, w), pytest.raises(ValueError):
        prelu.prelu(x, w, channel_dim=2)
    prelu.prelu(x, w).sum().backward()
    assert x.grad is not None and w.grad is not None
    expected_w_grad = torch.where(x > 0, torch.zeros_like(x), x).detach().sum(dim=(0, 2))
    torch.testing.assert_close(w.grad, expected_w_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channel_dim", [1.5, "1", None, True, torch.tensor(1)])
def test_channel_dim_that_is_not_an_int_is_a_clear_type_error(channel_dim):
    x, w = torch.randn(2, 3, 4), torch.rand(3)
    with unchanged(x, w), pytest.raises(TypeError, match=r"channel_dim must be an int, got"):
        prelu.prelu(x, w, channel_dim=channel_dim)


def test_channel_dim_may_be_any_integral():
    x, w = torch.randn(2, 3, 4), torch.rand(4)
    torch.testing.assert_close(prelu.prelu(x, w, channel_dim=np.int64(-1)), prelu.prelu(x, w, channel_dim=-1))

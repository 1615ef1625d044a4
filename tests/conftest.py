"""Shared test helpers: an independent float64 reference for PReLU, tolerances, layout makers.

The reference below is written from the public contract (README "API" and docs/design.md "Slope layouts") and
never calls into :mod:`prelu` (in particular not :mod:`prelu.ops.layout`): the slope broadcast is
built by hand with ``reshape``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import pytest
import torch
from hypothesis import HealthCheck, settings

import prelu

# Hypothesis: small and fast by default; HYPOTHESIS_PROFILE=thorough for a longer local run.
settings.register_profile(
    "prelu",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "prelu"))

# Relative tolerances. Forward values and input gradients are single products (x * a, g * a),
# exactly rounded in every dtype, so they are compared exactly; these apply to reductions
# (the slope gradient), measured against the sum of |terms| (the reduction's condition scale).
RTOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}

BACKENDS = ("fused", "native")


def slope_broadcast(input_shape: Sequence[int], weight: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """The slopes in float64, reshaped by hand so that they broadcast onto ``input_shape``.

    ``weight.numel() == 1``: a 0-d slope; 1-D of length C: ``C`` on ``channel_dim``;
    ``weight.ndim >= 2``: left-padded with 1s (NumPy broadcasting, unidirectional).
    """
    ndim = len(input_shape)
    w = weight.detach().to(torch.float64)
    if w.numel() == 1:
        return w.reshape(())
    if w.ndim == 1:
        assert -ndim <= channel_dim < ndim, "reference: channel_dim out of range"
        dim = channel_dim + ndim if channel_dim < 0 else channel_dim
        assert input_shape[dim] == w.shape[0], "reference: channel count mismatch"
        shape = [1] * ndim
        shape[dim] = w.shape[0]
        return w.reshape(shape)
    assert w.ndim <= ndim, "reference: weight has more dims than input"
    shape = [1] * (ndim - w.ndim) + list(w.shape)
    for s, i in zip(shape, input_shape, strict=True):
        assert s in (1, i), "reference: weight does not broadcast onto input"
    return w.reshape(shape)


def reference_prelu(x: torch.Tensor, weight: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """PReLU in float64: x where x > 0, x * a elsewhere (x == 0 and NaN: the negative branch)."""
    x64 = x.detach().to(torch.float64)
    a = slope_broadcast(x.shape, weight, channel_dim)
    return torch.where(x64 > 0, x64, x64 * a)


def reference_grads(
    x: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor, channel_dim: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_input, grad_weight, grad_weight_scale) in float64.

    ``grad_weight`` has ``weight``'s shape: the sum of ``g * x`` over the positions where
    ``x <= 0`` (0 where ``x > 0``, even if ``g`` is inf or NaN, as torch selects); the
    ``scale`` is the same sum of ``|g * x|``, for tolerances.
    """
    x64 = x.detach().to(torch.float64)
    g64 = grad_out.detach().to(torch.float64)
    a = slope_broadcast(x.shape, weight, channel_dim)
    grad_input = torch.where(x64 > 0, g64, g64 * a)
    terms = torch.where(x64 > 0, torch.zeros_like(x64), g64 * x64)
    a_full = list(a.shape) if a.ndim == x.ndim else [1] * x.ndim
    reduce_dims = [d for d in range(x.ndim) if a_full[d] == 1 and x.shape[d] != 1]

    def reduce(t: torch.Tensor) -> torch.Tensor:
        # sum(dim=[]) would reduce every dim: only call it with dims to reduce.
        if reduce_dims:
            t = t.sum(dim=reduce_dims, keepdim=True)
        return t.reshape(weight.shape)

    return grad_input, reduce(terms), reduce(terms.abs())


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Bit-for-bit the same values (NaN == NaN, and -0.0 != +0.0), same shape and dtype."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert torch.equal(actual.isnan(), expected.isnan()), "NaN positions differ"
    a = torch.nan_to_num(actual, nan=0.0, posinf=float("inf"), neginf=float("-inf"))
    e = torch.nan_to_num(expected, nan=0.0, posinf=float("inf"), neginf=float("-inf"))
    if not torch.equal(a, e):
        diff = (a.double() - e.double()).abs()
        diff[torch.isnan(diff)] = float("inf")
        index = int(diff.reshape(-1).argmax())
        raise AssertionError(
            f"values differ at {(diff != 0).sum().item()} of {diff.numel()} positions; first worst: "
            f"flat index {index}: {a.reshape(-1)[index].item()!r} vs {e.reshape(-1)[index].item()!r}"
        )
    assert torch.equal(actual.signbit(), expected.signbit()), "signs of zeros differ"


def assert_close_scaled(
    actual: torch.Tensor, expected: torch.Tensor, scale: torch.Tensor, rtol: float, what: str = ""
) -> None:
    """|actual - expected| <= rtol * max(|expected|, scale) + tiny, element-wise, in float64.
    Non-finite expected values must be matched exactly (same inf, NaN where NaN)."""
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    a = actual.detach().to(torch.float64)
    e = expected.detach().to(torch.float64)
    finite = torch.isfinite(e)
    assert torch.equal(a[~finite].isnan(), e[~finite].isnan()), f"{what}: NaN positions differ"
    assert torch.equal(torch.nan_to_num(a[~finite]), torch.nan_to_num(e[~finite])), f"{what}: infs differ"
    bound = rtol * torch.maximum(e.abs(), scale.to(torch.float64)) + 1e-300
    error = (a - e).abs()
    bad = finite & ~(error <= bound)
    if bad.any():
        ratio = (error / bound)[bad].max().item()
        raise AssertionError(f"{what}: {int(bad.sum())} of {e.numel()} outside tolerance (worst {ratio:.3g}x)")


def dense_permuted(shape: Sequence[int], order: Sequence[int], dtype=torch.float64, generator=None) -> torch.Tensor:
    """A dense tensor of logical ``shape`` whose dims lie in memory in ``order`` (outermost
    first): e.g. order (0, 2, 3, 1) is channels-last for a 4-D shape."""
    physical = [shape[d] for d in order]
    base = torch.randn(physical, dtype=dtype, generator=generator)
    inverse = [list(order).index(d) for d in range(len(shape))]
    out = base.permute(inverse)
    assert tuple(out.shape) == tuple(shape)
    return out


def away_from_zero(shape: Sequence[int], dtype=torch.float64, low: float = 0.1, generator=None) -> torch.Tensor:
    """Random values with |x| in [low, 1 + low] and random signs: safe for finite differences."""
    magnitude = torch.rand(shape, dtype=dtype, generator=generator) + low
    sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0).to(dtype)
    return magnitude * sign


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily ``torch.set_num_threads(n)``; the previous count is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose the backend explicitly; an exported PRELU_BACKEND must not leak in."""
    monkeypatch.delenv("PRELU_BACKEND", raising=False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test once per backend, with that backend forced through ``prelu.use_backend``."""

    with prelu.use_backend(request.param):
        yield request.param

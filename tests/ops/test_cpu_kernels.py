"""The C++ CPU kernels (prelu/ops/kernels/csrc) called directly and through the public API.

Expected values come from torch.nn.functional.prelu / aten (bit for bit for outputs and input
gradients) and from the float64 reference in conftest.py (slope gradients); never from prelu.
Also: the build cache, one OpenMP runtime, the no-compiler fallback, thread-count determinism,
and the in-place slope gradient where the output overflowed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import prelu
from conftest import RTOL, assert_close_scaled, assert_same, dense_permuted, reference_grads, torch_threads
from prelu.ops.kernels import cpu, extension
from prelu.ops.layout import plan_memory_walk

FLOATS = (torch.float32, torch.float64)
CHUNK = 1 << 15  # the kernels' slope-gradient block (csrc/prelu_cpu.cpp kChunk)

# (shape, memory order, channel_dim or None for a shared slope): rows and period walks, odd sizes
# (vector tails), rows longer than a block, and blocks that end mid-row.
LAYOUTS = [
    ((3, 5, 7, 9), (0, 1, 2, 3), 1),  # NCHW, rows of 63: a vector tail in every row
    ((2, 3, 181, 181), (0, 1, 2, 3), 1),  # rows of 32761 (just under a block), odd
    ((1, 2, 257, 131), (0, 1, 2, 3), 1),  # rows of 33667: two blocks per row
    ((4, 6, 11, 13), (0, 2, 3, 1), 1),  # channels-last: period 6, shorter than a vector
    ((3, 37, 17, 19), (0, 2, 3, 1), 1),  # channels-last, period 37: vector + tail
    ((5, 11, 67), (0, 1, 2), -1),  # (B, T, F) channel_dim=-1: period 67
    ((257, 131), (0, 1), 1),  # MLP-style (N, C): period 131, 257 rows
    ((70001,), (0,), None),  # one shared slope, 3 blocks, odd tail
    ((3, 5, 7, 9), (0, 2, 3, 1), None),  # shared slope, permuted memory
]


def _layout_id(case) -> str:
    shape, order, dim = case
    return "x".join(map(str, shape)) + "-o" + "".join(map(str, order)) + f"-d{dim}"


def _make(case, dtype, seed=0):
    shape, order, dim = case
    generator = torch.Generator().manual_seed(seed)
    x = dense_permuted(shape, order, dtype=dtype, generator=generator)
    g = dense_permuted(shape, order, dtype=dtype, generator=generator)
    channels = 1 if dim is None else shape[dim]
    weight = (torch.rand(channels, generator=generator, dtype=torch.float64) * 3 - 1).to(dtype)
    return x, g, weight, 1 if dim is None else dim


def _view(weight, ndim, dim):
    shape = [1] * ndim
    if weight.numel() > 1:
        shape[dim % ndim] = weight.numel()
    return weight.reshape(shape)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", LAYOUTS, ids=_layout_id)
def test_kernels_equal_aten_bit_for_bit_and_the_float64_reference(case, dtype):
    x, g, weight, dim = _make(case, dtype)
    view = _view(weight, x.ndim, dim)
    walk = plan_memory_walk(x, tuple(view.shape))
    assert walk is not None
    out = cpu.forward(x, view, walk)
    assert out.stride() == x.stride()
    assert_same(out, torch.ops.aten._prelu_kernel(x, view))
    grad_input, grad_weight = cpu.backward(g, x, view, walk)
    expected_input, _ = torch.ops.aten._prelu_kernel_backward(g, x, view)
    assert_same(grad_input, expected_input)
    _, ref_weight, scale = reference_grads(x, weight, g, channel_dim=dim)
    assert_close_scaled(grad_weight.reshape(weight.shape), ref_weight, scale, RTOL[dtype], "slope gradient")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", LAYOUTS[:6], ids=_layout_id)
def test_public_calls_forced_fused_equal_f_prelu_forward_backward_inplace(case, dtype):
    x, g, weight, dim = _make(case, dtype, seed=1)
    expected_x, expected_w = x.clone().requires_grad_(), weight.clone().requires_grad_()
    expected = F.prelu(expected_x, expected_w) if dim == 1 else None
    with prelu.use_backend("fused"):
        assert prelu.backend_for(x, weight, channel_dim=dim) == "fused"
        leaf_x, leaf_w = x.clone().requires_grad_(), weight.clone().requires_grad_()
        out = prelu.prelu(leaf_x, leaf_w, channel_dim=dim)
        out.backward(g)
        positive_w = weight.abs() + 0.1  # in place needs slopes > 0
        inplace_x = x.clone().requires_grad_()
        inplace_w = positive_w.clone().requires_grad_()
        inplace = prelu.prelu(inplace_x * 1, inplace_w, channel_dim=dim, inplace=True)
        inplace.backward(g)
    if expected is not None:
        expected.backward(g)
        assert_same(out, expected)
        assert_same(leaf_x.grad, expected_x.grad)
    _, ref_weight, scale = reference_grads(x, weight, g, channel_dim=dim)
    assert_close_scaled(leaf_w.grad, ref_weight, scale, RTOL[dtype], "slope gradient")
    # In place: the output and input gradient are F.prelu's; the slope gradient comes from x = y / a.
    view = _view(positive_w, x.ndim, dim)
    assert_same(inplace.detach(), torch.ops.aten._prelu_kernel(x, view))
    assert_same(inplace_x.grad, torch.ops.aten._prelu_kernel_backward(g, x, view)[0])
    _, ref_inplace, scale = reference_grads(x, positive_w, g, channel_dim=dim)
    assert_close_scaled(inplace_w.grad, ref_inplace, scale, 4 * RTOL[dtype], "in-place slope gradient")


@pytest.mark.parametrize("dtype", FLOATS)
def test_special_values_exactly_as_torch(dtype):
    """NaN, +-inf and -0.0 in x and g, with negative, zero and > 1 slopes: the same bits as aten."""
    specials = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1.5, -2.5], dtype=dtype)
    x = specials.repeat(4 * 1000 + 3)[: 7 * 4001].reshape(7, 4001)
    g = specials.roll(3).repeat(4001).reshape(4001, 7).t().contiguous()
    weight = torch.tensor([-0.5, 0.0, 0.25, 1.0, 3.0, -0.0, 2.0], dtype=dtype)
    for view in (weight.reshape(7, 1), weight[:1].reshape(1, 1)):
        walk = plan_memory_walk(x, tuple(view.shape))
        assert_same(cpu.forward(x, view, walk), torch.ops.aten._prelu_kernel(x, view))
        grad_input, grad_weight = cpu.backward(g, x, view, walk)
        expected_input, expected_terms = torch.ops.aten._prelu_kernel_backward(g, x, view)
        assert_same(grad_input, expected_input)
        # Each slope's sum is NaN/inf exactly where the terms make it so.
        expected_weight = expected_terms.double().sum_to_size(view.shape).to(dtype)
        assert torch.equal(grad_weight.isnan(), expected_weight.isnan())
        assert torch.equal(grad_weight.isinf(), expected_weight.isinf())


def test_empty_inputs_run_no_kernel():
    for shape in ((0, 3, 4, 4), (2, 3, 0, 5)):
        x = torch.empty(shape)
        view = torch.full((1, 3, 1, 1), 0.25)
        walk = plan_memory_walk(x, (1, 3, 1, 1))
        if walk is None:
            continue
        assert cpu.forward(x, view, walk).shape == x.shape
        grad_input, grad_weight = cpu.backward(x, x, view, walk)
        assert grad_input.shape == x.shape and torch.equal(grad_weight, torch.zeros(1, 3, 1, 1))


@pytest.mark.parametrize("case", [LAYOUTS[2], LAYOUTS[4], LAYOUTS[7], ((9, 2000), (0, 1), 1)], ids=_layout_id)
def test_slope_gradient_is_bit_identical_for_one_and_two_threads(case):
    x, g, weight, dim = _make(case, torch.float32, seed=3)
    view = _view(weight, x.ndim, dim)
    walk = plan_memory_walk(x, tuple(view.shape))
    results = []
    for threads in (1, 2):
        with torch_threads(threads):
            results.append(cpu.backward(g, x, view, walk)[1])
            results.append(cpu.backward(g, x * 0.5, view.abs() + 0.1, walk, from_output=True)[1])
    assert torch.equal(results[0], results[2]) and torch.equal(results[1], results[3])


@pytest.mark.parametrize("backend", ["fused", "native"])
def test_inplace_slope_gradient_scales_before_summing(backend):
    """y = 2 * -1e38 is finite and g * y = 4 * -1e38 overflows float32, but g * x does not:
    the slope gradient is F.prelu's finite one, not -inf."""
    x = torch.full((4, 3, 50, 50), -1e38)
    weight = torch.tensor([2.0, 0.5, 1.5])
    g = torch.zeros_like(x)
    g[0, :, 0, 0] = 2.0  # one term per slope: F.prelu sums in float32 too
    expected_w = weight.clone().requires_grad_()
    F.prelu(x, expected_w).backward(g)
    leaf = weight.clone().requires_grad_()
    with prelu.use_backend(backend):
        prelu.prelu(x.clone(), leaf, inplace=True).backward(g)
    assert torch.isfinite(expected_w.grad).all() and torch.isfinite(leaf.grad).all()
    assert torch.allclose(leaf.grad, expected_w.grad, rtol=1e-6)


def test_inplace_backward_refuses_an_output_that_overflowed():
    """x = -3e38, a = 4: y = -inf, so x cannot be recovered; refuse instead of returning -inf."""
    x = torch.randn(4, 3, 50, 50)
    x[1, 2, 3, 4] = -3e38
    weight = torch.tensor([0.5, 1.0, 4.0], requires_grad=True)
    with prelu.use_backend("fused"):
        y = prelu.prelu(x.clone().requires_grad_() * 1, weight, inplace=True)
        assert y[1, 2, 3, 4] == -float("inf")
        with pytest.raises(ValueError, match=r"cannot be recovered.*inplace=False"):
            y.backward(torch.ones_like(y))
    assert weight.grad is None


def test_inplace_on_the_aten_path_gives_f_prelus_gradient_where_the_output_overflowed():
    """The native backend runs torch's own ops (ops/aten_path.py), which keep the input they need:
    the slope gradient is F.prelu's, finite, not a refusal."""
    x = torch.randn(4, 3, 50, 50)
    x[1, 2, 3, 4] = -3e38
    expected = torch.tensor([0.5, 1.0, 4.0], requires_grad=True)
    F.prelu(x, expected).backward(torch.ones_like(x))
    weight = expected.detach().clone().requires_grad_()
    with prelu.use_backend("native"):
        y = prelu.prelu(x.clone().requires_grad_() * 1, weight, inplace=True)
        assert y[1, 2, 3, 4] == -float("inf")
        y.backward(torch.ones_like(y))
    assert torch.isfinite(weight.grad).all()
    torch.testing.assert_close(weight.grad, expected.grad)


def test_an_input_of_minus_inf_with_slope_at_most_one_is_recovered():
    x = torch.randn(4, 3, 50, 50)
    x[0, 1, 0, 0] = -float("inf")
    weight = torch.tensor([0.5, 1.0, 0.25])
    expected_w = weight.clone().requires_grad_()
    F.prelu(x, expected_w).backward(torch.ones_like(x))
    leaf = weight.clone().requires_grad_()
    with prelu.use_backend("fused"):
        prelu.prelu(x.clone(), leaf, inplace=True).backward(torch.ones_like(x))
    assert leaf.grad[1] == expected_w.grad[1] == -float("inf")


def test_process_has_one_openmp_runtime_torchs():
    assert extension.load() is not None
    # Only the soname the extension links against counts: wheels that vendor a renamed copy (scikit-learn's
    # libgomp-<hash>.so, loaded once any test imported it) cannot be what the extension resolves to.
    maps = Path("/proc/self/maps").read_text().splitlines()
    libraries = {line.split()[-1] for line in maps if Path(line.split()[-1]).name.startswith("libgomp.so")}
    assert len(libraries) <= 1, libraries
    assert all(Path(torch.__file__).parent.as_posix() in lib for lib in libraries), libraries


def _run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


FALLBACK_SCRIPT = """
    import json, warnings, torch, torch.nn.functional as F, prelu
    from prelu.ops.kernels import stats
    x = torch.randn(8, 16, 32, 32)
    w = torch.rand(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = prelu.backend_for(x, w)
        leaf = x.clone().requires_grad_()
        y = prelu.prelu(leaf, w)
        y.backward(torch.ones_like(y))
        z = prelu.leaky_relu(x, 0.1)
        monitored = stats.supports(x)
    print(json.dumps({
        "backend": backend,
        "same": bool(torch.equal(y, F.prelu(x, w)) and torch.equal(z, F.leaky_relu(x, 0.1))),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
        "monitor_kernel": monitored,
    }))
"""


def test_no_compiler_falls_back_to_native_with_one_warning(tmp_path):
    result = _run(FALLBACK_SCRIPT, CXX="/nonexistent/c++", PRELU_EXTENSION_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "native" and report["same"] and not report["monitor_kernel"]
    assert len(report["warnings"]) == 1, report["warnings"]
    assert "/nonexistent/c++" in report["warnings"][0] and "aten" in report["warnings"][0]


def test_second_process_loads_the_cached_build_without_building():
    assert extension.load() is not None  # built (or loaded) by this process
    result = _run("import torch, prelu; prelu.prelu(torch.randn(64, 32, 32, 32), torch.rand(32)); print('ok')")
    assert result.returncode == 0, result.stderr
    assert "building" not in result.stderr


def test_every_source_the_build_reads_ships_in_the_package():
    """A wheel carries what pyproject's package-data names: every .cpp and header the build reads."""
    import fnmatch

    import tomllib

    from prelu.ops.kernels import extension

    root = Path(prelu.__file__).parent
    project = tomllib.loads((root.parents[1] / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["prelu"]
    for path in (*extension.SOURCES, *extension.HEADERS):
        relative = path.relative_to(root).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative

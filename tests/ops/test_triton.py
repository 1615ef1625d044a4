"""The Triton kernels against F.prelu and the float64 reference: forward, backward, in place,
Leaky ReLU; every layout the fused path takes; float32 and bfloat16 (and float16/float64 once);
odd sizes, sizes spanning several tiles, empty tensors; determinism and refusals.

Each test runs on ``cpu`` (Triton's interpreter: ``TRITON_INTERPRET=1``, which the root conftest
sets when no GPU is visible) and on ``cuda`` (marked ``gpu``: ``pytest -m gpu`` on a GPU machine,
as benchmarks/gpu.sh does). Shapes are small: the interpreter runs every program in numpy.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton", reason="triton is not installed (pip install 'prelu[gpu]'; the test extra has it)")

import prelu
from conftest import RTOL, assert_close_scaled, assert_same, reference_grads, reference_prelu
from prelu.ops import backend

DEVICES = [pytest.param("cpu", id="interpreter"), pytest.param("cuda", marks=pytest.mark.gpu, id="cuda")]

# name: (input shape, weight shape, channel_dim, memory format). Sizes are odd (no multiple of a
# block); "several tiles" has rows longer than one tile (4096) and "shared, several tiles" a flat
# walk over 3 tiles, so partials from several programs are added.
LAYOUTS = {
    "nchw per channel": ((3, 5, 7, 9), (5,), 1, None),
    "channels_last per channel": ((3, 5, 7, 9), (5,), 1, torch.channels_last),
    "(B, T, F) channel_dim=-1": ((3, 11, 17), (17,), -1, None),
    "nchw shared": ((3, 5, 7, 9), (1,), 1, None),
    "channels_last shared": ((3, 5, 7, 9), (1,), 1, torch.channels_last),
    "element-wise": ((2, 6, 5, 37), (6, 1, 37), 1, None),
    "several tiles per row": ((2, 3, 67, 71), (3,), 1, None),
    "shared, several tiles": ((5, 2459), (1,), 1, None),
}
DTYPES = [torch.float32, torch.bfloat16]


def _runnable(device: str) -> None:
    """Skip, with the reason, where the Triton kernels cannot run on ``device`` in this process."""
    kernels = backend.triton_kernels()
    if kernels is None:
        pytest.skip(backend.triton_unavailable())
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if (device == "cpu") != kernels.interpreted():
        pytest.skip(f"Triton is {'' if kernels.interpreted() else 'not '}interpreted here; {device} needs the other")


def _input(name: str, dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    shape, weight_shape, channel_dim, memory_format = LAYOUTS[name]
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    x = torch.randn(shape, generator=generator).to(dtype)
    # Edge values in every case that leave the slope sums finite (+inf is positive: it adds 0).
    x.view(-1)[:3] = torch.tensor([0.0, -0.0, float("inf")]).to(dtype)
    if memory_format is not None:
        x = x.to(memory_format=memory_format)
    weight = torch.rand(weight_shape, generator=generator) * 0.6 + 0.05  # float32 slopes (autocast's case)
    return x.to(device), weight.to(device), channel_dim


def _rule_forward(x: torch.Tensor, weight: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """The mixed precision rule computed plainly: products in float32, rounded once to x's dtype."""
    return reference_prelu(x.float(), weight.float(), channel_dim).float().to(x.dtype)


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    _runnable(request.param)
    return str(request.param)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", LAYOUTS)
def test_forward_and_backward_match_the_reference(name, dtype, device):
    x, weight, channel_dim = _input(name, dtype, device)
    x.requires_grad_()
    weight.requires_grad_()
    with prelu.use_backend("triton"):
        assert prelu.backend_for(x, weight, channel_dim=channel_dim) == "triton"
        y = prelu.prelu(x, weight, channel_dim=channel_dim)
        grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(dtype).to(device)
        grad_input, grad_weight = torch.autograd.grad(y, (x, weight), grad)
    assert y.stride() == x.stride() and y.dtype == dtype and grad_input.stride() == x.stride()
    assert_same(y.cpu(), _rule_forward(x.detach().cpu(), weight.detach().cpu(), channel_dim))
    if dtype == torch.float32 and channel_dim == 1 and weight.ndim == 1:  # F.prelu: slopes on dim 1 only
        assert_same(y.cpu(), F.prelu(x.detach().cpu(), weight.detach().cpu()))
    expected_input, expected_weight, scale = reference_grads(x.cpu(), weight.cpu(), grad.cpu(), channel_dim)
    assert_same(grad_input.cpu(), expected_input.float().to(dtype))
    # g * x of two bfloat16 values is exact in float32: a float32 tolerance checks the float32 sum.
    assert grad_weight.dtype == torch.float32
    assert_close_scaled(grad_weight.cpu(), expected_weight, scale, RTOL[torch.float32], "grad_weight")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["nchw per channel", "channels_last per channel", "(B, T, F) channel_dim=-1"])
def test_in_place_saves_the_output_and_matches_out_of_place(name, dtype, device):
    x, weight, channel_dim = _input(name, dtype, device)
    x = x.nan_to_num(posinf=3.0, neginf=-3.0)  # in place recovers x = y / a: keep it finite
    weight.requires_grad_()
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(dtype).to(device)
    with prelu.use_backend("triton"):
        source = x.clone().requires_grad_()
        expected = prelu.prelu(source, weight, channel_dim=channel_dim)
        expected_grads = torch.autograd.grad(expected, (source, weight), grad)
        leaf = x.clone().requires_grad_()
        h = leaf * 1  # a non-leaf to overwrite
        storage = h.data_ptr()
        y = prelu.prelu(h, weight, channel_dim=channel_dim, inplace=True)
        grads = torch.autograd.grad(y, (leaf, weight), grad)
    assert y.data_ptr() == storage and y.stride() == x.stride()
    assert_same(y.detach().cpu(), expected.detach().cpu())
    assert_same(grads[0].cpu(), expected_grads[0].cpu())
    _, _, scale = reference_grads(x.cpu(), weight.cpu(), grad.cpu(), channel_dim)
    # From the output, x = y / a where y was rounded to the input's dtype: bfloat16 accuracy there.
    rtol = 1e-4 if dtype == torch.float32 else RTOL[dtype]
    assert_close_scaled(grads[1].cpu(), expected_grads[1].cpu(), scale, rtol, "grad_weight from the output")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("inplace", [False, True], ids=["out-of-place", "in-place"])
def test_leaky_relu_matches_torch_bit_for_bit(dtype, inplace, device):
    x, _, _ = _input("channels_last per channel", dtype, device)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(3)).to(dtype).to(device)
    expected = F.leaky_relu(x, 0.01)
    expected_grad = torch.ops.aten.leaky_relu_backward(grad, x, 0.01, False)
    with prelu.use_backend("triton"):
        leaf = x.clone().requires_grad_()
        y = prelu.leaky_relu(leaf * 1, 0.01, inplace=inplace)
        (grad_input,) = torch.autograd.grad(y, (leaf,), grad)
    assert_same(y.detach().cpu(), expected.cpu())
    assert_same(grad_input.cpu(), expected_grad.cpu())


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64], ids=str)
def test_float16_and_float64_activations(dtype, device):
    x, weight, channel_dim = _input("nchw per channel", dtype, device)
    if dtype == torch.float64:
        weight = weight.double()
    x.requires_grad_()
    weight.requires_grad_()
    with prelu.use_backend("triton"):
        y = prelu.prelu(x, weight, channel_dim=channel_dim)
        grad = torch.ones_like(y)
        grad_input, grad_weight = torch.autograd.grad(y, (x, weight), grad)
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    expected = reference_prelu(x.cpu(), weight.cpu(), channel_dim).to(compute).to(dtype)
    assert_same(y.detach().cpu(), expected)
    expected_input, expected_weight, scale = reference_grads(x.cpu(), weight.cpu(), grad.cpu(), channel_dim)
    assert_same(grad_input.cpu(), expected_input.to(compute).to(dtype))
    assert_close_scaled(grad_weight.cpu(), expected_weight, scale, RTOL[compute], "grad_weight")


@pytest.mark.parametrize("shape", [(0, 5, 3, 3), (2, 5, 0, 3), (0,)], ids=str)
def test_empty_inputs(shape, device):
    weight = torch.full((shape[1] if len(shape) > 1 else 1,), 0.25, device=device, requires_grad=True)
    x = torch.empty(shape, device=device, requires_grad=True)
    with prelu.use_backend("triton"):
        y = prelu.prelu(x, weight)
        grad_input, grad_weight = torch.autograd.grad(y, (x, weight), torch.ones_like(y))
    assert y.shape == shape and grad_input.shape == shape
    assert torch.equal(grad_weight, torch.zeros_like(weight))


def test_slope_gradient_is_the_same_bits_every_run(device):
    x, weight, _ = _input("shared, several tiles", torch.float32, device)
    x = x.nan_to_num(posinf=0.0, neginf=0.0)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(4)).to(device)
    kernels = backend.triton_kernels()
    assert kernels is not None
    walk = prelu.ops.layout.plan_memory_walk(x, (1, 1))
    assert walk is not None
    runs = [kernels.backward(grad, x, weight.view(1, 1), walk)[1] for _ in range(3)]
    assert all(torch.equal(runs[0], run) for run in runs[1:])


def test_non_finite_gradients_where_x_is_positive_add_nothing_to_the_slope(device):
    x = torch.tensor([[1.0, 2.0, -1.0, -2.0] * 10]).to(device)
    grad = torch.tensor([[float("inf"), float("nan"), 1.0, 1.0] * 10]).to(device)
    kernels = backend.triton_kernels()
    assert kernels is not None
    walk = prelu.ops.layout.plan_memory_walk(x, (1, 1))
    assert walk is not None
    grad_input, grad_weight = kernels.backward(grad, x, torch.full((1, 1), 0.5, device=device), walk)
    assert grad_weight.item() == -30.0  # sum of g * x over the negatives: 10 * (-1 - 2)
    assert_same(grad_input.cpu(), torch.where(x > 0, grad, grad * 0.5).cpu())


def test_forcing_triton_on_an_input_it_cannot_walk_says_why(device):
    x = torch.randn(4, 6, 8, device=device)[..., ::2]  # strided: no flat walk, and no copy is made
    with prelu.use_backend("triton"), pytest.raises(RuntimeError, match=r"forced 'triton'.*walked as one flat array"):
        prelu.prelu(x, torch.full((6,), 0.25, device=device))


@pytest.mark.gpu
def test_auto_picks_triton_only_for_cuda_tensors():
    x = torch.randn(2, 3, 200, 200)
    assert prelu.backend_for(x, torch.full((3,), 0.25)) == "fused"  # CPU: the C++ kernels, never the interpreter
    kernels = backend.triton_kernels()
    if torch.cuda.is_available() and kernels is not None and not kernels.interpreted():
        assert prelu.backend_for(x.cuda(), torch.full((3,), 0.25, device="cuda")) == "triton"
        assert prelu.backend_for(x.cuda().to(torch.bfloat16), torch.full((3,), 0.25, device="cuda")) == "triton"
        small = torch.randn(8, 3, 4, 4, device="cuda")  # below TRITON_MIN_NUMEL: a launch costs more
        assert prelu.backend_for(small, torch.full((3,), 0.25, device="cuda")) == "native"


_COMPILE_SCRIPT = """
import sys
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, compile
from prelu.ops.kernels import triton_prelu as kernels

assert not kernels.interpreted()
common = {"SLOPE_PER_ROW": True, "BLOCK_M": 16, "BLOCK_N": 256, "ROW_ALIGN": 4, "ROUND_BF16": False}
scalars = {"M": "i32", "n_units": "i32", "period": "i32", "col_blocks": "i32"}
for io in ("fp32", "bf16"):
    variants = [
        (kernels._forward_kernel, {"x_ptr": io, "table_ptr": "fp32", "out_ptr": io}, {}),
    ] + [
        (kernels._backward_kernel, {"grad_ptr": io, "saved_ptr": io, "table_ptr": "fp32", "grad_input_ptr": io,
                                    "partial_ptr": "fp32"}, {"FROM_OUTPUT": from_output})
        for from_output in (False, True)
    ]
    for kernel, pointers, extra in variants:
        constants = {**common, **extra}
        signature = {**{name: "*" + t for name, t in pointers.items()}, **scalars,
                     **dict.fromkeys(constants, "constexpr")}
        fixed = {(list(signature).index(name),): value for name, value in constants.items()}
        compiled = compile(ASTSource(kernel, signature, fixed), target=GPUTarget("cuda", 90, 32))
        assert "ld.global" in compiled.asm["ptx"], kernel
print("compiled")
"""


def test_kernels_compile_for_a_hopper_gpu(tmp_path):
    """The interpreter runs the kernels' Python, not their compiled form: compile them for sm_90
    (no GPU needed), so a kernel only a GPU would reject fails here, in CI."""
    if torch.cuda.is_available():
        pytest.skip("on a GPU the kernels compile and run in the cuda tests")
    try:
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.compiler import ASTSource  # noqa: F401
    except ImportError as error:
        pytest.skip(f"this triton has no ahead-of-time compile API ({error})")
    import os
    import subprocess
    import sys

    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", _COMPILE_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "compiled" in result.stdout, result.stderr[-3000:]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the interpreter's numpy, on purpose
def test_in_place_backward_refuses_an_output_that_overflowed(device):
    """y = -inf from a finite x (slope > 1) loses x: refused as on the other paths, not a wrong sum."""
    x = torch.full((2, 3, 40), -2.0e38, device=device)
    weight = torch.full((3,), 2.0, device=device, requires_grad=True)
    with prelu.use_backend("triton"):
        leaf = x.clone().requires_grad_()
        y = prelu.prelu(leaf * 1, weight, inplace=True)
        assert torch.isinf(y).all()
        with pytest.raises(ValueError, match="cannot be recovered"):
            y.sum().backward()

"""Mixed precision (prelu.ops.dtypes) on every backend: half activations with float32 slopes,
output in the input's dtype, products in float32 at least, the slope gradient summed in float32
and returned in the weight's dtype; autocast training with prelu.PReLU; refused pairs are in
test_errors.py.

The expected values are computed plainly here: products in the compute dtype with torch's own
CPU ops, rounded once (the rule), and sums in float64 (conftest.reference_grads).
"""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import prelu
from conftest import RTOL, assert_close_scaled, assert_same, reference_grads, reference_prelu
from prelu.ops import backend

F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64
# (input dtype, weight dtype): every pair the rule accepts.
PAIRS = [(F16, F32), (BF16, F32), (F16, F16), (BF16, BF16), (F32, F32), (F64, F32), (F64, F64)]
HAS_TRITON = importlib.util.find_spec("triton") is not None

# (backend, device); the fused CPU kernels take float32/float64 inputs only.
BACKENDS = [
    pytest.param(("native", "cpu"), id="native"),
    pytest.param(("fused", "cpu"), id="fused"),
    pytest.param(("triton", "cpu"), id="triton-interpreter"),
    pytest.param(("native", "cuda"), marks=pytest.mark.gpu, id="native-cuda"),
    pytest.param(("triton", "cuda"), marks=pytest.mark.gpu, id="triton-cuda"),
]


def _skip_unless_runnable(name: str, device: str, input_dtype: torch.dtype) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if name == "fused" and input_dtype not in (F32, F64):
        pytest.skip("the fused CPU kernels take float32/float64 inputs (half runs native)")
    if name == "triton":
        if not HAS_TRITON:
            pytest.skip("triton is not installed")
        kernels = backend.triton_kernels()
        if kernels is None:
            pytest.skip(backend.triton_unavailable())
        if (device == "cpu") != kernels.interpreted():
            pytest.skip(f"Triton is {'' if kernels.interpreted() else 'not '}interpreted here")


def _compute(input_dtype: torch.dtype) -> torch.dtype:
    return F64 if input_dtype == F64 else F32


def _tensors(input_dtype, weight_dtype, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 6, 5, 7, generator=generator).to(input_dtype).to(memory_format=torch.channels_last)
    weight = (torch.rand(6, generator=generator) * 0.6 + 0.05).to(weight_dtype)
    grad = torch.randn(x.shape, generator=generator).to(input_dtype)
    return x.to(device), weight.to(device), grad.to(device)


@pytest.mark.parametrize(("input_dtype", "weight_dtype"), PAIRS, ids=str)
@pytest.mark.parametrize("case", BACKENDS)
def test_accepted_pairs_follow_the_rule(case, input_dtype, weight_dtype):
    name, device = case
    _skip_unless_runnable(name, device, input_dtype)
    x, weight, grad = _tensors(input_dtype, weight_dtype, device)
    x.requires_grad_()
    weight.requires_grad_()
    with prelu.use_backend(name):
        y = prelu.prelu(x, weight)
        grad_input, grad_weight = torch.autograd.grad(y, (x, weight), grad)
    assert (y.dtype, grad_input.dtype, grad_weight.dtype) == (input_dtype, input_dtype, weight_dtype)
    compute = _compute(input_dtype)
    x_cpu, w_cpu, g_cpu = x.detach().cpu(), weight.detach().cpu(), grad.cpu()
    # Products in the compute dtype, rounded once to the input's dtype.
    assert_same(y.detach().cpu(), reference_prelu(x_cpu.to(compute), w_cpu.to(compute)).to(compute).to(input_dtype))
    _, expected_weight, scale = reference_grads(x_cpu, w_cpu, g_cpu)
    assert_same(
        grad_input.cpu(),
        torch.where(x_cpu > 0, g_cpu, (g_cpu.to(compute) * w_cpu.to(compute).view(1, 6, 1, 1)).to(input_dtype)),
    )
    # Summed in float32 at least: for a half input with float32 slopes every g * x is exact in
    # float32, so a float32 tolerance holds only if nothing was rounded to half on the way.
    rtol = max(RTOL[compute], RTOL[weight_dtype])
    assert_close_scaled(grad_weight.cpu(), expected_weight, scale, rtol, f"{name} grad_weight")


@pytest.mark.parametrize("case", BACKENDS)
def test_in_place_with_float32_slopes_on_bfloat16(case):
    name, device = case
    _skip_unless_runnable(name, device, BF16)
    x, weight, grad = _tensors(BF16, F32, device, seed=1)
    weight.requires_grad_()
    with prelu.use_backend(name):
        leaf = x.clone().requires_grad_()
        y = prelu.prelu(leaf * 1, weight, inplace=True)
        grad_input, grad_weight = torch.autograd.grad(y, (leaf, weight), grad)
    assert (y.dtype, grad_input.dtype, grad_weight.dtype) == (BF16, BF16, F32)
    x_cpu, w_cpu = x.cpu(), weight.detach().cpu()
    assert_same(y.detach().cpu(), reference_prelu(x_cpu.float(), w_cpu).float().to(BF16))
    _, expected_weight, scale = reference_grads(x_cpu, w_cpu, grad.cpu())
    # x is recovered as y / a from a bfloat16 y: bfloat16 accuracy.
    assert_close_scaled(grad_weight.cpu(), expected_weight, scale, RTOL[BF16], f"{name} in-place grad_weight")


@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
def test_native_leaky_relu_in_half_matches_torch_bit_for_bit(dtype):
    x, _, grad = _tensors(dtype, F32, "cpu", seed=2)
    leaf = x.clone().requires_grad_()
    y = prelu.leaky_relu(leaf, 0.01)
    (grad_input,) = torch.autograd.grad(y, (leaf,), grad)
    assert_same(y.detach(), F.leaky_relu(x, 0.01))
    assert_same(grad_input, torch.ops.aten.leaky_relu_backward(grad, x, 0.01, False))


def test_double_backward_with_float32_slopes_on_bfloat16():
    x, weight, grad = _tensors(BF16, F32, "cpu", seed=3)
    x.requires_grad_()
    weight.requires_grad_()
    y = prelu.prelu(x, weight)
    grad_input, grad_weight = torch.autograd.grad(y, (x, weight), grad, create_graph=True)
    assert (grad_input.dtype, grad_weight.dtype) == (BF16, F32)
    (second,) = torch.autograd.grad(grad_weight.sum(), (x,))
    # d(sum of dL/da)/dx = g where x <= 0, 0 elsewhere (the sign of those zeros is not specified).
    assert torch.equal(second, torch.where(x.detach() > 0, torch.zeros_like(grad), grad))


def _model(activation: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), activation, nn.Linear(32, 4))


def _autocast_training(device: str, dtype: torch.dtype, backend_name: str, steps: int = 3) -> None:
    """prelu.PReLU trains under autocast; at every step its gradients match nn.PReLU's under
    autocast, and are as close to the same model run in float32 (no autocast) as nn.PReLU's are
    (autocast's low-precision matmuls set that error, about 1e-2 relative here)."""
    ours = _model(prelu.PReLU(32)).to(device)
    theirs = _model(nn.PReLU(32)).to(device)
    theirs.load_state_dict(ours.state_dict())
    before = {k: (v.dtype, v.shape) for k, v in ours.state_dict().items()}
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, 16, generator=generator).to(device)
    target = torch.randn(64, 4, generator=generator).to(device)
    optimizer = torch.optim.SGD(ours.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        reference = copy.deepcopy(ours)
        theirs.load_state_dict(ours.state_dict())
        for model, autocast in ((ours, True), (theirs, True), (reference, False)):
            model.zero_grad()
            with prelu.use_backend(backend_name):
                with torch.autocast(device, dtype=dtype, enabled=autocast):
                    output = model(x)
                assert output.dtype == (dtype if autocast else F32)
                loss = F.mse_loss(output.float(), target)
                loss.backward()
            if model is ours:
                losses.append(loss.item())
        for (name, p), q, r in zip(ours.named_parameters(), theirs.parameters(), reference.parameters(), strict=True):
            assert p.grad is not None and p.grad.dtype == F32, name
            assert q.grad is not None and r.grad is not None

            def error(a: torch.Tensor, b: torch.Tensor) -> float:
                return float((a - b).norm() / b.norm())

            assert error(p.grad, q.grad) < 2e-2, f"{name}: {error(p.grad, q.grad):.3g} from nn.PReLU's gradient"
            ours_error, theirs_error = error(p.grad, r.grad), error(q.grad, r.grad)
            assert ours_error <= max(1.5 * theirs_error, 1e-2), (name, ours_error, theirs_error)
        optimizer.step()
    assert losses[-1] < losses[0], losses
    after = {k: (v.dtype, v.shape) for k, v in ours.state_dict().items()}
    assert after == before and set(after) == set(theirs.state_dict())  # state_dict unchanged, nn-compatible


@pytest.mark.parametrize("backend_name", ["auto", "triton"])
def test_autocast_cpu_bfloat16_training(backend_name):
    if backend_name == "triton":
        _skip_unless_runnable("triton", "cpu", BF16)
    _autocast_training("cpu", BF16, backend_name)


@pytest.mark.gpu
@pytest.mark.parametrize("backend_name", ["auto", "triton"])
@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
def test_autocast_cuda_training(dtype, backend_name):
    _skip_unless_runnable(backend_name if backend_name == "triton" else "native", "cuda", dtype)
    _autocast_training("cuda", dtype, backend_name)

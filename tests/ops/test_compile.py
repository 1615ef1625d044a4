"""torch.library registration: opcheck on every op, and torch.compile(fullgraph=True) of models
using the modules with no graph break, same outputs and gradients as eager."""

import warnings

import pytest
import torch
from torch import nn
from torch.library import opcheck

import prelu

OPCHECK_CASES = [
    ("contiguous per-channel", (2, 3, 4, 5), (1, 3, 1, 1), None),
    ("channels_last per-channel", (2, 3, 4, 5), (1, 3, 1, 1), torch.channels_last),
    ("shared", (2, 3, 4, 5), (1, 1, 1, 1), None),
    ("last-dim per-feature", (2, 7, 6), (1, 1, 6), None),
    ("element-wise", (2, 3, 4), (1, 3, 4), None),
]


@pytest.mark.parametrize(("name", "shape", "slope_shape", "memory_format"), OPCHECK_CASES)
def test_opcheck_prelu_ops(name, shape, slope_shape, memory_format):
    x = torch.randn(shape, dtype=torch.float64)
    if memory_format is not None:
        x = x.to(memory_format=memory_format)
    weight = torch.rand(slope_shape, dtype=torch.float64)
    opcheck(torch.ops.prelu.prelu.default, (x.requires_grad_(), weight.requires_grad_()))
    grad = torch.randn_like(x)
    opcheck(torch.ops.prelu.prelu_backward.default, (grad, x.detach(), weight.detach()))


def test_opcheck_leaky_relu_ops():
    x = torch.randn(3, 4, 5)
    opcheck(torch.ops.prelu.leaky_relu.default, (x.requires_grad_(), 0.2))
    opcheck(torch.ops.prelu.leaky_relu_backward.default, (torch.randn(3, 4, 5), x.detach(), 0.2))


def _model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        prelu.PReLU(8),
        nn.Conv2d(8, 8, 3, padding=1),
        prelu.PReLU(),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 16),
        prelu.PReLU(16, channel_dim=-1),
        prelu.LeakyReLU(0.1),
    )


def _run(model, x):
    model.zero_grad()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


def test_dynamo_sees_one_graph_and_no_break():
    explanation = torch._dynamo.explain(_model())(torch.randn(2, 3, 6, 6))
    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_model_matches_eager(backend):
    torch.manual_seed(0)
    model = _model()
    x = torch.randn(4, 3, 6, 6)
    expected_y, expected_grads = _run(model, x)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    y, grads = _run(compiled, x)
    torch.testing.assert_close(y, expected_y, rtol=1e-5, atol=1e-6)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


def test_plain_eager_calls_skip_the_dispatcher_and_tracers_see_the_op():
    from torch.fx.experimental.proxy_tensor import make_fx

    x = torch.randn(4, 3, requires_grad=True)
    weight = torch.rand(3, requires_grad=True)
    assert type(prelu.prelu(x, weight, channel_dim=-1).grad_fn).__name__ == "_EagerPReLUBackward"
    assert type(prelu.leaky_relu(x, 0.1).grad_fn).__name__ == "_EagerLeakyReLUBackward"
    traced = make_fx(lambda a, b: prelu.prelu(a, b, channel_dim=-1))(x.detach(), weight.detach())
    targets = [str(node.target) for node in traced.graph.nodes if node.op == "call_function"]
    assert "prelu.prelu.default" in targets
    traced = make_fx(lambda a: prelu.leaky_relu(a, 0.1))(x.detach())
    assert "prelu.leaky_relu.default" in [str(node.target) for node in traced.graph.nodes]


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_registered_op_route_gradcheck_and_gradgradcheck(memory_format):
    """The op's own autograd (used under compile/export) is checked directly, not only the eager route."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64).to(memory_format=memory_format).requires_grad_()
    weight = (torch.rand(1, 3, 1, 1, dtype=torch.float64) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(torch.ops.prelu.prelu, (x, weight))
    assert torch.autograd.gradgradcheck(torch.ops.prelu.prelu, (x, weight))
    assert torch.autograd.gradcheck(lambda a: torch.ops.prelu.leaky_relu(a, 0.2), (x,))


def test_vmap_matches_a_loop():
    weight = torch.rand(3)
    batch = torch.randn(5, 4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that it uses its batching fallback
        mapped = torch.func.vmap(lambda a: prelu.prelu(a, weight, channel_dim=-1))(batch)
    expected = torch.stack([prelu.prelu(item, weight, channel_dim=-1) for item in batch])
    assert torch.equal(mapped, expected)

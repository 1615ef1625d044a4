"""torch.compile and tracing: the tracers see plain aten ops (no custom op is registered), compile
with no graph break and no recompile across training steps, and match eager in outputs and
gradients, in place and out of place. Eager keeps the fused path for large tensors."""

import pytest
import torch
from torch import nn
from torch.fx.experimental.proxy_tensor import make_fx

import prelu


def _model(inplace: bool = False) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        prelu.PReLU(8, inplace=inplace),
        nn.Conv2d(8, 8, 3, padding=1),
        prelu.LeakyReLU(0.1, inplace=inplace),  # (two in-place layers in a row would overwrite
        prelu.PReLU(),  # what the first saved, with torch's own in-place ops too)
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 16),
        prelu.PReLU(16, channel_dim=-1, inplace=inplace),
        nn.Unflatten(1, (4, 4)),
        prelu.FrozenPReLU(torch.rand(4, 4) * 0.5 + 0.1),  # element-wise slopes
    )


def _run(model, x):
    model.zero_grad()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


def test_no_custom_op_is_registered():
    assert not hasattr(torch.ops.prelu, "prelu")
    assert not hasattr(torch.ops.prelu, "leaky_relu")


def test_dynamo_sees_one_graph_and_no_break():
    explanation = torch._dynamo.explain(_model(inplace=True))(torch.randn(2, 3, 6, 6))
    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1


@pytest.mark.parametrize(("backend", "inplace"), [("aot_eager", False), ("inductor", False), ("inductor", True)])
def test_compiled_model_matches_eager(backend, inplace):
    torch.manual_seed(0)
    model = _model(inplace)
    x = torch.randn(4, 3, 6, 6)
    expected_y, expected_grads = _run(model, x)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    y, grads = _run(compiled, x)
    torch.testing.assert_close(y, expected_y, rtol=1e-5, atol=1e-6)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


def test_training_steps_compile_once():
    torch.manual_seed(0)
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):
            optimizer.zero_grad()
            compiled(torch.randn(4, 3, 6, 6)).square().sum().backward()
            optimizer.step()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


def test_eager_routes_cpu_prelu_to_the_cpp_op_and_leaky_relu_to_aten():
    weight = torch.rand(64, requires_grad=True)
    large = torch.randn(8, 64, 16, 16, requires_grad=True)
    small = torch.randn(2, 64, 4, 4, requires_grad=True)
    with prelu.use_backend("auto"):
        for x in (large, small):
            assert prelu.prelu(x, weight).grad_fn.name() == "prelu_cpu::PReLUBackward"
            assert type(prelu.leaky_relu(x, 0.1).grad_fn).__name__ == "LeakyReluBackward0"
        in_place = prelu.prelu(small * 1, weight, inplace=True)
        assert in_place.grad_fn.name() == "prelu_cpu::PReLUInplaceBackward"
    with prelu.use_backend("fused"):
        assert type(prelu.leaky_relu(small, 0.1).grad_fn).__name__ == "_EagerLeakyReLUBackward"
    with prelu.use_backend("native"):
        assert type(prelu.prelu(small, weight).grad_fn).__name__ == "PreluKernelBackward0"
        assert type(prelu.prelu(small, torch.rand(4), channel_dim=-1).grad_fn).__name__ == "PreluKernelBackward0"


@pytest.mark.parametrize(
    ("shape", "weight_shape", "channel_dim", "expected"),
    [
        ((8, 64, 16, 16), (64,), 1, "aten.prelu.default"),
        ((8, 64, 16, 16), (1,), 1, "aten.prelu.default"),
        ((8, 16, 256), (256,), -1, "aten._prelu_kernel.default"),
        ((8, 64, 16, 16), (64, 16, 16), 1, "aten._prelu_kernel.default"),
    ],
)
def test_make_fx_sees_aten_ops_even_for_large_tensors(shape, weight_shape, channel_dim, expected):
    x, weight = torch.randn(shape), torch.rand(weight_shape)
    traced = make_fx(lambda a, b: prelu.prelu(a, b, channel_dim=channel_dim), pre_dispatch=True)(x, weight)
    targets = [str(node.target) for node in traced.graph.nodes if node.op == "call_function"]
    assert expected in targets and all(target.startswith("aten.") for target in targets), targets
    traced = make_fx(lambda a: prelu.leaky_relu(a, 0.1))(x)
    assert [str(n.target) for n in traced.graph.nodes if n.op == "call_function"] == ["aten.leaky_relu.default"]


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shape-based layout choices, as expected
def test_jit_trace_records_aten_ops_and_matches_eager():
    model = _model().eval()
    x = torch.randn(2, 3, 6, 6)
    traced = torch.jit.trace(model, (x,), check_trace=False)
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert {"aten::prelu", "aten::leaky_relu", "aten::_prelu_kernel"} <= kinds, kinds
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)


def _aot_graphs(model: nn.Module, x: torch.Tensor) -> list[list[str]]:
    """The op lists of the forward and backward graphs AOTAutograd hands to inductor."""
    from torch._dynamo.backends.common import aot_autograd

    graphs: list[list[str]] = []

    def capture(gm, example_inputs):
        graphs.append([str(node.target) for node in gm.graph.nodes if node.op == "call_function"])
        return gm

    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=aot_autograd(fw_compiler=capture, bw_compiler=capture))
    compiled(x).sum().backward()
    return graphs


@pytest.mark.parametrize("family", ["cnn", "mlp"])
def test_inductor_gets_the_same_graphs_as_for_torch_prelu(family):
    """Where the slope fits torch's layout, the compiled training step is torch's own, op for op."""
    if family == "cnn":
        x = torch.randn(2, 3, 8, 8)

        def make(act):
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), act(4), nn.Conv2d(4, 4, 3), act(1))
    else:
        x = torch.randn(4, 8)

        def make(act):
            return nn.Sequential(nn.Linear(8, 8), act(8), nn.Linear(8, 8), act(1))

    torch_graphs = _aot_graphs(make(nn.PReLU), x)
    assert len(torch_graphs) == 2 and any("prelu" in op for op in torch_graphs[0])
    assert _aot_graphs(make(prelu.PReLU), x) == torch_graphs


def test_compiled_autograd_traces_the_fused_paths_backward():
    """Eager forward on the fused kernels, backward traced by compiled autograd: the C++ ops'
    nodes (in place included) and the lean Functions' backward then build the gradient from
    differentiable torch ops."""
    from torch._dynamo import compiled_autograd

    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(4, dtype=torch.float64, requires_grad=True)

    def loss():
        out = prelu.prelu(x * 1, weight)
        assert out.grad_fn.name() == "prelu_cpu::PReLUBackward"
        in_place = prelu.prelu(x * 1, weight, inplace=True)
        assert in_place.grad_fn.name() == "prelu_cpu::PReLUInplaceBackward"
        return (out**2).sum() + (in_place**2).sum() + (prelu.leaky_relu(x, 0.1) ** 2).sum()

    expected = torch.autograd.grad(loss(), (x, weight))
    torch._dynamo.reset()
    with compiled_autograd._enable(torch.compile(backend="aot_eager", fullgraph=True)):
        got = torch.autograd.grad(loss(), (x, weight))
    for actual, wanted in zip(got, expected, strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-12, atol=1e-12)

"""Export: torch.onnx.export gives standard PRelu / LeakyRelu nodes that onnx.checker and
onnxruntime accept and that match eager; torch.export gives programs of aten ops only, which load
and run in a process where prelu cannot be imported."""

import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

import prelu


class Block(nn.Module):
    def __init__(self, activation: nn.Module, conv: bool = True) -> None:
        super().__init__()
        self.layer = nn.Conv2d(3, 4, 3, padding=1) if conv else nn.Linear(3, 4)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x) * 1.0)  # * 1.0: in-place needs a non-leaf


CASES = {
    "shared": (lambda: Block(prelu.PReLU()), (2, 3, 6, 6), "PRelu"),
    "per-channel": (lambda: Block(prelu.PReLU(4)), (2, 3, 6, 6), "PRelu"),
    "channel_dim=-1": (lambda: Block(prelu.PReLU(4, channel_dim=-1), conv=False), (2, 7, 3), "PRelu"),
    "in-place": (lambda: Block(prelu.PReLU(4, inplace=True)), (2, 3, 6, 6), "PRelu"),
    "leaky": (lambda: Block(prelu.LeakyReLU(0.2)), (2, 3, 6, 6), "LeakyRelu"),
    "leaky in-place": (lambda: Block(prelu.LeakyReLU(0.2, inplace=True)), (2, 3, 6, 6), "LeakyRelu"),
    "1-d input": (lambda: prelu.PReLU(5, channel_dim=0), (5,), "PRelu"),
    "0-d input": (lambda: prelu.PReLU(), (), "PRelu"),
}


def _randomize_slopes(model: nn.Module) -> None:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, prelu.PReLU):
                module.weight.uniform_(0.05, 0.9)


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_export_gives_standard_nodes_and_matches_eager(name):
    make, shape, node = CASES[name]
    torch.manual_seed(0)
    model = make().eval()
    _randomize_slopes(model)
    x = torch.randn(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (x.clone(),), dynamo=True, verbose=False)
    proto = program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    op_types = [n.op_type for n in proto.graph.node]
    assert node in op_types, op_types
    assert not any(n.domain not in ("", "ai.onnx") for n in proto.graph.node), "only standard ONNX ops"
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x.clone()).numpy()
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


def test_onnx_prelu_slope_is_broadcastable_per_onnx_rules():
    # pytorch#21271: a [C] slope against NCHW; ours must be [1, C, 1, 1]-like (unidirectional).
    model = Block(prelu.PReLU(4)).eval()
    program = torch.onnx.export(model, (torch.randn(2, 3, 6, 6),), dynamo=True, verbose=False)
    graph = program.model_proto.graph
    (prelu_node,) = [n for n in graph.node if n.op_type == "PRelu"]
    slopes = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    slope = slopes[prelu_node.input[1]]
    assert slope.shape[-2:] == (1, 1) and 4 in slope.shape


@pytest.mark.parametrize("name", ["shared", "per-channel", "channel_dim=-1", "in-place", "leaky in-place"])
def test_torch_export_holds_only_aten_ops_and_matches_eager(name):
    make, shape, _ = CASES[name]
    torch.manual_seed(1)
    model = make().eval()
    _randomize_slopes(model)
    x = torch.randn(shape)
    exported = torch.export.export(model, (x.clone(),))
    targets = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert targets and all(target.startswith("aten.") for target in targets), targets
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x.clone()), model(x.clone()), rtol=0, atol=0)


def _deploy_model(variant: str) -> nn.Module:
    """nn.Sequential(Conv2d, PReLU, Conv2d, LeakyReLU) in the variants the issue names."""
    inplace = variant == "in-place"
    if variant == "channel_dim=-1":
        activation = prelu.PReLU(6, channel_dim=-1)  # the last axis of the feature map (width 6)
    elif variant == "element-wise":
        activation = prelu.FrozenPReLU(torch.rand(4, 6, 6) * 0.5 + 0.1)
    else:
        activation = prelu.PReLU(4, inplace=inplace)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        activation,
        nn.Conv2d(4, 4, 3, padding=1),
        prelu.LeakyReLU(0.2, inplace=inplace),
    )


# The ops each exported graph holds (torch.export's default IR, before run_decompositions).
DEPLOY_OPS = {
    "per-channel": ["aten.conv2d.default", "aten.prelu.default", "aten.conv2d.default", "aten.leaky_relu.default"],
    "in-place": [
        "aten.conv2d.default",
        "aten.clone.default",
        "aten.prelu.default",
        "aten.copy_.default",
        "aten.conv2d.default",
        "aten.leaky_relu_.default",
    ],
    "channel_dim=-1": [
        "aten.conv2d.default",
        "aten._prelu_kernel.default",
        "aten.conv2d.default",
        "aten.leaky_relu.default",
    ],
    "element-wise": [
        "aten.conv2d.default",
        "aten._prelu_kernel.default",
        "aten.conv2d.default",
        "aten.leaky_relu.default",
    ],
}

_LOADER = """
import sys
try:
    import prelu
except ImportError:
    pass
else:
    raise SystemExit("prelu is importable in the loading process")
import torch
for name in sys.argv[1:]:
    torch.save(torch.export.load(name + ".pt2").module()(torch.load(name + ".x")), name + ".out")
"""


def _export(variant: str) -> tuple[nn.Module, torch.Tensor, torch.export.ExportedProgram]:
    torch.manual_seed(2)
    model = _deploy_model(variant).eval()
    _randomize_slopes(model)
    x = torch.randn(2, 3, 6, 6)
    return model, x, torch.export.export(model, (x.clone(),))


@pytest.mark.parametrize("variant", list(DEPLOY_OPS))
def test_exported_graph_op_list(variant):
    _, _, exported = _export(variant)
    assert [str(node.target) for node in exported.graph.nodes if node.op == "call_function"] == DEPLOY_OPS[variant]


def test_saved_programs_run_where_prelu_is_not_installed(tmp_path):
    expected = {}
    for variant in DEPLOY_OPS:
        model, x, exported = _export(variant)
        name = str(tmp_path / variant)
        torch.export.save(exported, name + ".pt2")
        torch.save(x, name + ".x")
        with torch.no_grad():
            expected[name] = model(x.clone())
    (tmp_path / "load.py").write_text(_LOADER)
    # -I: isolated mode (no PYTHONPATH, no user site, no cwd); then every sys.path entry that
    # provides prelu (the repo's src, put there by the venv's editable .pth) is dropped, and the
    # loader checks that `import prelu` fails before it loads the programs.
    code = (
        "import os, sys; sys.path = [p for p in sys.path if not os.path.exists(os.path.join(p, 'prelu'))]; "
        "sys.argv = sys.argv[1:]; exec(open(sys.argv[0]).read())"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tmp_path / "load.py"), *expected],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, wanted in expected.items():
        torch.testing.assert_close(torch.load(name + ".out"), wanted, rtol=0, atol=0)

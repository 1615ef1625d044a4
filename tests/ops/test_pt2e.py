"""PT2E quantization (torchao's prepare_pt2e / convert_pt2e with X86InductorQuantizer, the flow
that works beside torch 2.13): a model with prelu modules goes through exactly as the same model
with torch.nn.PReLU does: the same quantized graph, the same outputs."""

import warnings

import pytest
import torch
from torch import nn

import prelu

pt2e = pytest.importorskip("torchao.quantization.pt2e.quantize_pt2e", reason="torchao is in the test extra")
x86 = pytest.importorskip("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")


def _model(activation) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), activation(8), nn.Conv2d(8, 8, 3, padding=1), activation(1)
    ).eval()


def _quantize(model: nn.Module, x: torch.Tensor) -> torch.fx.GraphModule:
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = pt2e.prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
        prepared(x)  # calibration
        return pt2e.convert_pt2e(prepared)


def test_prelu_model_quantizes_exactly_as_the_torch_model():
    torch.manual_seed(0)
    reference = _model(nn.PReLU)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, nn.PReLU):
                module.weight.uniform_(0.05, 0.5)
    ours = _model(prelu.PReLU)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 8, 8)
    quantized = {name: _quantize(model, x) for name, model in (("torch", reference), ("prelu", ours))}
    ops = {name: [str(n.target) for n in gm.graph.nodes if n.op == "call_function"] for name, gm in quantized.items()}
    assert ops["prelu"] == ops["torch"]
    assert ops["prelu"].count("aten.prelu.default") == 2
    assert any("quantize_per_tensor" in op for op in ops["prelu"])
    with torch.no_grad():
        torch.testing.assert_close(quantized["prelu"](x), quantized["torch"](x), rtol=0, atol=0)

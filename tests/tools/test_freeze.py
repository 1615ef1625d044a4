"""prelu.freeze (tools/freeze.py): identical outputs, slopes in a buffer (no parameters, no grad),
same state_dict keys both ways, tied slopes stay tied, ONNX export to PRelu, and the import paths."""

import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

import prelu


def _trained() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        prelu.PReLU(6),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.PReLU(),
        nn.Flatten(start_dim=2),
        nn.Linear(25, 7),
        prelu.PReLU(7, channel_dim=-1, inplace=True),
    )
    with torch.no_grad():
        model[1].weight.uniform_(-0.3, 0.9)
        model[3].weight.fill_(0.42)
        model[6].weight.uniform_(0.05, 0.9)
    return model


def test_freeze_keeps_outputs_bit_identical_and_removes_the_slope_parameters():
    model = _trained()
    x = torch.randn(2, 3, 5, 5)
    before = model(x)
    parameters_before = sum(p.numel() for p in model.parameters())
    keys = list(model.state_dict())
    assert prelu.freeze(model) == ["1", "3", "6"]
    assert all(isinstance(model[i], prelu.FrozenPReLU) for i in (1, 3, 6))
    assert torch.equal(model(x), before)
    assert sum(p.numel() for p in model.parameters()) == parameters_before - 6 - 1 - 7
    assert list(model.state_dict()) == keys
    assert model[6].channel_dim == -1 and model[6].inplace and model[1].channel_dim == 1
    assert model[3].channel_dim == 1 and model[3].num_parameters == 1


def test_frozen_slopes_get_no_gradient():
    model = _trained()
    prelu.freeze(model)
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None
    assert not model[1].weight.requires_grad and model[1].weight.grad is None


def test_state_dict_loads_both_ways():
    trained = _trained()
    frozen = _trained()
    with torch.no_grad():
        for module in frozen.modules():
            if isinstance(module, (prelu.PReLU, nn.PReLU)):
                module.weight.fill_(0.01)
    prelu.freeze(frozen)
    frozen.load_state_dict(trained.state_dict())
    x = torch.randn(2, 3, 5, 5)
    assert torch.equal(frozen(x), trained(x))
    again = _trained()
    with torch.no_grad():
        again[1].weight.zero_()
    again.load_state_dict(frozen.state_dict())
    assert torch.equal(again(x), trained(x))


def test_tied_slopes_share_one_buffer_after_freezing():
    a, b = prelu.PReLU(4, channel_dim=-1), prelu.PReLU(4, channel_dim=-1)
    prelu.tie_slopes(a, b)
    reused = prelu.PReLU(4, channel_dim=-1)
    model = nn.Sequential(nn.Linear(4, 4), a, nn.Linear(4, 4), b, reused, reused)
    assert prelu.freeze(model) == ["1", "3", "4"]
    assert model[1].weight is model[3].weight
    assert model[4] is model[5]


def test_freeze_refuses_a_lone_prelu():
    with pytest.raises(ValueError, match="wrap"):
        prelu.freeze(prelu.PReLU())


def test_frozen_model_exports_to_onnx_prelu():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), prelu.PReLU(4))
    with torch.no_grad():
        model[1].weight.uniform_(0.05, 0.9)
    prelu.freeze(model)
    model.eval()
    x = torch.randn(2, 3, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    proto = program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    assert "PRelu" in [node.op_type for node in proto.graph.node]
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_freeze_lives_in_tools_and_keeps_its_public_name():
    import prelu.nn.frozen
    import prelu.tools.freeze

    assert prelu.freeze is prelu.tools.freeze.freeze
    assert prelu.FrozenPReLU is prelu.nn.frozen.FrozenPReLU
    assert "freeze" in prelu.__all__ and "FrozenPReLU" in prelu.__all__
    from prelu import freeze  # the import users wrote before the move

    model = nn.Sequential(nn.Linear(2, 3), nn.PReLU(3))
    assert freeze(model) == ["1"] and isinstance(model[1], prelu.FrozenPReLU)


def test_freeze_replaces_exactly_the_learnable_rows_of_the_rectifier_table():
    # Fixed-slope rectifiers and frozen ones are left alone; torch.nn.PReLU and prelu.PReLU are frozen.
    model = nn.Sequential(
        nn.ReLU(), nn.LeakyReLU(0.2), prelu.LeakyReLU(0.3), nn.RReLU(), nn.ReLU6(),
        prelu.FrozenPReLU(torch.tensor([0.5])), nn.PReLU(), prelu.PReLU(),
    )  # fmt: skip
    kept = [model[i] for i in range(6)]
    assert prelu.freeze(model) == ["6", "7"]
    assert all(model[i] is kept[i] for i in range(6))

"""prelu.nn.rectifiers: every row of the one rectifier table reads its module right.

For each row, a module built with known slopes: the slopes and channel axis the table reads are
the ones the module was built with, the label is the expected one, and (for the convertible rows)
the slopes read back, broadcast along the axis read back, reproduce the module's own forward
against a plainly written reference ``where(x > 0, x, a * x)``.
"""

import pytest
import torch
from torch import nn

import prelu
from prelu.nn import rectifiers


class _Case:
    def __init__(self, module, label, slopes, axis, learnable, slope_weight, convertible):
        self.module, self.label, self.slopes, self.axis = module, label, slopes, axis
        self.learnable, self.slope_weight, self.convertible = learnable, slope_weight, convertible


def _with_weight(module, values):
    with torch.no_grad():
        module.weight.copy_(torch.tensor(values))
    return module


CASES = {
    "prelu.PReLU per channel, last axis": _Case(
        _with_weight(prelu.PReLU(3, channel_dim=-1), [0.1, 0.2, 0.7]), "prelu.PReLU", [0.1, 0.2, 0.7], -1,
        True, True, True,
    ),
    "prelu.PReLU shared": _Case(prelu.PReLU(init=0.3), "prelu.PReLU", [0.3], None, True, True, True),
    "prelu.LeakyReLU": _Case(prelu.LeakyReLU(0.2), "prelu.LeakyReLU", [0.2], None, False, False, True),
    "prelu.FrozenPReLU per channel, dim 1": _Case(
        prelu.FrozenPReLU(torch.tensor([0.5, 0.05, 0.9])), "prelu.FrozenPReLU", [0.5, 0.05, 0.9], 1,
        False, True, True,
    ),
    "nn.ReLU": _Case(nn.ReLU(), "nn.ReLU", [0.0], None, False, False, True),
    "nn.LeakyReLU": _Case(nn.LeakyReLU(0.3), "nn.LeakyReLU", [0.3], None, False, False, True),
    "nn.PReLU per channel": _Case(
        _with_weight(nn.PReLU(3), [0.4, 0.0, 0.25]), "nn.PReLU", [0.4, 0.0, 0.25], 1, True, True, True
    ),
    "nn.PReLU shared": _Case(nn.PReLU(init=0.6), "nn.PReLU", [0.6], None, True, True, True),
    "nn.RReLU": _Case(nn.RReLU(0.1, 0.3), "nn.RReLU", [0.1, 0.3], None, False, False, False),
    "nn.ReLU6": _Case(nn.ReLU6(), "nn.ReLU6", [0.0], None, False, False, False),
}  # fmt: skip


def test_every_row_of_the_table_has_a_case():
    covered = {type(case.module) for case in CASES.values()}
    assert covered == set(rectifiers.RECTIFIER_TYPES)
    assert len(rectifiers.RECTIFIER_TYPES) == len(set(rectifiers.RECTIFIER_TYPES)) == 8


@pytest.mark.parametrize("name", list(CASES))
def test_slopes_axis_label_and_flags_match_the_module(name):
    case = CASES[name]
    entry = rectifiers.rectifier_for(case.module)
    assert entry is not None and entry.module_type is type(case.module)
    read = entry.slopes(case.module)
    assert read.dtype == torch.float64 and read.device.type == "cpu"
    # Slopes in a weight were stored as float32 (compare with those values, widened); fixed ones are Python floats.
    expected = torch.tensor(case.slopes, dtype=torch.float32 if case.slope_weight else torch.float64).double()
    assert torch.equal(read.reshape(-1), expected)
    assert entry.channel_dim(case.module) == case.axis == rectifiers.channel_dim(case.module)
    assert entry.label == case.label == rectifiers.label(case.module)
    assert (entry.learnable, entry.slope_weight, entry.convertible) == (
        case.learnable,
        case.slope_weight,
        case.convertible,
    )
    assert (type(case.module) in rectifiers.LEARNABLE_TYPES) == case.learnable
    assert (type(case.module) in rectifiers.SLOPE_WEIGHT_TYPES) == case.slope_weight
    assert (type(case.module) in rectifiers.CONVERTIBLE_TYPES) == case.convertible


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.convertible])
def test_the_slopes_read_back_reproduce_the_modules_forward(name):
    case = CASES[name]
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 3, dtype=torch.float32)
    slopes = rectifiers.slopes(case.module)
    axis = rectifiers.channel_dim(case.module)
    if axis is None:
        assert slopes.numel() == 1
        a = slopes.reshape(())
    else:
        shape = [1] * x.ndim
        shape[axis] = slopes.numel()
        a = slopes.reshape(shape)
    x64 = x.double()
    reference = torch.where(x64 > 0, x64, a * x64)
    torch.testing.assert_close(case.module(x.clone()).double(), reference, rtol=1e-6, atol=1e-7)


def test_rrelu_in_eval_uses_the_mean_of_the_range_read_back():
    module = nn.RReLU(0.1, 0.3).eval()
    low, high = rectifiers.slopes(module).tolist()
    x = torch.tensor([-2.0, -1.0, 0.5])
    expected = torch.tensor([-2.0 * (low + high) / 2, -1.0 * (low + high) / 2, 0.5])
    torch.testing.assert_close(module(x), expected)


def test_element_wise_slopes_keep_their_shape_and_have_no_channel_axis():
    frozen = prelu.FrozenPReLU(torch.full((2, 3), 0.3))
    assert rectifiers.slopes(frozen).shape == (2, 3)
    assert rectifiers.channel_dim(frozen) is None


def test_slopes_are_a_copy():
    module = prelu.PReLU(2)
    rectifiers.slopes(module).fill_(9.0)
    assert module.weight.tolist() == [0.25, 0.25]
    assert rectifiers.slope_weight(module) is module.weight


class MyReLU(nn.ReLU):
    pass


def test_subclasses_use_their_base_row_and_keep_their_own_label():
    entry = rectifiers.rectifier_for(MyReLU())
    assert entry is not None and entry.module_type is nn.ReLU
    assert isinstance(MyReLU(), rectifiers.CONVERTIBLE_TYPES)
    assert rectifiers.label(MyReLU()) == "MyReLU"


def test_other_modules_are_not_rectifiers():
    for module in (nn.Tanh(), nn.GELU(), nn.Linear(2, 2), nn.Hardtanh()):
        assert rectifiers.rectifier_for(module) is None
        assert rectifiers.channel_dim(module) is None
        with pytest.raises(TypeError, match="not a rectifier"):
            rectifiers.slopes(module)
    assert rectifiers.label(nn.Tanh()) == "nn.Tanh"
    with pytest.raises(TypeError, match="no slope tensor"):
        rectifiers.slope_weight(nn.ReLU())


def test_the_slope_table_and_the_monitor_give_one_label_per_layer():
    model = nn.Sequential(nn.Linear(4, 3), prelu.PReLU(3, channel_dim=-1), nn.Linear(3, 3), nn.PReLU())
    model.append(prelu.FrozenPReLU(torch.tensor([0.2])))
    table = {row.name: row.kind for row in prelu.slopes(model)}
    with prelu.Monitor(model) as monitor:
        model(torch.randn(5, 4))
    watched = {layer.name: layer.kind for layer in monitor.summary()}
    assert table == watched == {"1": "prelu.PReLU", "3": "nn.PReLU", "4": "prelu.FrozenPReLU"}


def test_every_tool_asks_the_table():
    # A model holding one module of every row: each tool sees exactly the rows its flag selects.
    modules = [case.module for case in CASES.values()]
    model = nn.Sequential(*modules)
    with prelu.Monitor(model) as monitor:
        pass
    assert len(monitor.summary()) == len(modules)
    learnable = [m for m in modules if isinstance(m, (prelu.PReLU, nn.PReLU))]
    assert [id(p) for p in prelu.slope_parameters(model)] == [id(m.weight) for m in learnable]
    assert len(prelu.slopes(model)) == len(learnable) + 1  # plus the FrozenPReLU
    report = prelu.convert(model, "relu")
    assert report.replaced == sum(case.convertible for case in CASES.values())
    assert isinstance(model[8], nn.RReLU) and isinstance(model[9], nn.ReLU6)

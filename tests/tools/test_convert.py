"""prelu.tools.convert: swapping rectifiers in a ResNet-style CNN (a relu module reused within each
block, as torchvision's BasicBlock), a transformer-style MLP and nn.Sequential MLPs; channel counts
and axes from one forward pass; init="keep" gives bit-identical outputs; tied modules; functional
rectifiers reported; all or nothing on failure."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import prelu


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: conv-bn-relu, conv-bn, residual add, the same self.relu again."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2), BasicBlock(16, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class TransformerMLP(nn.Module):
    """(batch, sequence, features): LayerNorm, Linear up, activation, Linear down, residual."""

    def __init__(self, dim: int = 12, hidden: int = 48) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, hidden)
        self.act = nn.LeakyReLU(0.05)
        self.down = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.act(self.up(self.norm(x))))


def _randomize_batchnorm(model: nn.Module) -> None:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)


def _snapshot(model: nn.Module) -> tuple[list[tuple[str, str]], dict[str, torch.Tensor]]:
    structure = [(name, repr(module)) for name, module in model.named_modules()]
    return structure, {key: value.clone() for key, value in model.state_dict().items()}


def _assert_unchanged(model: nn.Module, snapshot) -> None:
    structure, state = snapshot
    assert [(name, repr(module)) for name, module in model.named_modules()] == structure
    now = model.state_dict()
    assert list(now) == list(state)
    for key, value in state.items():
        assert torch.equal(now[key], value), key


@pytest.fixture
def resnet() -> ResNet:
    torch.manual_seed(0)
    model = ResNet()
    _randomize_batchnorm(model)
    return model


def test_resnet_keep_gives_bit_identical_outputs_and_per_channel_prelus(resnet):
    x = torch.randn(4, 3, 16, 16)
    resnet.eval()
    before = resnet(x.clone())
    state_before = {key: value.clone() for key, value in resnet.state_dict().items()}
    report = prelu.convert(resnet, "prelu", init="keep", example_input=x)

    assert torch.equal(resnet(x.clone()), before)
    for key, value in state_before.items():  # nothing else changed; new keys are the slopes
        assert torch.equal(resnet.state_dict()[key], value), key
    expected = {"stem.2": 8, "layer1.0.relu": 8, "layer1.1.relu": 8, "layer2.0.relu": 16, "layer2.1.relu": 16}
    assert {r.name: int(r.after.split("num_parameters=")[1].split(",")[0]) for r in report.replacements} == expected
    for name, channels in expected.items():
        module = resnet.get_submodule(name)
        assert type(module) is prelu.PReLU and module.channel_dim == 1 and not module.inplace
        assert module.weight.shape == (channels,) and torch.count_nonzero(module.weight) == 0
    assert report.traced and report.functional == ()


def test_resnet_block_relu_called_twice_becomes_one_tied_module(resnet):
    report = prelu.convert(resnet, example_input=torch.randn(2, 3, 16, 16))
    rows = {r.name: r for r in report.replacements}
    assert rows["layer1.0.relu"].calls == 2 and rows["layer1.0.relu"].tied
    assert rows["stem.2"].calls == 1 and not rows["stem.2"].tied
    text = str(report)
    assert "tied" in text and "layer2.1.relu" in text and "PReLU(num_parameters=16" in text
    # one module, so both places share one set of slopes and both add to its gradient
    block = resnet.layer1[0]
    assert isinstance(block.relu, prelu.PReLU)
    resnet.train()
    resnet(torch.randn(2, 3, 16, 16)).sum().backward()
    assert block.relu.weight.grad is not None and block.relu.weight.grad.abs().sum() > 0


def test_tied_gradient_is_the_sum_over_both_places():
    torch.manual_seed(1)
    block = BasicBlock(4, 4)
    prelu.convert(block, init=0.3, example_input=torch.randn(2, 4, 5, 5))
    twin = copy.deepcopy(block)
    twin.relu2 = copy.deepcopy(twin.relu)  # an untied twin: one module per place

    def untied_forward(x):
        out = twin.relu(twin.bn1(twin.conv1(x)))
        out = twin.bn2(twin.conv2(out)) + x
        return twin.relu2(out)

    x = torch.randn(2, 4, 5, 5, dtype=torch.float32)
    grad = torch.randn(2, 4, 5, 5)
    block(x.clone()).backward(grad)
    untied_forward(x.clone()).backward(grad)
    torch.testing.assert_close(block.relu.weight.grad, twin.relu.weight.grad + twin.relu2.weight.grad)


def test_transformer_mlp_takes_the_features_axis_from_the_linear_before_it():
    torch.manual_seed(2)
    model = TransformerMLP()
    x = torch.randn(3, 7, 12)
    before = model(x)
    report = prelu.convert(model, "prelu", init="keep", example_input=x)
    assert isinstance(model.act, prelu.PReLU)
    assert model.act.channel_dim == -1 and model.act.weight.shape == (48,)
    assert torch.equal(model.act.weight.detach(), torch.full((48,), 0.05))
    assert torch.equal(model(x), before)
    assert report.replacements[0].channel_dim == -1 and "features last" in report.replacements[0].note


def test_channel_dim_overrides_the_rule():
    model = TransformerMLP()
    prelu.convert(model, example_input=torch.randn(2, 5, 12), channel_dim=2)
    assert model.act.channel_dim == 2 and model.act.weight.shape == (48,)


def test_sequential_mlp_uses_the_last_dim():
    model = nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 9), nn.ReLU(), nn.Linear(9, 2))
    x = torch.randn(5, 6)
    before = model(x)
    prelu.convert(model, init="keep", example_input=x)
    assert [m.weight.shape for m in model if isinstance(m, prelu.PReLU)] == [(20,), (9,)]
    assert [m.channel_dim for m in model if isinstance(m, prelu.PReLU)] == [-1, -1]
    assert torch.equal(model(x), before)


@pytest.mark.parametrize("source", ["nn.PReLU", "prelu.PReLU", "nn.LeakyReLU", "prelu.LeakyReLU"])
def test_keep_preserves_every_source_function(source):
    torch.manual_seed(3)
    make = {
        "nn.PReLU": lambda: nn.PReLU(8),
        "prelu.PReLU": lambda: prelu.PReLU(8, channel_dim=1),
        "nn.LeakyReLU": lambda: nn.LeakyReLU(0.2),
        "prelu.LeakyReLU": lambda: prelu.LeakyReLU(0.2),
    }[source]
    model = nn.Sequential(nn.Conv2d(3, 8, 3), make())
    if source.endswith("PReLU"):
        with torch.no_grad():
            model[1].weight.uniform_(-0.5, 0.9)
    x = torch.randn(2, 3, 7, 7)
    before = model(x)
    prelu.convert(model, init="keep", example_input=x)
    assert type(model[1]) is prelu.PReLU and model[1].weight.shape == (8,)
    assert torch.equal(model(x), before)


def test_keep_into_torch_nn_prelu_state_dict_keys():
    model = nn.Sequential(nn.Linear(3, 4), nn.PReLU(4))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    keys = list(model.state_dict())
    prelu.convert(model, init="keep")  # a per-channel PReLU knows its channels: no example needed
    assert list(model.state_dict()) == keys
    assert model[1].weight.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize(
    ("to", "kind", "slope"),
    [("prelu_shared", prelu.PReLU, 0.25), ("leaky_relu", prelu.LeakyReLU, 0.01), ("relu", nn.ReLU, 0.0)],
)
def test_other_targets(to, kind, slope):
    model = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.3), nn.Linear(4, 4), nn.PReLU())
    report = prelu.convert(model, to)
    assert report.replaced == 2 and report.to == to
    for index in (1, 3):
        module = model[index]
        assert type(module) is kind
        if kind is prelu.PReLU:
            assert module.weight.tolist() == [slope]
        elif kind is prelu.LeakyReLU:
            assert module.negative_slope == slope


def test_numeric_init_and_bounds_reach_every_new_prelu():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
    prelu.convert(model, init=0.1, per="shared", bounds=(0.05, 0.9))
    for module in (model[1], model[3]):
        assert module.weight.tolist() == pytest.approx([0.1]) and module.bounds == (0.05, 0.9)


def test_inplace_flags_kept_only_where_the_target_allows():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 4), nn.LeakyReLU(0.1, inplace=True))
    prelu.convert(model, "leaky_relu", init="keep")
    assert model[1].negative_slope == 0.0 and not model[1].inplace  # slope 0 cannot be inverted
    assert model[3].negative_slope == pytest.approx(0.1) and model[3].inplace
    relu_model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True))
    prelu.convert(relu_model, "relu")
    assert relu_model[1].inplace


def test_float64_and_example_input_untouched():
    model = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(4, 4)).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    x_before = x.clone()
    prelu.convert(model, example_input=x)
    assert torch.equal(x, x_before), "the example pass ran in place on the caller's tensor"
    assert model[0].weight.dtype == torch.float64
    model(x)


def test_batchnorm_running_statistics_survive_the_example_pass(resnet):
    resnet.train()
    stats = {key: value.clone() for key, value in resnet.state_dict().items() if "running" in key or "batches" in key}
    prelu.convert(resnet, example_input=torch.randn(2, 3, 16, 16) * 5 + 3)
    for key, value in stats.items():
        assert torch.equal(resnet.state_dict()[key], value), key


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc(x))
        x = torch.relu(x) + x.relu()
        return self.act(F.leaky_relu(x, 0.2))


def test_functional_rectifiers_are_reported_by_name():
    model = nn.Sequential(Functional())
    report = prelu.convert(model, example_input=torch.randn(2, 4))
    assert report.replaced == 1
    functions = [f.function for f in report.functional]
    assert functions == ["torch.nn.functional.relu", "torch.relu", "Tensor.relu", "torch.nn.functional.leaky_relu"]
    assert {f.module for f in report.functional} == {"0"}
    assert [f.slope for f in report.functional] == [0.0, 0.0, 0.0, 0.2]
    text = str(report)
    assert "4 functional rectifier call(s) NOT replaced" in text and "torch.nn.functional.leaky_relu" in text


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return F.relu(x)
        return self.act(x)


def test_a_model_that_does_not_trace_says_so():
    report = prelu.convert(Untraceable(), per="shared")
    assert report.replaced == 1 and not report.traced
    assert report.trace_error and "TraceError" in report.trace_error
    assert "does not trace with torch.fx" in str(report)


def test_model_without_rectifiers_reports_it():
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    report = prelu.convert(model)
    assert report.replaced == 0
    assert "no ReLU, LeakyReLU or PReLU modules" in str(report)


class SharedAcrossWidths(nn.Module):
    """One relu module used after a 4-channel and a 6-channel conv: it cannot hold one slope per channel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 6, 1)
        self.relu = nn.ReLU()
        self.other = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.other(self.relu(self.conv2(self.relu(self.conv1(x)))))


def test_failure_part_way_changes_nothing():
    torch.manual_seed(4)
    model = SharedAcrossWidths()
    snapshot = _snapshot(model)
    with pytest.raises(ValueError) as error:
        prelu.convert(model, example_input=torch.randn(2, 3, 5, 5))
    message = str(error.value)
    assert "'relu'" in message and "called at 2 places" in message and "per='shared'" in message
    assert "changed nothing" in message
    _assert_unchanged(model, snapshot)  # 'other' could be converted, but nothing was
    report = prelu.convert(model, per="shared", example_input=torch.randn(2, 3, 5, 5))
    assert report.replaced == 2


def test_per_channel_without_example_input_says_what_to_pass():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1), nn.ReLU())
    snapshot = _snapshot(model)
    with pytest.raises(ValueError, match=r"example_input=.*per='shared'") as error:
        prelu.convert(model)
    assert "'1'" in str(error.value) and "'3'" in str(error.value)
    _assert_unchanged(model, snapshot)


def test_keep_that_the_target_cannot_express_is_refused_and_changes_nothing():
    model = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.1), nn.Linear(3, 3), nn.PReLU(3))
    with torch.no_grad():
        model[3].weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    snapshot = _snapshot(model)
    with pytest.raises(ValueError, match=r"'3'.*3 slopes differ"):
        prelu.convert(model, "leaky_relu", init="keep")
    _assert_unchanged(model, snapshot)
    with pytest.raises(ValueError, match=r"'1'.*slope is not 0"):
        prelu.convert(model, "relu", init="keep")
    _assert_unchanged(model, snapshot)


def test_a_module_the_example_pass_never_reaches_is_named():
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.act, self.spare = nn.Linear(2, 2), nn.ReLU(), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.fc(x))

    model = Unused()
    with pytest.raises(ValueError, match=r"'spare'.*not called"):
        prelu.convert(model, example_input=torch.randn(1, 2))
    assert type(model.act) is nn.ReLU


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"to": "gelu"}, r"unknown target to='gelu'.*'prelu_shared'"),
        ({"per": "element"}, "per must be one of"),
        ({"init": float("nan")}, "init must be"),
        ({"init": "zero"}, "init must be"),
        ({"to": "relu", "init": 0.3}, "no slope"),
        ({"channel_dim": 1.5}, "channel_dim"),
        ({"bounds": (0.5, 0.1), "per": "shared"}, r"low <= high"),
        ({"bounds": (0.3, 0.9), "per": "shared", "init": 0.1}, r"init=0.1 lies outside"),
    ],
)
def test_bad_arguments_are_named_and_change_nothing(kwargs, words):
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    snapshot = _snapshot(model)
    with pytest.raises(ValueError, match=words):
        prelu.convert(model, **kwargs)
    _assert_unchanged(model, snapshot)


def test_the_model_itself_cannot_be_the_activation():
    with pytest.raises(ValueError, match="wrap it"):
        prelu.convert(nn.ReLU())
    with pytest.raises(TypeError, match="Module"):
        prelu.convert("model")


def test_a_registered_target_is_built_by_its_factory():
    prelu.register_activation("hardtanh_test", nn.Hardtanh)
    try:
        model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        report = prelu.convert(model, "hardtanh_test")
        assert type(model[1]) is nn.Hardtanh and report.replaced == 1
        with pytest.raises(ValueError, match="init='keep' needs a built-in target"):
            prelu.convert(model := nn.Sequential(nn.ReLU()), "hardtanh_test", init="keep")
        assert type(model[0]) is nn.ReLU
    finally:
        prelu.unregister_activation("hardtanh_test")


def test_built_in_names_are_built_through_the_registry():
    # Re-register the built-in names with recording factories: convert must call them, with the
    # arguments the built-in takes, instead of constructing the modules itself.
    calls = []

    def recording(name, build):
        def factory(**kwargs):
            calls.append((name, kwargs))
            return build(**kwargs)

        return factory

    for name, build in [("relu", nn.ReLU), ("leaky_relu", prelu.LeakyReLU), ("prelu", prelu.PReLU)]:
        prelu.register_activation(name, recording(name, build), overwrite=True)
    try:
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True))
        prelu.convert(model, "leaky_relu", init=0.2)
        assert calls == [("leaky_relu", {"negative_slope": 0.2, "inplace": True})]
        assert type(model[1]) is prelu.LeakyReLU and model[1].inplace
        prelu.convert(model, "relu")
        assert calls[1] == ("relu", {"inplace": True})
        x = torch.randn(5, 3)
        prelu.convert(model, "prelu", init="keep", example_input=x)
        name, kwargs = calls[2]
        assert name == "prelu"
        assert kwargs == {
            "num_parameters": 4,
            "init": 0.0,
            "channel_dim": -1,
            "bounds": None,
            "dtype": torch.float32,
            "device": torch.device("cpu"),
        }
        assert model[1].weight.tolist() == [0.0] * 4
        prelu.convert(model, "prelu", per="shared", init=0.1)
        assert calls[3] == (
            "prelu",
            {"num_parameters": 1, "init": 0.1, "bounds": None, "dtype": torch.float32, "device": torch.device("cpu")},
        )
    finally:
        for name in ("relu", "leaky_relu", "prelu"):
            prelu.unregister_activation(name)
    assert type(prelu.get_activation("prelu")) is prelu.PReLU  # the built-ins are back


def test_a_factory_that_refuses_the_arguments_changes_nothing():
    prelu.register_activation("relu", nn.Tanh, overwrite=True)  # Tanh takes no inplace=
    try:
        model = nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(0.1))
        with pytest.raises(ValueError, match=r"convert\(\) changed nothing: '1'.*inplace"):
            prelu.convert(model, "relu")
        assert type(model[1]) is nn.LeakyReLU
    finally:
        prelu.unregister_activation("relu")


def test_a_registered_name_with_a_prelu_factory_converts_a_resnet_block():
    prelu.register_activation("half_prelu_test", lambda: prelu.PReLU(init=0.5))
    try:
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.LeakyReLU())
        report = prelu.convert(model, "HALF_PRELU_test")
        assert report.replaced == 2 and report.to == "half_prelu_test"
        assert [type(model[i]) for i in (1, 3)] == [prelu.PReLU, prelu.PReLU]
        assert model[1] is not model[3] and model[1].weight.item() == 0.5
    finally:
        prelu.unregister_activation("half_prelu_test")


def test_a_module_registered_under_two_names_is_replaced_at_both():
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 3), act, nn.Linear(3, 3), act)
    report = prelu.convert(model, example_input=torch.randn(2, 3))
    assert model[1] is model[3] and isinstance(model[1], prelu.PReLU)
    assert report.replacements[0].names == ("1", "3") and report.replacements[0].tied


def test_converted_model_trains_and_state_dict_round_trips():
    torch.manual_seed(5)
    model = ResNet()
    prelu.convert(model, example_input=torch.randn(2, 3, 16, 16))
    optimizer = torch.optim.SGD(prelu.param_groups(model, weight_decay=1e-4), lr=0.1)
    model(torch.randn(4, 3, 16, 16)).sum().backward()
    optimizer.step()
    fresh = ResNet()
    prelu.convert(fresh, example_input=torch.randn(2, 3, 16, 16))
    fresh.load_state_dict(model.state_dict())
    model.eval()
    fresh.eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(fresh(x), model(x))

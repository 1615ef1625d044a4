"""prelu.init: the gain and the Kaiming fills against the formula by hand and against
torch.nn.init (same gain for nonlinearity="leaky_relu"), init_model_ finding the rectifier after
each layer, and He et al.'s claim: a 30-layer plain net keeps its activation variance with this
init and loses it with Xavier."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import prelu
from prelu import init as prelu_init


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.25, 0.5, 1.0, -0.3, 3.0])
def test_gain_is_sqrt_2_over_1_plus_slope_squared(slope):
    by_hand = (2.0 / (1.0 + slope * slope)) ** 0.5
    assert prelu_init.gain(slope) == pytest.approx(by_hand, rel=1e-15)
    assert prelu_init.gain(slope) == pytest.approx(nn.init.calculate_gain("leaky_relu", slope), rel=1e-15)


def test_gain_of_relu_is_torchs_relu_gain():
    assert prelu_init.gain(0.0) == pytest.approx(nn.init.calculate_gain("relu"), rel=1e-15)


@pytest.mark.parametrize("slope", [float("nan"), float("inf"), "0.25", None, True])
def test_gain_refuses_non_finite_or_non_numbers(slope):
    with pytest.raises(ValueError, match="slope"):
        prelu_init.gain(slope)


# (shape, fan_in, fan_out) counted by hand: fan_in = in * kernel, fan_out = out * kernel
SHAPES = [((300, 400), 400, 300), ((64, 32, 3, 3), 32 * 9, 64 * 9), ((16, 8, 5), 40, 80), ((8, 4, 2, 3, 3), 72, 144)]


@pytest.mark.parametrize(("shape", "fan_in", "fan_out"), SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("slope", [0.0, 0.25])
def test_kaiming_normal_std_matches_the_formula_and_torch(shape, fan_in, fan_out, mode, slope):
    fan = fan_in if mode == "fan_in" else fan_out
    expected_std = math.sqrt(2.0 / ((1.0 + slope**2) * fan))
    ours = prelu_init.kaiming_normal_(torch.empty(shape), slope, mode, generator=torch.Generator().manual_seed(3))
    theirs = nn.init.kaiming_normal_(
        torch.empty(shape), a=slope, mode=mode, nonlinearity="leaky_relu", generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(ours, theirs)  # same draws, same std
    n = ours.numel()
    # the sample std of n normal draws has a relative standard error of 1/sqrt(2n): allow 5 of them
    assert ours.std().item() == pytest.approx(expected_std, rel=5 / math.sqrt(2 * n))
    assert abs(ours.mean().item()) < 5 * expected_std / math.sqrt(n)


@pytest.mark.parametrize(("shape", "fan_in", "fan_out"), SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_uniform_bound_matches_the_formula_and_torch(shape, fan_in, fan_out, mode):
    slope = 0.25
    fan = fan_in if mode == "fan_in" else fan_out
    bound = math.sqrt(3.0) * math.sqrt(2.0 / ((1.0 + slope**2) * fan))
    ours = prelu_init.kaiming_uniform_(torch.empty(shape), slope, mode, generator=torch.Generator().manual_seed(4))
    theirs = nn.init.kaiming_uniform_(
        torch.empty(shape), a=slope, mode=mode, nonlinearity="leaky_relu", generator=torch.Generator().manual_seed(4)
    )
    assert torch.equal(ours, theirs)
    assert ours.abs().max().item() <= bound
    assert ours.abs().max().item() > 0.9 * bound  # the draws fill the interval
    assert ours.std().item() == pytest.approx(bound / math.sqrt(3.0), rel=5 / math.sqrt(ours.numel()))


def test_kaiming_fills_in_place_and_returns_the_tensor_without_grad_history():
    weight = nn.Parameter(torch.empty(10, 20))
    out = prelu_init.kaiming_normal_(weight)
    assert out is weight and weight.grad_fn is None


def test_default_slope_is_the_papers_quarter():
    a = prelu_init.kaiming_normal_(torch.empty(5, 7), generator=torch.Generator().manual_seed(0))
    b = prelu_init.kaiming_normal_(torch.empty(5, 7), 0.25, "fan_in", generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"tensor": torch.empty(5)}, r"at least 2 dims.*\(5,\)"),
        ({"tensor": torch.empty(5, 5), "mode": "fan_avg"}, "fan_avg"),
        ({"tensor": torch.empty(5, 5), "slope": float("nan")}, "slope"),
    ],
)
def test_kaiming_bad_arguments(kwargs, words):
    for fill in (prelu_init.kaiming_normal_, prelu_init.kaiming_uniform_):
        with pytest.raises(ValueError, match=words):
            fill(**kwargs)


def test_fans_of_grouped_conv_count_outputs_per_group():
    depthwise = nn.Conv2d(32, 32, 3, groups=32)
    assert prelu_init.fans(depthwise.weight.shape, groups=32) == (9, 9)
    assert prelu_init.fans((64, 3, 7, 7)) == (147, 64 * 49)


# --- init_model_ -----------------------------------------------------------------------------------


def _std_ok(weight: torch.Tensor, std: float) -> bool:
    return abs(weight.std().item() / std - 1) < 5 / math.sqrt(2 * weight.numel())


def test_each_layer_gets_the_gain_of_the_rectifier_after_it():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(200, 300),
        nn.ReLU(),
        nn.Linear(300, 300),
        nn.LeakyReLU(0.1),
        nn.Linear(300, 300),
        prelu.PReLU(300, channel_dim=-1),
        nn.Linear(300, 300),
        nn.BatchNorm1d(300),  # looked through
        nn.PReLU(),
        nn.Linear(300, 300),
        prelu.LeakyReLU(0.3),
        nn.Linear(300, 10),  # the classifier: nothing after it, gain 1
    )
    with torch.no_grad():
        model[5].weight.copy_(torch.linspace(0.1, 0.5, 300))  # mean 0.3
        model[8].weight.fill_(0.6)
    report = prelu.init_model_(model)
    expected = {"0": 0.0, "2": 0.1, "4": 0.3, "6": 0.6, "9": 0.3, "11": None}
    fan_in = {"0": 200, "2": 300, "4": 300, "6": 300, "9": 300, "11": 300}
    assert [row.name for row in report] == list(expected)
    assert report.found_by == "torch.fx"
    for name, slope in expected.items():
        row = report[name]
        assert row.slope == pytest.approx(slope, abs=1e-6) if slope is not None else row.slope is None
        gain = math.sqrt(2 / (1 + slope**2)) if slope is not None else 1.0
        assert row.gain == pytest.approx(gain, rel=1e-6)
        assert row.fan == fan_in[name]
        exact_gain = math.sqrt(2 / (1 + row.slope**2)) if row.slope is not None else 1.0
        assert row.std == pytest.approx(exact_gain / math.sqrt(fan_in[name]), rel=1e-12)
        layer = model.get_submodule(name)
        assert _std_ok(layer.weight, row.std), (name, layer.weight.std().item(), row.std)
        assert torch.count_nonzero(layer.bias) == 0
    text = str(report)
    assert "5 (PReLU)" in text and "LeakyReLU" in text and "fan_in" in text


def test_fan_out_mode_uses_the_output_fan():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(8, 64, 3), nn.ReLU())
    report = prelu.init_model_(model, mode="fan_out")
    assert report["0"].fan == 64 * 9
    assert _std_ok(model[0].weight, math.sqrt(2 / (64 * 9)))


class FunctionalNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 256), nn.Linear(256, 256), nn.Linear(256, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.fc3(torch.relu(self.fc2(F.leaky_relu(self.fc1(x), 0.5)))))


def test_functional_rectifiers_count_when_the_model_traces():
    report = prelu.init_model_(FunctionalNet())
    assert [row.slope for row in report] == [0.5, 0.0, 0.01]
    assert "leaky_relu" in report["fc1"].rectifier


class ResidualBlock(nn.Module):
    """torchvision's BasicBlock: the shortcut conv and conv2 meet at the add, then one relu."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu = nn.LeakyReLU(0.2)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.shortcut = nn.Conv2d(8, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.conv1(x))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def test_residual_paths_reach_the_rectifier_after_the_add():
    report = prelu.init_model_(ResidualBlock())
    for name in ("conv1", "conv2", "shortcut"):
        assert report[name].slope == pytest.approx(0.2), name
        assert report[name].rectifier == "relu (LeakyReLU)"


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc2 = nn.Linear(32, 32)  # registered first, called second
        self.act2 = nn.LeakyReLU(0.5)
        self.fc1 = nn.Linear(16, 32)
        self.act1 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > -1e9:  # data-dependent control flow: torch.fx cannot trace this
            x = self.act1(self.fc1(x))
        return self.act2(self.fc2(x))


def test_untraceable_model_uses_the_forward_order_with_an_example_input():
    model = Untraceable()
    report = prelu.init_model_(model, example_input=torch.randn(4, 16))
    assert report.found_by == "forward order"
    assert report["fc1"].slope == 0.0 and report["fc2"].slope == 0.5


def test_without_trace_or_example_input_the_registration_order_is_used_and_said():
    report = prelu.init_model_(Untraceable())
    assert report.found_by == "registration order"
    assert "registration order" in str(report)
    assert report["fc2"].slope == 0.5 and report["fc1"].slope == 0.0


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 8)
        self.act = nn.ReLU()
        self.unused = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(self.attention(x, x, x, need_weights=False)[0]))


def test_layers_the_forward_pass_never_calls_are_left_alone_and_listed():
    torch.manual_seed(5)
    model = Attention()
    out_proj, unused = model.attention.out_proj.weight.clone(), model.unused.weight.clone()
    report = prelu.init_model_(model)
    assert [row.name for row in report] == ["fc"]
    assert report.skipped == ("attention.out_proj", "unused")
    assert torch.equal(model.attention.out_proj.weight, out_proj) and torch.equal(model.unused.weight, unused)
    assert "left as they were" in str(report) and "attention.out_proj" in str(report)


def test_init_model_refuses_bad_mode_and_non_modules():
    with pytest.raises(ValueError, match="fan_avg"):
        prelu.init_model_(nn.Linear(2, 2), mode="fan_avg")
    with pytest.raises(TypeError, match="Module"):
        prelu.init_model_(torch.empty(2, 2))


def test_model_without_layers_gives_an_empty_report():
    report = prelu.init_model_(nn.Sequential(nn.ReLU()))
    assert len(report) == 0


# --- He et al.: 30-layer plain nets -----------------------------------------------------------------

DEPTH, WIDTH, BATCH, SEEDS = 30, 256, 512, 5


def _plain_net(activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(DEPTH):
        layers.append(nn.Linear(WIDTH, WIDTH))
        layers.append(nn.ReLU() if activation == "relu" else prelu.PReLU(WIDTH, init=0.25, channel_dim=-1))
    return nn.Sequential(*layers)


def _xavier_(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight)
            nn.init.zeros_(module.bias)


def _variance_ratios(activation: str, init: str) -> torch.Tensor:
    """Geometric mean over seeds of Var[y_l] / Var[y_1], y_l the output of the l-th Linear.

    The nets are initialised one by one (``init_model_`` is what is tested); the forward pass runs
    all seeds at once, by the formula (x where x > 0, a x elsewhere), to keep the test fast.
    """
    weights, biases, slopes = [], [], []
    for seed in range(SEEDS):
        torch.manual_seed(seed)
        model = _plain_net(activation)
        if init == "kaiming":
            prelu.init_model_(model)
        else:
            _xavier_(model)
        linears, rectifiers = list(model)[0::2], list(model)[1::2]
        weights.append(torch.stack([layer.weight.detach() for layer in linears]))
        biases.append(torch.stack([layer.bias.detach() for layer in linears]))
        slopes.append(
            torch.stack([getattr(act, "weight", torch.zeros(1)).detach().expand(WIDTH) for act in rectifiers])
        )
    weight, bias, slope = (torch.stack(t, dim=1) for t in (weights, biases, slopes))  # (depth, seed, ...)
    x = torch.randn(SEEDS, BATCH, WIDTH, generator=torch.Generator().manual_seed(1234))
    variances = []
    for layer in range(DEPTH):
        y = torch.baddbmm(bias[layer].unsqueeze(1), x, weight[layer].transpose(1, 2))
        variances.append(y.double().var(dim=(1, 2)))
        x = torch.where(y > 0, y, y * slope[layer].unsqueeze(1))
    log_variance = torch.stack(variances).log()  # (depth, seed)
    return (log_variance - log_variance[0]).mean(dim=1).exp()


@pytest.mark.parametrize("activation", ["relu", "prelu"])
def test_kaiming_keeps_30_layers_of_activation_variance_and_xavier_does_not(activation):
    kaiming = _variance_ratios(activation, "kaiming")
    assert bool(((kaiming >= 0.5) & (kaiming <= 2.0)).all()), kaiming
    xavier = _variance_ratios(activation, "xavier")
    # Xavier: Var[w] = 1/256 here, so each layer multiplies the variance by (1 + a^2) / 2 <= 0.53
    assert xavier[-1] < 1e-6, xavier[-1]
    expected = ((1 + (0.0 if activation == "relu" else 0.25) ** 2) / 2) ** (DEPTH - 1)
    assert abs(math.log(xavier[-1] / expected)) < math.log(3), (xavier[-1], expected)

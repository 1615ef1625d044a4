"""prelu.Monitor: dead units, negative fraction, histograms, slopes and gradients against values
built into the inputs by hand; hooks and model left as they were; reports; dying ReLU vs PReLU.

Expected values come from the setup (which channels were made dead, how many values were put in
which bin), never from the monitor itself.
"""

from __future__ import annotations

import csv
import gc
import json
import math
import warnings

import pytest
import torch
from torch import nn

import prelu
import prelu.ops.layout
from conftest import torch_threads

NAN, INF = math.nan, math.inf


class Feed(nn.Module):
    """Passes a given tensor to ``act``: lets a test choose a rectifier's input exactly."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


def only(monitor: prelu.Monitor):
    (record,) = monitor.summary()
    return record


def positive_noise(shape, generator) -> torch.Tensor:
    """Random values, each channel of which has positives (|x| in [0.1, 1.1], random signs)."""
    magnitude = torch.rand(shape, generator=generator) + 0.1
    return magnitude * torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)


# --- dead units ---------------------------------------------------------------------------------


def test_known_dead_channels_conv_layout_are_reported_exactly():
    g = torch.Generator().manual_seed(0)
    batches = [positive_noise((4, 6, 3, 3), g) for _ in range(3)]
    for batch in batches:
        batch[:, 1] = -torch.rand(4, 3, 3, generator=g) - 0.01  # dead: always negative
        batch[:, 4] = 0.0  # dead: x <= 0 counts, and 0 is <= 0
        batch[:, 2] = -1.0  # alive: one positive value, in one sample of the last batch only
    batches[2][3, 2, 1, 1] = 0.5
    model = Feed(nn.ReLU())
    with prelu.Monitor(model) as monitor:
        for batch in batches:
            model(batch)
    record = only(monitor)
    assert (record.name, record.kind, record.units, record.channel_dim) == ("act", "nn.ReLU", 6, 1)
    assert record.dead_indices == [1, 4]
    assert record.dead_units == 2
    assert record.dead_fraction == pytest.approx(2 / 6, abs=0)
    assert record.calls == 3 and record.inputs == 3 * 4 * 6 * 9


def test_dead_eps_makes_small_positive_inputs_dead():
    x = torch.full((5, 3), -1.0)
    x[:, 0] = 0.05  # below dead_eps=0.1: dead with it, alive without
    x[2, 1] = 0.2  # above dead_eps: alive either way
    for dead_eps, expected in ((0.1, [0, 2]), (0.0, [2])):
        model = Feed(nn.ReLU())
        with prelu.Monitor(model, dead_eps=dead_eps) as monitor:
            model(x)
        assert only(monitor).dead_indices == expected


def test_units_follow_the_layer_channel_axis():
    # 2-D (batch, features): the last dim; prelu.PReLU(channel_dim=-1) on (batch, sequence, features).
    linear = torch.ones(8, 5)
    linear[:, [0, 3]] = -2.0
    sequence = torch.ones(2, 7, 4)
    sequence[..., 2] = -1.0
    model = nn.ModuleDict({"leaky": nn.LeakyReLU(0.1), "tokens": prelu.PReLU(4, channel_dim=-1)})
    with prelu.Monitor(model) as monitor:
        model["leaky"](linear)
        model["tokens"](sequence)
    leaky, tokens = monitor.summary()
    assert (leaky.units, leaky.dead_indices, leaky.channel_dim) == (5, [0, 3], 1)
    assert (tokens.units, tokens.dead_indices, tokens.channel_dim) == (4, [2], 2)


def test_channel_dim_override_by_type_name_and_int():
    x = torch.ones(3, 6, 4)  # (batch, sequence, features): feature 1 dead, sequence position 5 dead
    x[..., 1] = -1.0
    x[:, 5, :] = -1.0
    model = nn.Sequential(nn.ReLU(), nn.ReLU())
    cases = {
        None: [(6, [5]), (6, [5])],  # torch modules: dim 1 for ndim >= 3
        -1: [(4, [1]), (4, [1])],
        nn.ReLU: [(4, [1]), (4, [1])],
        "name": [(6, [5]), (4, [1])],
    }
    for key, expected in cases.items():
        option = {None: None, -1: -1, nn.ReLU: {nn.ReLU: 2}, "name": {nn.ReLU: -1, "0": 1}}[key]
        with prelu.Monitor(model, channel_dim=option) as monitor, torch.no_grad():
            model[0](x)
            model[1](x)
        assert [(r.units, r.dead_indices) for r in monitor.summary()] == expected, key


def test_out_of_range_channel_dim_warns_and_falls_back():
    model = Feed(nn.ReLU())
    x = -torch.ones(4, 3)
    with prelu.Monitor(model, channel_dim=5) as monitor, pytest.warns(UserWarning, match="channel_dim=5"):
        model(x)
    assert (only(monitor).units, only(monitor).dead_units) == (3, 3)


def test_module_called_with_several_unit_counts_keeps_them_apart():
    model = Feed(nn.ReLU())
    small, large = torch.ones(2, 3), torch.ones(2, 5)
    small[:, 0] = -1.0
    large[:, 4] = -1.0
    with prelu.Monitor(model) as monitor:
        model(small)
        model(large)
        model(small)
    record = only(monitor)
    assert (record.units, record.dead_indices, record.channel_dim) == (8, [0, 7], 1)


# --- counts and histogram ---------------------------------------------------------------------

# range (-1, 1), 4 bins of width 0.5: edges -1, -0.5, 0, 0.5, 1 (dyadic: no rounding at edges).
VALUES = [-2.0, -INF, -1.0, -0.75, -0.5, -0.25, -0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, INF, NAN, NAN]
EXPECTED = {
    "underflow": 2,  # -2, -inf
    "hist_counts": [2, 2, 3, 3],  # [-1, -0.75] [-0.5, -0.25] [-0.0, 0.0, 0.25] [0.5, 0.75, 1.0]
    "overflow": 2,  # 1.5, inf
    "nan_inputs": 2,
    "nonfinite_inputs": 4,
    "inputs": 16,
}
NONPOSITIVE = 8  # -2, -inf, -1, -0.75, -0.5, -0.25, -0.0, 0.0


def _layouts():
    flat = torch.tensor(VALUES)
    yield "float32", flat.reshape(2, 8)
    yield "float64", flat.double().reshape(2, 8)
    yield "channels_last", flat.reshape(2, 2, 2, 2).contiguous(memory_format=torch.channels_last)
    yield "strided (torch ops path)", torch.stack([flat, torch.zeros(16)], dim=1)[:, 0].reshape(2, 8)
    yield "bfloat16 (torch ops path)", flat.bfloat16().reshape(2, 8)


@pytest.mark.parametrize(("layout", "x"), list(_layouts()), ids=[name for name, _ in _layouts()])
def test_histogram_and_counts_placed_by_hand(layout, x):
    model = Feed(nn.ReLU())
    with prelu.Monitor(model, bins=4, range=(-1.0, 1.0)) as monitor:
        model(x)
    record = only(monitor)
    assert {key: getattr(record, key) for key in EXPECTED} == EXPECTED, layout
    assert record.negative_fraction == NONPOSITIVE / 16
    assert record.hist_range == (-1.0, 1.0)


def test_histogram_counts_add_up_over_many_batches():
    g = torch.Generator().manual_seed(3)
    model = Feed(nn.ReLU())
    seen = []
    with prelu.Monitor(model, bins=32, range=(-4.0, 4.0)) as monitor, torch_threads(2):
        for i in range(6):
            x = torch.randn(16, 8, 33, 33, generator=g) * 2.5  # 139392 values: 5 kernel tasks
            x.view(-1)[i * 7 : i * 7 + i] = NAN
            x = x if i % 2 else x.double()
            seen.append(x.double().reshape(-1))
            model(x)
    data = torch.cat(seen)
    record = only(monitor)
    # Reference: width 0.25 and low -4 are dyadic, so floor((x + 4) * 4) is exact in float64.
    inside = (data >= -4) & (data <= 4)
    bins = ((data[inside] + 4) * 4).floor().clamp(max=31).long()
    assert record.hist_counts == torch.bincount(bins, minlength=32).tolist()
    assert record.underflow == int((data < -4).sum()) and record.overflow == int((data > 4).sum())
    assert record.nan_inputs == int(data.isnan().sum()) == sum(range(6))
    total = record.underflow + sum(record.hist_counts) + record.overflow + record.nan_inputs
    assert total == record.inputs == data.numel()
    assert record.negative_fraction == int((data <= 0).sum()) / data.numel()


def test_nan_inputs_never_make_a_unit_alive_nor_hide_its_other_inputs():
    x = torch.full((4, 3), -1.0)
    x[:, 0] = NAN  # only NaN (and nothing positive): dead
    x[0, 1], x[1, 1] = NAN, 0.5  # NaN beside a positive: alive
    x[0, 2] = INF  # +inf is a positive input: alive
    for layout in (x, torch.stack([x, x], dim=-1)[..., 0]):  # dense (fused kernel), strided (torch ops)
        model = Feed(nn.ReLU())
        with prelu.Monitor(model) as monitor:
            model(layout)
        record = only(monitor)
        assert (record.dead_indices, record.nan_inputs, record.nonfinite_inputs) == ([0], 5, 6)


def test_inplace_layers_are_observed_before_they_overwrite_their_input():
    for act, expected_bin in ((nn.ReLU(inplace=True), 0), (prelu.PReLU(3, inplace=True), 0)):
        linear = nn.Linear(2, 3)
        with torch.no_grad():
            linear.weight.zero_()
            linear.bias.fill_(-0.75)  # every input of the activation is -0.75: bin 0 of (-1, 1) / 4
        model = nn.Sequential(linear, act)
        with prelu.Monitor(model, bins=4, range=(-1.0, 1.0)) as monitor:
            model(torch.randn(5, 2)).sum().backward()
        record = only(monitor)
        # Seen after the write it would be 0.0 (ReLU, bin 2) or -0.1875 (PReLU, bin 1).
        expected = [0, 0, 0, 0]
        expected[expected_bin] = 15
        assert record.hist_counts == expected, type(act)
        assert (record.negative_fraction, record.dead_units) == (1.0, 3)


# --- slopes, gradients, user types --------------------------------------------------------------


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def test_every_rectifier_type_is_found_with_its_slopes():
    learned = prelu.PReLU(3)
    theirs = nn.PReLU(3)
    with torch.no_grad():
        learned.weight.copy_(torch.tensor([0.1, 0.2, 0.6]))
        theirs.weight.copy_(torch.tensor([0.5, -0.5, 0.0]))
    model = nn.Sequential(
        learned,
        prelu.LeakyReLU(0.2),
        nn.ReLU(),
        nn.LeakyReLU(0.05),
        theirs,
        nn.RReLU(0.1, 0.3),
        nn.ReLU6(),
        Swish(),
        nn.Tanh(),
    )
    monitor = prelu.Monitor(model, types=(Swish,))
    with monitor:
        model.eval()(torch.randn(2, 3))
    records = {r.name: r for r in monitor.summary()}
    kinds = [records[str(i)].kind for i in range(8)]
    assert kinds == [
        "prelu.PReLU",
        "prelu.LeakyReLU",
        "nn.ReLU",
        "nn.LeakyReLU",
        "nn.PReLU",
        "nn.RReLU",
        "nn.ReLU6",
        "Swish",
    ]
    assert "8" not in records  # Tanh is no rectifier
    slopes = {name: (r.learnable, r.slope_mean, r.slope_min, r.slope_max) for name, r in records.items()}
    assert slopes["0"] == pytest.approx((True, 0.3, 0.1, 0.6))
    assert records["0"].slopes == pytest.approx([0.1, 0.2, 0.6])
    assert slopes["1"] == pytest.approx((False, 0.2, 0.2, 0.2))
    assert slopes["2"] == slopes["6"] == (False, 0.0, 0.0, 0.0)
    assert slopes["3"] == pytest.approx((False, 0.05, 0.05, 0.05))
    assert slopes["4"] == pytest.approx((True, 0.0, -0.5, 0.5))
    assert slopes["5"] == pytest.approx((False, 0.2, 0.1, 0.3))
    assert slopes["7"] == (False, None, None, None) and records["7"].calls == 1


def test_nonfinite_slopes_and_inputs_are_counted_not_raised():
    act = prelu.PReLU(4)
    with torch.no_grad():
        act.weight.copy_(torch.tensor([0.5, NAN, INF, 0.25]))
    model = Feed(act)
    x = torch.randn(3, 4)
    x[0, 0], x[1, 1], x[2, 2] = NAN, -INF, INF
    with prelu.Monitor(model) as monitor:
        out = model(x)
        model(out)  # NaN slopes make NaN outputs: fed back in, they are counted too
    record = only(monitor)
    assert record.nonfinite_slopes == 2
    assert (record.slope_mean, record.slope_min, record.slope_max) == (0.375, 0.25, 0.5)
    assert record.slopes[0] == 0.5 and math.isnan(record.slopes[1]) and record.slopes[2] == INF
    expected_out_nonfinite = int((~torch.isfinite(out)).sum())
    assert record.nonfinite_inputs == 3 + expected_out_nonfinite
    assert record.nan_inputs == 1 + int(out.isnan().sum())


def test_mean_abs_grad_at_each_activation_output():
    for act in (nn.ReLU(), nn.ReLU(inplace=True), prelu.PReLU(3), prelu.PReLU(3, inplace=True)):
        model = nn.Sequential(nn.Linear(2, 3), act)
        weights = torch.tensor([[1.0, -2.0, 3.0], [-4.0, 5.0, 0.5]])  # dL/dy for loss = sum(y * weights)
        with prelu.Monitor(model, grads=True) as monitor:
            (model(torch.randn(2, 2)) * weights).sum().backward()
            (model(torch.randn(2, 2)) * -weights).sum().backward()
        assert only(monitor).grad_abs_mean == pytest.approx(15.5 / 6, rel=1e-12), act
    with prelu.Monitor(model, grads=True) as monitor, torch.no_grad():
        model(torch.randn(2, 2))
    assert only(monitor).grad_abs_mean is None and only(monitor).calls == 1


# --- hooks, modes, windows ----------------------------------------------------------------------


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 4, 3, padding=1),
        prelu.PReLU(4),
        nn.Flatten(),
        nn.Linear(4 * 25, 6),
        nn.LeakyReLU(),
    )


def test_every_k_observes_every_kth_forward_call():
    model = _cnn()
    with prelu.Monitor(model, every=3) as monitor:
        for _ in range(7):
            model(torch.randn(2, 3, 5, 5))
    assert [r.calls for r in monitor.summary()] == [3, 3, 3]  # calls 1, 4 and 7
    assert monitor.summary()[0].inputs == 3 * 2 * 4 * 25


def test_train_eval_and_no_grad_are_all_observed():
    model = _cnn()
    with prelu.Monitor(model, grads=True) as monitor:
        model.train()(torch.randn(2, 3, 5, 5)).sum().backward()
        model.eval()(torch.randn(2, 3, 5, 5))
        with torch.no_grad():
            model(torch.randn(2, 3, 5, 5))
        with torch.inference_mode():
            model(torch.randn(2, 3, 5, 5))
    assert [r.calls for r in monitor.summary()] == [4, 4, 4]
    with prelu.Monitor(model) as monitor:  # first seen in inference mode, then outside it
        with torch.inference_mode():
            model(torch.randn(2, 3, 5, 5))
        model(torch.randn(2, 3, 5, 5)).sum().backward()
    assert [r.calls for r in monitor.summary()] == [2, 2, 2]


def _hooks(model: nn.Module) -> dict[str, tuple]:
    names = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks", "_backward_hooks")
    names += ("_backward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called")
    return {f"{n}.{attr}": tuple(getattr(m, attr).items()) for n, m in model.named_modules() for attr in names}


def test_detach_leaves_hooks_parameters_and_outputs_as_they_were():
    model = _cnn()
    model[2].register_forward_hook(lambda module, args, output: None)  # a user's hook stays
    before_hooks = _hooks(model)
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(3, 3, 5, 5)

    def step(net):
        net.zero_grad()
        out = net(x)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters()]

    plain = _cnn()
    plain.load_state_dict(before_state)
    expected_out, expected_grads = step(plain)
    monitor = prelu.Monitor(model, grads=True, every=1)
    with monitor:
        assert _hooks(model) != before_hooks
        out, grads = step(model)
    assert torch.equal(out, expected_out)
    assert all(torch.equal(a, b) for a, b in zip(grads, expected_grads, strict=True))
    assert _hooks(model) == before_hooks
    monitor.attach()
    monitor.attach()  # idempotent
    monitor.detach()
    monitor.detach()
    assert _hooks(model) == before_hooks
    after = model.state_dict()
    assert after.keys() == before_state.keys()
    # one training-mode forward updated BatchNorm's running stats exactly as without the monitor
    assert all(torch.equal(after[k], plain.state_dict()[k]) for k in after)
    calls = monitor.summary()[0].calls
    model(x)
    assert monitor.summary()[0].calls == calls  # detached: nothing observed


def test_windows_history_and_reset():
    model = Feed(nn.ReLU())
    alive = torch.ones(2, 4)
    one_dead = alive.clone()
    one_dead[:, 3] = -1.0
    monitor = prelu.Monitor(model)
    with monitor:
        model(alive)
        first = monitor.epoch_end(10)
        model(one_dead)  # a new window: unit 3 was alive in the last one, not in this one
        model(one_dead)
        monitor.epoch_end(11)
        model(alive)
        monitor.reset()  # dropped, not recorded
        model(one_dead)
        monitor.new_window()
    history = monitor.history
    assert [(r.window, r.step, r.calls, r.dead_indices) for r in history] == [
        (0, 10, 1, []),
        (1, 11, 2, [3]),
        (2, 2, 1, [3]),
    ]
    assert first == history[:1]
    assert only(monitor).calls == 0 and only(monitor).negative_fraction is None
    assert monitor.records() == history  # the open window has seen nothing


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine lose a lot (measured:
    the dying-ReLU test took 0.8 s alone, 26 s beside two other jobs with 2 threads)."""
    with torch_threads(1):
        yield


def test_memory_does_not_grow_with_batches(one_thread):
    # Start from no global caches, so what tests that ran before left behind cannot be released in
    # the middle of the count: torch.compile keeps fake tensors until dynamo is reset, and
    # prelu.ops.layout caches small index tensors per (shape, strides), evicting old ones when full.
    torch._dynamo.reset()
    for cached in (prelu.ops.layout._slope_index, prelu.ops.layout._plan_memory_walk, prelu.ops.layout._memory_order):
        cached.cache_clear()
    model = _cnn()
    monitor = prelu.Monitor(model, grads=True)

    def live_tensors() -> int:
        gc.collect()
        # Real tensors only: the monitor makes no others, and torch.compile tests that ran before
        # leave fake/functional tensors that torch releases on its own schedule.
        return sum(1 for obj in gc.get_objects() if type(obj) in (torch.Tensor, nn.Parameter))

    with monitor:
        for _ in range(5):
            model(torch.randn(2, 3, 5, 5)).sum().backward()
        model.zero_grad(set_to_none=True)
        before = live_tensors()
        for _ in range(200):
            model(torch.randn(2, 3, 5, 5)).sum().backward()
        model.zero_grad(set_to_none=True)
        after = live_tensors()
    assert after == before
    assert monitor.history == []
    assert monitor.summary()[0].calls == 205


# --- bad input ----------------------------------------------------------------------------------


def test_model_without_rectifiers_warns_and_reports_nothing(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    with pytest.warns(UserWarning, match="no rectifier"):
        monitor = prelu.Monitor(model)
    with monitor:
        model(torch.randn(2, 3))
    assert monitor.summary() == [] and monitor.epoch_end(0) == [] and monitor.history == []
    writer = FakeWriter()
    monitor.log_to(writer, 0)
    assert writer.calls == []
    with open(monitor.to_csv(tmp_path / "m.csv"), newline="") as file:
        reader = csv.DictReader(file)
        assert list(reader) == [] and {"name", "dead_fraction", "slope_mean"} <= set(reader.fieldnames)
    assert json.loads(monitor.to_json(tmp_path / "m.json").read_text())["records"] == []
    assert monitor.plot(tmp_path / "m.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"bins": 0}, ValueError),
        ({"bins": True}, ValueError),
        ({"range": (1.0, -1.0)}, ValueError),
        ({"range": (0.0, INF)}, ValueError),
        ({"every": 0}, ValueError),
        ({"dead_eps": NAN}, ValueError),
        ({"types": (int,)}, TypeError),
        ({"channel_dim": 1.5}, TypeError),
        ({"channel_dim": {nn.ReLU: "last"}}, TypeError),
    ],
)
def test_bad_arguments_are_refused(options, error):
    with pytest.raises(error):
        prelu.Monitor(nn.Sequential(nn.ReLU()), **options)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        prelu.Monitor(lambda x: x)


# --- reports ------------------------------------------------------------------------------------


class FakeWriter:
    """Records what a TensorBoard SummaryWriter would be asked to write."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add_scalar(self, tag, value, step):
        self.calls.append(("scalar", tag, value, step))

    def add_histogram(self, tag, values, step):
        self.calls.append(("histogram", tag, values, step))


def _two_windows() -> prelu.Monitor:
    act = prelu.PReLU(4)
    model = Feed(act)
    x = torch.tensor([[-0.75, 0.25, -0.25, 0.75], [-0.75, -0.25, 0.25, -0.75]])  # unit 0 dead
    monitor = prelu.Monitor(model, bins=4, range=(-1.0, 1.0), grads=True)
    with monitor:
        model(x.clone().requires_grad_()).sum().backward()
        monitor.epoch_end(1)
        with torch.no_grad():
            act.weight.copy_(torch.tensor([0.5, 0.5, NAN, 0.5]))
        model(x)
        monitor.epoch_end(2)
    return monitor


def test_log_to_writes_scalars_and_histograms():
    monitor = _two_windows()
    writer = FakeWriter()
    monitor.log_to(writer, step=7)  # the open window is empty: the last closed one is logged
    scalars = {tag: (value, step) for kind, tag, value, step in writer.calls if kind == "scalar"}
    assert scalars["monitor/act/dead_fraction"] == (0.25, 7)
    assert scalars["monitor/act/negative_fraction"] == (5 / 8, 7)
    assert scalars["monitor/act/slope_mean"] == (0.5, 7)
    assert scalars["monitor/act/nonfinite_slopes"] == (1, 7)
    assert "monitor/act/grad_abs_mean" not in scalars  # no backward in window 2
    ((_, tag, values, step),) = [c for c in writer.calls if c[0] == "histogram"]
    assert (tag, step) == ("monitor/act/inputs", 7)
    # -0.75 x3 in bin 0 (centre -0.75), -0.25 x2 in bin 1, 0.25 x2 in bin 2, 0.75 x1 in bin 3
    assert sorted(values.tolist()) == [-0.75] * 3 + [-0.25] * 2 + [0.25] * 2 + [0.75]


def test_csv_and_json_hold_every_window(tmp_path):
    monitor = _two_windows()
    with open(monitor.to_csv(tmp_path / "m.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["name"], row["step"], row["dead_units"]) for row in rows] == [("act", "1", "1"), ("act", "2", "1")]
    assert [json.loads(row["hist_counts"]) for row in rows] == [[3, 2, 2, 1]] * 2
    assert float(rows[0]["slope_mean"]) == 0.25 and float(rows[0]["grad_abs_mean"]) == 1.0
    assert rows[1]["grad_abs_mean"] == ""  # None
    document = json.loads(monitor.to_json(tmp_path / "m.json").read_text())
    assert document["settings"] == {"bins": 4, "range": [-1.0, 1.0], "dead_eps": 0.0, "every": 1}
    records = document["records"]
    assert [r["step"] for r in records] == [1, 2]
    assert records[1]["slopes"] == [0.5, 0.5, None, 0.5]  # NaN written as null: strict JSON
    assert records[1]["dead_indices"] == [0] and records[1]["negative_fraction"] == 5 / 8


def test_plot_writes_a_png(tmp_path):
    monitor = _two_windows()
    path = monitor.plot(tmp_path / "monitor.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


# --- dying ReLU -----------------------------------------------------------------------------------


def _dead_fraction_after_huge_steps(activation, seed: int) -> float:
    """4 x (Linear(., 128) + act) + Linear(128, 10) on a synthetic 10-class problem, 60 SGD steps
    at lr=20 with the gradient norm clipped to 1 (so PReLU stays finite); the dead fraction over
    all 512 units, measured in eval mode on the whole data set."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1024, 32, generator=g)
    y = (x @ torch.randn(32, 10, generator=g)).argmax(1)
    torch.manual_seed(seed)  # same Linear weights for every activation (PReLU's init draws nothing)
    layers: list[nn.Module] = []
    for fan_in in (32, 128, 128, 128):
        layers += [nn.Linear(fan_in, 128), activation()]
    model = nn.Sequential(*layers, nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=20.0)
    for _ in range(60):
        index = torch.randint(0, 1024, (128,), generator=g)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[index]), y[index]).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    with prelu.Monitor(model.eval()) as monitor, torch.no_grad():
        model(x)
    records = monitor.summary()
    assert sum(r.nonfinite_inputs for r in records) == 0
    return sum(r.dead_units for r in records) / sum(r.units for r in records)


def test_huge_learning_rate_kills_relu_units_and_fewer_prelu_units(one_thread):
    # Measured over seeds 0-9: ReLU 0.58-0.69, PReLU 0.05-0.41, smallest gap 0.28 (seeds 0-2:
    # ReLU 0.666 / 0.660 / 0.615, PReLU 0.148 / 0.111 / 0.057).
    for seed in range(3):
        relu = _dead_fraction_after_huge_steps(nn.ReLU, seed)
        learned = _dead_fraction_after_huge_steps(lambda: prelu.PReLU(128), seed)
        assert relu > 0.5, (seed, relu)
        assert learned < relu - 0.1, (seed, relu, learned)


def test_no_warning_for_a_normal_model():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prelu.Monitor(_cnn())


def test_frozen_prelu_is_hooked_with_its_fixed_slopes():
    model = nn.Sequential(nn.Linear(3, 4), prelu.PReLU(4, channel_dim=-1))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    assert prelu.freeze(model) == ["1"]
    with prelu.Monitor(model) as monitor:
        model(torch.randn(5, 3))
    (record,) = monitor.summary()
    assert record.kind == "prelu.FrozenPReLU"
    assert record.slope_mean == pytest.approx(0.25)

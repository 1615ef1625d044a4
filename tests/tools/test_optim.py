"""prelu.param_groups, PReLU bounds with prelu.bind_bounds (projection after every optimizer step,
even at lr=1e6), prelu.tie_slopes (one Parameter, gradients from every use, state_dict)."""

import io
import pickle

import pytest
import torch
from torch import nn

import prelu


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        prelu.PReLU(4),
        nn.Conv2d(4, 4, 3),
        nn.PReLU(4),
        nn.Flatten(),
        nn.Linear(4, 2),
        nn.BatchNorm1d(2),
    )


# --- param_groups ----------------------------------------------------------------------------------


def test_slopes_get_their_own_group_without_decay():
    model = _model()
    groups = prelu.param_groups(model, weight_decay=1e-4)
    assert [g["name"] for g in groups] == ["weights", "slopes"]
    weights, slopes = groups
    assert {id(p) for p in slopes["params"]} == {id(model[1].weight), id(model[3].weight)}
    assert slopes["weight_decay"] == 0.0 and "lr" not in slopes
    assert weights["weight_decay"] == 1e-4
    every = {id(p) for p in model.parameters()}
    assert {id(p) for g in groups for p in g["params"]} == every
    assert len(weights["params"]) + len(slopes["params"]) == len(every)


def test_slope_lr_and_slope_decay_are_applied():
    groups = prelu.param_groups(_model(), weight_decay=0.1, slope_weight_decay=0.01, slope_lr=0.5)
    assert groups[1]["weight_decay"] == 0.01 and groups[1]["lr"] == 0.5
    optimizer = torch.optim.SGD(groups, lr=0.1)
    assert optimizer.param_groups[1]["lr"] == 0.5 and optimizer.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.AdamW])
def test_decay_does_not_move_the_slopes(optimizer_class):
    model = _model()
    optimizer = optimizer_class(prelu.param_groups(model, weight_decay=0.5), lr=0.1)
    weight_before = model[0].weight.detach().clone()
    slope_before = model[1].weight.detach().clone()
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    assert torch.equal(model[1].weight.detach(), slope_before)
    assert not torch.equal(model[0].weight.detach(), weight_before)  # decayed


def test_shared_slopes_appear_once_and_frozen_parameters_not_at_all():
    a, b = prelu.PReLU(3), prelu.PReLU(3)
    prelu.tie_slopes(a, b)
    model = nn.Sequential(nn.Linear(3, 3), a, nn.Linear(3, 3), b)
    model[0].weight.requires_grad_(False)
    groups = prelu.param_groups(model, weight_decay=0.0)
    assert len(groups[1]["params"]) == 1
    assert all(p is not model[0].weight for g in groups for p in g["params"])
    torch.optim.Adam(groups)  # torch refuses a parameter listed twice; this must be accepted


def test_model_without_slopes_gives_one_group():
    groups = prelu.param_groups(nn.Linear(2, 2), weight_decay=0.1)
    assert [g["name"] for g in groups] == ["weights"]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"weight_decay": -1.0}, "weight_decay must be"),
        ({"weight_decay": float("nan")}, "weight_decay must be"),
        ({"weight_decay": 0.0, "slope_weight_decay": -0.1}, "slope_weight_decay"),
        ({"weight_decay": 0.0, "slope_lr": 0.0}, "slope_lr"),
        ({"weight_decay": 0.0, "slope_lr": float("inf")}, "slope_lr"),
    ],
)
def test_param_groups_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        prelu.param_groups(_model(), **kwargs)


def test_no_trainable_parameters_is_an_error():
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad"):
        prelu.param_groups(model, weight_decay=0.0)


# --- bounds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "words"),
    [
        ((0.5, 0.1), r"low <= high, got low=0.5 > high=0.1"),
        ((float("nan"), 1.0), "finite"),
        ((0.0, float("inf")), "finite"),
        ((0.1,), "pair"),
        ((0.1, 0.2, 0.3), "pair"),
        (0.5, "pair"),
        (("0", "1"), "finite numbers"),
        ((True, 1.0), "finite numbers"),
        ((0.3, 0.9), r"init=0.25 lies outside bounds=\(0.3, 0.9\)"),
    ],
)
def test_bad_bounds_are_refused(bounds, words):
    with pytest.raises(ValueError, match=words):
        prelu.PReLU(3, bounds=bounds)


def test_bounds_show_in_repr_and_stay_out_of_the_state_dict():
    module = prelu.PReLU(3, init=0.2, bounds=(0, 1))
    assert module.bounds == (0.0, 1.0)
    assert repr(module) == "PReLU(num_parameters=3, init=0.2, channel_dim=1, bounds=(0.0, 1.0))"
    assert list(module.state_dict()) == ["weight"]
    theirs = nn.PReLU(3)
    theirs.load_state_dict(module.state_dict())
    module.load_state_dict(theirs.state_dict())
    assert repr(prelu.PReLU(2)) == "PReLU(num_parameters=2, init=0.25, channel_dim=1)"
    equal = prelu.PReLU(1, init=0.5, bounds=(0.5, 0.5))
    assert equal.bounds == (0.5, 0.5)


def test_bounds_survive_pickle_and_old_pickles_have_none():
    module = prelu.PReLU(2, bounds=(0.1, 0.6))
    assert pickle.loads(pickle.dumps(module)).bounds == (0.1, 0.6)
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=False).bounds == (0.1, 0.6)
    old = prelu.PReLU(2)
    del old.__dict__["bounds"]  # as unpickled from a version without bounds
    assert old.bounds is None and prelu.clamp_slopes_(nn.Sequential(old)) == 0


def _bounded_model() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(5, 6),
        prelu.PReLU(6, channel_dim=-1, bounds=(0.05, 0.8)),
        nn.Linear(6, 6),
        prelu.PReLU(1, init=0.3, bounds=(0.1, 0.5)),
        nn.Linear(6, 6),
        prelu.PReLU(6, channel_dim=-1),  # unbounded: left alone
    )


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.Adam])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_slopes_lie_within_bounds_after_every_step_even_at_lr_1e6(optimizer_class, sign):
    model = _bounded_model()
    # only the slopes train, so the layers' signs below stay put and every step has a gradient
    optimizer = optimizer_class(prelu.slope_parameters(model), lr=1e6)
    handle = prelu.bind_bounds(optimizer, model)
    x = -torch.rand(8, 5) - 1  # weights >= 0, slopes > 0: every pre-activation < 0, every slope gets a gradient
    with torch.no_grad():
        for layer in (model[0], model[2], model[4]):
            layer.weight.abs_()
            layer.bias.zero_()
    for _ in range(3):
        optimizer.zero_grad()
        (sign * model(x).sum()).backward()
        assert model[1].weight.grad.abs().min() > 0
        optimizer.step()
        for index, (low, high) in ((1, (0.05, 0.8)), (3, (0.1, 0.5))):
            weight = model[index].weight.detach()
            # each step overshoots by ~1e6: the projection is what puts every slope on a bound
            on_a_bound = (weight == torch.tensor(low)) | (weight == torch.tensor(high))
            assert bool(on_a_bound.all()), (index, weight)
    assert model[5].weight.detach().abs().max() > 1e3, "an unbounded PReLU must not be clamped"
    handle.remove()
    optimizer.zero_grad()
    (sign * model(x).sum()).backward()
    optimizer.step()
    assert not bool(((model[1].weight >= 0.05) & (model[1].weight <= 0.8)).all()), "remove() must unbind"


def test_projection_leaves_the_optimizer_state_and_autograd_alone():
    model = _bounded_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=10.0)
    prelu.bind_bounds(optimizer, model)
    model(torch.randn(4, 5)).sum().backward()
    optimizer.step()
    assert model[1].weight.grad_fn is None and model[1].weight.is_leaf
    assert set(optimizer.state[model[1].weight]) == {"step", "exp_avg", "exp_avg_sq"}


def test_bounded_in_place_prelu_trains_with_slopes_kept_positive():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 8), prelu.PReLU(8, channel_dim=-1, inplace=True, bounds=(0.01, 1.0)))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e3)
    prelu.bind_bounds(optimizer, model)
    for _ in range(3):
        optimizer.zero_grad()
        model(-torch.rand(16, 4)).sum().backward()  # pushes slopes up, then down
        optimizer.step()
        optimizer.zero_grad()
        (-model(-torch.rand(16, 4)).sum()).backward()
        optimizer.step()
        assert model[1].weight.min() >= 0.01


def test_clamp_slopes_projects_after_a_load():
    model = nn.Sequential(prelu.PReLU(3, bounds=(0.0, 0.5)))
    model.load_state_dict({"0.weight": torch.tensor([-1.0, 0.25, 2.0])})
    assert prelu.clamp_slopes_(model) == 1
    assert model[0].weight.tolist() == [0.0, 0.25, 0.5]


def test_bind_bounds_checks_its_arguments():
    with pytest.raises(TypeError, match="Optimizer"):
        prelu.bind_bounds(object(), nn.Linear(1, 1))
    with pytest.raises(TypeError, match="Module"):
        prelu.bind_bounds(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), "model")


def test_in_place_refusal_names_bounds():
    with pytest.raises(ValueError) as error:
        prelu.prelu(torch.randn(3) * 1, torch.tensor([-0.5]), inplace=True)
    message = str(error.value)
    assert "bounds=(low, high)" in message and "low > 0" in message and "prelu.bind_bounds" in message
    assert "inplace=False" in message


# --- tied slopes ----------------------------------------------------------------------------------


def test_tie_slopes_shares_one_parameter_and_gradients_add_up():
    torch.manual_seed(3)
    a, b = prelu.PReLU(4, channel_dim=-1), nn.PReLU(4)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    shared = prelu.tie_slopes(a, b)
    assert a.weight is b.weight is shared and shared.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    x1, x2 = torch.randn(5, 4), torch.randn(5, 4)
    (a(x1).sum() + b(x2).sum()).backward()
    by_hand = torch.where(x1 > 0, 0.0, x1).sum(0) + torch.where(x2 > 0, 0.0, x2).sum(0)
    torch.testing.assert_close(shared.grad, by_hand)


def test_tied_model_state_dict_round_trips_into_a_fresh_tied_model():
    def make() -> nn.Sequential:
        model = nn.Sequential(nn.Linear(3, 3), prelu.PReLU(3, channel_dim=-1), nn.Linear(3, 3), prelu.PReLU(3))
        prelu.tie_slopes(model[1], model[3])
        return model

    trained = make()
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.5)
    assert sum(p is trained[1].weight for g in optimizer.param_groups for p in g["params"]) == 1
    trained(-torch.rand(4, 3)).sum().backward()
    optimizer.step()
    state = trained.state_dict()
    assert {"1.weight", "3.weight"} <= set(state) and torch.equal(state["1.weight"], state["3.weight"])
    fresh = make()
    fresh.load_state_dict(state)
    assert fresh[1].weight is fresh[3].weight
    assert torch.equal(fresh[1].weight, trained[1].weight)
    x = torch.randn(2, 3)
    assert torch.equal(fresh(x), trained(x))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: (prelu.PReLU(3), prelu.PReLU(4)), r"shape torch.Size\(\[4\]\)"),
        (lambda: (prelu.PReLU(3), prelu.PReLU(3, dtype=torch.float64)), "dtype"),
        (lambda: (prelu.PReLU(3, bounds=(0, 1)), prelu.PReLU(3)), "same bounds"),
    ],
)
def test_tie_slopes_refuses_mismatches(make, words):
    a, b = make()
    with pytest.raises(ValueError, match=words):
        prelu.tie_slopes(a, b)
    assert a.weight is not b.weight


def test_tie_slopes_needs_prelu_modules():
    with pytest.raises(ValueError, match="at least one"):
        prelu.tie_slopes()
    with pytest.raises(TypeError, match="ReLU"):
        prelu.tie_slopes(prelu.PReLU(), nn.ReLU())


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.Adam])
def test_whole_model_at_lr_1e6_keeps_bounded_slopes_finite_and_within(optimizer_class):
    model = _bounded_model()
    optimizer = optimizer_class(model.parameters(), lr=1e6)
    prelu.bind_bounds(optimizer, model)
    for step in range(2):  # SGD at lr=1e6 overflows the layers after 2 steps; NaN slopes then stay NaN
        optimizer.zero_grad()
        model(torch.randn(4, 5)).sum().backward()
        optimizer.step()
        for index, (low, high) in ((1, (0.05, 0.8)), (3, (0.1, 0.5))):
            weight = model[index].weight.detach()  # bounds hold in the slopes' dtype: float32(0.8) > 0.8
            inside = torch.isfinite(weight) & (weight >= low) & (weight <= high)
            assert bool(inside.all()), (step, index, weight)

"""prelu.PReLU and prelu.LeakyReLU: against their torch.nn twins, state_dict both ways, pickle,
deepcopy, backward, argument validation."""

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import prelu


def test_prelu_module_matches_torch_nn_prelu_forward_and_backward():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 9, 7)
    ours, theirs = prelu.PReLU(6, init=0.3), nn.PReLU(6, init=0.3)
    with torch.no_grad():
        slopes = torch.rand(6)
        ours.weight.copy_(slopes)
        theirs.weight.copy_(slopes)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    assert torch.equal(y_ours, y_theirs)
    grad = torch.randn_like(x)
    y_ours.backward(grad)
    y_theirs.backward(grad)
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, rtol=1e-6, atol=0)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-5, atol=1e-6)


def test_channel_dim_last_equals_torch_on_moved_axis():
    torch.manual_seed(1)
    tokens = torch.randn(3, 11, 16)
    module = prelu.PReLU(16, channel_dim=-1)
    with torch.no_grad():
        module.weight.copy_(torch.rand(16))
    expected = F.prelu(tokens.movedim(-1, 1), module.weight.detach()).movedim(1, -1)
    assert torch.equal(module(tokens), expected)


def test_default_init_is_the_papers_quarter_and_shape_is_num_parameters():
    module = prelu.PReLU(5)
    assert module.weight.shape == (5,)
    assert torch.equal(module.weight.detach(), torch.full((5,), 0.25))
    assert prelu.PReLU().weight.shape == (1,)


@pytest.mark.parametrize("num_parameters", [1, 7])
def test_state_dict_round_trips_with_torch_nn_prelu(num_parameters):
    torch.manual_seed(2)
    x = torch.randn(2, 7, 5)
    theirs = nn.PReLU(num_parameters)
    with torch.no_grad():
        theirs.weight.copy_(torch.rand(num_parameters))
    ours = prelu.PReLU(num_parameters)
    ours.load_state_dict(theirs.state_dict())
    assert torch.equal(ours(x), theirs(x))
    back = nn.PReLU(num_parameters)
    back.load_state_dict(ours.state_dict())
    assert torch.equal(back.weight, theirs.weight)
    assert list(ours.state_dict()) == ["weight"]


def test_state_dict_of_wrong_size_is_refused():
    with pytest.raises(RuntimeError, match="size mismatch"):
        prelu.PReLU(3).load_state_dict(nn.PReLU(4).state_dict())


@pytest.mark.parametrize(
    "make", [lambda: prelu.PReLU(3, init=0.1, channel_dim=-1), lambda: prelu.LeakyReLU(0.2)], ids=["prelu", "leaky"]
)
def test_modules_pickle_torch_save_and_deepcopy(make):
    module = make()
    x = torch.randn(4, 5, 3)
    expected = module(x)
    clones = [
        pickle.loads(pickle.dumps(module)),
        copy.deepcopy(module),
    ]
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    clones.append(torch.load(buffer, weights_only=False))
    for clone in clones:
        assert repr(clone) == repr(module)
        assert torch.equal(clone(x), expected)
    if isinstance(module, prelu.PReLU):
        with torch.no_grad():
            clones[1].weight.add_(1.0)
        assert torch.equal(module(x), expected), "deepcopy must not share the slope"


def test_backward_reaches_slope_and_input():
    module = prelu.PReLU(3)
    x = torch.randn(2, 3, 4, requires_grad=True)
    module(x).sum().backward()
    assert x.grad is not None and module.weight.grad is not None
    negative = (x.detach() <= 0).float()
    expected = (x.detach() * negative).sum(dim=(0, 2))
    torch.testing.assert_close(module.weight.grad, expected, rtol=1e-6, atol=1e-6)


def test_leaky_relu_module_matches_torch():
    x = torch.randn(3, 4, 5, requires_grad=True)
    x_theirs = x.detach().clone().requires_grad_()
    y, y_theirs = prelu.LeakyReLU(0.07)(x), nn.LeakyReLU(0.07)(x_theirs)
    assert torch.equal(y, y_theirs)
    y.sum().backward()
    y_theirs.sum().backward()
    assert torch.equal(x.grad, x_theirs.grad)
    assert prelu.LeakyReLU().negative_slope == 0.01


def test_device_and_dtype_arguments():
    module = prelu.PReLU(4, device="cpu", dtype=torch.float64)
    assert module.weight.dtype == torch.float64 and module.weight.device.type == "cpu"
    assert module(torch.randn(2, 4, dtype=torch.float64)).dtype == torch.float64


def test_reset_parameters_restores_init():
    module = prelu.PReLU(2, init=0.5)
    with torch.no_grad():
        module.weight.zero_()
    module.reset_parameters()
    assert torch.equal(module.weight.detach(), torch.full((2,), 0.5))


def test_extra_repr_names_every_setting():
    assert repr(prelu.PReLU(8, init=0.1, channel_dim=-1)) == "PReLU(num_parameters=8, init=0.1, channel_dim=-1)"
    assert repr(prelu.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"num_parameters": True}, TypeError, "num_parameters"),
        ({"num_parameters": 2.0}, TypeError, "num_parameters"),
        ({"num_parameters": 0}, ValueError, "positive"),
        ({"num_parameters": -3}, ValueError, "positive"),
        ({"init": "0.25"}, TypeError, "init"),
        ({"init": torch.tensor(0.25)}, TypeError, "init"),
        ({"channel_dim": 1.0}, TypeError, "channel_dim"),
        ({"channel_dim": None}, TypeError, "channel_dim"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, error, words):
    with pytest.raises(error, match=words):
        prelu.PReLU(**kwargs)


def test_leaky_relu_bad_slope():
    with pytest.raises(TypeError, match="negative_slope"):
        prelu.LeakyReLU("small")


def test_wrong_channel_count_names_both_shapes():
    module = prelu.PReLU(3)
    x = torch.randn(2, 4, 5)
    before = x.clone()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 4, 5\)"):
        module(x)
    assert torch.equal(x, before)
    assert module.weight.grad is None

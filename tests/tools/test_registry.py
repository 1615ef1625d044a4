"""prelu.get_activation / register_activation: built-in names build the right modules, lookups
ignore case, unknown names list the valid ones, user factories register and unregister."""

import pytest
import torch
from torch import nn

import prelu


@pytest.fixture
def clean_registry():
    yield
    for name in prelu.activation_names():
        prelu.unregister_activation(name)  # removes user names, restores built-in factories


def test_built_in_names_build_the_documented_modules():
    relu = prelu.get_activation("relu")
    assert type(relu) is nn.ReLU and not relu.inplace
    leaky = prelu.get_activation("leaky_relu")
    assert type(leaky) is prelu.LeakyReLU and leaky.negative_slope == 0.01
    channel = prelu.get_activation("prelu", num_parameters=6, channel_dim=-1)
    assert type(channel) is prelu.PReLU and channel.weight.shape == (6,) and channel.channel_dim == -1
    shared = prelu.get_activation("prelu_shared", init=0.1)
    assert type(shared) is prelu.PReLU and shared.weight.shape == (1,)
    assert torch.equal(shared.weight.detach(), torch.tensor([0.1]))
    x = torch.tensor([-2.0, 3.0])
    assert prelu.get_activation("leaky_relu", negative_slope=0.5)(x).tolist() == [-1.0, 3.0]


def test_lookup_ignores_case_and_surrounding_spaces():
    assert type(prelu.get_activation(" PReLU ")) is prelu.PReLU
    assert type(prelu.get_activation("ReLU", inplace=True)) is nn.ReLU


@pytest.mark.parametrize("name", ["gelu", "p_relu"])
def test_unknown_name_lists_the_valid_names(name):
    with pytest.raises(ValueError) as error:
        prelu.get_activation(name)
    message = str(error.value)
    assert repr(name) in message
    for valid in ("'relu'", "'leaky_relu'", "'prelu'", "'prelu_shared'"):
        assert valid in message


@pytest.mark.parametrize("name", [None, "", "  ", 3])
def test_non_string_or_empty_name_is_refused(name):
    with pytest.raises(ValueError, match="non-empty string"):
        prelu.get_activation(name)


def test_prelu_shared_refuses_several_slopes():
    with pytest.raises(ValueError, match="num_parameters=3"):
        prelu.get_activation("prelu_shared", num_parameters=3)
    assert prelu.get_activation("prelu_shared", num_parameters=1).weight.shape == (1,)


def test_user_factory_registers_builds_and_unregisters(clean_registry):
    calls = []

    def factory(**kwargs):
        calls.append(kwargs)
        return nn.Hardtanh(**kwargs)

    assert prelu.register_activation("My_Act", factory) is factory
    assert "my_act" in prelu.activation_names()
    module = prelu.get_activation("my_act", min_val=-0.5)
    assert isinstance(module, nn.Hardtanh) and module.min_val == -0.5
    assert calls == [{"min_val": -0.5}]
    prelu.unregister_activation("my_act")
    with pytest.raises(ValueError, match="unknown activation"):
        prelu.get_activation("my_act")


def test_registering_an_existing_name_needs_overwrite(clean_registry):
    with pytest.raises(ValueError, match=r"already registered.*overwrite=True"):
        prelu.register_activation("relu", nn.ReLU6)
    prelu.register_activation("relu", nn.ReLU6, overwrite=True)
    assert type(prelu.get_activation("relu")) is nn.ReLU6
    prelu.unregister_activation("relu")  # a built-in name goes back to its built-in factory
    assert type(prelu.get_activation("relu")) is nn.ReLU


def test_factory_must_be_callable(clean_registry):
    with pytest.raises(TypeError, match="callable"):
        prelu.register_activation("broken", 3)
    assert "broken" not in prelu.activation_names()

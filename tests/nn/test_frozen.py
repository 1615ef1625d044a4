"""prelu.FrozenPReLU (the module): matches F.prelu with the slopes it copied, checks its arguments,
pickles and reloads."""

import io
import pickle

import pytest
import torch

import prelu


def test_frozen_module_pickles_and_deepcopies():
    frozen = prelu.FrozenPReLU(torch.tensor([0.1, 0.7]), channel_dim=-1)
    x = torch.randn(3, 2)
    buffer = io.BytesIO()
    torch.save(frozen, buffer)
    buffer.seek(0)
    for clone in (pickle.loads(pickle.dumps(frozen)), torch.load(buffer, weights_only=False)):
        assert repr(clone) == repr(frozen) == "FrozenPReLU(num_parameters=2, channel_dim=-1)"
        assert torch.equal(clone(x), frozen(x))


def test_frozen_module_matches_torch_prelu_and_copies_its_weight():
    weight = torch.tensor([0.2, 0.5, 0.9])
    frozen = prelu.FrozenPReLU(weight)
    weight.fill_(0.0)  # copied at construction
    x = torch.randn(2, 3, 4)
    assert torch.equal(frozen(x), torch.nn.functional.prelu(x, torch.tensor([0.2, 0.5, 0.9])))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"weight": [0.1]}, TypeError),
        ({"weight": torch.tensor([1])}, TypeError),
        ({"weight": torch.tensor([0.1]), "channel_dim": 1.0}, TypeError),
        ({"weight": torch.tensor([0.1]), "inplace": 1}, TypeError),
    ],
)
def test_frozen_module_bad_arguments(kwargs, error):
    with pytest.raises(error):
        prelu.FrozenPReLU(**kwargs)

"""prelu.__all__: every public name from before the layout change still resolves, and each lives in
the package the layout gives it (ops, nn, tools, monitor, init)."""

import importlib

import pytest
import torch

import prelu

# prelu.__all__ as it was before the package moved into folders (0.1.0), written out here so that
# a name dropped from __all__ fails this test instead of silently leaving the list.
OWNERS = {
    "prelu": "prelu.ops",
    "leaky_relu": "prelu.ops",
    "backend_for": "prelu.ops",
    "use_backend": "prelu.ops",
    "PReLU": "prelu.nn",
    "LeakyReLU": "prelu.nn",
    "FrozenPReLU": "prelu.nn",
    "convert": "prelu.tools",
    "ConversionReport": "prelu.tools",
    "freeze": "prelu.tools",
    "activation_names": "prelu.tools",
    "get_activation": "prelu.tools",
    "register_activation": "prelu.tools",
    "unregister_activation": "prelu.tools",
    "param_groups": "prelu.tools",
    "bind_bounds": "prelu.tools",
    "clamp_slopes_": "prelu.tools",
    "slope_parameters": "prelu.tools",
    "tie_slopes": "prelu.tools",
    "slopes": "prelu.tools",
    "slopes_from_checkpoint": "prelu.tools",
    "slopes_from_state_dict": "prelu.tools",
    "Monitor": "prelu.monitor",
    "init_model_": "prelu.init",
}


def test_every_old_public_name_is_still_public():
    assert set(OWNERS) | {"init", "__version__"} <= set(prelu.__all__)
    for name in prelu.__all__:
        assert hasattr(prelu, name), name


@pytest.mark.parametrize("name", sorted(OWNERS))
def test_each_name_comes_from_the_package_that_owns_it(name):
    obj = getattr(prelu, name)
    assert callable(obj)
    assert obj.__module__ == OWNERS[name] or obj.__module__.startswith(OWNERS[name] + "."), obj.__module__
    owner_module = importlib.import_module(obj.__module__)
    assert getattr(owner_module, obj.__name__) is obj


def test_init_is_the_submodule_and_version_a_string():
    assert prelu.init is importlib.import_module("prelu.init")
    assert callable(prelu.init.kaiming_normal_) and callable(prelu.init.gain)
    assert isinstance(prelu.__version__, str) and prelu.__version__.count(".") == 2


def test_models_pickled_with_the_flat_layout_still_load():
    """A whole model saved by prelu 0.1 names ``prelu.modules.PReLU`` / ``prelu.frozen.FrozenPReLU``."""
    import pickle

    model = torch.nn.Sequential(prelu.PReLU(3, init=0.3), prelu.FrozenPReLU(torch.full((3,), 0.2)))
    blob = pickle.dumps(model, protocol=2)
    assert b"prelu.nn.modules" in blob and b"prelu.nn.frozen" in blob
    old = blob.replace(b"prelu.nn.modules", b"prelu.modules").replace(b"prelu.nn.frozen", b"prelu.frozen")
    loaded = pickle.loads(old)
    x = torch.randn(2, 3)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert type(loaded[0]) is prelu.PReLU and type(loaded[1]) is prelu.FrozenPReLU

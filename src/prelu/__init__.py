"""prelu: fused, drop-in PReLU and Leaky ReLU for PyTorch.

The public API, re-exported from the packages that own it; nothing else lives here. Imports
:mod:`prelu.ops` (functions, backends), :mod:`prelu.nn` (modules), :mod:`prelu.tools` (model tools),
:mod:`prelu.monitor` and :mod:`prelu.init`; no module inside the package imports this root except
:mod:`prelu.cli`, :mod:`prelu.bench` and :mod:`prelu.lab`. Layers, checked by ``lint-imports``:
``cli -> bench | lab -> tools : monitor : init -> nn -> ops -> _io``.

>>> import torch, prelu
>>> prelu.PReLU(4)(torch.full((2, 4), -1.0))[0].tolist()
[-0.25, -0.25, -0.25, -0.25]
"""

import sys

from prelu import init  # the submodule: prelu.init.kaiming_normal_, prelu.init.gain (PReLU's init= is unrelated)
from prelu.init import init_model_
from prelu.monitor import Monitor
from prelu.nn.frozen import FrozenPReLU
from prelu.nn.modules import LeakyReLU, PReLU
from prelu.ops.backend import backend_for, use_backend
from prelu.ops.functional import leaky_relu, prelu
from prelu.tools.convert import ConversionReport, convert
from prelu.tools.freeze import freeze
from prelu.tools.optim import bind_bounds, clamp_slopes_, param_groups, slope_parameters, tie_slopes
from prelu.tools.registry import activation_names, get_activation, register_activation, unregister_activation
from prelu.tools.slope_table import slopes, slopes_from_checkpoint, slopes_from_state_dict

__version__ = "0.1.0"

# Whole models pickled with prelu 0.1 (torch.save(model)) name the classes by their old flat module
# paths; those modules now live in prelu.nn, so the old names stay importable for unpickling.
sys.modules.setdefault("prelu.modules", sys.modules["prelu.nn.modules"])
sys.modules.setdefault("prelu.frozen", sys.modules["prelu.nn.frozen"])

__all__ = [
    "ConversionReport",
    "FrozenPReLU",
    "LeakyReLU",
    "Monitor",
    "PReLU",
    "__version__",
    "activation_names",
    "backend_for",
    "bind_bounds",
    "clamp_slopes_",
    "convert",
    "freeze",
    "get_activation",
    "init",
    "init_model_",
    "leaky_relu",
    "param_groups",
    "prelu",
    "register_activation",
    "slope_parameters",
    "slopes",
    "slopes_from_checkpoint",
    "slopes_from_state_dict",
    "tie_slopes",
    "unregister_activation",
    "use_backend",
]

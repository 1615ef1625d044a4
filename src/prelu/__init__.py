"""prelu: fused, drop-in PReLU and Leaky ReLU for PyTorch.

The public API, re-exported; nothing else lives here.

>>> import torch, prelu
>>> prelu.PReLU(4)(torch.full((2, 4), -1.0))[0].tolist()
[-0.25, -0.25, -0.25, -0.25]
"""

from prelu.backend import backend_for, use_backend
from prelu.functional import leaky_relu, prelu
from prelu.modules import LeakyReLU, PReLU
from prelu.monitor import Monitor

__version__ = "0.1.0"

__all__ = ["LeakyReLU", "Monitor", "PReLU", "__version__", "backend_for", "leaky_relu", "prelu", "use_backend"]

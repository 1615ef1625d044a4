"""prelu.nn: the modules, and the one table of what counts as a rectifier.

Owns :class:`PReLU` and :class:`LeakyReLU` (:mod:`prelu.nn.modules`: parameters, argument checks,
state_dict compatibility with ``torch.nn.PReLU``), :class:`FrozenPReLU` (:mod:`prelu.nn.frozen`:
trained slopes in a buffer), the forward those two share (:mod:`prelu.nn.forward`) and the
rectifier table (:mod:`prelu.nn.rectifiers`: which module
types are rectifiers, how to read their slopes and channel axis, their labels). Model tools that
change a model (``freeze``, ``convert``) live in :mod:`prelu.tools`.

May import torch, :mod:`prelu.ops` and :mod:`prelu._io`; never :mod:`prelu.tools`,
:mod:`prelu.monitor`, :mod:`prelu.init`, :mod:`prelu.bench`, :mod:`prelu.lab`, :mod:`prelu.cli`
or the root :mod:`prelu`.
"""

from prelu.nn.frozen import FrozenPReLU
from prelu.nn.modules import LeakyReLU, PReLU

__all__ = ["FrozenPReLU", "LeakyReLU", "PReLU"]

"""prelu.nn: the modules. :class:`PReLU`, :class:`LeakyReLU`, :class:`FrozenPReLU`.

Owns parameters, argument validation, state_dict compatibility with ``torch.nn.PReLU``, and the
one table of what counts as a rectifier. May import :mod:`prelu.ops` and :mod:`prelu._io`.
"""

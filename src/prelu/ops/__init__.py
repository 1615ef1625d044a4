"""prelu.ops: the operators. Slope layouts, backend choice, autograd, the functional API, the
export path and the kernels (:mod:`prelu.ops.kernels`).

Owns everything a call of :func:`prelu.prelu` or :func:`prelu.leaky_relu` runs. May import only
torch (its C++ extension builder included), numpy, triton (optional, on first use) and
:mod:`prelu._io`; nothing here imports :mod:`prelu.nn` or anything above it.
"""

"""Kernels: ``native`` (plain torch, any device/dtype), ``cpu`` (fused numba PReLU, float32/float64),
``triton_prelu`` (fused Triton PReLU / Leaky ReLU for CUDA tensors, optional: needs triton) and
``stats`` (the monitor's one-pass counts and histogram, numba).

Imports nothing from the rest of the package but :mod:`prelu.ops.layout` and
:mod:`prelu.ops.dtypes` (the mixed precision rule).
"""

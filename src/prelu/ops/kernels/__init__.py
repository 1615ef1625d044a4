"""Kernels: ``native`` (plain torch, any device/dtype), ``cpu`` (fused PReLU in C++, float32/float64),
``triton_prelu`` (fused Triton PReLU / Leaky ReLU for CUDA tensors, optional: needs triton),
``stats`` (the monitor's one-pass counts and histogram, C++) and ``extension`` (builds and loads the
C++ library ``csrc/prelu_cpu.cpp`` on first use).

Imports nothing from the rest of the package but :mod:`prelu.ops.layout` and
:mod:`prelu.ops.dtypes` (the mixed precision rule).
"""

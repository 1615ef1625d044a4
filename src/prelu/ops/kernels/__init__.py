"""Kernels: ``native`` (plain torch, any device/dtype), ``cpu`` (fused PReLU in C++, float32/float64),
``triton_prelu`` (fused Triton PReLU / Leaky ReLU for CUDA tensors, optional: needs triton),
``stats`` (the monitor's one-pass counts and histogram, C++) and ``extension`` (builds and loads the
C++ library on first use: the kernels, ``csrc/prelu_cpu.cpp``, and the autograd ops around them,
``csrc/prelu_autograd.cpp``, that plain-eager CPU calls run).

Imports nothing from the rest of the package but :mod:`prelu.ops.layout` and
:mod:`prelu.ops.dtypes` (the mixed precision rule).
"""

"""Kernels: ``native`` (plain torch, any device/dtype) and ``cpu`` (fused numba, float32/float64).

Imports nothing from the rest of the package but :mod:`prelu.layout`.
"""

"""Repository-level pytest setup, loaded before anything is collected (tests and doctests).

- Without a visible GPU, Triton runs its kernels in its interpreter: ``TRITON_INTERPRET=1`` must
  be set before ``prelu.ops.kernels.triton_prelu`` is imported, so it is set here (an explicit
  value wins: benchmarks/gpu.sh sets ``TRITON_INTERPRET=0``).
- Without triton installed, the Triton kernel module is left out of doctest collection (it
  cannot be imported; tests/ops/test_triton.py skips with the reason).
"""

import importlib.util
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

collect_ignore = [] if importlib.util.find_spec("triton") else ["src/prelu/ops/kernels/triton_prelu.py"]

"""The cost of the first call: a fresh interpreter imports torch and prelu and runs one step.

Owns the subprocess measurement behind the "first call" table of ``prelu bench run``. Imports
nothing from :mod:`prelu` (the subprocesses do).
"""

from __future__ import annotations

import subprocess
import sys

FIRST_CALL_SCRIPT = (
    "import time; t=time.perf_counter(); import torch, prelu; "
    "x=torch.randn(8,4,16,16,requires_grad=True); m=prelu.PReLU(4); m(x).sum().backward(); "
    "print(time.perf_counter()-t)"
)
IMPORT_TORCH_SCRIPT = "import time; t=time.perf_counter(); import torch; print(time.perf_counter()-t)"


def measure_first_call(runs: int = 3, timeout: float = 300.0) -> dict[str, float]:
    """Seconds for a fresh interpreter to import torch and prelu and run one forward+backward.

    Runs :data:`FIRST_CALL_SCRIPT` ``runs`` times in new subprocesses (the first may build or
    load the C++ extension cache; later ones find it warm) and ``import torch`` alone ``runs`` times, so the
    part attributable to prelu is visible: ``prelu_attributable`` = fastest warm run (2nd on)
    - fastest ``import torch`` (single runs differ by ~0.3 s, enough to make one difference
    negative). Keys: ``first_call_run1`` ... ``first_call_runN``, ``import_torch`` (fastest),
    ``prelu_attributable``.
    """

    def seconds_of(script: str) -> float:
        completed = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, check=False
        )
        if completed.returncode != 0:
            raise RuntimeError(f"first-call subprocess failed ({completed.returncode}):\n{completed.stderr.strip()}")
        return float(completed.stdout.strip().splitlines()[-1])

    result = {f"first_call_run{index + 1}": seconds_of(FIRST_CALL_SCRIPT) for index in range(runs)}
    result["import_torch"] = min(seconds_of(IMPORT_TORCH_SCRIPT) for _ in range(runs))
    warm = min(result[f"first_call_run{index + 1}"] for index in range(min(1, runs - 1), runs))
    result["prelu_attributable"] = warm - result["import_torch"]
    return result

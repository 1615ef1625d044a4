#!/usr/bin/env bash
# Set up ./.venv with prelu installed (editable) and the extras named by $1 ("lab" by default: the
# lab and the benchmarks; "test" for the test suite; "bench" for the benchmarks alone).
#
# torch: the venv sees the system site-packages, so an existing torch is used as it is. Where none
# is importable, a CPU build is installed, pinned (torch==2.13.0): an unpinned `torch` from PyPI
# is a multi-GB CUDA build. Re-running is cheap: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-lab}"
case "$extras" in lab|bench|test) ;; *) echo "usage: scripts/setup.sh [lab|bench|test]" >&2; exit 2 ;; esac

if [ ! -x .venv/bin/python ]; then
  python3 -m venv --system-site-packages .venv
fi
py=.venv/bin/python
if ! "$py" -c "import torch" >/dev/null 2>&1; then
  echo "setup: no torch found; installing the CPU build torch==2.13.0" >&2
  "$py" -m pip install --quiet --disable-pip-version-check torch==2.13.0
fi
"$py" -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
"$py" -c "import torch, prelu; print(f'setup: prelu {prelu.__version__}, torch {torch.__version__}, ready in .venv')"

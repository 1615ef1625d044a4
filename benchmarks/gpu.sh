#!/usr/bin/env bash
# One run on a machine with a CUDA GPU: install prelu, run the GPU tests (pytest -m gpu), time the
# Triton kernels against torch (benchmarks/gpu_bench.py) and measure the in-place memory saving.
#
#   bash benchmarks/gpu.sh    # about 4-6 minutes; the step limits add up to 475 s (< 8 minutes)
#
# Everything goes to benchmarks/gpu/ (GPU_OUT_DIR overrides): gpu.log (every step's output),
# speed.md, speed.csv, memory.md; and is copied to $OUT when $OUT is set. Each step has a hard
# time limit; a failing step is logged and the next one still runs. Uses the python that holds
# torch ($PYTHON, else python3); installs nothing from the network (pip install --no-deps
# --no-build-isolation of this repository only; if that fails, src/ goes on PYTHONPATH).
# Without torch, CUDA or triton it says so in the log and stops (exit 0: nothing to measure).

set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${GPU_OUT_DIR:-benchmarks/gpu}
PY=${PYTHON:-python3}
mkdir -p "$DIR"
LOG="$DIR/gpu.log"
: >"$LOG"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export TRITON_INTERPRET=0 # compiled kernels on the GPU, never the interpreter
export PRELU_NO_EXTENSION=1 # nothing here runs the CPU kernels: skip their one-minute C++ build
export PYTHONUNBUFFERED=1
STARTED=$(date +%s)

say() { echo "$*" | tee -a "$LOG"; }

copy_out() {
	say "=== total $(($(date +%s) - STARTED)) s"
	if [ -n "${OUT:-}" ]; then
		mkdir -p "$OUT" && cp "$DIR"/* "$OUT"/ 2>/dev/null
	fi
}
trap copy_out EXIT

# step NAME SECONDS COMMAND...: run with a hard limit, log everything, never stop the script.
step() {
	local name=$1 limit=$2
	shift 2
	local begin rc
	begin=$(date +%s)
	say "=== $name (limit ${limit} s): $*"
	timeout -k 5 "$limit" "$@" >>"$LOG" 2>&1
	rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		say "=== $name: TIMED OUT after ${limit} s"
	else
		say "=== $name: exit $rc in $(($(date +%s) - begin)) s"
	fi
	return 0
}

say "=== prelu gpu.sh, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
step "nvidia-smi" 15 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
if ! timeout 45 "$PY" - >>"$LOG" 2>&1 <<'EOF'; then
import sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device")
print(f"device: {torch.cuda.get_device_name()}")
import triton
print(f"triton {triton.__version__}")
EOF
	say "=== STOP: $PY lacks torch, a CUDA device or triton (see above); nothing measured"
	exit 0
fi

step "install prelu (no deps, no network)" 60 "$PY" -m pip install --no-deps --no-build-isolation --no-input -q -e .
step "GPU tests: pytest -m gpu" 140 "$PY" -m pytest -q -m gpu -p no:cacheprovider \
	tests/ops/test_triton.py tests/ops/test_mixed_precision.py
step "speed: prelu vs torch, fp32 and bf16" 170 "$PY" benchmarks/gpu_bench.py --device cuda --what speed \
	--dtypes float32,bfloat16 --compile-budget 60 --out "$DIR"
step "memory: in-place PReLU on cuda" 45 "$PY" benchmarks/gpu_bench.py --device cuda --what memory --out "$DIR"
for file in speed.md memory.md; do
	[ -f "$DIR/$file" ] && cat "$DIR/$file" >>"$LOG"
done
exit 0

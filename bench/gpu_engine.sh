#!/usr/bin/env bash
# The engine's GPU benchmark, for a GPU host (sm80+, PyTorch with CUDA and cuSPARSELt).
#
#   OUT=/path/to/results bash bench/gpu_engine.sh [--budget-s 360] [--parts smoke,gemm,...]
#   OUT=/tmp/dry bash bench/gpu_engine.sh --dry-run --budget-s 60      # CPU: checks the plumbing
#
# The rerun sized for ~270 s of a lent H200 (bench/RESULTS.md, "Run 2"; timeout_s 330):
#   OUT=$OUT bash bench/gpu_engine.sh --budget-s 270 --parts gemm,linear,models \
#       --models resnet18,resnet50 --batch-sizes 64,256,1 --variant-cap-s 3
#
# PYTHON picks the interpreter (default python3; it needs torch, torchvision and numpy, nothing
# else). The budget counts from this script's start; results reach $OUT after every step
# (gpu_engine.json, gpu_engine.md, gpu_engine.log, engine.log), so a run cut short still leaves
# what it measured. A last-resort `timeout` stops the whole run 45 s after the budget.
# Exit: 0 all passed, 1 a failure (or no CUDA GPU / no sparse path), 2 stopped by the budget,
# 3 a step hung past the deadline; 124/137 if the outer timeout had to act.
set -euo pipefail
STARTED_AT="$(date +%s.%N 2>/dev/null || date +%s)"
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for gpu_engine.json and gpu_engine.md}"
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "gpu_engine.sh: FAILED: interpreter '$PYTHON' not found; set PYTHON to a python with torch" >&2
    exit 1
fi

budget=360
for arg in "$@"; do
    case "$arg" in --dry-run) budget=900 ;; esac
done
previous=""
for arg in "$@"; do
    case "$arg" in
        --budget-s=*) budget="${arg#--budget-s=}" ;;
    esac
    if [ "$previous" = "--budget-s" ]; then budget="$arg"; fi
    previous="$arg"
done
hard_limit="$(awk -v b="$budget" 'BEGIN { printf "%d", b + 45 }')"

export PYTHONPATH="$PWD/engine${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
command=("$PYTHON" -u bench/gpu_engine.py --out "$OUT" --started-at "$STARTED_AT" "$@")
if command -v timeout >/dev/null 2>&1; then
    exec timeout --kill-after=10 "$hard_limit" "${command[@]}"
fi
exec "${command[@]}"

#!/usr/bin/env bash
# The engine's GPU benchmark, for a GPU host (sm80+, PyTorch with CUDA in its own python).
# Usage: OUT=/path/to/results bench/gpu_engine.sh   (PYTHON=... to choose the interpreter)
# Fails loudly, with exit 1, when no CUDA GPU with sparse tensor cores is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for gpu_engine.json and gpu_engine.md}"
PYTHON="${PYTHON:-python}"
if ! "$PYTHON" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_engine.sh: FAILED: torch {torch.__version__} sees no CUDA GPU on this host; "
             "run this on a GPU host (or bench/gpu_engine.py --dry-run on CPU).")
major, minor = torch.cuda.get_device_capability()
if (major, minor) < (8, 0):
    sys.exit(f"gpu_engine.sh: FAILED: {torch.cuda.get_device_name()} has capability {major}.{minor}; "
             "2:4 sparse tensor cores need 8.0 or newer.")
print(f"gpu_engine.sh: {torch.cuda.get_device_name()} (sm{major}{minor}), torch {torch.__version__}", file=sys.stderr)
PY
then
    exit 1
fi
mkdir -p "$OUT"
PYTHONPATH=engine exec "$PYTHON" bench/gpu_engine.py --out "$OUT" "$@"

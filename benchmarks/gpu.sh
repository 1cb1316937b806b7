#!/usr/bin/env bash
# One script for a lent GPU machine (torch, timm, pluggy, safetensors, pytest-benchmark already installed; no
# downloads). Checks CUDA correctness, runs the speed suite, writes everything to $OUT. Budget: under 8 minutes.
set -uo pipefail
OUT=${OUT:-./gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" >>"$OUT/gpu.txt"
status=0
timeout 120 python3 benchmarks/cuda_check.py "$OUT/cuda_check.json" >"$OUT/cuda_check.log" 2>&1 || status=1
timeout 60 python3 -m pytest -q -m cuda tests >"$OUT/cuda_tests.log" 2>&1 || [ $? -eq 5 ] || status=1
# The speed suite: every variant at both sizes over fp32/bf16/fp16 x channels_last (+ compile), and the baselines.
timeout 330 python3 -m benchmarks.speed --device cuda --out "$OUT" --no-progress >"$OUT/bench.log" 2>&1 || status=1
tail -n 40 "$OUT/bench.log"
cat "$OUT/gpu.txt"
exit $status

#!/bin/bash
# The checks that need a CUDA GPU, in one call on a lent GPU machine (its python3 holds torch but not Ray):
#   1. the GPU learner tests (RLlib learner on CUDA, fp32 and bf16 mixed precision) and the torch-only tests;
#   2. benchmarks/training_cost.py on CUDA (learner update time and memory, K-2:4 vs Kaleidoscope vs QMIX);
#   3. benchmarks/inference.py (2:4 sparse vs dense kernels; its CPU part runs on that machine's CPU).
# Ray and the other missing packages travel as .devcarry/site.tar.xz (unpacked wheels): bash benchmarks/build_devcarry.sh.
# Results go to $OUT (default /tmp/device_check): log.txt plus each benchmark's json/md/png.
set -u
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
SITE=/tmp/k24_site
if [ -f .devcarry/site.tar.xz ] && [ ! -d "$SITE/ray" ]; then
    mkdir -p "$SITE" && tar -C "$SITE" -xJf .devcarry/site.tar.xz
fi
export PYTHONPATH="$PWD:$SITE" PYTHONUNBUFFERED=1 JAX_PLATFORMS=cpu RAY_USAGE_STATS_ENABLED=0
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
$PY -c "import torch, ray; print('torch', torch.__version__, 'ray', ray.__version__, torch.cuda.get_device_name(0))"
uptime

echo "== 1. tests"
timeout 240 $PY -m pytest -q -p no:cacheprovider tests/algorithm/test_gpu_learner.py tests/sparsity tests/models \
    tests/training
echo "== 2. training_cost (CUDA)"
timeout 150 $PY benchmarks/training_cost.py --devices cuda --output "$OUT/training_cost" | tail -25
echo "== 3. inference"
timeout 200 $PY benchmarks/inference.py --budget 0.25 --output "$OUT/inference" | tail -30

#!/bin/bash
# On a lent GPU: the GPU learner tests and torch-level tests on this working tree, then CUDA learner update cost,
# base tree (.devcarry/base = HEAD) and this working tree interleaved twice (hidden 64).
set -u
SITE=/tmp/k24_site
mkdir -p "$SITE" && tar -C "$SITE" -xJf .devcarry/site.tar.xz
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cpu RAY_USAGE_STATS_ENABLED=0
ROOT=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; uptime
echo "== tests (this tree)"
PYTHONPATH="$ROOT:$SITE" timeout 240 python3 -m pytest -q -p no:cacheprovider tests/algorithm/test_gpu_learner.py \
  tests/sparsity tests/models 2>&1 | tee "$OUT/tests_log.txt" | tail -4
for round in 1 2; do
  for tree in base new; do
    dir=$ROOT; [ $tree = base ] && dir=$ROOT/.devcarry/base
    echo "== round $round: $tree"
    (cd "$dir" && PYTHONPATH="$dir:$SITE" timeout 150 python3 benchmarks/training_cost.py --devices cuda --hidden 64 \
       --output "/tmp/tc_${tree}_$round" 2>/dev/null | grep -E "^\| CUDA")
    cp "/tmp/tc_${tree}_$round/training_cost.json" "$OUT/${tree}_$round.json"
  done
done
uptime

#!/bin/bash
# A/B on CUDA: learner update cost with the base tree (.devcarry/base, HEAD) and this working tree, interleaved,
# then the GPU learner tests on this working tree.
set -u
SITE=/tmp/k24_site
mkdir -p "$SITE" && tar -C "$SITE" -xJf .devcarry/site.tar.xz
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cpu RAY_USAGE_STATS_ENABLED=0
ROOT=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; uptime
for round in 1 2; do
  for tree in base new; do
    dir=$ROOT; [ $tree = base ] && dir=$ROOT/.devcarry/base
    echo "== round $round: $tree"
    (cd "$dir" && PYTHONPATH="$dir:$SITE" timeout 150 python3 benchmarks/training_cost.py --devices cuda --hidden 64 \
       --output "$OUT/${tree}_$round" 2>/dev/null | grep -E "^\| CUDA")
  done
done
echo "== GPU learner tests (this tree)"
PYTHONPATH="$ROOT:$SITE" timeout 200 python3 -m pytest -q -p no:cacheprovider tests/algorithm/test_gpu_learner.py \
  tests/models/test_agent.py 2>&1 | tail -3

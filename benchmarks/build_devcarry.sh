#!/bin/bash
# Builds .devcarry/site.tar.xz: the packages that benchmarks/device_check.sh needs and a lent GPU machine's image
# lacks (its python3 is 3.12 with torch, numpy, pandas, pyarrow, scipy, pyyaml, tqdm, matplotlib, pytest; not Ray),
# as unpacked cp312 manylinux wheels, pruned to fit the device tool's 64 MiB carry limit (~34 MB).
# Run it here (needs network for pip), then: device run `bash benchmarks/device_check.sh` with carry [".devcarry"].
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PACKAGES=(ray==2.60.0 gymnasium==1.2.2 tensorboardx==2.6.5 dm-tree==0.1.10 farama-notifications==0.0.6
          jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
          lz4==4.4.5 ormsgpack==1.13.1 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
          typing-inspection==0.4.5 tzdata==2026.6)
PLATFORMS=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
    PLATFORMS+=(--platform "${p}_x86_64")
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$work/wheels" "${PACKAGES[@]}"
mkdir -p "$work/site"
for wheel in "$work"/wheels/*.whl; do
    unzip -q -o "$wheel" -d "$work/site"  # unzip keeps the executable bits of Ray's raylet and gcs_server
done
rm -rf "$work/site/ray/jars" "$work/site/ray/dashboard/client/build"  # Java and the dashboard's web client
find "$work/site" -name __pycache__ -prune -exec rm -rf {} +
mkdir -p .devcarry
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx "/.devcarry/" "$exclude" 2>/dev/null || echo "/.devcarry/" >> "$exclude"
tar -C "$work/site" -cf - . | xz -T1 -6 > .devcarry/site.tar.xz
ls -l .devcarry/site.tar.xz

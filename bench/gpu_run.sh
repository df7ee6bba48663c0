#!/usr/bin/env bash
# All GPU work of a session, for a lent GPU machine (JAX, PyTorch, no TensorFlow, no network).
# Prepare here, once (files under the git-ignored .data/gpu and .whl):
#   python bench/gpu_pack.py pack --wheels --image_root=../shared/data/cifar10 \
#       --peer_dir=PEER_CHECKOUT --fid_weights=~/.cache/tfgan_cifar/inception_2015_fid.npz
# A call carries at most 64 MiB, so the work takes consecutive calls on the warm machine
# (files a call carried stay there for the next, while the machine is held):
#   1. carry .whl .data/gpu/cifar10.npz .data/gpu/peer:  bash bench/gpu_run.sh train
#   2. carry .data/gpu/fid_weights.0.npz:                bash bench/gpu_run.sh unpack
#   3. carry .data/gpu/fid_weights.1.npz:                bash bench/gpu_run.sh score
# Results (gpu_run.json, logs, grids) go to $OUT; run directories to $GPU_DATA/work
# (GPU_DATA: default .data/gpu). Further flags go to bench/gpu_run.py.
# Dry run on a CPU (tests/test_gpu_run.py): bash bench/gpu_run.sh all --dry_run --image_dir=...
set -euo pipefail
cd "$(dirname "$0")/.."
phase=${1:-all}; shift || true
out=${OUT:-/tmp/gpu_run_out}; data=${GPU_DATA:-.data/gpu}
mkdir -p "$out" "$data/unpacked"
if ! python -c "import keras" 2>/dev/null; then
  python -m pip install -q --no-index --find-links .whl keras namex optree absl-py rich
fi
python bench/gpu_pack.py unpack --packed="$data" --to="$data/unpacked"
[ "$phase" = unpack ] && exit 0
flags=(--image_dir="$data/unpacked/cifar10/train")
[ -d "$data/unpacked/fid" ] && flags+=(--fid_cache_dir="$data/unpacked/fid")
[ -d "$data/peer" ] && flags+=(--peer_dir="$data/peer")
export XLA_PYTHON_CLIENT_PREALLOCATE=false
python bench/gpu_run.py --phase="$phase" --out="$out" --work="$data/work" "${flags[@]}" "$@" \
  2>&1 | tee -a "$out/gpu_run.log"

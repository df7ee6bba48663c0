#!/usr/bin/env bash
# All GPU work of a session, for a lent GPU machine (JAX, PyTorch, no TensorFlow, no network).
# Prepare here, once (files under the git-ignored .data/gpu and .whl):
#   python bench/gpu_pack.py pack --wheels --image_root=../shared/data/cifar10 \
#       --peer_dir=PEER_CHECKOUT --fid_weights=~/.cache/tfgan_cifar/FID_WEIGHTS.npz
# A call carries at most 64 MiB, so the work takes consecutive calls on the warm machine
# (files a call carried stay there for the next, while the machine is held):
#   1. carry .whl .data/gpu/cifar10.npz .data/gpu/peer:  bash bench/gpu_run.sh train
#   2. carry .data/gpu/fid_weights.0.npz:                bash bench/gpu_run.sh unpack
#   3. carry .data/gpu/fid_weights.1.npz:                bash bench/gpu_run.sh score
# Results (gpu_run.json, logs, grids) go to $OUT; run directories stay in .data/gpu/work.
# Dry run on a CPU (what CI runs): bash bench/gpu_run.sh all --dry_run --image_dir=TINY/train
set -euo pipefail
cd "$(dirname "$0")/.."
phase=${1:-all}; shift || true
out=${OUT:-/tmp/gpu_run_out}; data=.data/gpu/unpacked
mkdir -p "$out" "$data"
if ! python -c "import keras" 2>/dev/null; then
  python -m pip install -q --no-index --find-links .whl keras namex optree absl-py rich
fi
python bench/gpu_pack.py unpack --to="$data"
[ "$phase" = unpack ] && exit 0
image_dir=$data/cifar10/train; fid=()
[ -d "$data/fid" ] && fid=(--fid_cache_dir="$data/fid")
peer=(); [ -d .data/gpu/peer ] && peer=(--peer_dir=.data/gpu/peer)
has_image_dir=0; for a in "$@"; do case $a in --image_dir=*) has_image_dir=1;; esac; done
[ $has_image_dir = 1 ] && image=() || image=(--image_dir="$image_dir")
export XLA_PYTHON_CLIENT_PREALLOCATE=false
python bench/gpu_run.py --phase="$phase" "${image[@]}" --out="$out" --work=.data/gpu/work \
  "${peer[@]}" "${fid[@]}" "$@" 2>&1 | tee -a "$out/gpu_run.log"

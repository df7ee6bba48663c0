"""Packs what bench/gpu_run.sh needs on a GPU machine that has no TensorFlow and no network,
in files of at most --max_mb each (a device call carries at most 64 MiB), and unpacks it there.

  python bench/gpu_pack.py pack --image_root=../shared/data/cifar10 --fid_weights=FILE \\
      --peer_dir=PATH/pytorch-gan-collections
  python bench/gpu_pack.py unpack --to=/tmp/gpu_data          # on the GPU machine

`pack` writes, under .data/gpu/ (git-ignored):
- cifar10.npz: every JPEG of <image_root>/{train,test}/<class>/ as bytes, with its path;
- fid_weights.<i>.npz: the standard FID network's weights split into parts under --max_mb;
- peer/: the peer trainer's networks and losses (its source/ folder);
and under .whl/ the wheels of Keras and the packages it needs that such a machine lacks.
`unpack` rebuilds <to>/cifar10/{train,test}/<class>/*.jpg and, once every part is there,
<to>/fid/ holding the weights file under its own name; it says what is still missing.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKED = os.path.join(ROOT, ".data", "gpu")
WHEELS = os.path.join(ROOT, ".whl")
KERAS_WHEELS = ("keras==3.15.1", "namex", "optree", "absl-py", "rich", "markdown-it-py",
                "mdurl", "pygments")


def pack_images(image_root, out):
    """One .npz of every JPEG under image_root's train/ and test/ folders."""
    paths = sorted(os.path.relpath(os.path.join(folder, name), image_root)
                   for split in ("train", "test")
                   for folder, _, names in os.walk(os.path.join(image_root, split))
                   for name in names if name.lower().endswith((".jpg", ".jpeg", ".png")))
    if not paths:
        raise SystemExit(f"error: no images under {image_root}/train or /test")
    blobs = []
    for path in paths:
        with open(os.path.join(image_root, path), "rb") as f:
            blobs.append(f.read())
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    np.savez(out, paths=np.array(paths), offsets=offsets,
             data=np.frombuffer(b"".join(blobs), np.uint8))
    return len(paths)


def unpack_images(packed, to):
    """Writes the images of pack_images' file back as files under `to`."""
    with np.load(packed) as archive:
        paths, offsets, data = archive["paths"], archive["offsets"], archive["data"]
    for i, path in enumerate(paths):
        target = os.path.join(to, str(path))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data[offsets[i]:offsets[i + 1]].tobytes())
    return len(paths)


def split_weights(weights, out_prefix, max_bytes):
    """Splits an .npz of arrays into parts of at most max_bytes; returns the parts' paths."""
    with np.load(weights) as archive:
        arrays = {name: archive[name] for name in archive.files}
    parts, current, size = [], {}, 0
    for name, array in arrays.items():
        if current and size + array.nbytes > max_bytes:
            parts.append(current)
            current, size = {}, 0
        current[name] = array
        size += array.nbytes
    parts.append(current)
    paths = []
    for i, part in enumerate(parts):
        path = f"{out_prefix}.{i}.npz"
        meta = {"name": os.path.basename(weights), "part": i, "parts": len(parts)}
        np.savez(path, __meta__=np.array(json.dumps(meta)), **part)
        paths.append(path)
    return paths


def join_weights(parts, to):
    """Joins split_weights' parts into <to>/<original name>; returns its path, or None and the
    missing part numbers when some part is not there."""
    arrays, meta, present = {}, None, set()
    for path in parts:
        with np.load(path) as archive:
            meta = json.loads(str(archive["__meta__"]))
            arrays.update({n: archive[n] for n in archive.files if n != "__meta__"})
        present.add(meta["part"])
    missing = sorted(set(range(meta["parts"])) - present) if meta else [0]
    if missing:
        return None, missing
    os.makedirs(to, exist_ok=True)
    target = os.path.join(to, meta["name"])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with open(target + ".partial", "wb") as f:
        f.write(buffer.getvalue())
    os.replace(target + ".partial", target)
    return target, []


def pack(args):
    os.makedirs(PACKED, exist_ok=True)
    max_bytes = int(args.max_mb * 2**20)
    if args.image_root:
        count = pack_images(args.image_root, os.path.join(PACKED, "cifar10.npz"))
        size = os.path.getsize(os.path.join(PACKED, "cifar10.npz"))
        print(f"{count} images -> .data/gpu/cifar10.npz ({size / 2**20:.1f} MiB)")
        if size > max_bytes:
            print(f"warning: over --max_mb={args.max_mb}: it cannot travel in one call")
    if args.fid_weights:
        for path in split_weights(args.fid_weights, os.path.join(PACKED, "fid_weights"),
                                  max_bytes):
            print(f"-> {os.path.relpath(path, ROOT)} ({os.path.getsize(path) / 2**20:.1f} MiB)")
    if args.peer_dir:
        target = os.path.join(PACKED, "peer")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(os.path.join(args.peer_dir, "source"), os.path.join(target, "source"))
        print("-> .data/gpu/peer/source")
    if args.wheels:
        os.makedirs(WHEELS, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "--python-version=3.12", "--only-binary=:all:",
                        "--platform=manylinux2014_x86_64", "--platform=manylinux_2_17_x86_64",
                        "-d", WHEELS, *KERAS_WHEELS], check=True)
        print(f"-> .whl/ ({len(os.listdir(WHEELS))} wheels)")


def unpack(args):
    packed = args.packed
    images = os.path.join(packed, "cifar10.npz")
    if os.path.exists(images) and not os.path.isdir(os.path.join(args.to, "cifar10", "train")):
        print(f"{unpack_images(images, os.path.join(args.to, 'cifar10'))} images -> "
              f"{args.to}/cifar10")
    parts = sorted(os.path.join(packed, name) for name in os.listdir(packed)
                   if name.startswith("fid_weights.") and name.endswith(".npz")) \
        if os.path.isdir(packed) else []
    if parts:
        target, missing = join_weights(parts, os.path.join(args.to, "fid"))
        print(f"FID weights -> {target}" if target else
              f"FID weights: parts {missing} not here yet (carry them in a later call)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    packing = sub.add_parser("pack")
    packing.add_argument("--image_root", help="a folder with train/ and test/ class folders")
    packing.add_argument("--fid_weights", help="the standard FID network's weights (.npz)")
    packing.add_argument("--peer_dir", help="a checkout of w86763777/pytorch-gan-collections")
    packing.add_argument("--wheels", action="store_true", help="download Keras's wheels")
    packing.add_argument("--max_mb", type=float, default=60.0)
    unpacking = sub.add_parser("unpack")
    unpacking.add_argument("--to", required=True)
    unpacking.add_argument("--packed", default=PACKED, help="the folder `pack` wrote")
    args = parser.parse_args(argv)
    (pack if args.command == "pack" else unpack)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

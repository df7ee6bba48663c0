"""All the GPU work of a session in one prepared command: bench, peer timing, training, scoring.

  python bench/gpu_run.py --phase=all --image_dir=PATH/cifar10/train --out=$OUT
  python bench/gpu_run.py --phase=all --dry_run --image_dir=TINY/train --out=/tmp/dry

bench/gpu_run.sh runs it on a lent GPU machine (JAX, no TensorFlow, no network); its header
says how the data, the Keras wheels and the FID weights travel there. Phases, each resumable
(a finished step is not redone):
- train: bench/bench.py on JAX (DCGAN and the conditional SAGAN, float32 and mixed_bfloat16);
  the peer PyTorch trainer's step (bench/peer_torch.py, with and without torch.compile) when
  PyTorch and --peer_dir are there; the reference classifier; then the conditional SAGAN
  preset (DiffAugment, EMA), the default DCGAN and configs/dcgan_large.cfg trained side by
  side, each for as many steps as --train_minutes allow at the bench's rate (at least
  --min_steps for the SAGAN), evaluated by the reference classifier during training.
- score: the paper protocol (evaluate.py --protocol=paper: standard FID network, 50k samples
  against the 50k training images, EMA generator where there is one) and the reference
  classifier's metrics, on each run's best and final generator.
Writes <out>/gpu_run.json (every figure, its protocol and the machine) and the sample grids.
--dry_run: tiny networks, a few steps, a few samples: the whole chain in minutes on a CPU.
"""

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = {  # name: (preset, settings beyond the preset)
    "sagan": ("configs/sagan.cfg", ["--augment=color,translation,cutout", "--ema_decay=0.9999"]),
    "dcgan": ("configs/dcgan.cfg", []),
    "dcgan_large": ("configs/dcgan_large.cfg", []),
}
RUNS_MODEL = {"sagan": "sagan", "dcgan": "dcgan", "dcgan_large": "dcgan"}
DRY_RUN = ["--width=4", "--batch_size=8", "--fid_samples=16", "--log_every=2",
           "--sample_every=2", "--checkpoint_every=2", "--eval_every=2"]


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", default="all", choices=("train", "score", "all"))
    parser.add_argument("--image_dir", required=True,
                        help="training images, one folder per class; its sibling 'test' too")
    parser.add_argument("--out", required=True, help="results: gpu_run.json and the grids")
    parser.add_argument("--work", help="run directories (default <out>/runs)")
    parser.add_argument("--peer_dir", help="a checkout of w86763777/pytorch-gan-collections")
    parser.add_argument("--fid_cache_dir", help="where the standard FID weights and reference "
                        "statistics are (default: the package's cache folder)")
    parser.add_argument("--train_minutes", type=float, default=5.0,
                        help="wall time of the three trainings, run side by side")
    parser.add_argument("--min_steps", type=int, default=40000,
                        help="the SAGAN trains at least this many steps")
    parser.add_argument("--runs", default=",".join(RUNS),
                        help=f"comma list of the runs to train and score: {', '.join(RUNS)}")
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--dry_run", action="store_true")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.image_dir):
        parser.error(f"--image_dir={args.image_dir} is not a folder")
    args.runs = [name for name in args.runs.split(",") if name]
    unknown = sorted(set(args.runs) - set(RUNS))
    if unknown or not args.runs:
        parser.error(f"--runs: choose from {', '.join(RUNS)} (got {', '.join(unknown) or 'none'})")
    if args.train_minutes <= 0 or args.min_steps < 1:
        parser.error("--train_minutes and --min_steps must be positive")
    args.work = args.work or os.path.join(args.out, "runs")
    return args


def _run(command, log, env=None, background=False):
    """Runs `command` (a list), its output appended to `log`; returns the Popen or the code."""
    print("$ " + " ".join(command), flush=True)
    handle = open(log, "a")
    process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                               env={**os.environ, "KERAS_BACKEND": "jax", **(env or {})})
    if background:
        return process
    code = process.wait()
    handle.close()
    if code:
        print(f"  exit {code}; the last lines of {log}:\n" + _tail(log), flush=True)
    return code


def _tail(path, lines=15):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def _python(script, *flags):
    return [sys.executable, os.path.join(ROOT, script), *flags]


def _bench(args, results):
    path = os.path.join(args.out, "bench.json")
    if not os.path.exists(path):
        steps = ["--steps=1", "--repeats=1", "--warmup=1", "--fid_images=0",
                 "--extra=width=4,batch_size=8"] if args.dry_run \
            else ["--steps=50", "--repeats=3", "--warmup=5", "--fid_images=500"]
        presets = ",".join(RUNS[name][0] for name in args.runs[:1 if args.dry_run else None])
        precisions = "float32" if args.dry_run else f"float32,{args.precision}"
        _run(_python("bench/bench.py", "--backends=jax", f"--presets={presets}",
                     f"--precisions={precisions}", f"--out={path}", *steps),
             os.path.join(args.out, "bench.log"))
    if os.path.exists(path):
        with open(path) as f:
            results["bench"] = json.load(f)
    if args.peer_dir:
        peer = os.path.join(args.out, "peer.json")
        if not os.path.exists(peer):
            dry = ["--device=cpu", "--steps=1", "--repeats=1", "--warmup=0",
                   "--compile=false"] if args.dry_run else []
            _run(_python("bench/peer_torch.py", f"--peer_dir={args.peer_dir}", f"--out={peer}",
                         *dry), os.path.join(args.out, "peer.log"))
        if os.path.exists(peer):
            with open(peer) as f:
                results["peer"] = json.load(f)


def _rate(results, name, precision):
    """The bench's steps/s of run `name`'s preset at `precision` (None if not measured)."""
    preset = os.path.splitext(os.path.basename(RUNS[name][0]))[0]
    rows = [r for r in results.get("bench", {}).get("results", [])
            if r.get("name") == preset and r.get("precision") == precision]
    return rows[0].get("steps_per_sec") if rows else None


def _steps(args, results, name):
    """Steps that fit --train_minutes at the bench's rate, with the three runs sharing the GPU
    (each assumed to keep half the rate it had alone)."""
    if args.dry_run:
        return 2  # one step of each cadence of DRY_RUN: one evaluation, checkpoint and grid
    rate = _rate(results, name, args.precision) or 0
    return max(int(0.5 * rate * args.train_minutes * 60),
               args.min_steps if name == "sagan" else 1000)


def _classifier(args):
    path = os.path.join(args.work, "classifier")
    if not glob.glob(os.path.join(path, "*.keras")):
        dry = ["--epochs=1", "--width=4", "--batch_size=16"] if args.dry_run else []
        _run([sys.executable, "-m", "tfgan_cifar.classifier", f"--image_dir={args.image_dir}",
              f"--out={path}", *dry], os.path.join(args.out, "classifier.log"))
    return path


def train(args, results):
    """The train phase (see the module docstring)."""
    _bench(args, results)
    classifier = _classifier(args)
    classes = sum(entry.is_dir() for entry in os.scandir(args.image_dir))
    processes = {}
    for name in args.runs:
        preset, extra = RUNS[name]
        workdir = os.path.join(args.work, name)
        steps = _steps(args, results, name)
        flags = [f"--flagfile={preset}", f"--image_dir={args.image_dir}",
                 f"--workdir={workdir}", f"--save_dir={os.path.join(args.work, 'published')}",
                 f"--steps={steps}", f"--precision={args.precision}", f"--num_classes={classes}",
                 f"--reference_classifier={classifier}", "--fid_samples=10000",
                 f"--eval_every={max(steps // 5, 1)}", f"--checkpoint_every={max(steps // 5, 1)}",
                 f"--sample_every={max(steps // 10, 1)}", *extra,
                 *(DRY_RUN if args.dry_run else [])]
        results.setdefault("runs", {})[name] = {"steps": steps, "flags": flags}
        processes[name] = (time.time(), _run(_python("train.py", *flags),
                                             os.path.join(args.out, f"train_{name}.log"),
                                             {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
                                             background=True))
    for name, (start, process) in processes.items():
        code = process.wait()
        results["runs"][name].update(exit_code=code, wall_s=round(time.time() - start, 1))
        print(f"{name}: exit {code} after {results['runs'][name]['wall_s']} s", flush=True)


def score(args, results):
    """The score phase (see the module docstring): evaluate.py --protocol=paper on each run's
    best and final generators, with the reference classifier's metrics beside."""
    cache = ["--fid_cache_dir=" + args.fid_cache_dir] if args.fid_cache_dir else []
    classifier = os.path.join(args.work, "classifier")
    for name in args.runs:
        workdir = os.path.join(args.work, name)
        if not os.path.isdir(os.path.join(workdir, "export")):
            continue
        out = os.path.join(args.work, "scores", name)
        code = _run(_python("evaluate.py", f"--run_dir={workdir}", "--protocol=paper",
                            f"--model={RUNS_MODEL[name]}", f"--image_dir={args.image_dir}",
                            f"--reference_classifier={classifier}", f"--output_dir={out}",
                            *cache, *(["--fid_samples=16"] if args.dry_run else [])),
                    os.path.join(args.out, f"score_{name}.log"))
        entry = {"exit_code": code}
        paper = os.path.join(out, "paper_protocol.json")
        if os.path.exists(paper):
            with open(paper) as f:
                entry.update(json.load(f))
        for which in ("best", "final"):
            quality = glob.glob(os.path.join(out, f"paper_{which}", "*", "metrics.json"))
            if quality and which in entry:
                with open(quality[0]) as f:
                    entry[which]["quality"] = json.load(f).get("quality")
            for grid in glob.glob(os.path.join(out, f"paper_{which}", "*", "*.png")):
                shutil.copy(grid, os.path.join(args.out, f"{name}_{which}_"
                                               + os.path.basename(grid)))
        results.setdefault("scores", {})[name] = entry


def _machine():
    info = {"host": platform.node(), "python": platform.python_version()}
    try:
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
        info["gpu"] = gpus.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = None
    return info


def main(argv=None):
    args = _parse(argv if argv is not None else sys.argv[1:])
    os.makedirs(args.work, exist_ok=True)
    path = os.path.join(args.out, "gpu_run.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    results.update(machine=_machine(), dry_run=args.dry_run)
    start = time.time()
    try:
        if args.phase in ("train", "all"):
            train(args, results)
        if args.phase in ("score", "all"):
            score(args, results)
    finally:
        results.setdefault("wall_s", {})[args.phase] = round(time.time() - start, 1)
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {path}", flush=True)
    failed = [name for name, run in results.get("runs", {}).items() if run.get("exit_code")]
    failed += [f"scoring {name}" for name, entry in results.get("scores", {}).items()
               if entry.get("exit_code")]
    if failed:
        print("error: failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

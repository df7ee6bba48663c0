"""Quality benchmark: train presets for a fixed number of steps, then tabulate their metrics.

  python bench/quality.py --image_dir=PATH/cifar10/train --classifier=~/.cache/tfgan_cifar
  python bench/quality.py --presets=configs/sagan.cfg --steps=5000 --samples=10000 \\
      --inception_weights=PATH --out=bench/quality

Each preset (a train.py flagfile) is trained by `train.py` in its own run directory under
--out for --steps steps; `evaluate.py` then scores the final generator on --samples images:
FID and precision/recall against the test split with --fid_network (the standard network when
its weights are made, `python -m tfgan_cifar.fid_weights`; keras with --inception_weights),
and the reference classifier's metrics (FD_classifier, class accuracy and KL,
precision/recall/density/coverage) with --classifier.
A preset already trained under --out is not trained again, so a rerun only re-evaluates; the
table names each run's --extra flags (those it was trained with).
Writes <out>/quality.json and <out>/quality.md (the quality table of docs/studies.md) with the machine
it ran on. The defaults fit a two-core CPU in well under an hour.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

COLUMNS = (("fid", "FID", "{:.2f}"), ("precision", "precision", "{:.3f}"),
           ("recall", "recall", "{:.3f}"), ("fd_classifier", "FD_classifier", "{:.2f}"),
           ("class_acc", "class accuracy", "{:.3f}"), ("class_kl", "class KL", "{:.3f}"),
           ("precision_clf", "precision (clf)", "{:.3f}"), ("recall_clf", "recall (clf)",
                                                           "{:.3f}"),
           ("density_clf", "density (clf)", "{:.3f}"), ("coverage_clf", "coverage (clf)",
                                                        "{:.3f}"))


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="configs/dcgan.cfg,configs/sagan.cfg",
                        help="comma-separated train.py flagfiles")
    parser.add_argument("--steps", type=int, default=300, help="generator steps per preset")
    parser.add_argument("--samples", type=int, default=2000, help="images per evaluation")
    parser.add_argument("--image_dir", help="training images (its sibling 'test' is the "
                        "reference); default: tensorflow-datasets")
    parser.add_argument("--classifier", help="reference classifier (.keras or its folder)")
    parser.add_argument("--fid_network", choices=("standard", "keras", "none"),
                        help="FID's network; default: standard when its weights are made, "
                        "keras with --inception_weights, else none")
    parser.add_argument("--inception_weights", help="local InceptionV3 notop weights")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation's noise")
    parser.add_argument("--extra", default="", help="more train.py flags, space-separated")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "quality"))
    args = parser.parse_args()
    if args.fid_network is None:
        from tfgan_cifar import fid_weights
        from tfgan_cifar.paths import CACHE_DIR

        args.fid_network = ("standard" if fid_weights.have_weights(CACHE_DIR)
                            else "keras" if args.inception_weights else "none")
    return args


def machine():
    """One line describing this machine: CPU model and core count, and the GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        if gpu:
            text += f", GPU {gpu.splitlines()[0]}"
    except (OSError, subprocess.SubprocessError):
        pass
    return text


def _run(command):
    print(" ".join(command), flush=True)
    process = subprocess.run(command, cwd=ROOT)
    if process.returncode != 0:
        raise SystemExit(f"{command[1]} failed with exit code {process.returncode}")


def train(preset, args):
    """Trains one preset with train.py (a finished run is kept: rerunning only evaluates),
    then scores its final generator with evaluate.py; returns its result record."""
    name = os.path.splitext(os.path.basename(preset))[0]
    workdir = os.path.join(args.out, name)
    timing = os.path.join(workdir, "bench_training.json")
    data = [f"--{k}={getattr(args, k)}" for k in ("image_dir",) if getattr(args, k)]
    if not os.path.exists(timing):
        started = time.perf_counter()
        _run([sys.executable, os.path.join(ROOT, "train.py"), f"--flagfile={preset}",
              f"--steps={args.steps}", "--eval_every=0", f"--workdir={workdir}",
              f"--save_dir={os.path.join(workdir, 'saved_models')}", "--sample_every=0",
              f"--log_every={max(1, args.steps // 10)}", "--checkpoint_every=0", *data,
              *args.extra.split()])
        with open(timing, "w") as f:
            json.dump({"seconds": round(time.perf_counter() - started), "steps": args.steps,
                       "extra": args.extra}, f)
    with open(timing) as f:
        trained = json.load(f)
    from tfgan_cifar.run_dir import RunDir

    metrics = {}
    if args.classifier or args.fid_network != "none":
        out = os.path.join(workdir, "evaluation")
        _run([sys.executable, os.path.join(ROOT, "evaluate.py"),
              f"--saved_model={RunDir(workdir).export_dir('final')}", f"--output_dir={out}",
              f"--fid_samples={args.samples}", f"--seed={args.seed}", *data,
              *(f"--{k}={getattr(args, k)}" for k in ("classifier", "inception_weights")
                if getattr(args, k)),
              *([f"--fid_network={args.fid_network}", "--fid_reference=test"]
                if args.fid_network != "none" else ["--nofid"])])
        model = json.load(open(os.path.join(workdir, "config.json")))["model"]
        with open(os.path.join(out, model.upper(), "metrics.json")) as f:
            written = json.load(f)
        metrics = {**written.get("quality", {}), **written.get("metrics", {})}
    speeds = [r["steps_per_sec"] for r in RunDir(workdir).metrics.records("train")
              if r.get("steps_per_sec")]
    return {"preset": preset, "name": name, "steps": trained["steps"],
            "extra": trained.get("extra", ""), "seconds": trained["seconds"],
            "steps_per_sec": speeds[-1] if speeds else None, "metrics": metrics}


def markdown(results, args, host):
    """The Markdown table of the results, with what produced them."""
    from tfgan_cifar.metric_schema import fid_label

    shown = [(key, fid_label(args.fid_network) if key == "fid" else title, fmt)
             for key, title, fmt in COLUMNS
             if any(r["metrics"].get(key) is not None for r in results)]
    lines = ["| preset | steps | wall time | " + " | ".join(t for _, t, _ in shown) + " |",
             "| --- | ---: | ---: | " + " | ".join("---:" for _ in shown) + " |"]
    for r in results:
        cells = [fmt.format(r["metrics"][key]) if r["metrics"].get(key) is not None else "n/a"
                 for key, _, fmt in shown]
        name = f"{r['name']} `{r['extra']}`" if r.get("extra") else r["name"]
        lines.append(f"| {name} | {r['steps']} | {r['seconds'] / 60:.0f} min | "
                     + " | ".join(cells) + " |")
    lines += ["", f"{args.samples} generated images per model vs the CIFAR-10 test split; "
              f"`python bench/quality.py --steps={args.steps} --samples={args.samples}` on "
              f"{host}."]
    return "\n".join(lines) + "\n"


def main():
    """Trains every preset, then writes quality.json and quality.md under --out."""
    args = _parse()
    os.makedirs(args.out, exist_ok=True)
    host = machine()
    results = [train(os.path.join(ROOT, p) if not os.path.isabs(p) else p, args)
               for p in args.presets.split(",") if p]
    with open(os.path.join(args.out, "quality.json"), "w") as f:
        json.dump({"machine": host, "args": vars(args), "results": results}, f, indent=2)
    table = markdown(results, args, host)
    with open(os.path.join(args.out, "quality.md"), "w") as f:
        f.write(table)
    print(table + f"wrote {os.path.join(args.out, 'quality.json')} and quality.md")


if __name__ == "__main__":
    main()

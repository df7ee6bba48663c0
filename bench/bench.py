"""Training-speed benchmark: median steps/s, images/s, FLOPs per step and TFLOP/s.

  python bench/bench.py                                   # both models, both backends
  python bench/bench.py --backends=jax --models=sagan --out=bench/results.json
  python bench/bench.py --precisions=float32,mixed_bfloat16      # one row per precision
  python bench/bench.py --distribute=mirrored --cpu_devices=2    # 2 virtual CPU devices
  python bench/bench.py --presets=configs/sagan.cfg,configs/dcgan.cfg   # the presets' recipes
  python bench/bench.py --steps_per_call=1,4,16         # one row per steps per compiled call

For every (backend, model, batch size), or every preset (a train.py flagfile: its model,
batch, width, n_critic and the rest), a worker process (Keras picks its backend once per
process) builds the trainer on synthetic CIFAR-sized data, compiles the step, then times
`--repeats` runs of `--steps` steps (rounded up to whole calls of each --steps_per_call
value) and reports the median. FLOPs per step are counted by XLA's
cost analysis of the compiled JAX step (the same networks on both backends), so they need JAX.
It also times the feature extraction of both FID networks (the standard InceptionV3 of
2015-12-05 and Keras's InceptionV3; random weights: speed does not depend on them) under each
of --fid_precisions. Prints a table (with the share of the GPU's dense peak, `PEAKS`, and the
CPU's bfloat16 instructions) and writes JSON.
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Dense peak throughput of known GPUs, TFLOP/s (FP32 without tensor cores / TF32 / BF16).
PEAKS = {"H100": {"fp32": 67, "tf32": 495, "bf16": 989}, "H200": {"fp32": 67, "tf32": 495,
                                                                    "bf16": 989}}
# The /proc/cpuinfo flags of the CPU instructions that compute in bfloat16.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--models", default="dcgan,sagan")
    parser.add_argument("--batch_sizes", default="dcgan:128,sagan:64",
                        help="model:batch[,model:batch...]")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compilation)")
    parser.add_argument("--jit_compile", action="store_true", help="XLA for the TF step")
    parser.add_argument("--precisions", default="float32",
                        help="comma list of --precision values, each measured")
    parser.add_argument("--steps_per_call", default="1",
                        help="comma list of --steps_per_call values, each measured")
    parser.add_argument("--distribute", default="none", help="none or mirrored (all devices)")
    parser.add_argument("--cpu_devices", type=int, default=0,
                        help="split the CPU into N virtual devices (to try --distribute on a "
                        "CPU machine; they share its cores)")
    parser.add_argument("--presets", default="",
                        help="comma list of train.py flagfiles, each measured with its own "
                        "settings (replaces --models and --batch_sizes)")
    parser.add_argument("--extra", default="", help="more config overrides, key=value,...")
    parser.add_argument("--fid_images", type=int, default=200, help="0 skips the FID timing")
    parser.add_argument("--fid_precisions", default="float32,mixed_bfloat16",
                        help="comma list of dtype policies the FID networks are timed under")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.error = _refuse  # one line, as every entry point reports bad input
    args = parser.parse_args()
    _check(args)
    return args


def _refuse(message):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _check(args):
    """Refuses, with one line, flags that cannot work and an --out that cannot be written,
    before any worker runs."""
    from tfgan_cifar import paths
    from tfgan_cifar.errors import UserError

    for name, least in (("steps", 1), ("repeats", 1), ("warmup", 0), ("cpu_devices", 0),
                        ("fid_images", 0)):
        if getattr(args, name) < least:
            _refuse(f"--{name}={getattr(args, name)} must be at least {least}")
    for name, known in (("backends", ("tensorflow", "jax")), ("models", ("dcgan", "sagan")),
                        ("distribute", ("none", "mirrored"))):
        bad = [v for v in getattr(args, name).split(",") if v not in known]
        if bad or not getattr(args, name):
            _refuse(f"--{name}={getattr(args, name)}: choose among {', '.join(known)}")
    values = args.steps_per_call.split(",")
    if not all(v.isdigit() and int(v) >= 1 for v in values):
        _refuse(f"--steps_per_call={args.steps_per_call}: give positive integers, e.g. 1,4,16")
    missing = [p for p in args.presets.split(",") if p and not os.path.isfile(p)]
    if missing:
        _refuse(f"--presets: no flagfile {missing[0]}")
    if not args.out or os.path.isdir(args.out):
        _refuse(f"--out={args.out} must name a JSON file to write")
    try:
        paths.check_writable(os.path.dirname(os.path.abspath(args.out)), "out")
    except UserError as error:
        _refuse(str(error))


def _overrides(text):
    values = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        values[key] = json.loads(value) if value[:1].isdigit() or value in ("true", "false") \
            else value
    return values


def preset_config(path):
    """The TrainConfig a train.py flagfile describes (train.py's own flag parsing)."""
    from absl import flags

    from tfgan_cifar import cli
    from tfgan_cifar.config import TrainConfig

    flag_values = flags.FlagValues()
    cli.define_flags(TrainConfig, flag_values)
    cli.parse_flags(["bench", f"--flagfile={path}"], flag_values)
    return cli.config_from_flags(TrainConfig, flag_values, warn=False)


def configs(args):
    """(name, TrainConfig) of every measurement: each preset, or each model at its batch size;
    then each --precisions value and each --steps_per_call value, with --extra and the run-wide
    settings applied. Each has a temporary workdir of its own."""
    from tfgan_cifar.config import TrainConfig

    run_wide = dict(jit_compile=args.jit_compile, distribute=args.distribute,
                    **_overrides(args.extra))
    if args.presets:
        bases = [(os.path.splitext(os.path.basename(p))[0], preset_config(p))
                 for p in args.presets.split(",") if p]
    else:
        batch_sizes = dict(item.split(":") for item in args.batch_sizes.split(","))
        bases = [(m, TrainConfig(model=m, batch_size=int(batch_sizes[m])))
                 for m in args.models.split(",")]
    return [(name, dataclasses.replace(base, precision=precision, **run_wide,
                                       **whole_calls(base.steps, k),
                                       workdir=tempfile.mkdtemp(prefix="bench_")).resolved())
            for name, base in bases for precision in args.precisions.split(",")
            for k in map(int, args.steps_per_call.split(","))]


def whole_calls(steps, steps_per_call):
    """The settings of a run of `steps_per_call` steps per call: --steps rounded up to whole
    calls, cadences at each call (the benchmark writes, logs and evaluates nothing)."""
    return dict(steps_per_call=steps_per_call, steps=-(-steps // steps_per_call) * steps_per_call,
                log_every=steps_per_call, sample_every=0, checkpoint_every=0, eval_every=0)


def cpu_bf16():
    """(CPU model, [its bfloat16 instruction flags]) from /proc/cpuinfo; (None, []) where it
    cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None, []
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), None)
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), []))
    return model, [flag for flag in BF16_FLAGS if flag in flags]


def cpu_line(model, flags):
    """One line on the CPU's bfloat16 capability, which decides whether mixed_bfloat16 pays."""
    if flags:
        return f"CPU: {model}; bfloat16 instructions: {', '.join(flags)}"
    return (f"CPU: {model or 'unknown'}; no bfloat16 instructions ({' or '.join(BF16_FLAGS)}): "
            "mixed_bfloat16 is emulated there and likely slower than float32")


def peak_share(row, peaks):
    """The row's TFLOP/s as a fraction of the device's dense peak for its precision (float32
    as TF32 on JAX, its default on NVIDIA GPUs), or None without a known peak."""
    if not peaks or not row.get("tflops"):
        return None
    if row["precision"] != "float32":
        kind = "bf16"
    else:
        kind = "tf32" if row["backend"] == "jax" else "fp32"
    return row["tflops"] / peaks[kind]


def worker(args):
    """Runs in a process whose KERAS_BACKEND is set: prints one JSON line per measurement."""
    import keras
    import numpy as np

    if args.cpu_devices and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)

    from tfgan_cifar.data import ImageSet
    from tfgan_cifar.training.loop import make_trainer

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    data = ImageSet(rng.integers(0, 256, (10000, 32, 32, 3), dtype=np.uint8),
                    rng.integers(0, 10, 10000).astype(np.int32), [str(i) for i in range(10)],
                    "synthetic")
    for name, config in configs(args):
        trainer = make_trainer(config, data)
        trainer.start()
        k = config.steps_per_call
        calls = -(-args.steps // k)
        started = time.perf_counter()
        for _ in range(-(-args.warmup // k)):
            trainer.train_steps(k)
        trainer.pop_metrics()  # waits for the device
        compile_seconds = time.perf_counter() - started
        rates = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            for _ in range(calls):
                trainer.train_steps(k)
            trainer.pop_metrics()
            rates.append(calls * k / (time.perf_counter() - started))
        steps_per_sec = statistics.median(rates)
        flops = None
        if backend == "jax":
            # The lowered (not compiled) program: on a GPU the compiled one hands convolutions
            # to cuDNN calls that XLA's cost analysis does not count (0.43 instead of 33.8
            # GFLOP per DCGAN step on an H200).
            lowered = trainer._train_step.lower(trainer.state, trainer.key, trainer.images,
                                                trainer.labels)
            analysis = lowered.cost_analysis()
            analysis = analysis[0] if isinstance(analysis, list) else analysis
            flops = float((analysis or {}).get("flops", 0.0)) or None
        print(json.dumps({
            "kind": "train", "backend": backend, "device": trainer.device, "name": name,
            "model": config.model, "arch": config.arch, "precision": config.precision,
            "devices": trainer.cluster.replicas, "steps_per_call": k,
            "batch_size": config.batch_size, "n_critic": config.n_critic,
            "width": config.width, "attention_res": list(config.attention_res),
            "steps_per_sec": steps_per_sec, "steps_per_sec_all": rates,
            "images_per_sec": steps_per_sec * config.batch_size * config.n_critic,
            "flops_per_step": flops,
            "tflops": flops * steps_per_sec / 1e12 if flops else None,
            "warmup_seconds": compile_seconds,
        }), flush=True)
    if args.fid_images:
        images = rng.uniform(-1, 1, (args.fid_images, 32, 32, 3)).astype(np.float32)
        for precision in args.fid_precisions.split(","):
            for network, extractor in fid_extractors(precision):
                print(json.dumps({"kind": "fid", "backend": backend, "device": trainer.device,
                                  "network": network, "precision": precision,
                                  "images_per_sec": features_per_second(extractor, images)}),
                      flush=True)


def fid_extractors(precision):
    """(network, feature extractor) of both FID networks under the dtype policy `precision`,
    with random weights: their speed does not depend on them."""
    import keras
    import numpy as np

    from tfgan_cifar.metrics import inception, inception_2015

    folder = tempfile.mkdtemp(prefix="bench_fid_")
    network = inception_2015.build_network()
    arrays = {}
    for name, layer in inception_2015.conv_layers(network).items():
        channels = layer.kernel.shape[-1]
        arrays.update({f"{name}.kernel": keras.ops.convert_to_numpy(layer.kernel),
                       f"{name}.beta": np.zeros(channels, np.float32),
                       f"{name}.mean": np.zeros(channels, np.float32),
                       f"{name}.var": np.ones(channels, np.float32)})
    standard_path = os.path.join(folder, "standard.npz")
    np.savez(standard_path, **arrays)
    yield "standard", inception_2015.StandardFeatureExtractor(standard_path, batch_size=100,
                                                               dtype=precision)
    keras_path = os.path.join(folder, "inception.weights.h5")
    keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg",
                                   input_shape=(299, 299, 3)).save_weights(keras_path)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        extractor = inception.FeatureExtractor(keras_path, batch_size=100)
    finally:
        keras.config.set_dtype_policy(previous)
    yield "keras", extractor


def features_per_second(extractor, images):
    """Median images/s of three feature extractions of `images`, after a compiling one."""
    extractor(images[:100])
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        extractor(images)
        rates.append(len(images) / (time.perf_counter() - started))
    return statistics.median(rates)


def main():
    args = _parse()
    if args.worker:
        return worker(args)
    results, failed = [], []
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        if args.cpu_devices:
            env["XLA_FLAGS"] = (f"{env.get('XLA_FLAGS', '')} "
                                f"--xla_force_host_platform_device_count={args.cpu_devices}")
        command = [sys.executable, os.path.abspath(__file__), "--worker=1", *sys.argv[1:]]
        process = subprocess.run(command, env=env, capture_output=True, text=True)
        lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
        if process.returncode != 0:
            failed.append(backend)
            print(f"{backend}: worker failed\n{process.stderr[-2000:]}", file=sys.stderr)
        results += [json.loads(line) for line in lines]
    flops = {(r["name"], r["batch_size"]): r["flops_per_step"] for r in results
             if r["kind"] == "train" and r["flops_per_step"] and r["precision"] == "float32"}
    peaks = next((p for name, p in PEAKS.items() for r in results if name in r["device"]), None)
    cpu_model, cpu_flags = cpu_bf16()
    print(f"{'backend':<11}{'device':<28}{'devices':>8} {'model':<12}{'precision':<15}{'batch':>6}"
          f"{'K':>4}{'steps/s':>10}{'images/s':>10}{'GFLOP/step':>12}{'TFLOP/s':>9}"
          f"{'of peak':>9}")
    for r in results:
        if r["kind"] == "train":
            r["flops_per_step"] = r["flops_per_step"] or flops.get((r["name"], r["batch_size"]))
            r["tflops"] = r["flops_per_step"] * r["steps_per_sec"] / 1e12 \
                if r["flops_per_step"] else None
            r["peak_share"] = peak_share(r, peaks)
            gflop = f"{r['flops_per_step'] / 1e9:.1f}" if r["flops_per_step"] else "n/a"
            tflops = f"{r['tflops']:.2f}" if r["tflops"] else "n/a"
            share = f"{100 * r['peak_share']:.1f}%" if r["peak_share"] else "n/a"
            print(f"{r['backend']:<11}{r['device'][:27]:<28}{r['devices']:>8} {r['name']:<12}"
                  f"{r['precision']:<15}{r['batch_size']:>6}{r['steps_per_call']:>4}"
                  f"{r['steps_per_sec']:>10.2f}{r['images_per_sec']:>10.0f}{gflop:>12}"
                  f"{tflops:>9}{share:>9}")
    for r in results:
        if r["kind"] == "fid":
            print(f"FID features ({r['backend']}, {r['device']}, {r['network']} network, "
                  f"{r['precision']}): {r['images_per_sec']:.1f} images/s at 299x299")
    print(cpu_line(cpu_model, cpu_flags))
    if peaks:
        print(f"GPU peak (dense): FP32 {peaks['fp32']}, TF32 {peaks['tf32']}, BF16 "
              f"{peaks['bf16']} TFLOP/s")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"host": platform.node(), "python": platform.python_version(),
                   "args": {k: v for k, v in vars(args).items() if k != "worker"},
                   "results": results, "gpu_peak_tflops": peaks,
                   "cpu": {"model": cpu_model, "bf16_flags": cpu_flags}}, f, indent=2)
    print(f"wrote {args.out}")
    if failed:
        print(f"error: the {', '.join(failed)} worker failed (see above); the other results "
              f"are in {args.out}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

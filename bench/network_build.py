"""Seconds to build (create every weight of) a preset's G and D, each in a fresh process, with
the package's NumPy-drawn kernel initialisers (`nn/initializers.py`) and, for comparison,
Keras's own. Prints the median wall and CPU seconds of --repeats processes.

  python bench/network_build.py [--backends=jax,tensorflow] [--models=sagan,dcgan]
                                [--width=4] [--repeats=3]

XLA_FLAGS and JAX_PLATFORMS pass through (JAX_PLATFORMS defaults to cpu here).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_once(model, width, initializers):
    """In this process: builds `model`'s networks, returns (wall, cpu) seconds."""
    import keras

    from tfgan_cifar import nn
    from tfgan_cifar.config import TrainConfig
    from tfgan_cifar.nn import initializers as ours

    if initializers == "keras":
        ours.INITIALIZERS.update(
            orthogonal=keras.initializers.Orthogonal, glorot=keras.initializers.GlorotUniform,
            normal=lambda: keras.initializers.RandomNormal(stddev=0.02))
    config = TrainConfig(model=model, num_classes=10, width=width).resolved()
    keras.utils.set_random_seed(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for network in nn.build_models(config):
        network.build_weights()
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="jax,tensorflow")
    parser.add_argument("--models", default="sagan,dcgan")
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(build_once(*json.loads(args.child))))
        return 0
    print(f"{'backend':12s}{'model':8s}{'initialisers':14s}{'wall s':>8s}{'cpu s':>8s}")
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
               "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
        for model in args.models.split(","):
            for initializers in ("package", "keras"):
                child = json.dumps([model, args.width, initializers])
                runs = [json.loads(subprocess.run(
                    [sys.executable, __file__, f"--child={child}"], env=env, check=True,
                    capture_output=True, text=True).stdout.splitlines()[-1])
                        for _ in range(args.repeats)]
                wall, cpu = (statistics.median(run[i] for run in runs) for i in (0, 1))
                print(f"{backend:12s}{model:8s}{initializers:14s}{wall:8.2f}{cpu:8.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Why --steps_per_call > 1 is slow with JAX on a CPU: a convolution, and its kernel gradient,
unrolled K times in one jit-compiled function against the same in a `jax.lax.fori_loop`
(jax-ml/jax#12868). Prints the median seconds of one call of each.

  JAX_PLATFORMS=cpu python bench/jax_loop_conv.py [--repeats=5] [--iterations=4]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

LAYOUTS = {"NHWC": (("NHWC", "HWIO", "NHWC"), (128, 16, 16, 64), (3, 3, 64, 64)),
           "NCHW": (("NCHW", "OIHW", "NCHW"), (128, 64, 16, 16), (64, 64, 3, 3))}


def median_seconds(function, args, repeats):
    jax.block_until_ready(function(*args))  # compiles
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bodies(dimension_numbers):
    def conv(x, kernel):
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                            dimension_numbers=dimension_numbers)

    def kernel_gradient(x, kernel):  # a tiny share of it carried on, so no step is dead code
        gradient = jax.grad(lambda k: jnp.sum(conv(x, k) ** 2))(kernel)
        return x + 1e-9 * jnp.sum(gradient)

    return {"forward": conv, "kernel gradient": kernel_gradient}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    count = args.iterations
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}; {count} iterations per call")
    for layout, (numbers, x_shape, kernel_shape) in LAYOUTS.items():
        x = jnp.asarray(rng.normal(size=x_shape), jnp.float32)
        kernel = jnp.asarray(0.01 * rng.normal(size=kernel_shape), jnp.float32)
        for name, body in bodies(numbers).items():
            def unrolled(x, kernel, body=body):
                for _ in range(count):
                    x = body(x, kernel)
                return x

            def looped(x, kernel, body=body):
                return jax.lax.fori_loop(0, count, lambda _, x: body(x, kernel), x)

            times = [median_seconds(jax.jit(f), (x, kernel), args.repeats)
                     for f in (unrolled, looped)]
            print(f"{layout} {name:16s} unrolled {times[0]:8.4f} s   fori_loop {times[1]:8.4f} s"
                  f"   ({times[1] / times[0]:.1f}x)")


if __name__ == "__main__":
    main()

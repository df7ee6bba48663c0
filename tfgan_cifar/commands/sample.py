"""Draw images from a trained generator.

  tfgan-sample RUN_OR_EXPORT --num=64 --out=grid.png           # one grid
  tfgan-sample RUN_OR_EXPORT --num=1000 --out=samples/          # one PNG per image
  tfgan-sample RUN_OR_EXPORT --num=50000 --out=samples.npz      # uint8 arrays
  tfgan-sample RUN_OR_EXPORT --class=3 --truncation=1.0 --out=cats.png
  tfgan-sample RUN_OR_EXPORT --interpolate --num=6 --out=walk.png   # and walk.gif
  tfgan-sample RUN_OR_EXPORT --class_sweep --num=4 --out=sweep.png

RUN_OR_EXPORT is a run directory (its best generator, else its final one) or an export
directory. --out decides the output: a folder gets one PNG per image, a .png path one grid, a
.npz path the uint8 arrays (with the labels and noise). --interpolate draws --num latent walks
of --frames images each (a grid, one walk per row, and an animated GIF beside it);
--class_sweep draws --num noise vectors, each across every class (one class per column).
"""

import dataclasses
import math
import os
from typing import Optional

import numpy as np

from tfgan_cifar import cli  # first: it quiets TensorFlow's C++ logging (tf_log_filter)
from tfgan_cifar import paths
from tfgan_cifar.config import check_settings, setting
from tfgan_cifar.errors import UserError

FILE_OUTPUTS = (".png", ".npz")


@dataclasses.dataclass(frozen=True)
class SampleOptions:
    """The settings of tfgan-sample; the run or export directory is its positional argument."""

    # Checked here, by kind of output, instead of as a folder by cli.config_from_flags.
    output_folders = ()

    num: int = setting(64, "Images to draw (with --interpolate: walks; with --class_sweep: "
                       "noise vectors).", "run", minimum=1)
    out: str = setting("samples.png", "Output: a folder (one PNG per image), a .png path (one "
                       "grid) or a .npz path (uint8 images, labels and noise).", "outputs")
    label: Optional[int] = setting(None, "Class of every image (--class; conditional "
                                   "generators; default: classes drawn uniformly).", "run",
                                   minimum=0, aliases=("class",))
    seed: int = setting(0, "Seed of the noise and of the drawn classes.", "run", minimum=0)
    truncation: Optional[float] = setting(
        None, "Truncation trick: redraw noise values beyond [-t, t] (e.g. 1.0: less variety, "
        "more typical images).", "run")
    ema: bool = setting(False, "Require the exponential-moving-average weights: refused for "
                        "a generator trained without --ema_decay (an export of a run with "
                        "EMA always holds them).", "run")
    interpolate: bool = setting(False, "Latent walks: --num rows of --frames images, each "
                                "from one noise vector to another (and an animated GIF).",
                                "outputs")
    frames: int = setting(10, "Images per latent walk of --interpolate.", "outputs", minimum=2)
    class_sweep: bool = setting(False, "The same noise across every class: --num rows, one "
                                "class per column (conditional generators).", "outputs")

    def validate(self):
        """Raises UserError with one line naming the flag when a value cannot work."""
        check_settings(self)
        if self.truncation is not None and not self.truncation > 0:
            raise UserError(f"--truncation must be positive, got {self.truncation}")
        if self.interpolate and self.class_sweep:
            raise UserError("pass either --interpolate or --class_sweep, not both")
        if self.class_sweep and self.label is not None:
            raise UserError("--class_sweep draws every class: leave --class out")
        kind = output_kind(self.out)
        target = self.out if kind == "folder" else os.path.dirname(self.out) or "."
        paths.check_writable(target, "out")
        if kind != "folder" and os.path.isdir(self.out):
            raise UserError(f"--out={self.out} is a folder: remove its suffix to write one "
                            "PNG per image into it, or pass a file path")


def output_kind(out):
    """"png", "npz" or "folder": what --out asks for. A path with another suffix is refused."""
    suffix = os.path.splitext(out)[1].lower()
    if suffix in FILE_OUTPUTS:
        return suffix[1:]
    if suffix and not os.path.isdir(out):
        raise UserError(f"--out={out}: pass a folder (one PNG per image), a .png path (one "
                        "grid) or a .npz path (arrays)")
    return "folder"


def _check_generator(generator, options):
    if options.ema and not generator.ema:
        raise UserError(f"--ema: {generator.path} was trained without --ema_decay, so it has "
                        "no moving-average weights; leave --ema out")
    wants_classes = options.label is not None or options.class_sweep
    if wants_classes and not generator.conditional:
        flag = "--class" if options.label is not None else "--class_sweep"
        raise UserError(f"{flag} needs a conditional generator, and {generator.path} is "
                        "unconditional")
    if options.label is not None and options.label >= generator.num_classes:
        raise UserError(f"--class={options.label} is out of range: the generator has classes "
                        f"0..{generator.num_classes - 1}")


def draw(generator, options):
    """(images uint8 [rows * cols, 32, 32, 3], labels or None, noise, rows, cols) as the
    options ask."""
    from tfgan_cifar.sampling import slerp

    if options.class_sweep:
        rows, cols = options.num, generator.num_classes
        z = np.repeat(generator.noise(rows, options.seed, options.truncation), cols, axis=0)
        labels = np.tile(np.arange(cols), rows)
    elif options.interpolate:
        rows, cols = options.num, options.frames
        ends = generator.noise(2 * rows, options.seed, options.truncation)
        fractions = np.linspace(0.0, 1.0, cols)
        z = np.concatenate([slerp(ends[2 * r], ends[2 * r + 1], fractions) for r in range(rows)])
        labels = _labels(generator, options, rows)
        labels = None if labels is None else np.repeat(labels, cols)
    else:
        cols = math.ceil(math.sqrt(options.num))
        rows = math.ceil(options.num / cols)
        z = generator.noise(options.num, options.seed, options.truncation)
        labels = _labels(generator, options, options.num)
    return generator.generate(z, labels), labels, z, rows, cols


def _labels(generator, options, n):
    """--class for all `n` images, else classes drawn with --seed; None when unconditional."""
    if not generator.conditional:
        return None
    if options.label is not None:
        return np.full(n, options.label, np.int32)
    return np.random.default_rng([options.seed, 1]).integers(0, generator.num_classes, n)


def write(images, labels, z, rows, cols, options):
    """Writes the images where --out says; returns the paths written."""
    from tfgan_cifar.viz import grids

    kind = output_kind(options.out)
    if kind == "npz":
        from tfgan_cifar.atomic import replacing

        arrays = {"images": images, "z": z}
        if labels is not None:
            arrays["labels"] = np.asarray(labels, np.int32)
        if options.interpolate or options.class_sweep:
            arrays = {k: v.reshape(rows, cols, *v.shape[1:]) for k, v in arrays.items()}
        with replacing(options.out, "wb") as f:
            np.savez(f, **arrays)
        return [options.out]
    if kind == "folder":
        os.makedirs(options.out, exist_ok=True)
        written = []
        for index, image in enumerate(images):
            name = f"{index:05d}" + ("" if labels is None else f"_class{labels[index]}")
            written.append(grids.save_png(image, os.path.join(options.out, name + ".png")))
        return written
    padded = np.concatenate([images, np.full((rows * cols - len(images), *images.shape[1:]),
                                             255, np.uint8)])
    written = [grids.save_png(grids.image_grid(padded, rows, cols), options.out, scale=2)]
    if options.interpolate:
        written.append(_write_gif(images.reshape(rows, cols, *images.shape[1:]),
                                  os.path.splitext(options.out)[0] + ".gif"))
    return written


def _write_gif(walks, path):
    """An animated GIF of latent walks [rows, frames, H, W, 3]: frame f shows image f of every
    walk side by side, played forth and back."""
    from PIL import Image

    from tfgan_cifar.atomic import replacing
    from tfgan_cifar.viz import grids

    rows, frames = walks.shape[:2]
    pictures = [Image.fromarray(grids.image_grid(walks[:, f], 1, rows)).resize(
        (4 * (2 + rows * 34), 4 * 36), Image.Resampling.NEAREST) for f in range(frames)]
    sequence = pictures + pictures[-2:0:-1]
    with replacing(path, "wb") as f:
        sequence[0].save(f, format="GIF", save_all=True, append_images=sequence[1:],
                         duration=120, loop=0)
    return path


def sample(argv, flag_values):
    """Draws and writes the images the positional argument and the flags describe."""
    if len(argv) != 2:
        raise UserError("name one RUN_OR_EXPORT: a run directory (train.py's --workdir) or an "
                        "export directory")
    options = cli.config_from_flags(SampleOptions, flag_values)
    from tfgan_cifar.sampling import load_generator

    generator = load_generator(argv[1])
    _check_generator(generator, options)
    written = write(*draw(generator, options), options)
    what = (f"{len(written)} images to {options.out}" if output_kind(options.out) == "folder"
            else " and ".join(written))
    print(f"wrote {what} from {generator.path} (step {generator.step})", flush=True)
    return 0


def main(argv=None):
    """`tfgan-sample RUN_OR_EXPORT --num=N --out=PATH`: draws as the command line (or `argv`,
    program name first) says."""
    return cli.run(sample, SampleOptions, argv, positional=True, usage=__doc__)

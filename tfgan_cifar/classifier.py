"""Train the CIFAR-10 reference classifier that the quality metrics use (`--classifier`).

  tfgan-classifier --image_dir=PATH/cifar10/train [--epochs=10 --out=DIR]

Reports the accuracy on the `test` folder beside --image_dir (or --test_dir) and writes
<out>/classifier_cifar10.keras with classifier_cifar10.json (accuracy, data source, settings)
beside it; --out defaults to the cache folder (~/.cache/tfgan_cifar), where later runs find it
(`--classifier=~/.cache/tfgan_cifar`).
"""

import dataclasses
import os
import platform
import sys
from typing import Optional

from tfgan_cifar import cli
from tfgan_cifar.config import TrainConfig, check_settings, same_as, setting
from tfgan_cifar.errors import UserError
from tfgan_cifar.paths import CACHE_DIR


@dataclasses.dataclass(frozen=True)
class ClassifierOptions:
    """The settings of `python -m tfgan_cifar.classifier`."""

    image_dir: Optional[str] = setting(
        None, "Training images: a folder with one subfolder per class, e.g. cifar10/train.",
        "data")
    test_dir: Optional[str] = setting(
        None, "Test images (same layout). Default: the 'test' folder beside --image_dir.",
        "data")
    epochs: int = setting(4, "Training epochs (their time: docs/performance.md).", "run",
                          minimum=1)
    batch_size: int = setting(512, "Batch size.", "run", minimum=1)
    width: int = setting(32, "Channel width w of the network (groups of w, 4w and 4w channels; "
                         "4w penultimate features).", "architecture", minimum=1)
    learning_rate: float = setting(1.5, "Peak of the triangular SGD-Nesterov learning rate for "
                                   "a batch of 1024 images (scaled linearly with "
                                   "--batch_size).", "objective")
    noise: float = setting(0.05, "Gaussian noise on half the training images, its standard "
                           "deviation uniform in [0, noise] on the [-1, 1] scale, so that noisy "
                           "generated images are not all put in one class (0: off; 0.1: more "
                           "robust, less test accuracy).",
                           "objective", minimum=0.0)
    mixed_precision: bool = setting(False, "Train under mixed_bfloat16: for GPUs and CPUs with "
                                    "bfloat16 units (AMX); far slower on a CPU without them "
                                    "(docs/performance.md).", "run")
    seed: int = same_as(TrainConfig, "seed")
    out: str = setting(CACHE_DIR, "Folder of "
                       "classifier_cifar10.keras and its .json record.", "paths")

    def validate(self):
        """Raises UserError with one line naming the flag when a value cannot work."""
        check_settings(self)
        if not self.image_dir:
            raise UserError("pass --image_dir=PATH, a folder with one subfolder per class "
                            "(e.g. cifar10/train)")
        if not self.learning_rate > 0:
            raise UserError(f"--learning_rate must be positive, got {self.learning_rate}")


def _test_dir(options):
    if options.test_dir:
        return options.test_dir
    from tfgan_cifar import data as data_lib

    return data_lib.test_folder_beside(options.image_dir, "pass --test_dir=PATH")


def train(argv, flag_values):
    """Trains, tests and saves the reference classifier the flags describe."""
    options = cli.config_from_flags(ClassifierOptions, flag_values)
    from tfgan_cifar import data as data_lib
    from tfgan_cifar import reference_classifier

    test_dir = _test_dir(options)
    train = data_lib.load_image_folder(options.image_dir)
    test = data_lib.load_image_folder(test_dir)
    if test.class_names != train.class_names:
        raise UserError(f"the classes of {test_dir} ({', '.join(test.class_names)}) differ "
                        f"from those of --image_dir ({', '.join(train.class_names)})")
    print(f"training the reference classifier on {len(train)} images in "
          f"{len(train.class_names)} classes from {train.source}", flush=True)
    model, settings = reference_classifier.train_classifier(
        train, epochs=options.epochs, batch_size=options.batch_size, width=options.width,
        learning_rate=options.learning_rate, noise=options.noise, seed=options.seed,
        mixed_precision=options.mixed_precision)
    accuracy = reference_classifier.ReferenceClassifier(model).accuracy(test.images, test.labels)
    import keras

    info = {"test_accuracy": accuracy, "test_images": len(test), "test_source": test.source,
            "train_images": len(train), "train_source": train.source,
            "class_names": train.class_names, "settings": settings,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "keras": keras.__version__, "backend": keras.backend.backend()}
    path = reference_classifier.save(model, os.path.join(os.path.expanduser(options.out),
                                                   reference_classifier.DEFAULT_NAME), info)
    print(f"test accuracy {accuracy:.4f} on {len(test)} images of {test.source} after "
          f"{options.epochs} epochs ({settings['seconds']:.0f}s); wrote {path} and "
          f"{reference_classifier.record_path(path)}", flush=True)
    return 0


def main(argv=None):
    """`tfgan-classifier` (`python -m tfgan_cifar.classifier`): trains as the command line (or
    `argv`, program name first) says."""
    return cli.run(train, ClassifierOptions, argv, usage=__doc__)


if __name__ == "__main__":
    sys.exit(main())

"""Calibration of the quality metrics: their values for real images, intact and degraded.

  python bench/calibration.py --image_dir=PATH/cifar10/train --classifier=~/.cache/tfgan_cifar
  python bench/calibration.py --image_dir=PATH/cifar10/train --classifier=... \\
      --inception_weights=PATH --samples=10000 --out=bench/calibration

Scores --samples training images against the test split (the reference of every GAN
evaluation): as they are, blurred (Gaussian, sigma 1 pixel), noised (Gaussian, sigma 0.1 on
the [-1, 1] scale, about 13 grey levels) and with half the classes removed (0-4 of CIFAR-10's),
with the reference classifier's metrics (class accuracy uses the true labels) and FID and
precision/recall in the features of --fid_network: the standard network of published FIDs
(default once `python -m tfgan_cifar.fid_weights` has made its weights), or Keras's InceptionV3
(given --inception_weights). Writes <out>/calibration.json and
<out>/calibration.md (the calibration table of docs/evaluation.md).
"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from quality import machine  # noqa: E402  (bench/quality.py: this folder is on sys.path)

from tfgan_cifar.paths import CACHE_DIR  # noqa: E402
from tfgan_cifar.pixels import to_float  # noqa: E402

COLUMNS = (("fd_classifier", "FD_classifier", "{:.2f}"), ("class_acc", "class accuracy",
                                                          "{:.3f}"),
           ("class_kl", "class KL", "{:.3f}"), ("precision_clf", "precision (clf)", "{:.3f}"),
           ("recall_clf", "recall (clf)", "{:.3f}"), ("density_clf", "density (clf)", "{:.3f}"),
           ("coverage_clf", "coverage (clf)", "{:.3f}"),
           ("fid", "FID", "{:.2f}"), ("precision", "precision", "{:.3f}"),
           ("recall", "recall", "{:.3f}"))
NOISE_SIGMA = 0.1
BLUR_SIGMA = 1.0


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_dir", required=True, help="training images; its sibling "
                        "'test' folder is the reference")
    parser.add_argument("--classifier", required=True, help="reference classifier")
    parser.add_argument("--inception_weights", help="local InceptionV3 notop weights (FID)")
    parser.add_argument("--fid_network", choices=("standard", "keras"),
                        help="default: standard when its weights are in --cache_dir, else "
                        "keras with --inception_weights, else no FID")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--cache_dir", default=CACHE_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "calibration"))
    return parser.parse_args()


def degraded_sets(train, samples, seed):
    """{name: (float images in [-1, 1], labels)}: the real and degraded sets to score."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(train))[:samples]
    images = to_float(train.images[pick])
    labels = train.labels[pick]
    kept = len(train.class_names) // 2
    half = rng.permutation(np.flatnonzero(train.labels < kept))[:samples]
    noised = np.clip(images + rng.normal(0, NOISE_SIGMA, images.shape), -1, 1)
    return {
        "real training images": (images, labels),
        f"blurred (Gaussian, σ = {BLUR_SIGMA:g} px)": (
            gaussian_filter(images, sigma=(0, BLUR_SIGMA, BLUR_SIGMA, 0)), labels),
        f"noised (Gaussian, σ = {NOISE_SIGMA:g} on [-1, 1])": (noised.astype(np.float32),
                                                                labels),
        f"half the classes removed (0-{kept - 1} only)": (
            to_float(train.images[half]), train.labels[half]),
    }


def _batches(images, labels, size=500):
    for start in range(0, len(images), size):
        yield images[start:start + size], labels[start:start + size]


def main():
    """Scores every set and writes calibration.json and calibration.md under --out."""
    args = _parse()
    from tfgan_cifar import cli  # noqa: F401  (quiets TensorFlow's logging first)
    from tfgan_cifar import data, fid_weights, reference_classifier
    from tfgan_cifar.config import TrainConfig
    from tfgan_cifar.metric_schema import fid_label
    from tfgan_cifar.metrics import fid
    from tfgan_cifar.metrics.evaluator import ClassifierEvaluator, Evaluator

    network = args.fid_network or ("standard" if fid_weights.have_weights(args.cache_dir)
                                   and not args.inception_weights
                                   else "keras" if args.inception_weights else None)
    config = TrainConfig(image_dir=args.image_dir, reference_classifier=args.classifier,
                         inception_weights=args.inception_weights, fid_samples=args.samples,
                         fid_cache_dir=args.cache_dir, fid_network=network or "keras")
    train = data.load_image_folder(args.image_dir)
    classifier = reference_classifier.load(args.classifier, len(train.class_names))
    scorer = ClassifierEvaluator(config, classifier)
    inception = Evaluator.create(config, required=True) if network else None
    results = {}
    for name, (images, labels) in degraded_sets(train, args.samples, args.seed).items():
        result = scorer.score(_batches(images, labels), conditional=True)
        if inception is not None:
            position = {"next": 0}

            def sample(n, images=images):
                start = position["next"]
                position["next"] = start + n
                return images[start:start + n]

            result.update(fid.compute_metrics(sample, len(images), inception.extractor,
                                              inception.reference, prdc=True))
        results[name] = result
        print(name, {k: round(result[k], 4) for k, _, _ in COLUMNS if k in result}, flush=True)
    os.makedirs(args.out, exist_ok=True)
    host = machine()
    with open(os.path.join(args.out, "calibration.json"), "w") as f:
        json.dump({"machine": host, "args": vars(args), "fid_network": network,
                   "classifier": classifier.info,
                   "reference": scorer.reference_description, "results": results}, f, indent=2)
    shown = [(key, fid_label(network) if key == "fid" else title, fmt)
             for key, title, fmt in COLUMNS if any(key in r for r in results.values())]
    lines = ["| images | " + " | ".join(title for _, title, _ in shown) + " |",
             "| --- | " + " | ".join("---:" for _ in shown) + " |"]
    for name, result in results.items():
        lines.append(f"| {name} | " + " | ".join(fmt.format(result[key]) for key, _, fmt
                                                 in shown) + " |")
    lines += ["", f"{args.samples} images of each kind vs {args.samples} test images; "
              f"`python bench/calibration.py --samples={args.samples}` on {host}."]
    with open(os.path.join(args.out, "calibration.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

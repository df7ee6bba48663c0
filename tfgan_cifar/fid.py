"""FID and KID from the 2048-d pool features of Keras's InceptionV3 (ImageNet weights).

Backend-neutral (keras, keras.ops, NumPy, SciPy). Images in [-1, 1] are resized to 299x299,
which is what `inception_v3.preprocess_input` expects, and scored in float64. Reference
statistics are cached on disk under a hash of everything they depend on.
"""

import dataclasses
import hashlib
import json
import os
import tempfile

import keras
import numpy as np
import scipy.linalg
from absl import logging

INPUT_SIZE = 299
FEATURES = 2048


class InceptionWeightsUnavailable(Exception):
    """The ImageNet weights could not be downloaded and no local file was given."""


class FeatureExtractor:
    """InceptionV3 (include_top=False, average pooling) as a function images -> features."""

    def __init__(self, weights_path=None, batch_size=50, resize_method="bilinear"):
        if weights_path is not None and not os.path.isfile(weights_path):
            raise ValueError(f"--inception_weights={weights_path} is not a file")
        try:
            self.model = keras.applications.InceptionV3(
                include_top=False, weights=weights_path or "imagenet", pooling="avg",
                input_shape=(INPUT_SIZE, INPUT_SIZE, 3))
        except Exception as error:  # a failed download raises several kinds of errors
            if weights_path is not None:
                raise
            raise InceptionWeightsUnavailable(
                "could not download the InceptionV3 ImageNet weights "
                f"({type(error).__name__}); pass --inception_weights=PATH (a local "
                "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5)") from error
        self.batch_size = batch_size
        self.resize_method = resize_method
        if weights_path is None:
            weights = "imagenet"
        else:
            stat = os.stat(weights_path)
            weights = {"path": os.path.abspath(weights_path), "bytes": stat.st_size,
                       "mtime": int(stat.st_mtime)}
        self.cache_key = {"weights": weights, "resize": resize_method, "size": INPUT_SIZE}

    def __call__(self, images):
        """Features (N, 2048) float64 of images (N, H, W, 3) in [-1, 1]."""
        images = np.asarray(images, np.float32)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            x = keras.ops.image.resize(images[start:start + self.batch_size],
                                       (INPUT_SIZE, INPUT_SIZE),
                                       interpolation=self.resize_method)
            x = keras.ops.clip(x, -1.0, 1.0)
            chunks.append(keras.ops.convert_to_numpy(self.model(x, training=False)))
        if not chunks:
            return np.zeros((0, FEATURES))
        return np.concatenate(chunks).astype(np.float64)


class FeatureStats:
    """Streaming mean and covariance (float64), plus up to `max_kid_features` rows for KID."""

    def __init__(self, max_kid_features=10000):
        self.max_kid_features = max_kid_features
        self.count = 0
        self._sum = None
        self._outer = None
        self._kid = []

    def update(self, features):
        features = np.asarray(features, np.float64)
        if self._sum is None:
            dim = features.shape[1]
            self._sum, self._outer = np.zeros(dim), np.zeros((dim, dim))
        self.count += len(features)
        self._sum += features.sum(axis=0)
        self._outer += features.T @ features
        kept = sum(len(f) for f in self._kid)
        if kept < self.max_kid_features:
            self._kid.append(features[: self.max_kid_features - kept].astype(np.float32))

    def mean(self):
        return self._sum / self.count

    def covariance(self):
        mean = self.mean()
        return (self._outer - self.count * np.outer(mean, mean)) / (self.count - 1)

    def kid_features(self):
        return np.concatenate(self._kid) if self._kid else np.zeros((0, 0), np.float32)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) in float64.

    Near-singular products are retried with eps * I added to both covariances; an imaginary
    part of the square root larger than 1e-3 is reported in a warning before being dropped.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        logging.warning("FID: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(len(sigma1)) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.max(np.abs(covmean.imag))
        if imaginary > 1e-3:
            logging.warning("FID: the matrix square root has an imaginary part of %.3g "
                            "(numerical error); using its real part", imaginary)
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def kernel_inception_distance(features1, features2, num_subsets=100, subset_size=1000, seed=0):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

    Returns (mean, standard error of the mean over subsets).
    """
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    m = min(len(f1), len(f2), subset_size)
    if m < 2:
        return float("nan"), float("nan")
    dim = f1.shape[1]
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        kxx = (x @ x.T / dim + 1) ** 3
        kyy = (y @ y.T / dim + 1) ** 3
        kxy = (x @ y.T / dim + 1) ** 3
        estimates[i] = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                        - 2 * kxy.mean())
    return float(estimates.mean()), float(estimates.std(ddof=1) / np.sqrt(num_subsets)
                                          if num_subsets > 1 else 0.0)


@dataclasses.dataclass
class ReferenceStats:
    """Mean, covariance and KID features of the reference images, with their cache key."""

    mu: np.ndarray
    sigma: np.ndarray
    kid_features: np.ndarray
    num_samples: int
    key: dict


def _cache_path(cache_dir, key):
    text = json.dumps(key, sort_keys=True)
    return os.path.join(cache_dir, f"fid_ref_{hashlib.sha256(text.encode()).hexdigest()[:20]}.npz")


def reference_statistics(images_fn, source_key, extractor, cache_dir, num_samples):
    """Statistics of the first `num_samples` images of `images_fn()`, cached on disk.

    The cache key is (source_key, num_samples, extractor.cache_key); a different key, or a
    corrupt file, recomputes. The file is written atomically.
    """
    key = {"source": source_key, "num_samples": int(num_samples),
           "extractor": extractor.cache_key}
    path = _cache_path(cache_dir, key)
    if os.path.exists(path):
        try:
            with np.load(path) as cached:
                if json.loads(str(cached["key"])) == json.loads(json.dumps(key)):
                    return ReferenceStats(cached["mu"], cached["sigma"], cached["kid_features"],
                                          int(cached["num_samples"]), key)
        except Exception as error:  # unreadable cache: recompute it
            logging.warning("recomputing the unreadable FID cache %s (%s)", path, error)
    images = images_fn()[:num_samples]
    stats = FeatureStats()
    for start in range(0, len(images), 500):
        stats.update(extractor(images[start:start + 500]))
    result = ReferenceStats(stats.mean(), stats.covariance(), stats.kid_features(),
                            stats.count, key)
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=cache_dir)
    os.close(fd)
    try:
        np.savez(tmp, mu=result.mu, sigma=result.sigma, kid_features=result.kid_features,
                 num_samples=result.num_samples, key=json.dumps(key, sort_keys=True))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return result


def compute_metrics(sample_fn, num_samples, extractor, reference, batch_size=500):
    """FID and KID of `num_samples` images from `sample_fn(n)` against `reference`.

    Images are generated and featurised `batch_size` at a time, so memory stays bounded.
    """
    stats = FeatureStats()
    remaining = num_samples
    while remaining > 0:
        n = min(batch_size, remaining)
        stats.update(extractor(sample_fn(n)))
        remaining -= n
    fid = frechet_distance(stats.mean(), stats.covariance(), reference.mu, reference.sigma)
    kid, kid_std = kernel_inception_distance(stats.kid_features(), reference.kid_features)
    return {"fid": fid, "kid": kid, "kid_std": kid_std, "num_samples": int(stats.count)}

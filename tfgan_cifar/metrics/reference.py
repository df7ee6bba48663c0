"""Statistics of the real reference images (the CIFAR-10 test split), computed once and
cached on disk under a hash of what they depend on.
"""

import dataclasses
import functools
import hashlib
import json
import os

import numpy as np
from absl import logging

from tfgan_cifar import atomic
from tfgan_cifar import data as data_lib
from tfgan_cifar.metrics import fid
from tfgan_cifar.errors import one_line

CACHE_FORMAT = 2  # 2: a seeded draw of the images (1 took the first ones)


@dataclasses.dataclass
class ReferenceStats:
    """Mean, covariance and KID features of the reference images, with their cache key."""

    mu: np.ndarray
    sigma: np.ndarray
    kid_features: np.ndarray
    num_samples: int
    key: dict

    @functools.cached_property
    def sigma_root(self):
        """sigma^(1/2), computed on first use and kept: every FID against this reference
        needs it. None if its eigendecomposition does not converge (`fid.frechet_distance`
        then retries with a small diagonal offset)."""
        try:
            return fid.covariance_sqrt(self.sigma, "the reference covariance")
        except np.linalg.LinAlgError:
            return None


def _canonical(key):
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def reference_statistics(images_fn, source_key, extractor, cache_dir, num_samples):
    """Statistics of `num_samples` images of `images_fn()`, cached on disk.

    The images are a fixed seeded draw (`data.subset_indices`), not the first ones: the same
    subset on every call, and every class of a folder read class by class.

    Args:
        images_fn: returns the real images, float in [-1, 1], NHWC; only called on a miss.
        source_key: JSON-able description of the data (source and split).
        extractor: a FeatureExtractor (or anything with `cache_key` and `__call__`).
        cache_dir: folder of the `.npz` cache files, created if needed.
        num_samples: how many images to use.

    Returns:
        ReferenceStats. The cache file is named by a sha256 of the key (source_key,
        num_samples, extractor.cache_key), holds the key, and is written atomically; an
        unreadable or mismatched file is recomputed with a warning.
    """
    key = {"format": CACHE_FORMAT, "source": source_key, "num_samples": int(num_samples),
           "extractor": extractor.cache_key}
    text = _canonical(key)
    cache_dir = os.path.expanduser(str(cache_dir))
    path = os.path.join(cache_dir, f"fid_ref_{hashlib.sha256(text.encode()).hexdigest()[:24]}.npz")
    if os.path.exists(path):
        try:
            with np.load(path) as cached:
                if str(cached["key"]) != text:
                    raise ValueError("its key does not match")
                return ReferenceStats(cached["mu"], cached["sigma"], cached["kid_features"],
                                      int(cached["num_samples"]), json.loads(text))
        except Exception as error:  # a corrupt cache is only a lost shortcut
            logging.warning("FID: recomputing the reference cache %s (%s)", path, one_line(error))
    images = images_fn()
    images = images[data_lib.subset_indices(len(images), num_samples)]
    if len(images) < num_samples:
        logging.warning("FID: the reference has %d images, fewer than the %d asked for",
                        len(images), num_samples)
    stats = fid.FeatureStats()
    for start in range(0, len(images), 500):
        stats.update(extractor(images[start:start + 500]))
    result = ReferenceStats(stats.mean(), stats.covariance(), stats.kid_features(),
                            stats.count, json.loads(text))
    try:
        with atomic.replacing(path, "wb") as f:
            np.savez(f, mu=result.mu, sigma=result.sigma, kid_features=result.kid_features,
                     num_samples=result.num_samples, key=text)
    except OSError as error:
        logging.warning("FID: could not cache the reference statistics in %s (%s)",
                        cache_dir, one_line(error))
    return result

"""FID and KID from feature vectors: streaming statistics, the Fréchet distance and the
kernel (MMD) distance, and the scoring of generated images against reference statistics.

Numbers from here are "FID (Keras InceptionV3)": not comparable with the TTUR / pytorch-fid
numbers of papers, which use the 2015 Inception graph. NumPy and SciPy only.
"""

import numpy as np
from absl import logging


class FeatureStats:
    """Streaming float64 mean and covariance, plus the first `max_kid_features` rows for KID,
    and every row while there are no more rows than dimensions (`covariance_factor`)."""

    def __init__(self, max_kid_features=10000):
        self.max_kid_features = max_kid_features
        self.count = 0
        self._shift = self._sum = self._outer = None
        self._kid = []
        self._kid_count = 0
        self._rows = []

    def update(self, features):
        """Adds a batch of feature rows, shape (N, D)."""
        features = np.asarray(features, np.float64)
        if features.ndim != 2:
            raise ValueError(f"expected features of shape (N, D), got {features.shape}")
        if not len(features):
            return
        if self._shift is None:  # sums around a first estimate of the mean stay accurate
            self._shift = features.mean(axis=0)
            self._sum = np.zeros_like(self._shift)
            self._outer = np.zeros((len(self._shift), len(self._shift)))
        centred = features - self._shift
        self.count += len(features)
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        kept = features[: max(self.max_kid_features - self._kid_count, 0)]
        if len(kept):
            self._kid.append(kept.astype(np.float32))
            self._kid_count += len(kept)
        if self.count <= len(self._shift):
            self._rows.append(features)
        else:
            self._rows.clear()

    def mean(self):
        """Mean feature vector (D,)."""
        if not self.count:
            raise ValueError("no features were added")
        return self._shift + self._sum / self.count

    def covariance(self):
        """Unbiased (N - 1) covariance (D, D)."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature rows, got {self.count}")
        offset = self._sum / self.count
        return (self._outer - self.count * np.outer(offset, offset)) / (self.count - 1)

    def covariance_factor(self):
        """A with `covariance()` = A^T A, (N, D), while N <= D: the centred rows over
        sqrt(N - 1). None once there are more rows than dimensions."""
        if not self._rows or self.count < 2:
            return None
        rows = np.concatenate(self._rows)
        return (rows - self.mean()) / np.sqrt(self.count - 1)

    def kid_features(self):
        """The kept feature rows (at most max_kid_features), float32."""
        dim = 0 if self._shift is None else len(self._shift)
        return np.concatenate(self._kid) if self._kid else np.zeros((0, dim), np.float32)


def _psd_eigenvalues(matrix, name):
    """Eigenvalues and vectors of a symmetric matrix, negative ones (rounding) clipped to 0.

    Clearly negative eigenvalues mean the matrix is not a covariance: said in a warning.
    """
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    scale = max(float(np.max(np.abs(values))), np.finfo(np.float64).tiny)
    if values.min() < -1e-6 * scale:
        logging.warning("FID: %s has a negative eigenvalue (%.3g of the largest): it is not a "
                        "covariance matrix; clipping it to 0", name, values.min() / scale)
    return np.clip(values, 0.0, None), vectors


def covariance_sqrt(sigma, name="S"):
    """The symmetric square root S^(1/2) of a covariance matrix (rounding-negative eigenvalues
    clipped to 0), in float64."""
    values, vectors = _psd_eigenvalues(np.asarray(sigma, np.float64), name)
    return (vectors * np.sqrt(values)) @ vectors.T


def trace_sqrt_product(sigma1, sigma2, sigma2_root=None, sigma1_factor=None):
    """tr((S1 S2)^(1/2)) for covariance matrices S1 and S2.

    S1 S2 has the eigenvalues of the symmetric S2^(1/2) S1 S2^(1/2), so the trace is the sum of
    their square roots: two symmetric eigendecompositions, exact for singular covariances, and
    several times faster than a general matrix square root (scipy.linalg.sqrtm) at 2048 x 2048.
    `sigma2_root`, if given, is S2^(1/2) (see `covariance_sqrt`) and saves one of the two: a
    fixed reference's root is computed once for all the evaluations against it.
    `sigma1_factor`, if given, is A (N x D) with S1 = A^T A: the nonzero eigenvalues of
    S1 S2 = A^T (A S2) are those of the N x N matrix A S2 A^T, so with fewer samples than
    dimensions only that small matrix is decomposed.
    """
    if sigma1_factor is not None:
        factor = np.asarray(sigma1_factor, np.float64)
        inner, _ = _psd_eigenvalues(factor @ np.asarray(sigma2, np.float64) @ factor.T,
                                    "A S2 A^T")
        return float(np.sqrt(inner).sum())
    root = covariance_sqrt(sigma2, "S2") if sigma2_root is None else sigma2_root
    inner, _ = _psd_eigenvalues(root @ sigma1 @ root, "S2^(1/2) S1 S2^(1/2)")
    return float(np.sqrt(inner).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6, sigma2_root=None, sigma1_factor=None):
    """Fréchet distance between two Gaussians, in float64.

    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), see `trace_sqrt_product` (which
    takes `sigma2_root`, S2^(1/2) if known, and `sigma1_factor`, A with S1 = A^T A, for fewer
    samples than dimensions: `FeatureStats.covariance_factor`). If the eigendecomposition does
    not converge, it is retried with eps * I added to both covariances.

    Returns:
        The distance as a float (NaN, with a warning, if the statistics are not finite).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: {mu1.shape}, {sigma1.shape}, {mu2.shape}, "
                         f"{sigma2.shape}")
    if not all(np.all(np.isfinite(a)) for a in (mu1, mu2, sigma1, sigma2)):
        logging.warning("FID: the feature statistics contain NaN or inf; FID is NaN")
        return float("nan")
    try:
        cross = trace_sqrt_product(sigma1, sigma2, sigma2_root, sigma1_factor)
    except np.linalg.LinAlgError:
        logging.warning("FID: the eigendecomposition did not converge; retrying with %g added "
                        "to both diagonals", eps)
        offset = eps * np.eye(len(sigma1))
        cross = trace_sqrt_product(sigma1 + offset, sigma2 + offset)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * cross)


def distance_to_reference(stats, reference):
    """`frechet_distance` of a FeatureStats from a reference's statistics (mu, sigma and its
    cached `sigma_root`): with fewer rows than dimensions through their factor, which needs no
    root of the reference covariance (so none is computed), else through that root."""
    factor = stats.covariance_factor()
    return frechet_distance(stats.mean(), stats.covariance(), reference.mu, reference.sigma,
                            sigma2_root=None if factor is not None else reference.sigma_root,
                            sigma1_factor=factor)


def kernel_inception_distance(features1, features2, num_subsets=100, subset_size=1000, seed=0):
    """KID: unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, over random subsets.

    Args:
        features1, features2: arrays (N1, d) and (N2, d).
        num_subsets: number of random subsets (drawn without replacement) to average over.
        subset_size: rows per subset, capped at min(N1, N2).
        seed: seed of the subset draws.

    Returns:
        (mean, standard error of the mean) over subsets; NaNs if a set has fewer than 2 rows.
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
        kxx, kyy = (x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3
        kxy = (x @ y.T / dim + 1) ** 3
        estimates[i] = ((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                        - 2 * kxy.mean())
    std = estimates.std(ddof=1) if num_subsets > 1 else 0.0
    return float(estimates.mean()), float(std / np.sqrt(num_subsets))


def compute_metrics(sample_fn, num_samples, extractor, reference, batch_size=500, prdc=False):
    """FID and KID of generated images against reference statistics.

    Args:
        sample_fn: `sample_fn(n)` returns n generated images, float in [-1, 1], NHWC; called
            repeatedly, so memory does not grow with num_samples.
        num_samples: how many images to score.
        extractor: a FeatureExtractor (or anything images -> features).
        reference: ReferenceStats (mu, sigma, kid_features).
        batch_size: images requested from sample_fn per call.
        prdc: also precision, recall, density and coverage (metrics.quality.prdc) of the
            first 10k generated features against the reference's KID features, when both
            sets have more than k rows.

    Returns:
        {"fid": float, "kid": float, "kid_std": float, "num_samples": int}, with prdc also
        {"precision", "recall", "density", "coverage"}.
    """
    stats = FeatureStats()
    while stats.count < num_samples:
        n = min(batch_size, num_samples - stats.count)
        images = np.asarray(sample_fn(n))[:n]
        if not len(images):
            raise ValueError(f"sample_fn({n}) returned no images")
        stats.update(extractor(images))
    fid = distance_to_reference(stats, reference)
    kid, kid_std = kernel_inception_distance(stats.kid_features(), reference.kid_features)
    result = {"fid": fid, "kid": kid, "kid_std": kid_std, "num_samples": int(stats.count)}
    if prdc:
        from tfgan_cifar.metrics import quality

        result.update(quality.prdc_when_possible(reference.kid_features, stats.kid_features()))
    return result

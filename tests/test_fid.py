"""FID, KID, Inception features and the reference-statistics cache."""

import numpy as np
import pytest
import scipy.linalg

from tfgan_cifar import fid


def _stats(features):
    return features.mean(axis=0), np.cov(features, rowvar=False)


def test_fid_of_a_set_against_itself_is_zero():
    features = np.random.default_rng(0).standard_normal((500, 16))
    mu, sigma = _stats(features)
    assert fid.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_two_gaussians_matches_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    # Diagonal covariances: ||mu1 - mu2||^2 + sum (sqrt(a) - sqrt(b))^2.
    expected = 5.0 + ((1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2)
    assert fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)
    # Rotating both covariances by the same orthogonal matrix leaves the distance unchanged.
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    rotated = fid.frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-6)


def test_fid_matches_a_direct_scipy_computation():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((200, 64)), rng.standard_normal((200, 64)) * 1.3 + 0.2
    (mu1, s1), (mu2, s2) = _stats(x), _stats(y)
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-6)


def test_fid_with_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(3)
    (mu1, s1), (mu2, s2) = _stats(rng.standard_normal((10, 32))), _stats(
        rng.standard_normal((10, 32)))
    value = fid.frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(value) and value > 0


def test_kid_is_near_zero_for_equal_distributions_and_positive_for_shifted_ones():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((400, 32)), rng.standard_normal((400, 32))
    same, same_err = fid.kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
    shifted, shifted_err = fid.kernel_inception_distance(a, b + 1.0, num_subsets=20,
                                                         subset_size=200)
    assert abs(same) < 3 * same_err + 1e-3
    assert shifted > 10 * abs(same) and shifted > 5 * shifted_err > 0


def test_streaming_stats_equal_numpy_and_cap_kid_features():
    features = np.random.default_rng(5).standard_normal((300, 8))
    stats = fid.FeatureStats(max_kid_features=120)
    for chunk in np.array_split(features, 7):
        stats.update(chunk)
    mu, sigma = _stats(features)
    np.testing.assert_allclose(stats.mean(), mu, atol=1e-12)
    np.testing.assert_allclose(stats.covariance(), sigma, atol=1e-10)
    assert stats.count == 300 and stats.kid_features().shape == (120, 8)


def test_feature_extractor_from_a_local_weights_file(inception_weights_file):
    extractor = fid.FeatureExtractor(inception_weights_file, batch_size=2)
    images = np.random.default_rng(6).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    features = extractor(images)
    assert features.shape == (5, 2048) and features.dtype == np.float64
    np.testing.assert_array_equal(features, extractor(images))
    other_batching = fid.FeatureExtractor(inception_weights_file, batch_size=5)(images)
    np.testing.assert_allclose(features, other_batching, rtol=1e-4, atol=1e-4)
    assert extractor.cache_key["weights"]["path"].endswith("inception_v3_notop.weights.h5")


def test_missing_weights_file_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--inception_weights=.*is not a file"):
        fid.FeatureExtractor(str(tmp_path / "missing.h5"))


class FakeExtractor:
    """Features = mean colour, repeated: cheap and deterministic."""

    def __init__(self, tag="a"):
        self.cache_key = {"fake": tag}
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        return np.repeat(np.asarray(images).mean(axis=(1, 2)), 4, axis=1).astype(np.float64)


def test_reference_cache_is_reused_and_recomputed_when_its_key_changes(tmp_path):
    images = np.random.default_rng(7).uniform(-1, 1, (40, 32, 32, 3)).astype(np.float32)
    loads = []

    def images_fn():
        loads.append(1)
        return images

    extractor = FakeExtractor()
    first = fid.reference_statistics(images_fn, {"source": "x"}, extractor, tmp_path, 30)
    assert first.num_samples == 30 and len(loads) == 1
    again = fid.reference_statistics(images_fn, {"source": "x"}, extractor, tmp_path, 30)
    assert len(loads) == 1 and extractor.calls == 1  # read from disk
    np.testing.assert_array_equal(first.sigma, again.sigma)
    fid.reference_statistics(images_fn, {"source": "x"}, extractor, tmp_path, 40)
    fid.reference_statistics(images_fn, {"source": "y"}, extractor, tmp_path, 30)
    fid.reference_statistics(images_fn, {"source": "x"}, FakeExtractor("b"), tmp_path, 30)
    assert len(loads) == 4
    assert len(list(tmp_path.glob("*.npz"))) == 4 and not list(tmp_path.glob("*.tmp*"))


def test_corrupt_cache_is_recomputed(tmp_path):
    images = np.zeros((4, 32, 32, 3), np.float32)
    extractor = FakeExtractor()
    fid.reference_statistics(lambda: images, {"s": 1}, extractor, tmp_path, 4)
    for path in tmp_path.glob("*.npz"):
        path.write_bytes(b"garbage")
    result = fid.reference_statistics(lambda: images, {"s": 1}, extractor, tmp_path, 4)
    assert extractor.calls == 2 and result.num_samples == 4


def test_compute_metrics_streams_samples_in_chunks(tmp_path):
    rng = np.random.default_rng(8)
    reference = fid.reference_statistics(
        lambda: rng.uniform(-1, 1, (50, 32, 32, 3)), {"s": 2}, FakeExtractor(), tmp_path, 50)
    requested = []

    def sample(n):
        requested.append(n)
        return rng.uniform(-1, 1, (n, 32, 32, 3)) + 0.5

    result = fid.compute_metrics(sample, 23, FakeExtractor(), reference, batch_size=10)
    assert requested == [10, 10, 3]
    assert set(result) == {"fid", "kid", "kid_std", "num_samples"}
    assert result["num_samples"] == 23 and result["fid"] > 0.1

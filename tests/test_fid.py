"""FID, KID, streaming statistics, Inception features and the reference-statistics cache."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

import no_tensorflow
from tfgan_cifar import data
from tfgan_cifar.metrics import fid, inception, reference


def _stats(features):
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _exact_fid(mu1, s1, mu2, s2):
    """Independent formula: tr (S1 S2)^(1/2) = sum of sqrt eigenvalues of S1^(1/2) S2 S1^(1/2)."""
    values, vectors = np.linalg.eigh(s1)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * inner


def _random_covariance(rng, dim):
    a = rng.standard_normal((dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


# Fréchet distance.

def test_fid_of_a_set_against_itself_is_zero():
    mu, sigma = _stats(np.random.default_rng(0).standard_normal((500, 16)) * 3 + 1)
    assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-8 * np.trace(sigma)


def test_fid_of_one_dimensional_gaussians():
    # (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s1 = 2, s2 = 3.
    assert fid.frechet_distance([1.0], [[4.0]], [-1.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_fid_of_diagonal_and_rotated_gaussians_matches_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = 5.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # = 5 + 1 + 1 + 6.25
    assert expected == pytest.approx(13.25)
    assert fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)
    # Full-rank, non-diagonal covariances sharing eigenvectors: the same closed form.
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    rotated = fid.frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_fid_of_non_commuting_covariances_matches_an_eigenvalue_formula():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    s1, s2 = _random_covariance(rng, 6), _random_covariance(rng, 6)
    assert not np.allclose(s1 @ s2, s2 @ s1)
    value = fid.frechet_distance(mu1, s1, mu2, s2)
    assert value == pytest.approx(_exact_fid(mu1, s1, mu2, s2), rel=1e-9)
    assert value == pytest.approx(fid.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)  # symmetric


def test_fid_matches_a_direct_scipy_computation_on_random_features():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((200, 64)), rng.standard_normal((200, 64)) * 1.3 + 0.2
    (mu1, s1), (mu2, s2) = _stats(x), _stats(y)
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    value = fid.frechet_distance(mu1, s1, mu2, s2)
    assert value == pytest.approx(direct, rel=1e-8)
    assert value == pytest.approx(_exact_fid(mu1, s1, mu2, s2), rel=1e-6)


def test_fid_with_fewer_samples_than_dimensions_is_finite_and_right():
    rng = np.random.default_rng(4)
    (mu1, s1), (mu2, s2) = (_stats(np.maximum(rng.standard_normal((10, 32)), 0))
                            for _ in range(2))
    assert np.linalg.matrix_rank(s1) < 32
    value = fid.frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(value) and value == pytest.approx(_exact_fid(mu1, s1, mu2, s2), rel=1e-5)


def test_a_failed_eigendecomposition_is_retried_with_eps_on_the_diagonals(monkeypatch, caplog):
    real_eigh, calls = np.linalg.eigh, []

    def fails_once(matrix):
        calls.append(matrix)
        if len(calls) == 1:
            raise np.linalg.LinAlgError("did not converge")
        return real_eigh(matrix)

    monkeypatch.setattr(np.linalg, "eigh", fails_once)
    a, b = np.array([1.0, 4.0]), np.array([4.0, 1.0])
    with caplog.at_level(logging.WARNING):
        value = fid.frechet_distance(np.zeros(2), np.diag(a), np.zeros(2), np.diag(b), eps=1e-3)
    np.testing.assert_allclose(calls[1], np.diag(b + 1e-3))  # the root is S2's
    # The traces keep the given covariances; only the square root sees the offset.
    assert value == pytest.approx(np.sum(a + b - 2 * np.sqrt((a + 1e-3) * (b + 1e-3))))
    assert "retrying" in caplog.text


def test_a_known_root_of_the_second_covariance_gives_the_same_distance():
    rng = np.random.default_rng(12)
    s1, s2 = _random_covariance(rng, 6), _random_covariance(rng, 6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    root = fid.covariance_sqrt(s2)
    np.testing.assert_allclose(root @ root, s2, atol=1e-12)
    np.testing.assert_allclose(root, root.T)
    assert fid.frechet_distance(mu1, s1, mu2, s2, sigma2_root=root) == pytest.approx(
        _exact_fid(mu1, s1, mu2, s2), rel=1e-9)


def test_fewer_samples_than_dimensions_give_the_same_distance_from_their_factor():
    """With N <= D rows, FeatureStats keeps them: tr((S1 S2)^(1/2)) from the N x N matrix
    A S2 A^T equals the D x D computation; with more rows there is no factor."""
    rng = np.random.default_rng(13)
    reference = rng.standard_normal((60, 40)) @ rng.standard_normal((40, 40))
    mu2, s2 = _stats(reference)
    for rows in (2, 7, 40):
        stats = fid.FeatureStats()
        features = 3 * rng.standard_normal((rows, 40)) + 1
        for batch in np.array_split(features, 3):
            stats.update(batch)
        factor = stats.covariance_factor()
        assert factor.shape == (rows, 40)
        np.testing.assert_allclose(factor.T @ factor, stats.covariance(), atol=1e-10)
        exact = _exact_fid(stats.mean(), stats.covariance(), mu2, s2)
        full = fid.frechet_distance(stats.mean(), stats.covariance(), mu2, s2)
        small = fid.frechet_distance(stats.mean(), stats.covariance(), mu2, s2,
                                     sigma1_factor=factor)
        # The D x D route also sums the square roots of D - N rounding-sized eigenvalues.
        assert full == pytest.approx(exact, rel=1e-6) and small == pytest.approx(full, rel=1e-7)
    stats.update(rng.standard_normal((1, 40)))  # 41 rows of 40 dimensions
    assert stats.covariance_factor() is None


def test_the_reference_root_is_computed_only_for_more_samples_than_dimensions():
    rng = np.random.default_rng(14)
    real = rng.standard_normal((60, 40)) @ rng.standard_normal((40, 40))
    mu, sigma = _stats(real)
    for rows, root_computed in ((7, False), (40, False), (41, True)):
        ref = reference.ReferenceStats(mu, sigma, real.astype(np.float32), 60, {})
        stats = fid.FeatureStats()
        stats.update(3 * rng.standard_normal((rows, 40)) + 1)
        distance = fid.distance_to_reference(stats, ref)
        assert ("sigma_root" in vars(ref)) == root_computed  # a cached_property's value
        assert distance == pytest.approx(
            _exact_fid(stats.mean(), stats.covariance(), mu, sigma), rel=1e-6)


def test_a_matrix_that_is_not_a_covariance_is_reported_and_clipped(caplog):
    # diag(1, -1) is not positive semi-definite: its -1 is clipped to 0.
    with caplog.at_level(logging.WARNING):
        value = fid.frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    assert value == pytest.approx(1.0 - 1.0 + 2.0 - 2.0 * 1.0)
    assert "not a covariance matrix" in caplog.text


def test_rounding_noise_in_a_singular_covariance_gives_no_warning(caplog):
    features = np.random.default_rng(6).standard_normal((5, 40))
    (mu1, s1), (mu2, s2) = _stats(features), _stats(features[::-1] * 2)
    with caplog.at_level(logging.WARNING):
        value = fid.frechet_distance(mu1, s1, mu2, s2)
    assert value == pytest.approx(_exact_fid(mu1, s1, mu2, s2), rel=1e-6)
    assert caplog.text == ""


def test_non_finite_statistics_give_nan_and_mismatched_ones_an_error():
    assert np.isnan(fid.frechet_distance([np.nan], [[1.0]], [0.0], [[1.0]]))
    with pytest.raises(ValueError, match="mismatched"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# Kernel inception distance.

def _unbiased_mmd2(x, y):
    d = x.shape[1]
    kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def test_kid_over_one_full_subset_is_the_unbiased_mmd():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((60, 8)), rng.standard_normal((60, 8)) + 0.3
    value, err = fid.kernel_inception_distance(x, y, num_subsets=1, subset_size=1000)
    assert value == pytest.approx(_unbiased_mmd2(x, y), rel=1e-10) and err == 0.0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted_ones():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((400, 32)), rng.standard_normal((300, 32))
    same, same_err = fid.kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
    shifted, shifted_err = fid.kernel_inception_distance(a, b + 0.5, num_subsets=20,
                                                         subset_size=200)
    assert same_err > 0 and shifted_err > 0
    # Overlapping subsets make the standard error optimistic: compare with the shifted case.
    assert abs(same) < 0.05 * shifted and shifted > 10 * shifted_err
    half, _ = fid.kernel_inception_distance(a, b + 0.25, num_subsets=20, subset_size=200)
    assert abs(same) < half < shifted
    # Subsets are capped by the smaller set; the seed makes the draw reproducible.
    small = fid.kernel_inception_distance(a, b[:50] + 0.5, num_subsets=5, subset_size=1000, seed=3)
    assert small == fid.kernel_inception_distance(a, b[:50] + 0.5, num_subsets=5, seed=3)
    assert small[0] > 0


# Streaming statistics.

def test_streaming_stats_equal_numpy_and_cap_kid_features():
    features = np.random.default_rng(7).standard_normal((300, 8)) * 2 + 1e4  # large offset
    stats = fid.FeatureStats(max_kid_features=120)
    for chunk in np.array_split(features, 7):
        stats.update(chunk)
    stats.update(np.zeros((0, 8)))
    mu, sigma = _stats(features)
    np.testing.assert_allclose(stats.mean(), mu, rtol=1e-13)
    np.testing.assert_allclose(stats.covariance(), sigma, rtol=1e-9, atol=1e-9)
    assert stats.count == 300
    kept = stats.kid_features()
    assert kept.shape == (120, 8) and kept.dtype == np.float32
    np.testing.assert_allclose(kept, features[:120], rtol=1e-6)


def test_stats_need_two_rows_for_a_covariance():
    stats = fid.FeatureStats()
    assert stats.kid_features().shape[0] == 0
    stats.update(np.ones((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        stats.covariance()


# Inception features (a randomly initialised network saved to a local weights file).

@pytest.fixture(scope="module")
def extractor(inception_weights_file):
    return inception.FeatureExtractor(inception_weights_file, batch_size=2)


def test_features_from_a_local_weights_file(extractor, inception_weights_file):
    images = np.random.default_rng(8).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    features = extractor(images)
    assert features.shape == (5, 2048) and features.dtype == np.float64
    assert np.all(np.isfinite(features)) and np.std(features) > 0
    assert not np.allclose(features[0], features[1])
    np.testing.assert_array_equal(features, extractor(images))  # deterministic
    extractor.batch_size = 5
    try:
        # A random network's features are small (~1e-3): scale the absolute tolerance.
        scale = np.abs(features).max()
        np.testing.assert_allclose(extractor(images), features, rtol=1e-4, atol=1e-4 * scale)
    finally:
        extractor.batch_size = 2
    assert extractor(images[:0]).shape == (0, 2048)
    weights = extractor.cache_key["weights"]
    assert weights["path"] == os.path.abspath(inception_weights_file)
    assert weights["bytes"] == os.path.getsize(inception_weights_file)
    assert extractor.cache_key["resize"] == "bilinear"


def test_generated_images_are_rounded_to_uint8_pixels_before_scoring(extractor):
    pixels = np.random.default_rng(9).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    images = pixels / 127.5 - 1.0
    off = np.random.default_rng(10).uniform(-0.45, 0.45, images.shape) / 127.5
    np.testing.assert_array_equal(extractor(np.clip(images + off, -1, 1)), extractor(images))
    assert extractor.cache_key["input"] == "uint8"


def test_images_outside_minus_one_one_are_refused(extractor):
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        extractor(np.full((1, 32, 32, 3), 255.0))
    with pytest.raises(ValueError, match="N, H, W, 3"):
        extractor(np.zeros((32, 32, 3)))


def test_missing_weights_file_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--inception_weights=.*is not a file") as info:
        inception.FeatureExtractor(str(tmp_path / "missing.h5"))
    assert "\n" not in str(info.value)


def test_an_unloadable_weights_file_is_one_clear_error(tmp_path):
    path = tmp_path / "inception.weights.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="--inception_weights=.*not loadable") as info:
        inception.FeatureExtractor(str(path))
    assert "\n" not in str(info.value)


def test_a_failed_download_names_the_flag_on_one_line(monkeypatch):
    def offline(*args, **kwargs):
        assert kwargs["weights"] == "imagenet"
        raise OSError("URL fetch failure:\n[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(inception.keras.applications, "InceptionV3", offline)
    with pytest.raises(inception.InceptionWeightsUnavailable) as info:
        inception.FeatureExtractor()
    message = str(info.value)
    assert "\n" not in message and "--inception_weights=PATH" in message
    assert "evaluation needs" in message and "name resolution" in message


# Reference-statistics cache and metrics (a cheap fake extractor).

class FakeExtractor:
    """Features = per-image mean colour and its square, 6-d: cheap and deterministic."""

    def __init__(self, tag="a"):
        self.cache_key = {"fake": tag}
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        colour = np.asarray(images, np.float64).mean(axis=(1, 2))
        return np.concatenate([colour, colour ** 2], axis=1)


def _images(n, seed=9, offset=0.0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.uniform(-1, 1, (n, 4, 4, 3)) + offset, -1, 1).astype(np.float32)


def test_reference_of_fewer_images_than_a_class_sorted_folder_covers_every_class(tmp_path):
    # A folder is read class by class: the first 20 of these 40 images are all class 0.
    labels = np.repeat(np.arange(4), 10)
    images = np.zeros((40, 4, 4, 3), np.float32) + labels[:, None, None, None] / 4
    ref = reference.reference_statistics(lambda: images, {"source": "sorted"}, FakeExtractor(),
                                         tmp_path, 20)
    drawn = np.round(ref.kid_features[:, 0] * 4).astype(int)
    assert ref.num_samples == 20 and set(drawn) == {0, 1, 2, 3}
    np.testing.assert_allclose(ref.mu[0], drawn.mean() / 4, atol=1e-12)
    again = reference.reference_statistics(lambda: images, {"source": "sorted"}, FakeExtractor(),
                                           tmp_path / "other", 20)
    np.testing.assert_array_equal(ref.kid_features, again.kid_features)  # the same draw


def test_subset_indices_draw_without_replacement_and_keep_everything_when_asked():
    picked = data.subset_indices(100, 30, seed=4)
    assert len(set(picked.tolist())) == 30 and picked.max() < 100
    np.testing.assert_array_equal(picked, data.subset_indices(100, 30, seed=4))
    assert sorted(data.subset_indices(10, 50).tolist()) == list(range(10))


def test_reference_cache_is_reused_and_recomputed_when_its_key_changes(tmp_path):
    images, loads = _images(40), []

    def images_fn():
        loads.append(1)
        return images

    extractor = FakeExtractor()
    first = reference.reference_statistics(images_fn, {"source": "x"}, extractor, tmp_path, 30)
    mu, sigma = _stats(extractor(images[data.subset_indices(40, 30)]))
    np.testing.assert_allclose(first.mu, mu, atol=1e-12)
    np.testing.assert_allclose(first.sigma, sigma, atol=1e-12)
    assert first.num_samples == 30 and first.kid_features.shape == (30, 6)
    assert first.key["source"] == {"source": "x"} and first.key["num_samples"] == 30
    calls = extractor.calls

    again = reference.reference_statistics(images_fn, {"source": "x"}, extractor, tmp_path, 30)
    assert len(loads) == 1 and extractor.calls == calls  # read from disk
    np.testing.assert_array_equal(first.mu, again.mu)
    np.testing.assert_array_equal(first.sigma, again.sigma)
    np.testing.assert_array_equal(first.kid_features, again.kid_features)
    assert again.num_samples == 30 and again.key == first.key

    assert reference.reference_statistics(images_fn, {"source": "x"}, extractor, tmp_path,
                                    40).num_samples == 40
    reference.reference_statistics(images_fn, {"source": "y"}, extractor, tmp_path, 30)
    reference.reference_statistics(images_fn, {"source": "x"}, FakeExtractor("b"), tmp_path, 30)
    assert len(loads) == 4
    assert len(list(tmp_path.glob("fid_ref_*.npz"))) == 4
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in tmp_path.glob("fid_ref_*.npz"))


def test_corrupt_cache_is_recomputed_with_a_warning(tmp_path, caplog):
    extractor = FakeExtractor()
    first = reference.reference_statistics(lambda: _images(8), {"s": 1}, extractor, tmp_path / "c", 8)
    (path,) = (tmp_path / "c").glob("*.npz")
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        result = reference.reference_statistics(lambda: _images(8), {"s": 1}, extractor,
                                          tmp_path / "c", 8)
    assert extractor.calls == 2 and "recomputing" in caplog.text
    np.testing.assert_array_equal(result.sigma, first.sigma)
    again = reference.reference_statistics(lambda: _images(8), {"s": 1}, extractor, tmp_path / "c", 8)
    assert extractor.calls == 2 and again.num_samples == 8  # the rewritten file is readable


def test_reference_cache_with_the_real_extractor(extractor, tmp_path):
    images = _images(4, seed=10)
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return extractor(batch)

    counting.cache_key = extractor.cache_key
    first = reference.reference_statistics(lambda: images, {"s": "real"}, counting, tmp_path, 4)
    assert calls == [4] and first.mu.shape == (2048,) and first.sigma.shape == (2048, 2048)
    np.testing.assert_allclose(first.mu, extractor(images).mean(axis=0), rtol=1e-6, atol=1e-9)
    again = reference.reference_statistics(lambda: images, {"s": "real"}, counting, tmp_path, 4)
    assert calls == [4]
    np.testing.assert_array_equal(again.sigma, first.sigma)


def test_compute_metrics_streams_samples_in_chunks(tmp_path):
    stats = reference.reference_statistics(lambda: _images(60), {"s": 2}, FakeExtractor(),
                                         tmp_path, 60)
    generated = _images(23, seed=11, offset=0.3)
    requested = []

    def sample(n):
        start = sum(requested)
        requested.append(n)
        return generated[start:start + n]

    result = fid.compute_metrics(sample, 23, FakeExtractor(), stats, batch_size=10)
    assert requested == [10, 10, 3]
    assert set(result) == {"fid", "kid", "kid_std", "num_samples"} and result["num_samples"] == 23
    mu, sigma = _stats(FakeExtractor()(generated))
    assert result["fid"] == pytest.approx(
        fid.frechet_distance(mu, sigma, stats.mu, stats.sigma), rel=1e-9)
    assert result["fid"] > 0.01 and result["kid"] > 0 and result["kid_std"] > 0
    assert all(isinstance(result[k], float) for k in ("fid", "kid", "kid_std"))

    same = fid.compute_metrics(lambda n: _images(60)[:n], 60, FakeExtractor(), stats)
    assert abs(same["fid"]) < 1e-9  # the reference images themselves


def test_the_reference_root_is_computed_once_for_all_evaluations(tmp_path, monkeypatch):
    stats = reference.reference_statistics(lambda: _images(60), {"s": 3}, FakeExtractor(),
                                           tmp_path, 60)
    real_eigh, sizes = np.linalg.eigh, []

    def counting(matrix):
        sizes.append(len(matrix))
        return real_eigh(matrix)

    monkeypatch.setattr(np.linalg, "eigh", counting)
    values = [fid.compute_metrics(lambda n: _images(n, seed=seed, offset=0.3), 30,
                                  FakeExtractor(), stats)["fid"] for seed in (1, 2, 3)]
    assert len(sizes) == 1 + 3  # the reference's root once, then one per evaluation
    for seed, value in zip((1, 2, 3), values):
        mu, sigma = _stats(FakeExtractor()(_images(30, seed=seed, offset=0.3)))
        assert value == pytest.approx(_exact_fid(mu, sigma, stats.mu, stats.sigma), rel=1e-6)


def test_fid_module_runs_under_the_jax_backend_without_tensorflow(tmp_path):
    script = no_tensorflow.PRELUDE + """
import numpy as np, keras
from tfgan_cifar.metrics import fid
from tfgan_cifar.metrics import inception
from tfgan_cifar.metrics import reference
assert keras.backend.backend() == "jax"
rng = np.random.default_rng(0)
a, b = rng.standard_normal((50, 4)), rng.standard_normal((50, 4)) + 1
stats = fid.FeatureStats()
stats.update(a)
print(fid.frechet_distance(stats.mean(), stats.covariance(), b.mean(0), np.cov(b, rowvar=False)))
x = keras.ops.image.resize(np.zeros((1, 8, 8, 3), np.float32), (16, 16))
print(tuple(x.shape), no_tensorflow.imported())
"""
    env = dict(os.environ, KERAS_BACKEND="jax",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    value, shape = out.stdout.splitlines()[-2:]
    assert float(value) > 3 and shape == "(1, 16, 16, 3) False"

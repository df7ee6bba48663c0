"""Precision/recall/density/coverage, class accuracy and coverage, FD_classifier: each equal
to a direct NumPy computation on small sets."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from tfgan_cifar.metrics import fid, quality


def _direct_prdc(real, fake, k):
    """The clovaai reference formulation, with full distance matrices."""
    real_real, fake_fake, real_fake = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    real_radii = np.sort(real_real, axis=1)[:, k]  # column 0 is the point itself
    fake_radii = np.sort(fake_fake, axis=1)[:, k]
    precision = (real_fake < real_radii[:, None]).any(axis=0).mean()
    recall = (real_fake < fake_radii[None, :]).any(axis=1).mean()
    density = (1 / k) * (real_fake < real_radii[:, None]).sum(axis=0).mean()
    coverage = (real_fake.min(axis=1) < real_radii).mean()
    return dict(precision=precision, recall=recall, density=density, coverage=coverage)


@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_prdc_equals_direct_computation(chunk_rows):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 8))
    fake = rng.normal(0.5, 1.3, size=(45, 8))
    for k in (3, 5):
        got = quality.prdc(real, fake, k=k, chunk_rows=chunk_rows)
        want = _direct_prdc(real, fake, k)
        for name in want:
            assert got[name] == pytest.approx(want[name], abs=1e-12), name
    assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1


def test_radii_exclude_the_point_itself():
    points = np.array([[0.0], [1.0], [3.0], [6.0], [10.0], [15.0], [21.0]])
    # Second nearest neighbour of each point among the others.
    assert quality.nearest_neighbour_radii(points, k=2).tolist() == [3, 2, 3, 4, 5, 6, 11]
    with pytest.raises(ValueError, match="more than 5"):
        quality.nearest_neighbour_radii(points[:5])


def test_identical_sets_have_precision_and_recall_one():
    features = np.random.default_rng(1).normal(size=(50, 16))
    result = quality.prdc(features, features.copy())
    assert result["precision"] == result["recall"] == result["coverage"] == 1.0
    assert result["density"] == pytest.approx(_direct_prdc(features, features, 5)["density"])


def test_dropped_modes_lower_recall_and_coverage_not_precision():
    rng = np.random.default_rng(2)
    centres = rng.normal(scale=20.0, size=(8, 4))

    def mixture(modes, n):
        picked = rng.choice(modes, n)
        return centres[picked] + rng.normal(size=(n, 4))

    real = mixture(np.arange(8), 800)
    full = quality.prdc(real, mixture(np.arange(8), 800))
    half = quality.prdc(real, mixture(np.arange(4), 800))
    assert full["recall"] > 0.9 and full["precision"] > 0.9
    assert half["precision"] > 0.9
    assert half["recall"] < 0.6 and half["coverage"] < 0.6


def test_prdc_when_possible_needs_more_than_k_rows():
    rng = np.random.default_rng(3)
    assert quality.prdc_when_possible(rng.normal(size=(5, 2)), rng.normal(size=(9, 2))) == {}
    result = quality.prdc_when_possible(rng.normal(size=(9, 2)), rng.normal(size=(9, 2)),
                                        suffix="_clf")
    assert set(result) == {"precision_clf", "recall_clf", "density_clf", "coverage_clf"}


def test_class_accuracy_overall_and_per_class():
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0])
    predicted = np.array([0, 1, 1, 1, 0, 2, 2, 0, 0, 0])
    overall, per_class = quality.class_accuracy(predicted, labels, 4)
    assert overall == np.mean(predicted == labels) == 0.6
    assert per_class[:3] == pytest.approx([2 / 3, 2 / 3, 2 / 4]) and np.isnan(per_class[3])


def test_class_distribution_and_kl_from_uniform():
    predicted = np.array([0, 0, 0, 1, 2, 2])
    p = quality.class_distribution(predicted, 4)
    assert p.tolist() == pytest.approx([3 / 6, 1 / 6, 2 / 6, 0])
    direct = sum(q * np.log(q / 0.25) for q in p if q > 0)
    assert quality.kl_from_uniform(p) == pytest.approx(direct)
    assert quality.kl_from_uniform(np.full(10, 0.1)) == pytest.approx(0, abs=1e-12)
    assert quality.kl_from_uniform(np.eye(10)[3]) == pytest.approx(np.log(10))


class _LinearClassifier:
    """A stand-in ReferenceClassifier: fixed linear features and logits of the mean colour."""

    num_classes = 3
    cache_key = {"classifier": "linear-test"}

    def __init__(self):
        self.weights = np.random.default_rng(4).normal(size=(12, 6))

    def logits_and_features(self, images):
        images = np.asarray(images, np.float64)
        colour = images.mean(axis=(1, 2))  # (N, 3)
        features = np.concatenate([colour, colour ** 2, images[:, :2, :2, 0].reshape(-1, 4),
                                   images[:, 0, 0, 1:]], axis=1) @ self.weights
        return colour, features

    def __call__(self, images):
        return self.logits_and_features(images)[1]


def test_classifier_evaluator_equals_direct_computation(tmp_path, cifar_like_dir):
    from tfgan_cifar.config import TrainConfig
    from tfgan_cifar.data import load_image_folder, subset_indices
    from tfgan_cifar.metrics.evaluator import ClassifierEvaluator

    config = TrainConfig(image_dir=str(cifar_like_dir / "train"), fid_samples=20, num_classes=3,
                         fid_cache_dir=str(tmp_path), conditional=True, model="sagan").resolved()
    classifier = _LinearClassifier()
    evaluator = ClassifierEvaluator(config, classifier)
    generated = {}

    def generate(z, labels):
        rng = np.random.default_rng(int(abs(z[0, 0]) * 1e6))
        images = rng.uniform(-1, 1, (len(z), 32, 32, 3)).astype(np.float32)
        images[np.arange(len(z)), :, :, labels] = 0.9  # the drawn class's channel is bright
        generated.setdefault("x", []).append(images)
        generated.setdefault("y", []).append(labels)
        return images

    result = evaluator.evaluate(generate, seed=5, num_samples=30)
    x, y = np.concatenate(generated["x"]), np.concatenate(generated["y"])
    logits, features = classifier.logits_and_features(x)
    test = load_image_folder(str(cifar_like_dir / "test"))
    # The reference: a seeded draw of 20 test images (the folder is sorted by class).
    real = classifier(test.images[subset_indices(len(test), 20)].astype(np.float32) / 127.5 - 1)
    predicted = logits.argmax(axis=1)
    want_fd = fid.frechet_distance(features.mean(0), np.cov(features, rowvar=False),
                                   real.mean(0), np.cov(real, rowvar=False))
    assert result["fd_classifier"] == pytest.approx(want_fd, rel=1e-9)
    assert result["class_acc"] == pytest.approx(np.mean(predicted == y)) and result["class_acc"] > 0.9
    counts = np.bincount(predicted, minlength=3) / 30
    assert result["class_distribution"] == pytest.approx(counts.tolist())
    assert result["class_kl"] == pytest.approx(sum(p * np.log(3 * p) for p in counts if p > 0))
    direct = _direct_prdc(real, features, 5)
    assert {k: result[f"{k}_clf"] for k in direct} == pytest.approx(direct)
    assert result["classifier_samples"] == 30
    # The reference statistics are cached: a second evaluator reads them from disk.
    again = ClassifierEvaluator(config, classifier)
    assert len(list(tmp_path.glob("fid_ref_*.npz"))) == 1
    np.testing.assert_array_equal(again.reference.mu, evaluator.reference.mu)


def test_intra_class_fd_equals_direct_computation(tmp_path):
    from tfgan_cifar.data import ImageSet
    from tfgan_cifar.metrics import conditional

    rng = np.random.default_rng(6)
    labels = np.repeat(np.arange(3), [9, 11, 10]).astype(np.int32)
    test = ImageSet(rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8), labels,
                    ["a", "b", "c"], "synthetic")
    extractor = _LinearClassifier()

    def generate(z, labels):
        images = np.tanh(np.resize(z, (len(z), 32 * 32 * 3)).reshape(-1, 32, 32, 3))
        return images * 0.5 + 0.3 * labels[:, None, None, None]

    result = conditional.intra_class_fd(generate, 5, extractor, test, "synthetic",
                                        str(tmp_path), seed=7)
    z_rng = np.random.default_rng(7)
    want = []
    for label, count in enumerate([9, 11, 10]):
        z = z_rng.standard_normal((count, 5)).astype(np.float32)
        fake = extractor(generate(z, np.full(count, label)))
        real = extractor(test.images[labels == label].astype(np.float32) / 127.5 - 1)
        want.append(fid.frechet_distance(fake.mean(0), np.cov(fake, rowvar=False),
                                         real.mean(0), np.cov(real, rowvar=False)))
    assert result["per_class"] == pytest.approx(want, rel=1e-9)
    assert result["mean"] == pytest.approx(np.mean(want)) and result["samples_per_class"] == [9, 11, 10]
    assert len(list(tmp_path.glob("fid_ref_*.npz"))) == 3  # one cached reference per class

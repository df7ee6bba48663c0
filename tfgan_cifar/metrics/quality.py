"""Quality metrics beyond FID, from feature vectors and predicted classes. NumPy only.

- Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020), as
  in the authors' reference code (clovaai/generative-evaluation-prdc): each point's radius is
  the distance to its k-th nearest neighbour in its own set (itself excluded), and a point
  lies inside a ball when its distance is strictly below the radius. The N x M distance
  matrices are computed in row chunks, so 10k x 10k sets with 2048-d features fit in memory.
- Class accuracy of conditional samples ("GAN-test", Shmelkov et al. 2018): the share that a
  reference classifier assigns to the label they were drawn for, overall and per class.
- Class coverage: the distribution of predicted classes and its KL divergence from uniform,
  log(C) - H(p); 0 for a generator that draws every class equally often.
"""

import numpy as np

PRDC_K = 5
CHUNK_ROWS = 1000


def _squared_norms(x):
    return np.einsum("ij,ij->i", x, x)


def _distance_chunks(a, b, chunk_rows=CHUNK_ROWS):
    """Yields (start, Euclidean distances of a[start:start + chunk_rows] to every row of b)."""
    b_norms = _squared_norms(b)
    for start in range(0, len(a), chunk_rows):
        rows = a[start:start + chunk_rows]
        squared = _squared_norms(rows)[:, None] + b_norms[None, :] - 2.0 * rows @ b.T
        yield start, np.sqrt(np.maximum(squared, 0.0))


def nearest_neighbour_radii(features, k=PRDC_K, chunk_rows=CHUNK_ROWS):
    """Distance of each row to its k-th nearest neighbour among the other rows (N,)."""
    features = np.asarray(features, np.float64)
    if len(features) <= k:
        raise ValueError(f"k-th nearest neighbours with k={k} need more than {k} feature rows, "
                         f"got {len(features)}")
    radii = np.empty(len(features))
    for start, distances in _distance_chunks(features, features, chunk_rows):
        rows = np.arange(len(distances))
        distances[rows, start + rows] = -np.inf  # the row itself: sorted first, then skipped
        radii[start:start + len(distances)] = np.partition(distances, k, axis=1)[:, k]
    return radii


def prdc(real_features, fake_features, k=PRDC_K, chunk_rows=CHUNK_ROWS):
    """Precision, recall, density and coverage of fake features against real ones.

    Args:
        real_features, fake_features: arrays (N, D) and (M, D), each with more than k rows.
        k: the nearest-neighbour count of the radii (5, as in Naeem et al.).
        chunk_rows: rows of each distance-matrix chunk (memory: chunk_rows x max(N, M)).

    Returns:
        {"precision", "recall", "density", "coverage"} as floats: precision is the share of
        fakes inside some real ball, recall the share of reals inside some fake ball, density
        the mean number of real balls holding a fake divided by k, coverage the share of reals
        whose ball holds a fake.
    """
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected feature arrays (N, D) and (M, D), got {real.shape} and "
                         f"{fake.shape}")
    real_radii = nearest_neighbour_radii(real, k, chunk_rows)
    fake_radii = nearest_neighbour_radii(fake, k, chunk_rows)
    in_real_balls = np.zeros(len(fake))  # per fake: how many real balls hold it
    recalled = np.zeros(len(real), bool)
    covered = np.zeros(len(real), bool)
    for start, distances in _distance_chunks(real, fake, chunk_rows):
        radii = real_radii[start:start + len(distances), None]
        inside = distances < radii
        in_real_balls += inside.sum(axis=0)
        covered[start:start + len(distances)] = inside.any(axis=1)
        recalled[start:start + len(distances)] = (distances < fake_radii[None, :]).any(axis=1)
    return {"precision": float((in_real_balls > 0).mean()),
            "recall": float(recalled.mean()),
            "density": float(in_real_balls.mean() / k),
            "coverage": float(covered.mean())}


def prdc_when_possible(real_features, fake_features, k=PRDC_K, suffix=""):
    """`prdc` with `suffix` added to its keys, or {} when a set has k rows or fewer."""
    if min(len(real_features), len(fake_features)) <= k:
        return {}
    return {f"{name}{suffix}": value
            for name, value in prdc(real_features, fake_features, k).items()}


def class_accuracy(predicted, labels, num_classes):
    """Share of samples whose predicted class is the label they were drawn for.

    Returns:
        (overall accuracy, list of per-class accuracies; NaN for a class with no sample).
    """
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    correct = predicted == labels
    per_class = [float(correct[labels == c].mean()) if np.any(labels == c) else float("nan")
                 for c in range(num_classes)]
    return float(correct.mean()), per_class


def class_distribution(predicted, num_classes):
    """Share of samples predicted as each class (num_classes,)."""
    counts = np.bincount(np.asarray(predicted, np.int64), minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1)


def kl_from_uniform(distribution):
    """KL(p || uniform) = log(C) - H(p), in nats; 0 for a uniform p, log(C) for one class."""
    p = np.asarray(distribution, np.float64)
    nonzero = p[p > 0]
    return float(np.log(len(p)) + (nonzero * np.log(nonzero)).sum())

"""Each loss against values computed by hand."""

import math

import numpy as np
import pytest

from tfgan_cifar.training.losses import LOSSES, discriminator_accuracy

REAL = np.array([2.0, -1.0], np.float32)
FAKE = np.array([0.5, -3.0], np.float32)


def softplus(x):
    return math.log1p(math.exp(x))


EXPECTED = {
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    "bce": (
        (softplus(-2) + softplus(1)) / 2 + (softplus(0.5) + softplus(-3)) / 2,
        (softplus(-0.5) + softplus(3)) / 2,
    ),
    # 1/2 E[(r - 1)^2] + 1/2 E[f^2];  E[(f - 1)^2]
    "lsgan": (0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 9) / 2, (0.25 + 16) / 2),
    # E[relu(1 - r)] + E[relu(1 + f)];  -E[f]
    "hinge": ((0 + 2) / 2 + (1.5 + 0) / 2, 1.25),
    # E[f] - E[r];  -E[f]
    "wasserstein": (-1.25 - 0.5, 1.25),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_values(name):
    d_expected, g_expected = EXPECTED[name]
    loss = LOSSES[name]
    assert float(loss.d_loss(REAL, FAKE)) == pytest.approx(d_expected, rel=1e-5)
    assert float(loss.g_loss(FAKE)) == pytest.approx(g_expected, rel=1e-5)


def test_every_registered_loss_is_tested():
    assert set(EXPECTED) == set(LOSSES)


def test_discriminator_accuracy_uses_the_loss_threshold():
    real_acc, fake_acc = discriminator_accuracy(LOSSES["hinge"], REAL, FAKE)
    assert (float(real_acc), float(fake_acc)) == (0.5, 0.5)
    real_acc, fake_acc = discriminator_accuracy(
        LOSSES["lsgan"], np.array([0.6, 0.4], np.float32), np.array([0.4, 0.6], np.float32))
    assert (float(real_acc), float(fake_acc)) == (0.5, 0.5)

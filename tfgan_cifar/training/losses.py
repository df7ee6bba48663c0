"""GAN losses as pure functions of the discriminator's logits.

Every loss has the same two roles, `d_loss(real_logits, fake_logits)` and `g_loss(fake_logits)`,
both returning a scalar to minimise, plus the logit threshold above which D calls an image real
(used for D's accuracy). Pick one by name from `LOSSES`.
"""

import dataclasses
from typing import Callable

from keras import ops


def bce_d_loss(real_logits, fake_logits):
    """Binary cross-entropy: -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))."""
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def bce_g_loss(fake_logits):
    """Non-saturating generator loss: -log sigmoid(D(G(z)))."""
    return ops.mean(ops.softplus(-fake_logits))


def lsgan_d_loss(real_logits, fake_logits):
    """Least squares (Mao et al. 2017): 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * ops.mean(ops.square(real_logits - 1.0)) + 0.5 * ops.mean(ops.square(fake_logits))


def lsgan_g_loss(fake_logits):
    """Least squares generator loss: E[(D(G(z)) - 1)^2]."""
    return ops.mean(ops.square(fake_logits - 1.0))


def hinge_d_loss(real_logits, fake_logits):
    """Hinge loss (Lim & Ye 2017, used by SAGAN): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))


def hinge_g_loss(fake_logits):
    """Hinge generator loss: -E[D(G(z))]."""
    return -ops.mean(fake_logits)


def wasserstein_d_loss(real_logits, fake_logits):
    """Wasserstein critic loss: E[D(G(z))] - E[D(x)]."""
    return ops.mean(fake_logits) - ops.mean(real_logits)


def wasserstein_g_loss(fake_logits):
    """Wasserstein generator loss: -E[D(G(z))]."""
    return -ops.mean(fake_logits)


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """A named pair of losses and the logit above which D's output counts as 'real'."""

    d_loss: Callable
    g_loss: Callable
    real_threshold: float = 0.0


LOSSES = {
    "bce": GANLoss(bce_d_loss, bce_g_loss),
    "lsgan": GANLoss(lsgan_d_loss, lsgan_g_loss, real_threshold=0.5),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss),
    "wasserstein": GANLoss(wasserstein_d_loss, wasserstein_g_loss),
}


def discriminator_accuracy(loss, real_logits, fake_logits):
    """Fractions of real images D calls real and of fake images D calls fake."""
    real_acc = ops.mean(ops.cast(real_logits > loss.real_threshold, "float32"))
    fake_acc = ops.mean(ops.cast(fake_logits <= loss.real_threshold, "float32"))
    return real_acc, fake_acc


def classification_loss(class_logits, labels):
    """Mean softmax cross-entropy of class logits [N, C] against integer labels [N]."""
    labels = ops.cast(labels, "int32")
    log_probs = ops.log_softmax(class_logits, axis=-1)
    return -ops.mean(ops.take_along_axis(log_probs, labels[:, None], axis=-1))


def classification_accuracy(class_logits, labels):
    """Fraction of rows whose largest class logit is at the label."""
    predicted = ops.argmax(class_logits, axis=-1)
    return ops.mean(ops.cast(predicted == ops.cast(labels, predicted.dtype), "float32"))


def interpolate(real, fake, epsilon):
    """x_hat = eps * real + (1 - eps) * fake, with one eps in [0, 1] per image ([N])."""
    epsilon = ops.reshape(epsilon, (-1, 1, 1, 1))
    return epsilon * real + (1.0 - epsilon) * fake


def gradient_penalty(gradients):
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x D(x_hat)||_2 - 1)^2] over the images.

    `gradients` is dD/dx at the interpolates, [N, H, W, C]; the backend-specific trainers
    compute it, this function turns it into the penalty.
    """
    norms = ops.sqrt(ops.sum(ops.square(gradients), axis=(1, 2, 3)) + 1e-12)
    return ops.mean(ops.square(norms - 1.0))

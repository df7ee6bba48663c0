"""The CIFAR-10 reference classifier: a small convolutional network trained by the package, used
to measure generated images without the InceptionV3 ImageNet weights (class accuracy, class
coverage, FD_classifier, precision/recall, CAS).

Network and recipe follow Jordan's airbench ("94% on CIFAR-10 in 3.29 seconds", 2024), which
needs about a third of the epochs of Page's ResNet-9:
- a frozen patch-whitening first layer: 2x2 patches projected on the eigenvectors of the
  training images' patch covariance, scaled to unit variance (and negated copies), then GELU;
- three groups of conv, max pool, batch norm, GELU, conv, batch norm, GELU at widths w, 4w, 4w,
  each convolution initialised as an identity on its first input channels;
- batch norm without scale whose shift learns 64x faster than the other weights;
- a global max pool (the `features` layer, 4w values) and a bias-free linear head scaled by 1/9.
Training: SGD-Nesterov on a triangular learning rate, label smoothing, 2-pixel random
translations, alternating flips (every image flipped in every other epoch), and lookahead
averaging of the weights from 30% of the steps on. Augmentation is drawn in NumPy, one batch at
a time, so it runs on either Keras backend. A trained classifier is a `.keras` file with a
`.json` record beside it: the test accuracy, the data source and the training settings.

Its parts: `network` (the layers and the model), `recipe` (how it is trained) and `files`
(saving and loading a trained one, and `ReferenceClassifier`, the functions of images that the
metrics call). The name tells it apart from D's class head (--class_head), which is part of
the GAN and is read by `evaluation_samples.class_head`.
"""

from tfgan_cifar.reference_classifier.files import (DEFAULT_NAME, ReferenceClassifier,
                                                    default_path, load, record_path, save)
from tfgan_cifar.reference_classifier.network import build_classifier
from tfgan_cifar.reference_classifier.recipe import train_classifier

__all__ = ["DEFAULT_NAME", "ReferenceClassifier", "build_classifier", "default_path", "load",
           "record_path", "save", "train_classifier"]

"""DCGAN and conditional SAGAN on CIFAR-10 with Keras 3, tracked by FID.

    import tfgan_cifar

    generator = tfgan_cifar.load_generator("logs/sagan")  # a run directory or an export
    images = generator.sample(16, labels=3, seed=0)      # uint8 [16, 32, 32, 3]

Commands: tfgan-train, tfgan-evaluate, tfgan-sample, tfgan-report, tfgan-classifier.
Importing the package loads neither TensorFlow nor Keras; once Keras is loaded, the package's
layers and models are registered, so `keras.models.load_model` reads an export's
`generator.keras`.
"""

from tfgan_cifar import serializables as _serializables
from tfgan_cifar.sampling import TrainedGenerator, load_generator

__version__ = "0.5.0"
__all__ = ["TrainedGenerator", "load_generator", "__version__"]

_serializables.register_when_keras_loads()

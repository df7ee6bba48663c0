"""Training: the GAN objective, the TensorFlow and JAX backends that run it, and the loop."""

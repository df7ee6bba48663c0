"""Numeric precision of the training step: Keras dtype policies and loss scaling.

`--precision=mixed_bfloat16` or `mixed_float16` builds G and D under that Keras dtype policy:
their variables stay float32 and their layers compute in the half type. What must stay float32
does so where it is computed: spectral norm's power iteration and sigma and the attention
softmax (`nn.layers`), batch-norm statistics (Keras upcasts them), D's sum pooling, final
logit and projection (`nn.sagan_base`, `nn.dcgan`), the logits the losses read,
the gradient penalty, the optimizer slots and the EMA (`training.objective`). The generator
that samples, is scored and is exported is always built in float32.

float16 has too few exponent bits for small gradients, so under `mixed_float16` each network's
optimizer is wrapped in `keras.optimizers.LossScaleOptimizer`: the loss is multiplied by a
dynamic scale before differentiation and the gradients divided by it before the update (a step
with non-finite gradients is skipped and halves the scale).
"""

import contextlib

import keras

from tfgan_cifar import config as config_lib

PRECISIONS = config_lib.PRECISIONS.names()


@contextlib.contextmanager
def dtype_policy(name):
    """Layers created inside this block get the dtype policy `name`; the global policy is
    restored afterwards (a layer keeps the policy it was created with)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def needs_loss_scaling(precision):
    """Whether gradients under `precision` need loss scaling (float16 only)."""
    return precision == "mixed_float16"


def loss_scaled(optimizer, precision):
    """`optimizer`, wrapped in a LossScaleOptimizer when `precision` needs loss scaling."""
    if not needs_loss_scaling(precision):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_scaled")


def split_variables(optimizer):
    """(the loss-scale variables, the wrapped optimizer's variables) of an optimizer; the first
    list is empty for an optimizer without loss scaling. `optimizer.variables` is their sum."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        inner = optimizer.inner_optimizer.variables
        return list(optimizer.variables[:len(optimizer.variables) - len(inner)]), list(inner)
    return [], list(optimizer.variables)


def scale_index(optimizer):
    """Position of the dynamic loss scale among `split_variables(optimizer)[0]`."""
    own, _ = split_variables(optimizer)
    return next(i for i, v in enumerate(own) if v is optimizer.dynamic_scale)

"""The tiny training run the tests build on."""

import dataclasses
import glob
import os

from tfgan_cifar.config import TrainConfig


def tiny_config(model, image_dir, workdir, **overrides):
    """A resolved `TrainConfig` of a tiny run of `model` on `image_dir` (three classes):
    width 4, batch 4, 4 steps, each one logged; no sample grid, checkpoint or evaluation
    unless `overrides` ask for one."""
    values = dict(model=model, image_dir=str(image_dir), workdir=str(workdir), width=4, z_dim=8,
                  batch_size=4, steps=4, log_every=1, sample_every=0, checkpoint_every=0,
                  eval_every=0, num_classes=3, seed=0,
                  save_dir=os.path.join(str(workdir), "saved_models"))
    values.update(overrides)
    return TrainConfig(**values).resolved()


def train_eagerly(config):
    """Trains `config` in this process with --run_eagerly, for tests whose subject is not the
    compiled step: a tiny run's few steps op by op cost less than tracing the step. Returns
    the config trained."""
    from tfgan_cifar.training import loop

    config = dataclasses.replace(config, run_eagerly=True)
    loop.train(config)
    return config


def event_steps(workdir, tag="loss/generator"):
    """The steps of every `tag` summary in the run's TensorBoard event files, read with
    TensorFlow."""
    import tensorflow as tf

    steps = []
    for path in glob.glob(os.path.join(str(workdir), "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return sorted(steps)

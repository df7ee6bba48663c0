"""absl flag definitions shared by the entry points, and flags -> config conversion."""

import dataclasses
import sys

from absl import flags

from tfgan_cifar.config import MODEL_DEFAULTS, TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.training.losses import LOSSES

FLAGS = flags.FLAGS


def _model_default(name):
    return ", ".join(f"{m}: {d[name]}" for m, d in MODEL_DEFAULTS.items())


def define_data_flags():
    """--image_dir and --data_dir: where CIFAR-10 comes from when it cannot be downloaded."""
    flags.DEFINE_string("image_dir", None, "Train on an image folder with one subfolder per "
                        "class (jpg/png), e.g. cifar10/train. Its sibling 'test' folder is the "
                        "FID reference when present.")
    flags.DEFINE_string("data_dir", None, "Read a prepared tensorflow-datasets copy of cifar10 "
                        "from this directory instead of downloading it.")


def define_train_flags():
    """Every flag of train.py; `None` defaults resolve per model (see --helpfull)."""
    d = TrainConfig()
    flags.DEFINE_enum("model", d.model, sorted(MODEL_DEFAULTS), "Which GAN to train.")
    flags.DEFINE_string("workdir", None, "Run directory (checkpoints, TensorBoard events, "
                        "metrics.jsonl, samples, config.json). Default logs/<model>; rerunning "
                        "with the same workdir resumes.")
    flags.DEFINE_integer("steps", d.steps, "Total generator steps.")
    flags.DEFINE_integer("batch_size", None, f"Batch size ({_model_default('batch_size')}).")
    flags.DEFINE_integer("seed", d.seed, "Seed of weights, noise and data order.")
    define_data_flags()
    flags.DEFINE_bool("flip", d.flip, "Random horizontal flips of training images.")
    flags.DEFINE_integer("num_classes", d.num_classes, "Number of classes (labels 0..n-1).")
    flags.DEFINE_bool("conditional", None, "Class-conditional G and D "
                      f"({_model_default('conditional')}).")
    flags.DEFINE_integer("z_dim", None, f"Noise dimension ({_model_default('z_dim')}).")
    flags.DEFINE_integer("width", None, "Channel width w of both networks; DCGAN's G starts "
                         f"at 4x4x(4w), SAGAN's at 4x4x(8w) ({_model_default('width')}).")
    flags.DEFINE_list("attention_res", ["16"], "SAGAN: feature-map resolution(s) of the "
                      "self-attention blocks in G and D: 16, 32 or 16,32.")
    flags.DEFINE_enum("loss", None, sorted(LOSSES), f"GAN loss ({_model_default('loss')}).")
    flags.DEFINE_enum("optimizer", d.optimizer, ["adam", "rmsprop", "sgd"], "Optimizer of both "
                      "networks, each with its own learning rate (SGD uses --beta1 as momentum).")
    flags.DEFINE_integer("n_critic", None, "Discriminator steps per generator step "
                         f"({_model_default('n_critic')}).")
    flags.DEFINE_float("lr_g", None, f"Generator learning rate ({_model_default('lr_g')}).")
    flags.DEFINE_float("lr_d", None, f"Discriminator learning rate ({_model_default('lr_d')}).")
    flags.DEFINE_float("beta1", None, f"Adam beta1 ({_model_default('beta1')}).")
    flags.DEFINE_float("beta2", None, f"Adam beta2 ({_model_default('beta2')}).")
    flags.DEFINE_bool("jit_compile", d.jit_compile, "Compile the training step with XLA.")
    flags.DEFINE_float("ema_decay", d.ema_decay, "Keep an exponential moving average of G's "
                       "weights with this decay (e.g. 0.999) and use it for samples, FID and "
                       "export; 0 turns it off.")
    flags.DEFINE_bool("aux_classifier", d.aux_classifier, "Multi-task discriminator: a "
                      "two-layer head on D's third convolution block predicts the class of real "
                      "images; D minimises its GAN loss + --aux_weight x cross-entropy.")
    flags.DEFINE_float("aux_weight", d.aux_weight, "Weight of the classifier head's loss.")
    flags.DEFINE_integer("replay_size", d.replay_size, "Experience replay: keep the last N "
                         "generated images in a buffer (0: off; at least --batch_size).")
    flags.DEFINE_float("replay_fraction", d.replay_fraction, "Fraction of each fake batch "
                       "shown to D that is drawn from the replay buffer.")
    flags.DEFINE_float("gp_weight", d.gp_weight, "WGAN-GP gradient penalty weight (e.g. 10; "
                       "needs --loss=wasserstein; 0: off).")
    flags.DEFINE_integer("log_every", d.log_every, "Log losses and print progress every N steps.")
    flags.DEFINE_integer("sample_every", d.sample_every, "Write the fixed-noise 8x8 sample grid "
                         "every N steps (0: never).")
    flags.DEFINE_integer("checkpoint_every", d.checkpoint_every, "Checkpoint every N steps "
                         "(also on Ctrl-C and at the end; 0: only then).")
    flags.DEFINE_integer("keep_checkpoints", d.keep_checkpoints, "Checkpoints kept on disk.")
    flags.DEFINE_integer("eval_every", d.eval_every, "Compute FID and KID every N steps and "
                         "at the last one, and export the generator when FID improves (0: "
                         "never).")
    define_eval_flags()
    flags.DEFINE_string("save_dir", d.save_dir, "The best generator goes to "
                        "<save_dir>/<model>/best.")


def define_eval_flags():
    """Flags of FID evaluation shared by train.py and evaluate.py."""
    d = TrainConfig()
    flags.DEFINE_integer("fid_samples", d.fid_samples, "Generated images per FID/KID "
                         "evaluation (conditional models draw labels uniformly); the reference "
                         "uses as many test images, at most the whole split.")
    flags.DEFINE_string("fid_reference_dir", None, "Image folder of FID reference images. "
                        "Default: the 'test' folder beside --image_dir, else the tfds test split.")
    flags.DEFINE_string("inception_weights", None, "Local InceptionV3 ImageNet weights file "
                        "(include_top=False, e.g. inception_v3_weights_tf_dim_ordering_tf_kernels_"
                        "notop.h5). Default: downloaded by Keras on first use.")
    flags.DEFINE_string("fid_cache_dir", d.fid_cache_dir, "Where reference statistics are "
                        "cached.")


def config_from_flags(config_class=TrainConfig):
    """Freezes the parsed flags that name fields of `config_class` into a resolved config."""
    values = {}
    for field in dataclasses.fields(config_class):
        if field.name in FLAGS:
            values[field.name] = FLAGS[field.name].value
    if "attention_res" in values:
        try:
            values["attention_res"] = tuple(int(r) for r in values["attention_res"])
        except ValueError:
            raise UserError(f"--attention_res takes 16, 32 or 16,32, got "
                            f"{','.join(values['attention_res'])}") from None
    return config_class(**values).resolved()


def run_or_exit(function, *args):
    """Runs `function`; a UserError becomes one 'error: ...' line on stderr and exit code 2."""
    try:
        return function(*args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)

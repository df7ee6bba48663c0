"""Evaluate and sample a saved generator (the best one, else the final one of a run).

  tfgan-evaluate --model=sagan                       # saved_models/sagan/best (else final)
  tfgan-evaluate --saved_model=PATH --fid_samples=10000 --attention_maps --weights
  tfgan-evaluate --model=dcgan --samples_npz=dcgan.npz --num_samples=50000 --nofid

Writes into <output_dir>/DCGAN or <output_dir>/SAGAN. Run with --helpfull for every flag.
"""

from tfgan_cifar import cli  # first: it quiets TensorFlow's C++ logging (tf_log_filter)
from tfgan_cifar.evaluate_model import EvaluateOptions, run


def evaluate(argv, flag_values):
    """Evaluates the generator the flags name."""
    run(cli.config_from_flags(EvaluateOptions, flag_values))


def main(argv=None):
    """`tfgan-evaluate`: evaluates as the command line (or `argv`, program name first) says."""
    return cli.run(evaluate, EvaluateOptions, argv, usage=__doc__)

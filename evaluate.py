"""Evaluate and sample a saved generator (the best one, else the final one of a run).

  python evaluate.py --model=sagan                       # saved_models/sagan/best (else final)
  python evaluate.py --saved_model=PATH --fid_samples=10000 --attention_maps --weights
  python evaluate.py --model=dcgan --samples_npz=dcgan.npz --num_samples=50000 --nofid

Writes into <output_dir>/DCGAN or <output_dir>/SAGAN. Run with --helpfull for every flag.
"""

from tfgan_cifar import cli  # first: it quiets TensorFlow's C++ logging (tfgan_cifar.tf_log_filter)
from tfgan_cifar.evaluate_model import EvaluateOptions, run

cli.define_flags(EvaluateOptions)


def main(argv):
    """Evaluates the generator the flags name."""
    run(cli.config_from_flags(EvaluateOptions))


if __name__ == "__main__":
    cli.run(main)

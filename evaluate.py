"""Evaluate and sample a saved generator (the best one, else the final one of a run).

  python evaluate.py --model=sagan                       # saved_models/sagan/best (else final)
  python evaluate.py --saved_model=PATH --fid_samples=10000 --attention_maps --weights
  python evaluate.py --model=dcgan --samples_npz=dcgan.npz --num_samples=50000 --nofid

Writes into <output_dir>/DCGAN or <output_dir>/SAGAN. Run with --helpfull for every flag.
"""

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from tfgan_cifar import cli  # noqa: E402
from tfgan_cifar import evaluate_model  # noqa: E402

defaults = evaluate_model.EvaluateOptions()
flags.DEFINE_enum("model", defaults.model, ["dcgan", "sagan"], "Which model's generator to "
                  "load from <save_dir>/<model>/best, else <save_dir>/<model>/final (and the "
                  "output folder's name).")
flags.DEFINE_string("saved_model", None, "Load this best-model directory or SavedModel instead.")
flags.DEFINE_string("save_dir", defaults.save_dir, "Where training exported best models.")
flags.DEFINE_string("output_dir", defaults.output_dir, "Outputs go to <output_dir>/DCGAN or "
                    "<output_dir>/SAGAN.")
flags.DEFINE_bool("fid", defaults.fid, "Compute FID and KID against the CIFAR-10 test split.")
flags.DEFINE_string("samples_npz", None, "Write --num_samples generated images to this .npz "
                    "(uint8 x: N x 32 x 32 x 3, int32 labels y) for other FID tools.")
flags.DEFINE_integer("num_samples", defaults.num_samples, "Images in --samples_npz.")
flags.DEFINE_bool("attention_maps", defaults.attention_maps, "SAGAN: draw the attention of a "
                  "few query pixels over a generated image.")
flags.DEFINE_bool("real_baseline", defaults.real_baseline, "Also score --fid_samples real "
                  "training images against the test split: the floor at that sample count.")
flags.DEFINE_bool("weights", defaults.weights, "Draw first-layer filters of G and D and "
                  "histograms of every layer's weights.")
flags.DEFINE_integer("seed", defaults.seed, "Seed of the noise and labels.")
cli.define_data_flags()
cli.define_eval_flags()


def main(argv):
    logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress output
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    names = [f.name for f in dataclasses.fields(evaluate_model.EvaluateOptions)]
    options = evaluate_model.EvaluateOptions(**{n: flags.FLAGS[n].value for n in names})
    cli.run_or_exit(evaluate_model.run, options)


if __name__ == "__main__":
    app.run(main)

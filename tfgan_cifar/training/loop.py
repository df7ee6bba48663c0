"""The training loop: cadences, logging, sample grids, checkpoints and clean stops.

The loop is backend-neutral; the trainer it drives (TensorFlow's, or JAX's under
KERAS_BACKEND=jax) owns the networks, the compiled step and the checkpoint state. A trainer
offers: restore() -> step, start(), train_step(), pop_metrics(), learning_rates(),
attention_gains(), generate(z, labels), save(), plus `backend` and `device`.
"""

import contextlib
import json
import os
import signal
import time

import keras
import numpy as np

from tfgan_cifar import data as data_lib, export
from tfgan_cifar.atomic import write_text
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.metrics import fid
from tfgan_cifar.metrics.evaluator import Evaluator, classifier_metrics, reference_source
from tfgan_cifar.run_log import MetricsLog, checkpoint_dir
from tfgan_cifar.training.summaries import Summaries
from tfgan_cifar.viz import curves, grids, internals

GRID_SIDE = 8
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CLASSIFIER_EVAL_IMAGES = 10000  # per split, for the classifier head's evaluation
EVAL_SUMMARIES = ("fid", "kid", "cls_train_loss", "cls_train_acc", "cls_test_loss",
                  "cls_test_acc")


def make_trainer(config, data):
    """The trainer of the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from tfgan_cifar.training.tf_backend import TFTrainer

        return TFTrainer(config, data)
    if backend == "jax":
        from tfgan_cifar.training.jax_backend import JaxTrainer

        return JaxTrainer(config, data)
    raise UserError(f"KERAS_BACKEND={backend} is not supported; use tensorflow or jax")


def fixed_sample_inputs(config, count=GRID_SIDE * GRID_SIDE):
    """The noise and labels of the sample grid: the same for every step of a run."""
    rng = np.random.default_rng(config.seed)
    z = rng.standard_normal((count, config.z_dim)).astype(np.float32)
    labels = (np.arange(count) % config.num_classes).astype(np.int32)
    return z, labels


def prepare_workdir(config):
    """Creates the run directory and writes the resolved config into it.

    A directory that already holds a run of another model is refused, since its checkpoints
    could not be restored into this one and its logs would mix two models. A config.json
    alone (left by a start that failed before training, e.g. on missing data) is replaced.
    """
    os.makedirs(config.workdir, exist_ok=True)
    path = os.path.join(config.workdir, CONFIG_FILE)
    checkpoints = checkpoint_dir(config.workdir)
    started = (os.path.exists(os.path.join(config.workdir, METRICS_FILE))
               or (os.path.isdir(checkpoints) and os.listdir(checkpoints)))
    if started and os.path.exists(path):
        previous = TrainConfig.from_json(open(path).read())
        for field in ("model", "conditional", "z_dim", "width", "attention_res", "num_classes",
                      "aux_classifier", "replay_size"):
            if getattr(previous, field) != getattr(config, field):
                raise UserError(
                    f"--workdir={config.workdir} holds a run with {field}="
                    f"{getattr(previous, field)}, not {getattr(config, field)}: pass another "
                    "--workdir, or the same settings to resume it"
                )
    write_text(path, config.to_json() + "\n")


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step; a second one aborts."""

    def __init__(self):
        self.requested = False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name} received: finishing this step and saving a "
              "checkpoint (send it again to abort without saving)", flush=True)

    @contextlib.contextmanager
    def installed(self):
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for s in previous:
                signal.signal(s, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            previous = {}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _format_duration(seconds):
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def progress_line(step, total, steps_per_sec, metrics):
    """The compact line printed every --log_every steps."""
    eta = (total - step) / steps_per_sec if steps_per_sec > 0 else float("inf")
    return (
        f"step {step}/{total} | {steps_per_sec:.2f} steps/s | "
        f"g_loss {metrics['g_loss']:.3f} d_loss {metrics['d_loss']:.3f} | "
        f"D acc real {metrics['d_real_acc']:.2f} fake {metrics['d_fake_acc']:.2f} | "
        + "".join(f"{name} {metrics[name]:.3f} | " for name in _STUDY_TAGS if name in metrics)
        + f"left {_format_duration(eta) if eta != float('inf') else '?'}"
    )


_STUDY_TAGS = {"cls_loss": "loss/classifier", "cls_acc": "accuracy/classifier",
               "gp": "loss/gradient_penalty", "replayed": "replay/fraction_replayed"}


def _summary_tags(record):
    tags = {
        "loss/generator": record["g_loss"],
        "loss/discriminator": record["d_loss"],
        "accuracy/d_real": record["d_real_acc"],
        "accuracy/d_fake": record["d_fake_acc"],
        "learning_rate/generator": record["lr_g"],
        "learning_rate/discriminator": record["lr_d"],
        "speed/steps_per_sec": record["steps_per_sec"],
    }
    tags.update({k: v for k, v in record.items() if k.startswith("gamma/")})
    tags.update({tag: record[name] for name, tag in _STUDY_TAGS.items() if name in record})
    return tags


def save_sample_grid(trainer, config, step, summaries, z, labels):
    """Writes the fixed-noise 8x8 grid as samples/step_NNNNNN.png and to TensorBoard.

    For SAGAN also sends attention maps of a few query pixels of the first image to TensorBoard.
    """
    grid = grids.image_grid(trainer.generate(z, labels), GRID_SIDE, GRID_SIDE)
    path = grids.save_png(grid, os.path.join(config.workdir, "samples", f"step_{step:06d}.png"),
                        scale=2)
    summaries.image("samples/fixed_noise", step, grid)
    if summaries.enabled and config.model == "sagan":
        image, maps = trainer.generate_with_attention(z[:1], labels[:1])
        for resolution, attention in maps.items():
            summaries.image(f"attention/{resolution}x{resolution}", step,
                            internals.attention_figure_array(
                                image[0], attention[0], default_query_points(resolution)))
    return path


def default_query_points(resolution):
    """Four query pixels spread over an attention map of side `resolution`."""
    q = resolution // 4
    return [(q, q), (q, 3 * q), (3 * q, q), (3 * q, 3 * q)]


def best_model_dir(config):
    """Where the best generator of a run is exported: <save_dir>/<model>/best."""
    return os.path.join(config.save_dir, config.model, "best")


def final_model_dir(config):
    """Where the generator of a finished run is exported: <save_dir>/<model>/final."""
    return os.path.join(config.save_dir, config.model, "final")


def export_final(trainer, config, step):
    """Exports the generator as it is after the last step (the EMA one with --ema_decay), in
    the best model's format, so that a run trained without FID still leaves a model to sample."""
    info = {"step": step, "final": True, "workdir": os.path.abspath(config.workdir),
            "config": json.loads(config.to_json())}
    return export.export_model(trainer.export_generator(), final_model_dir(config), info,
                              discriminator=trainer.export_discriminator())


class _EvaluationCadence:
    """Every --eval_every steps and at the last one: FID/KID (with plots and the best-model
    export) and, with --aux_classifier, the classifier head's loss and accuracy on training and
    test images."""

    def __init__(self, config, log, summaries, data):
        self.config, self.log, self.summaries, self.data = config, log, summaries, data
        self.evaluator = Evaluator.create(config) if config.eval_every else None
        evals = [r for r in log.records("eval") if r.get("fid") is not None]
        self.logged_until = max((r["step"] for r in log.records("eval")), default=0)
        self.best_fid = min((r["fid"] for r in evals), default=float("inf"))
        self._classifier_sets = None

    def due(self, step):
        every = self.config.eval_every
        if not every or (self.evaluator is None and not self.config.aux_classifier):
            return False
        return (step % every == 0 or step == self.config.steps) and step > self.logged_until

    def _classifier_images(self):
        """(train images, labels), (test images, labels): fixed subsets, loaded once."""
        if self._classifier_sets is None:
            rng = np.random.default_rng(self.config.seed)
            test = reference_source(self.config)[1]()
            picked = []
            for images in (self.data, test):
                keep = rng.permutation(len(images))[:CLASSIFIER_EVAL_IMAGES]
                picked.append((images.images[keep], images.labels[keep]))
            self._classifier_sets = picked
        return self._classifier_sets

    def _classifier_result(self, trainer):
        (train_x, train_y), (test_x, test_y) = self._classifier_images()
        train_loss, train_acc = classifier_metrics(trainer.class_logits, train_x, train_y)
        test_loss, test_acc = classifier_metrics(trainer.class_logits, test_x, test_y)
        return {"cls_train_loss": train_loss, "cls_train_acc": train_acc,
                "cls_test_loss": test_loss, "cls_test_acc": test_acc}

    def run(self, trainer, step):
        config = self.config
        started = time.perf_counter()
        result, parts = {}, []
        if self.evaluator is not None:
            result = self.evaluator.evaluate(trainer.generate, seed=config.seed + step)
        if config.aux_classifier:
            result.update(self._classifier_result(trainer))
            parts.append(f"classifier head: accuracy {result['cls_train_acc']:.3f} on training "
                         f"images, {result['cls_test_acc']:.3f} on the test split")
        result["seconds"] = time.perf_counter() - started
        self.log.append("eval", step, result)
        self.summaries.scalars(step, {f"eval/{name}": value for name, value in result.items()
                                      if name in EVAL_SUMMARIES})
        records = self.log.records()
        if config.aux_classifier:
            curves.plot_classifier(records, os.path.join(config.workdir, "classifier.png"))
        if "fid" in result:
            curves.plot_fid(records, os.path.join(config.workdir, "fid.png"))
            parts.insert(0, self._fid_line(trainer, step, result))
        curves.plot_losses(records, os.path.join(config.workdir, "losses.png"))
        print(f"eval step {step}: " + "; ".join(parts) + f" ({result['seconds']:.0f}s)",
              flush=True)
        return result

    def _fid_line(self, trainer, step, result):
        config = self.config
        line = (f"FID (Keras InceptionV3) {fid.format_fid(result['fid'])}, "
                f"KID {result['kid']:.4f} ± {result['kid_std']:.4f} "
                f"({result['num_samples']} samples vs "
                f"{result['reference']})")
        if result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            info = {"step": step, "fid": result["fid"], "kid": result["kid"],
                    "kid_std": result["kid_std"], "num_samples": result["num_samples"],
                    "reference": result["reference"], "workdir": os.path.abspath(config.workdir),
                    "config": json.loads(config.to_json())}
            path = export.export_model(trainer.export_generator(), best_model_dir(config), info,
                                      discriminator=trainer.export_discriminator())
            line += f"; best so far, exported to {path}"
        return line


def train(config):
    """Trains (or resumes) the run that `config` describes; returns the last logged metrics."""
    prepare_workdir(config)
    data = data_lib.load_training_data(config)
    trainer = make_trainer(config, data)
    start = trainer.restore()
    log = MetricsLog(os.path.join(config.workdir, METRICS_FILE))
    if start >= config.steps:
        print(f"{config.workdir} already reached step {start} of --steps={config.steps}; "
              "raise --steps to train further", flush=True)
        return {}
    logged_until = log.last_step("train")
    summaries = Summaries(config.workdir)
    evaluation = _EvaluationCadence(config, log, summaries, data)
    z, labels = fixed_sample_inputs(config)
    print(f"training {config.model} ({'conditional' if config.conditional else 'unconditional'}"
          f", loss {config.loss}) on {trainer.backend} / {trainer.device}: steps "
          f"{start + 1}..{config.steps}, batch {config.batch_size}, workdir {config.workdir}",
          flush=True)
    trainer.start()
    last, last_time, last_step = {}, time.perf_counter(), start
    stop = _StopRequest()
    with stop.installed():
        for step in range(start + 1, config.steps + 1):
            trainer.train_step()
            if step % config.log_every == 0 or step == config.steps:
                metrics = trainer.pop_metrics()
                now = time.perf_counter()
                speed = (step - last_step) / max(now - last_time, 1e-9)
                last_time, last_step = now, step
                last = {**metrics, **trainer.learning_rates(), **trainer.attention_gains(),
                        "steps_per_sec": speed}
                if step > logged_until:
                    log.append("train", step, last)
                    summaries.scalars(step, _summary_tags(last))
                print(progress_line(step, config.steps, speed, metrics), flush=True)
            side_work = time.perf_counter()
            if config.sample_every and step % config.sample_every == 0 and step > logged_until:
                save_sample_grid(trainer, config, step, summaries, z, labels)
            if evaluation.due(step):
                evaluation.run(trainer, step)
            last_time += time.perf_counter() - side_work  # steps/s counts training time only
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                trainer.save()
            if stop.requested:
                path = trainer.save()
                summaries.flush()
                print(f"stopped at step {step}; checkpoint {path}. Run the same command to "
                      "resume.", flush=True)
                return last
    path = trainer.save()
    summaries.flush()
    curves.plot_losses(log.records(), os.path.join(config.workdir, "losses.png"))
    final = export_final(trainer, config, config.steps)
    print(f"finished {config.steps} steps; checkpoint {path}; final generator exported to "
          f"{final}", flush=True)
    return last


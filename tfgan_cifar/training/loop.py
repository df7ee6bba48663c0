"""The training loop: cadences, logging, checkpoints and clean stops.

The loop is backend-neutral: it drives a `trainer.Trainer` of the active Keras backend
(TensorFlow's, or JAX's under KERAS_BACKEND=jax), writes into the run directory through
`run_dir.RunDir`, and leaves sample grids and evaluation to `hooks`.
"""

import contextlib
import errno
import json
import os
import signal

import keras

from tfgan_cifar import data as data_lib
from tfgan_cifar import export, paths
from tfgan_cifar.config import TrainConfig, resumable, settings
from tfgan_cifar.errors import TrainingDiverged, UserError
from tfgan_cifar.metric_schema import tensorboard_scalars
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.training import hooks
from tfgan_cifar.training.progress import Progress
from tfgan_cifar.training.summaries import Summaries, truncate_events
from tfgan_cifar.training.trainer import MAX_IN_FLIGHT
from tfgan_cifar.viz import curves

def connect(config):
    """The devices and processes of the run (--distribute) on the active Keras backend: a
    `tf_distribute.Cluster` or a `jax_distribute.Cluster`. Call it before anything else of
    the backend runs: joining several processes must come first."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from tfgan_cifar.training import tf_distribute

        return tf_distribute.connect(config)
    if backend == "jax":
        from tfgan_cifar.training import jax_distribute

        return jax_distribute.connect(config)
    raise UserError(f"KERAS_BACKEND={backend} is not supported; use tensorflow or jax")


def make_trainer(config, data, cluster=None):
    """The trainer of the active Keras backend, on `cluster` (default: one device)."""
    if keras.backend.backend() == "tensorflow":
        from tfgan_cifar.training.tf_backend import TFTrainer

        return TFTrainer(config, data, cluster)
    from tfgan_cifar.training.jax_backend import JaxTrainer

    return JaxTrainer(config, data, cluster)


def check_replicas(config, cluster):
    """Raises UserError when a global batch does not split evenly over the replicas."""
    for name in ("batch_size", "g_batch_size"):
        if getattr(config, name) % cluster.replicas:
            raise UserError(f"--{name}={getattr(config, name)} is the global batch and must "
                            f"divide evenly over the {cluster.replicas} replicas of "
                            f"--distribute={config.distribute}; pass a multiple of "
                            f"{cluster.replicas}")




def calls(start, steps, steps_per_call):
    """(last step of the call, steps in it) of each compiled call from step `start` to
    `steps`. Calls end at multiples of `steps_per_call`, where the cadences fall: a run resumed
    between two (stopped, or trained with another --steps_per_call) first catches up."""
    step = start
    while step < steps:
        count = min(steps_per_call - step % steps_per_call, steps - step)
        step += count
        yield step, count


def prepare_workdir(config):
    """`check_workdir`, then writes config.json; returns the RunDir."""
    run = check_workdir(config)
    os.makedirs(run.path, exist_ok=True)
    run.write_config(config)
    return run


def check_workdir(config):
    """Checks, writing nothing, that `config` can start or continue the run in its workdir;
    returns the RunDir.

    A directory holding a started run (metrics or checkpoints) keeps its recorded settings:
    only its length, paths, cadences and evaluation settings may change, and anything else is
    refused with one line before a file is touched. A config.json alone (left by a start that
    failed before training, e.g. on missing data) is replaced.
    """
    run = RunDir(config.workdir)
    recorded = run.read_config() if run.started() else None
    if recorded is not None:
        previous = TrainConfig.from_json(json.dumps(recorded))
        # A setting newer than the run is not in its config.json: the run kept its behaviour.
        changed = [field.name for field in settings(TrainConfig) if not resumable(field)
                   and field.name in recorded
                   and getattr(previous, field.name) != getattr(config, field.name)]
        if changed:
            was = ", ".join(f"{name}={getattr(previous, name)}" for name in changed)
            now = ", ".join(f"{name}={getattr(config, name)}" for name in changed)
            raise UserError(
                f"--workdir={config.workdir} holds a run with {was}, not {now}: a run keeps "
                "these settings; pass the same ones to resume it, or another --workdir")
        check_schedule(previous, config)
    return run


def check_schedule(previous, config):
    """Refuses another --steps for a run whose learning rates decay to 0 at its --steps: the
    schedule would jump (back up, for a longer run)."""
    if previous.lr_decay != "none" and previous.steps != config.steps:
        raise UserError(
            f"--workdir={config.workdir} holds a run whose --lr_decay={previous.lr_decay} "
            f"schedule ends at --steps={previous.steps}, not {config.steps}: resume it with "
            f"--steps={previous.steps}, or train longer in another --workdir")


def check_other_backend(run, start):
    """Refuses a run directory that holds only the other Keras backend's checkpoints: starting
    afresh beside them would train the run again from step 1."""
    if start or not run.started():
        return
    backend = keras.backend.backend()
    other = [name for name, files in run.checkpoint_files().items()
             if files and name != backend]
    if other:
        raise UserError(
            f"--workdir={run.path} holds {other[0]} checkpoints and this process uses "
            f"KERAS_BACKEND={backend}: resume it with KERAS_BACKEND={other[0]}, or pass "
            "another --workdir")


def rewind(run, start):
    """Drops what the run logged past the restored step `start` (a kill, a crash or a failed
    evaluation after the last checkpoint, or before the first): the TensorBoard events, then
    metrics.jsonl, each atomically, so that the steps trained again are logged once. Says so
    in one line."""
    logged = run.metrics.last_logged()
    if logged <= start:
        return
    truncate_events(run.path, start)
    run.metrics.truncate_after(start)  # last: while it holds later steps, a rerun rewinds again
    since = f"its checkpoint of step {start}" if start else "step 0 (no checkpoint yet)"
    print(f"resuming from {since}: dropped the metrics and TensorBoard events of steps "
          f"{start + 1}..{logged}, which are trained again", flush=True)


def check_finite(trainer):
    """Raises TrainingDiverged, naming the step and the last good checkpoint, once the step
    has seen a non-finite loss or value of the state (weights, batch-norm statistics, spectral-
    norm vectors, EMA, optimizer slots). Checkpoints and exports are only written after this
    check, so every one on disk is finite."""
    step = trainer.diverged_at()
    if not step:
        return
    checkpoints = trainer.run.checkpoint_files()[trainer.backend]
    last = (f"the last good checkpoint is {checkpoints[-1][1]} (step {checkpoints[-1][0]})"
            if checkpoints else "no checkpoint was written before it")
    raise TrainingDiverged(
        f"training diverged: a loss or a value of the state (weights, batch-norm statistics, "
        f"optimizer slots) was not finite at step {step}; {last}. Lower "
        "--lr_g/--lr_d (or check the data) and train in a new --workdir")


class StoppedBySignal(Exception):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint; `signum` says which."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step; a second one ends the
    process at once, with exit status 128 + its number."""

    def __init__(self):
        self.requested = False
        self.signum = None

    def _handle(self, signum, frame):
        if self.requested:  # abort: no cleanup to wait for (every file is written atomically)
            print(f"\n{signal.Signals(signum).name} received again: aborted without saving; run "
                  "the same command to resume from the last checkpoint", flush=True)
            os._exit(128 + signum)
        self.requested, self.signum = True, signum
        print(f"\n{signal.Signals(signum).name} received: finishing the steps under way (on "
              f"JAX, the up to {MAX_IN_FLIGHT} calls already queued) and saving a checkpoint "
              "(send it again to abort without saving)", flush=True)

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
            if not self.requested:  # once stopping, a second signal still aborts at once
                for s, handler in previous.items():
                    signal.signal(s, handler)


def train(config):
    """Trains (or resumes) the run that `config` describes; returns the last logged metrics.

    Raises StoppedBySignal after writing a checkpoint on SIGINT/SIGTERM, and TrainingDiverged
    (a UserError) when losses or weights stop being finite.
    """
    cluster = connect(config)
    run = RunDir(config.workdir)
    if not cluster.is_writer:
        return _follow(config, run, cluster)
    paths.check_writable(config.workdir, "workdir")
    paths.check_writable(config.save_dir, "save_dir")
    with run.lock():
        try:
            return _train_locked(config, run, cluster)
        except Exception as error:
            if not out_of_space(error):
                raise
            where = getattr(error, "filename", None) or " ".join(str(error).split())[:200]
            raise UserError(
                f"no space left on the device while writing {where}: free space under "
                f"--workdir={config.workdir} or --save_dir={config.save_dir}, then run the "
                "same command: it resumes from the last checkpoint") from None


def out_of_space(error):
    """Whether `error` (an OSError, shutil.Error or TensorFlow error) says the disk or the
    user's quota is full."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(error) for text in (os.strerror(errno.ENOSPC),
                                               os.strerror(errno.EDQUOT)))


def _train_locked(config, run, cluster):
    check_workdir(config)
    check_replicas(config, cluster)
    data = data_lib.load_training_data(config)
    data_lib.check_batch_size(data, config.batch_size)
    classifier = hooks.load_reference_classifier(config)  # a bad file is refused here too
    trainer = make_trainer(config, data, cluster)
    start = trainer.restore()
    check_other_backend(run, start)
    run.write_config(config)  # only now: a start refused above leaves nothing behind
    rewind(run, start)
    if start >= config.steps:
        print(f"{config.workdir} already reached step {start} of --steps={config.steps}; "
              "raise --steps to train further", flush=True)
        damage = final_export_damage(run)  # a failure or kill after the last checkpoint
        if damage:
            print(f"{run.export_dir('final')} {damage}: final generator exported again from "
                  f"the checkpoint of step {start} to {export_final(trainer, config, run)}",
                  flush=True)
        return {}
    summaries = Summaries(config.workdir)
    summaries.settings(config)
    evaluation = hooks.Evaluation(config, run, summaries, data, classifier)
    sample_grids = hooks.SampleGrids(config, run, summaries)
    print(f"training {config.model} ({'conditional' if config.conditional else 'unconditional'}"
          f", loss {config.loss}) on {trainer.backend} / {trainer.device}: steps "
          f"{start + 1}..{config.steps}, batch {config.batch_size}, workdir {config.workdir}",
          flush=True)
    if config.model == "dcgan" and config.critic_norm == "layer":
        print("note: with --gp_weight, DCGAN's D uses layer norm instead of batch norm, as the "
              "WGAN-GP critic does (the penalty is defined per image)", flush=True)
    trainer.start()
    last = {}
    progress = Progress(start, config.steps, config.batch_size)
    stop = _StopRequest()
    with stop.installed():
        for step, count in calls(start, config.steps, config.steps_per_call):
            trainer.train_steps(count)
            progress.step_done(step)
            if step % config.log_every == 0 or step == config.steps:
                metrics = trainer.pop_metrics()
                speed = progress.interval_rate(step)
                last = {**metrics, **trainer.learning_rates(), **trainer.attention_gains(),
                        "steps_per_sec": speed}
                run.metrics.append("train", step, last)
                summaries.scalars(step, tensorboard_scalars(last))
                progress.log(step, metrics, speed)
                check_finite(trainer)
            progress.pause()  # rates count training time only
            sample = sample_grids.due(step)
            if sample or evaluation.due(step):
                check_finite(trainer)
            if sample:
                sample_grids.write(trainer, step)
            if evaluation.due(step):
                evaluation.run_at(trainer, step)
            progress.resume()
            if (config.checkpoint_every and step % config.checkpoint_every == 0
                    or stop.requested):
                check_finite(trainer)
                path = trainer.save()
            if stop.requested:
                summaries.bests(step, run.metrics.records("eval"))
                summaries.flush()
                print(f"stopped at step {step}; checkpoint {path}. Run the same command to "
                      "resume.", flush=True)
                raise StoppedBySignal(stop.signum)
    check_finite(trainer)
    path = trainer.save()
    summaries.bests(config.steps, run.metrics.records("eval"))
    summaries.flush()
    curves.plot_losses(run.metrics.records(), run.figure("losses.png"))
    print(f"finished {config.steps} steps; checkpoint {path}; final generator exported to "
          f"{export_final(trainer, config, run)}", flush=True)
    return last


def _follow(config, run, cluster):
    """Training in a process that does not write the run (a worker other than the chief, a
    JAX process other than 0): the same steps, metric reads and checkpoint saves as the
    writer, since those are collective across processes, and no file of the run. It resumes
    from the run directory the writer keeps (a shared file system)."""
    check_replicas(config, cluster)
    data = data_lib.load_training_data(config)
    data_lib.check_batch_size(data, config.batch_size)
    trainer = make_trainer(config, data, cluster)
    start = trainer.restore()
    if start >= config.steps:
        return {}
    print(f"following the run in {config.workdir} on {trainer.device}: steps "
          f"{start + 1}..{config.steps}", flush=True)
    trainer.start()
    for step, count in calls(start, config.steps, config.steps_per_call):
        trainer.train_steps(count)
        if step % config.log_every == 0 or step == config.steps:
            trainer.pop_metrics()
            check_finite(trainer)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            trainer.save()
    trainer.save()
    return {}


def final_export_damage(run):
    """None when the run's final export loads for sampling; else what is wrong with it."""
    path = run.exported("final")
    if path is None:
        return "is missing"
    try:
        export.load_sampler(path)
    except Exception as error:  # whatever a damaged SavedModel or .keras file raises
        return f"cannot be loaded ({' '.join(str(error).split())[:120] or type(error).__name__})"
    return None


def export_final(trainer, config, run):
    """Exports the generator as it is after the last step to <workdir>/export/final."""
    return export.export_model(
        trainer.export_generator(), run.export_dir("final"),
        hooks.export_info(config, trainer.step, final=True),
        discriminator=trainer.export_discriminator())

"""TensorBoard summaries, written whenever TensorFlow (with tensorboard) is importable."""

import glob
import json
import os
import uuid

import numpy as np

from tfgan_cifar.metric_schema import BY_KEY

# The scalars every run logs, shown as metrics in TensorBoard's HPARAMS dashboard (their last
# value: the final one), with those of evaluation when it is on and the bests (`best_tags`).
TRAIN_METRICS = tuple(BY_KEY[key].tag for key in ("g_loss", "d_loss", "d_real_acc",
                                                   "d_fake_acc", "steps_per_sec"))
FID_METRICS = tuple(BY_KEY[key].tag for key in ("fid", "kid"))
CLASSIFIER_METRICS = tuple(BY_KEY[key].tag for key in ("fd_classifier", "class_acc"))
# Eval record fields whose lowest value over the run is written as best/<field>.
BEST_OF = ("fid", "kid", "fd_classifier")


def hparams_value(value):
    """A config value as the HPARAMS dashboard takes it (bool, number or string; a sequence
    joined by commas), or None for an unset one."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return ",".join(str(v) for v in value)


def metric_tags(config):
    """The scalar tags the HPARAMS dashboard shows for a run of `config`."""
    tags = list(TRAIN_METRICS)
    if config.eval_every:
        with_classifier = bool(config.reference_classifier)
        tags += FID_METRICS + CLASSIFIER_METRICS if with_classifier else FID_METRICS
        tags += [f"best/{name}" for name in BEST_OF
                 if name != "fd_classifier" or with_classifier]
    return tags


class Summaries:
    """Scalars and images for TensorBoard in `logdir`; a no-op with one notice without TF."""

    def __init__(self, logdir):
        try:
            import tensorflow as tf

            self._tf = tf
            self._writer = tf.summary.create_file_writer(logdir)
        except ImportError:
            print("TensorFlow is not installed: no TensorBoard summaries for this run "
                  "(metrics.jsonl and the PNG files are still written)", flush=True)
            self._tf = self._writer = None

    @property
    def enabled(self):
        return self._writer is not None

    def scalars(self, step, values):
        """Writes each {tag: number} at `step`."""
        if not self.enabled:
            return
        with self._writer.as_default(step=int(step)):
            for tag, value in values.items():
                if value is not None:
                    self._tf.summary.scalar(tag, float(value))

    def image(self, tag, step, image):
        """Writes one uint8 HxWx3 image at `step`."""
        if not self.enabled:
            return
        with self._writer.as_default(step=int(step)):
            self._tf.summary.image(tag, np.asarray(image, np.uint8)[None], max_outputs=1)

    def settings(self, config):
        """Writes `config` as the run's hparams (TensorBoard's HPARAMS dashboard: its settings
        beside its final and best metrics, `metric_tags`) and as the text summary `config`."""
        if not self.enabled:
            return
        from tensorboard.plugins.hparams import api as hp

        values = {name: hparams_value(value)
                  for name, value in json.loads(config.to_json()).items()}
        values = {name: value for name, value in values.items() if value is not None}
        with self._writer.as_default(step=0):
            hp.hparams_config(hparams=[hp.HParam(name) for name in values],
                              metrics=[hp.Metric(tag) for tag in metric_tags(config)])
            hp.hparams(values)
            self._tf.summary.text("config", "```json\n" + config.to_json() + "\n```")

    def bests(self, step, evals):
        """Writes best/<field> at `step`: the lowest value of each of BEST_OF over the eval
        records `evals`."""
        values = {}
        for name in BEST_OF:
            found = [record[name] for record in evals if record.get(name) is not None]
            if found:
                values[f"best/{name}"] = min(found)
        self.scalars(step, values)

    def flush(self):
        if self.enabled:
            self._writer.flush()


def truncate_events(logdir, step):
    """Drops from the TensorBoard event files in `logdir` every summary past `step`, so that a
    run resumed from an older checkpoint logs no step twice. Each file is rewritten beside
    itself and renamed onto itself (a file left with no summary is removed); a record cut
    short by a kill ends the file. Does nothing without TensorFlow."""
    try:
        import tensorflow as tf
    except ImportError:
        return
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        kept, dropped, summaries = [], False, 0
        try:
            for record in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(record.numpy())
                if event.HasField("summary") and event.step > step:
                    dropped = True
                    continue
                summaries += event.HasField("summary")
                kept.append(record.numpy())
        except tf.errors.DataLossError:
            dropped = True
        if not dropped:
            continue
        if not summaries:
            os.remove(path)
            continue
        tmp = os.path.join(logdir, f".rewrite-{uuid.uuid4().hex[:12]}.tmp")  # not *tfevents*
        try:
            with tf.io.TFRecordWriter(tmp) as writer:
                for record in kept:
                    writer.write(record)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

"""TensorBoard summaries, written with tensorboard's own event writer (no TensorFlow)."""

import glob
import io
import json
import os
import time
import uuid

import numpy as np
from PIL import Image

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
    """Scalars, images, text and hparams for TensorBoard in `logdir`, written with
    tensorboard's own event writer: the same event files tf.summary writes, on any backend,
    without importing TensorFlow. A no-op with one notice without tensorboard."""

    def __init__(self, logdir):
        try:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            print("tensorboard is not installed: no TensorBoard summaries for this run "
                  "(metrics.jsonl and the PNG files are still written)", flush=True)
            self._writer = None
        else:
            self._writer = EventFileWriter(logdir)

    @property
    def enabled(self):
        return self._writer is not None

    def _write(self, step, *summaries):
        from tensorboard.compat.proto import event_pb2

        for summary in summaries:
            self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                                   summary=summary))

    def scalars(self, step, values):
        """Writes each {tag: number} at `step`."""
        if not self.enabled:
            return
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb

        self._write(step, *(scalar_pb(tag, float(value)) for tag, value in values.items()
                            if value is not None))

    def image(self, tag, step, image):
        """Writes one uint8 HxWx3 image at `step`, as tf.summary.image does: a string tensor
        [width, height, PNG]."""
        if not self.enabled:
            return
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.image import metadata

        pixels = np.asarray(image, np.uint8)
        png = io.BytesIO()
        Image.fromarray(pixels).save(png, format="PNG")
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, string_val=[str(pixels.shape[1]).encode(),
                                                   str(pixels.shape[0]).encode(), png.getvalue()],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)]))
        self._write(step, summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(
                display_name=None, description=None, converted_to_tensor=True))]))

    def settings(self, config):
        """Writes `config` as the run's hparams (TensorBoard's HPARAMS dashboard: its settings
        beside its final and best metrics, `metric_tags`) and as the text summary `config`."""
        if not self.enabled:
            return
        from tensorboard.plugins.hparams import summary_v2 as hp
        from tensorboard.plugins.text.summary_v2 import text_pb

        values = {name: hparams_value(value)
                  for name, value in json.loads(config.to_json()).items()}
        values = {name: value for name, value in values.items() if value is not None}
        self._write(0, hp.hparams_config_pb(hparams=[hp.HParam(name) for name in values],
                                            metrics=[hp.Metric(tag)
                                                     for tag in metric_tags(config)]),
                    hp.hparams_pb(values),
                    text_pb("config", "```json\n" + config.to_json() + "\n```"))

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


def _records(path):
    """The records of a TFRecord file, and whether it ended cleanly (a record cut short by a
    kill, or a damaged one, ends it)."""
    from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow

    reader, records = pywrap_tensorflow.PyRecordReader_New(path), []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return records, True
        except errors.DataLossError:
            return records, False
        records.append(reader.record())


def truncate_events(logdir, step):
    """Drops from the TensorBoard event files in `logdir` every summary past `step`, so that a
    run resumed from an older checkpoint logs no step twice. Each file is rewritten beside
    itself and renamed onto itself (a file left with no summary is removed); a record cut
    short by a kill ends the file. Does nothing without tensorboard."""
    try:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        return
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        records, complete = _records(path)
        kept, summaries = [], 0
        for record in records:
            event = event_pb2.Event.FromString(record)
            if event.HasField("summary") and event.step > step:
                continue
            summaries += event.HasField("summary")
            kept.append(record)
        if complete and len(kept) == len(records):
            continue
        if not summaries:
            os.remove(path)
            continue
        tmp = os.path.join(logdir, f".rewrite-{uuid.uuid4().hex[:12]}.tmp")  # not *tfevents*
        try:
            with open(tmp, "wb") as f:
                writer = RecordWriter(f)
                for record in kept:
                    writer.write(record)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

"""TensorBoard summaries, written whenever TensorFlow (with tensorboard) is importable."""

import glob
import os
import uuid

import numpy as np


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

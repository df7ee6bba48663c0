"""TensorBoard summaries, written whenever TensorFlow (with tensorboard) is importable."""

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

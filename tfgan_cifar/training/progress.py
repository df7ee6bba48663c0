"""Training progress for the user: a live bar on a terminal, log lines otherwise.

Rates count training time only: they start after the session's first step (which traces and
compiles the step) and leave out the time spent on sample grids and evaluations.
"""

import contextlib
import sys
import time

import keras

from tfgan_cifar.metric_schema import study_step_metrics

# The last logged values the bar shows.
BAR_METRICS = ("g_loss", "d_loss", "d_real_acc", "d_fake_acc")


def format_duration(seconds):
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def progress_line(step, total, steps_per_sec, metrics):
    """The compact line printed every --log_every steps when stderr is not a terminal."""
    eta = (total - step) / steps_per_sec if steps_per_sec > 0 else float("inf")
    return (
        f"step {step}/{total} | {steps_per_sec:.2f} steps/s | "
        f"g_loss {metrics['g_loss']:.3f} d_loss {metrics['d_loss']:.3f} | "
        f"D acc real {metrics['d_real_acc']:.2f} fake {metrics['d_fake_acc']:.2f} | "
        + "".join(f"{metric.key} {metric.format(metrics[metric.key])} | "
                  for metric in study_step_metrics() if metric.key in metrics)
        + f"left {format_duration(eta) if eta != float('inf') else '?'}"
    )


class Progress:
    """Reports the steps `start + 1 .. total` of a session.

    With `stream` (default stderr) a terminal: a `keras.utils.Progbar` on it, updated every
    step, with the time left, images/s and the last logged losses. Otherwise `log` prints
    `progress_line` every time it is called (every --log_every steps).
    """

    def __init__(self, start, total, batch_size, stream=None):
        self.start, self.total, self.batch_size = start, total, batch_size
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._began = time.perf_counter()
        self._interval = (start, self._began)  # the step and time the next logged rate starts from
        self._first = None             # (step, time) once the session's first step is done
        self._excluded = 0.0           # seconds of side work since the first step
        self._metrics = []
        self._paused = None
        self._bar = None
        if self.live:
            with contextlib.redirect_stdout(self.stream):  # Progbar writes to sys.stdout
                self._bar = keras.utils.Progbar(total - start, unit_name="step",
                                                stateful_metrics=BAR_METRICS + ("img/s",))

    def step_done(self, step):
        """Call after each training step, or each call of several (`step`: the last one)."""
        if self._first is None:
            self._first = self._interval = (step, time.perf_counter())
        if self.live:
            values = list(self._metrics)
            if self._first is not None and step > self._first[0]:
                values.append(("img/s", self.batch_size * self.session_rate(step)))
            with contextlib.redirect_stdout(self.stream):
                self._bar.update(step - self.start, values)

    def pause(self):
        """Starts side work (sample grids, evaluation) that `resume` leaves out of every rate."""
        self._paused = time.perf_counter()

    def resume(self):
        """Ends the side work begun by `pause`."""
        seconds = time.perf_counter() - self._paused
        self._excluded += seconds
        step, since = self._interval
        self._interval = (step, since + seconds)

    def session_rate(self, step):
        """Steps per second since the end of the session's first step."""
        first_step, first_time = self._first
        elapsed = time.perf_counter() - first_time - self._excluded
        return (step - first_step) / max(elapsed, 1e-9)

    def interval_rate(self, step):
        """Steps per second since the previous call (the first time: since the end of the
        session's first step, or over that step when it is the only one done)."""
        now = time.perf_counter()
        since_step, since = self._interval
        if since_step == step:  # only the first step is done: its time is all there is
            since_step, since = self.start, self._began
        self._interval = (step, now)
        return (step - since_step) / max(now - since, 1e-9)

    def log(self, step, metrics, steps_per_sec):
        """Reports the metrics logged at `step`: a line, or the bar's displayed values."""
        if self.live:
            self._metrics = [(name, float(metrics[name])) for name in BAR_METRICS]
            return
        print(progress_line(step, self.total, steps_per_sec, metrics), flush=True)

"""Training progress: a live bar on a terminal, log lines otherwise; rates leave out the first
step (tracing, compilation) and side work."""

import io

import pytest

from tfgan_cifar.training import progress as progress_lib
from tfgan_cifar.training.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def clock(monkeypatch):
    """A settable clock in place of time.perf_counter for the progress module."""
    now = [0.0]
    monkeypatch.setattr(progress_lib.time, "perf_counter", lambda: now[0])
    return now


METRICS = {"g_loss": 1.5, "d_loss": 0.5, "d_real_acc": 0.75, "d_fake_acc": 0.25}


def test_log_lines_when_not_a_terminal_and_the_first_rate_excludes_the_first_step(clock, capsys):
    stream = io.StringIO()
    progress = Progress(start=0, total=6, batch_size=8, stream=stream)
    assert not progress.live
    clock[0] = 10.0  # the first step traces and compiles
    progress.step_done(1)
    clock[0] = 11.0
    progress.step_done(2)
    progress.log(2, METRICS, progress.interval_rate(2))
    clock[0] = 12.0
    progress.step_done(3)
    progress.pause()
    clock[0] = 17.0  # a sample grid and an evaluation
    progress.resume()
    clock[0] = 18.0
    progress.step_done(4)
    progress.log(4, METRICS, progress.interval_rate(4))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "step 2/6 | 1.00 steps/s | g_loss 1.500 d_loss 0.500 | D acc real 0.75 fake 0.25 | "
        "left 0m04s",
        "step 4/6 | 1.00 steps/s | g_loss 1.500 d_loss 0.500 | D acc real 0.75 fake 0.25 | "
        "left 0m02s"]
    assert stream.getvalue() == ""


def test_a_log_at_the_first_step_rates_that_step(clock):
    progress = Progress(start=5, total=9, batch_size=8, stream=io.StringIO())
    clock[0] = 4.0
    progress.step_done(6)
    assert progress.interval_rate(6) == pytest.approx(0.25)
    clock[0] = 6.0
    progress.step_done(7)
    assert progress.interval_rate(7) == pytest.approx(0.5)


def test_a_bar_on_a_terminal_with_images_per_second_after_the_first_step(clock, capsys):
    terminal = FakeTerminal()
    progress = Progress(start=0, total=5, batch_size=8, stream=terminal)
    assert progress.live
    clock[0] = 10.0
    progress.step_done(1)
    for step in (2, 3, 4, 5):
        clock[0] += 1.0  # one step a second: 8 images/s
        progress.step_done(step)
        if step == 4:
            progress.log(step, METRICS, progress.interval_rate(step))
    shown = terminal.getvalue()
    assert "5/5" in shown and "img/s: 8.0000" in shown
    assert "g_loss: 1.5000" in shown and "d_fake_acc: 0.2500" in shown
    assert "img/s: 2." not in shown  # 3 steps in 12 s would be 2 images/s: the first step
    assert capsys.readouterr().out == ""  # the bar goes to the terminal, nothing to stdout

"""Joining the other processes of a multi-machine run: addresses checked before connecting,
and a wait bounded by --connect_timeout that SIGINT and SIGTERM end at once.

tf.distribute's cluster start and `jax.distributed.initialize` block in C++: a peer that never
comes keeps them waiting (TensorFlow without end, JAX for minutes before aborting), and a
signal's Python handler never runs meanwhile. So the join runs in a helper thread while the
main thread waits, able to take signals; when the time is up or a signal comes, the process
ends at once (nothing has been written yet) with one line. This needs a join that releases
the GIL while it waits (TensorFlow's needs its coordination service off: see `tf_distribute`).
"""

import os
import signal
import socket
import sys
import threading
import time

from tfgan_cifar.errors import UserError


def parse_address(text, what):
    """(host, port) of "host:port" (an IPv6 host in brackets: "[::1]:1234"); UserError, one
    line naming `what` (e.g. "--coordinator_address"), otherwise."""
    host, sep, port = str(text).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{what}={text} is not an address: pass HOST:PORT, e.g. "
                        "node1:12355 (a port from 1 to 65535)")
    return host, int(port)


def refused(address, timeout=1.0):
    """Why nothing accepts a TCP connection at `address` ("host:port"), or None when
    something does."""
    try:
        with socket.create_connection(parse_address(address, "address"), timeout=timeout):
            return None
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__


def _end(code, line):
    print(line, file=sys.stderr, flush=True)
    os._exit(code)  # the helper thread is blocked in C++: no clean exit can wait for it


def join_within(join, seconds, unreachable, where):
    """Returns `join()`, run in a helper thread, within `seconds`; `where` names the cluster
    in the line said first. When the time is up,
    prints one line with `unreachable()` (what could not be reached, in words) and ends the
    process with exit status 2; SIGINT and SIGTERM end it at once with 128 + their number.
    An exception of `join` is raised here."""
    outcome = {}

    def run():
        try:
            outcome["value"] = join()
        except BaseException as error:  # handed to the main thread
            outcome["error"] = error

    def on_signal(signum, frame):
        _end(128 + signum, f"\n{signal.Signals(signum).name} received while joining the other "
             "processes: stopped")

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in previous:
            signal.signal(s, on_signal)
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    print(f"joining the other processes ({where}; waiting up to --connect_timeout={seconds:g}s)",
          flush=True)
    try:
        thread = threading.Thread(target=run, name="join-processes", daemon=True)
        thread.start()
        deadline = time.monotonic() + seconds
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(min(0.2, max(deadline - time.monotonic(), 0.0)))
        if thread.is_alive():
            _end(2, f"error: could not join the other processes within --connect_timeout="
                 f"{seconds:g}s: {unreachable()}. Check the address and that every process "
                 "is started, or raise --connect_timeout")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")

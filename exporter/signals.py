"""SIGTERM and SIGINT as a polite stop, for the commands that run in an event loop.

The first signal asks the work to stop (``stop(name)``): windows already read commit, open
ones are checkpointed, a table build is interrupted; the command then exits 130 saying what it
kept. A second signal ends the process at once: the next run resumes from the checkpoints
either way. Kubernetes, systemd and ``timeout`` send SIGTERM, Ctrl-C sends SIGINT. In an event
loop the handlers go through it (``add_signal_handler``), so ``stop`` runs in the loop's
thread; a table build outside one gets a plain handler that only asks (``Stop.request``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator

from exporter.errors import Interrupted

log = logging.getLogger("exporter")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stopping_on_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """Within a running event loop: the first signal calls ``stop``, a second exits 130."""
    loop = asyncio.get_running_loop()
    asked = False

    def on_signal(name: str) -> None:
        nonlocal asked
        if asked:
            log.error("second signal (%s): stopping at once; the next run resumes from the "
                      "checkpoints.", name)  # fmt: skip
            os._exit(Interrupted.exit_code)
        asked = True
        log.warning("%s: finishing up (committing and checkpointing what is open); a second "
                    "signal stops at once.", name)  # fmt: skip
        stop(name)

    for sig in SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        yield
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def stopping_build_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """Outside an event loop (a table build, a prune): a signal asks the work to stop. The
    handler raises nothing: a KeyboardInterrupt raised inside a DuckDB call would come out of
    it as another exception, on whichever thread ran the query."""

    def on_signal(signum: int, frame: object) -> None:
        request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: not set from Python; nothing to put back
                signal.signal(sig, handler)

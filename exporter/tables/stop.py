"""A request to stop a build, made by a signal handler.

The handler only calls ``Stop.request``: it sets a flag the build checks between steps, and
interrupts every DuckDB query running at that moment (``interrupt`` is safe from another
thread, and a signal handler runs in the main thread while it may be waiting for a worker's
query). Raising from the handler instead would surface inside DuckDB's binding as a
``RuntimeError`` or ``InterruptException`` on whichever thread ran the query. Once a stop is
requested, whatever the build raises is the stop: ``build_tables`` reports it as Interrupted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from exporter.errors import Interrupted

if TYPE_CHECKING:  # a Stop is made where DuckDB is never loaded (an export, a forget)
    import duckdb


class Stop:
    """Set by a signal handler; the build checks it and registers the queries it runs."""

    def __init__(self) -> None:
        self.requested = False
        self._running: set[duckdb.DuckDBPyConnection] = set()

    def request(self) -> None:
        """Ask the build to stop: the flag first, so a query registered from now on sees it."""
        self.requested = True
        running = list(self._running)  # list(): one step under the GIL, safe from threads
        if not running:
            return
        import duckdb  # loaded already: its connections are running

        for con in running:
            with contextlib.suppress(duckdb.Error):  # its query ended and it was closed
                con.interrupt()

    def check(self) -> None:
        """Raise Interrupted if a stop was requested."""
        if self.requested:
            raise Interrupted("A signal stopped the build.")

    @contextlib.contextmanager
    def watching(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Interrupt ``con``'s queries on a stop while inside this block."""
        self._running.add(con)
        try:
            self.check()  # a stop requested just before the add found nothing to interrupt
            yield
        finally:
            self._running.discard(con)

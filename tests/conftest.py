"""Shared fixtures: an in-process sandbox on port 0, a real Pushgateway, a SeaweedFS for
the session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genesys_sandbox import Sandbox
from tests.seaweedfs import SeaweedFS, Unavailable
from tests.support import running_pushgateway, sandbox_settings


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(sandbox_settings()) as sb:
        yield sb


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus Pushgateway on a free loopback port; its URL."""
    with running_pushgateway(tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One real S3 server with an Iceberg REST catalog for the whole session (weed mini,
    about 130 MB); skipped only where it cannot start, saying why."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except Unavailable as exc:
        pytest.skip(f"SeaweedFS cannot start here: {exc}")
    try:
        yield server
    finally:
        server.stop()

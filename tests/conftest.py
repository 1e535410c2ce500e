"""Shared fixtures: an in-process sandbox on port 0, a real Pushgateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genesys_sandbox import Sandbox
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

"""Shared fixtures: an in-process sandbox on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from genesys_sandbox import Sandbox
from tests.support import sandbox_settings


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(sandbox_settings()) as sb:
        yield sb

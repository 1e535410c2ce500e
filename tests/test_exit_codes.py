"""Exit codes tell causes apart: no connection (5) is not authentication (3), a wrong URL (2)
says so, and a certificate nobody trusts is not retried."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web

from exporter.client.http import _transport_error
from exporter.errors import ConnectFailed
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.summary import Summary
from tests.support import START, days, exporter_settings

RANGE = ExportRequest(start=START, end=START + days(1))


async def export_against(tmp_path: Path, sandbox, api_url: str, login_url: str) -> Summary:
    settings = exporter_settings(sandbox, tmp_path, http={"retry_max_attempts": 3})
    connection = dataclasses.replace(settings.connection, api_url=api_url, login_url=login_url)
    return await export(
        dataclasses.replace(settings, connection=connection), RANGE, progress=NoProgress()
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_is_unreachable_not_authentication(sandbox, tmp_path) -> None:
    """Nothing listening at the login URL: exit 5 naming the URL and "could not connect",
    after bounded retries; not exit 3's credentials advice."""
    url = f"http://127.0.0.1:{closed_port()}"
    summary = await export_against(tmp_path, sandbox, url, url)
    assert (summary.exit_code, summary.status) == (5, "unreachable")
    assert url in (summary.error or "") and "could not connect" in (summary.error or "")
    assert "secret" not in (summary.error or "")


@pytest.fixture
async def not_found_server() -> AsyncIterator[str]:
    """A web server that answers 404 to everything: a URL that is not Genesys."""

    async def not_found(request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_found)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_a_404_from_the_login_url_says_the_url_is_wrong(
    sandbox, tmp_path, not_found_server
) -> None:
    """A login URL that answers 404 is a configuration error (exit 2) naming the URL."""
    summary = await export_against(tmp_path, sandbox, sandbox.url, not_found_server)
    assert summary.exit_code == 2
    assert f"login URL {not_found_server}" in (summary.error or "")
    assert "not a Genesys Cloud login service" in (summary.error or "")


async def test_a_404_from_the_api_url_says_the_url_is_wrong(
    sandbox, tmp_path, not_found_server
) -> None:
    """Logged in, but the API URL answers 404: exit 2 naming it, not exit 1 for a window."""
    summary = await export_against(tmp_path, sandbox, not_found_server, sandbox.url)
    assert summary.exit_code == 2 and "it is not a Genesys Cloud API" in (summary.error or "")


@pytest.fixture
async def untrusted_tls_server() -> AsyncIterator[tuple[str, list[int]]]:
    """An https server whose certificate no system trust store holds, and its handshakes."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    handshakes: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handshakes.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}", handshakes
    server.close()
    await server.wait_closed()


async def test_an_untrusted_certificate_fails_at_once_with_exit_5(
    sandbox, tmp_path, untrusted_tls_server
) -> None:
    """A certificate the client does not trust: exit 5 with the fix (trust the proxy's CA),
    after one attempt, since no retry can help."""
    url, handshakes = untrusted_tls_server
    summary = await export_against(tmp_path, sandbox, url, url)
    assert summary.exit_code == 5
    assert "certificate is not trusted" in (summary.error or "")
    assert "SSL_CERT_FILE" in (summary.error or "")
    assert len(handshakes) <= 1 and summary.retries == 0


def test_a_name_that_does_not_resolve_is_a_retryable_connect_failure() -> None:
    """aiohttp's DNS error maps to ConnectFailed that says the name did not resolve (a
    resolver is the one thing no loopback server can show)."""
    key = aiohttp.client_reqrep.ConnectionKey(  # type: ignore[attr-defined]
        "api.example.invalid", 443, True, True, None, None, None
    )
    dns = aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known"))
    error = _transport_error("GET", "https://api.example.invalid/x", dns)
    assert isinstance(error, ConnectFailed) and error.retryable
    assert "did not resolve" in str(error)

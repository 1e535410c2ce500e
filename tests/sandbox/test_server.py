"""Running the sandbox: threaded runner, control endpoints, live updates, users, settings, CLI."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import timedelta

import pytest

from genesys_sandbox import FaultRule, SandboxSettings, SandboxStats, run_sandbox_in_thread
from genesys_sandbox import cli as sandbox_cli
from tests.sandbox.support import JOBS, SPEC, START, basic, running, settings


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_threaded_sandbox_serves_sync_clients() -> None:
    """run_sandbox_in_thread serves blocking clients and exposes the same object API."""
    with run_sandbox_in_thread(settings()) as sb:
        auth = {"Authorization": basic(sb.client_id, sb.client_secret)}
        status, body = http(
            "POST",
            sb.url + "/oauth/token",
            b"grant_type=client_credentials",
            {**auth, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200 and json.loads(body)["token_type"] == "bearer"
        assert sb.stats().tokens_issued == 1 and len(sb.dataset) == SPEC.conversations
        sb.add_fault(FaultRule("status", status=503))
        assert sb.settings.faults == (FaultRule("status", status=503),)
        sb.clear_faults()
        assert sb.update(job_delay_s=2.0).job_delay_s == 2.0
        sb.revoke_tokens()
        sb.reset_stats()
        assert sb.stats().tokens_issued == 0


async def test_host_and_port_settings_pick_the_listener() -> None:
    """host and port decide where the sandbox listens; url reflects them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with running(host="127.0.0.1", port=port) as c:
        assert c.sb.url == f"http://127.0.0.1:{port}"
        assert (await c.call("GET", "/api/v2/users")).status == 200


def test_threaded_sandbox_reports_start_up_failures() -> None:
    """A sandbox that cannot bind raises in the caller instead of hanging."""
    with run_sandbox_in_thread(settings()) as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(OSError), run_sandbox_in_thread(settings(port=port)):
            pass


async def test_control_endpoints_drive_the_sandbox_and_are_not_counted() -> None:
    """/sandbox/* reads stats and ground truth, revokes, sets faults and settings, uncounted."""
    async with running() as c:
        await c.login()
        session, url = c.session, c.sb.url
        async with session.get(url + "/sandbox/stats") as r:
            assert SandboxStats.from_json(await r.json()) == c.sb.stats()
        end = START + timedelta(hours=6)
        query = {"start": START.isoformat(), "end": end.isoformat()}
        async with session.get(url + "/sandbox/ground-truth", params=query) as r:
            truth = await r.json()
        assert set(truth["ids"]) == c.sb.dataset.ids_starting_in(START, end)
        assert truth["count"] == len(truth["ids"]) > 0
        async with session.post(url + "/sandbox/revoke-tokens") as r:
            assert r.status == 204
        assert (await c.call("GET", "/api/v2/users")).status == 401
        rules = [{"kind": "status", "status": 502, "routes": ["users"], "count": 1}]
        async with session.post(url + "/sandbox/faults", json=rules) as r:
            assert r.status == 204
        await c.login()
        assert (await c.call("GET", "/api/v2/users")).status == 502
        async with session.delete(url + "/sandbox/faults") as r:
            assert r.status == 204 and c.sb.settings.faults == ()
        patch = {"availability_date": "2026-11-02T00:00:00Z", "rate_per_minute": 50,
                 "denied_permissions": ["routing:queue:view"], "listing_drift": 0.5,
                 "listing_refuse_oversize": ["*"], "evaluation_edits_per_hour": 2.5,
                 "evaluation_edits_in_details": False, "form_max_page_size": 20}  # fmt: skip
        async with session.patch(url + "/sandbox/settings", json=patch) as r:
            assert r.status == 200 and "client_secret" not in await r.json()
        assert c.sb.settings.denied_permissions == ("routing:queue:view",)
        assert c.sb.settings.listing_refuse_oversize == ("*",)
        assert c.sb.state.reviews.changes_records is False
        assert (c.sb.settings.evaluation_edits_per_hour, c.sb.settings.form_max_page_size) == (
            2.5, 20
        )  # fmt: skip
        avail = (await c.call("GET", f"{JOBS}/availability")).json()
        assert avail["dataAvailabilityDate"] == "2026-11-02T00:00:00.000Z"
        stats = c.sb.stats()
        assert not any(key.startswith("sandbox") for key in stats.requests)
        assert stats.count() == 5


async def test_control_endpoints_refuse_bad_input() -> None:
    """Bad faults, unknown or fixed settings and bad instants are 400 with a reason."""
    async with running() as c:
        session, url = c.session, c.sb.url
        for method, path, body in [
            ("POST", "/sandbox/faults", [{"kind": "boom"}]),
            ("POST", "/sandbox/faults", {"kind": "status"}),
            ("PATCH", "/sandbox/settings", {"port": 1}),
            ("PATCH", "/sandbox/settings", {"availability_date": "soon"}),
            ("PATCH", "/sandbox/settings", {"query_drift": 5}),
            ("PATCH", "/sandbox/settings", {"denied_permissions": "routing:queue:view"}),
            ("PATCH", "/sandbox/settings", {"retention_days": 10}),
            ("PATCH", "/sandbox/settings", {"listing_refuse_oversize": ["nowhere"]}),
            ("PATCH", "/sandbox/settings", {"evaluation_edits_per_hour": -1}),
            ("PATCH", "/sandbox/settings", {"form_max_page_size": 0}),
        ]:
            async with session.request(method, url + path, json=body) as r:
                assert r.status == 400 and "error" in await r.json(), body
        async with session.get(url + "/sandbox/ground-truth") as r:
            assert r.status == 400
        async with session.get(url + "/sandbox/listings/nowhere/ground-truth") as r:
            assert r.status == 400
        async with session.get(url + "/sandbox/listings/users/ground-truth") as r:
            assert r.status == 400
        async with session.get(url + "/sandbox/quality/ground-truth") as r:
            assert r.status == 400
        async with session.post(url + "/sandbox/reset-stats") as r:
            assert r.status == 204


async def test_update_changes_live_settings_but_not_fixed_ones() -> None:
    """update() replaces settings live; dataset, host and port cannot change."""
    async with running() as c:
        denied = ("analytics:conversationDetail:view",)
        assert c.sb.update(denied_permissions=denied).denied_permissions == denied
        assert (await c.call("GET", f"{JOBS}/availability")).status == 403
        with pytest.raises(ValueError, match="cannot change"):
            c.sb.update(port=1)
        with pytest.raises(ValueError):
            c.sb.update(rate_per_minute=0)


def test_settings_reject_impossible_values() -> None:
    """SandboxSettings refuses negative times, odd statuses and inverted page sizes."""
    for changes in (
        {"token_ttl_s": -1},
        {"token_error_status": 500},
        {"rate_per_minute": 0},
        {"query_default_page_size": 200},
        {"query_drift": 1.5},
        {"port": 70000},
        {"max_concurrent_jobs": 0},
        {"listing_drift": 1.5},
        {"listing_max_page_size": 0},
        {"listing_refuse_oversize": ("nowhere",)},
        {"listing_refuse_oversize": ["users"]},
        {"retention_days": 10},
        {"denied_permissions": ["routing:queue:view"]},
    ):
        with pytest.raises(ValueError):
            SandboxSettings(**changes)


def test_cli_flags_build_the_settings() -> None:
    """Every CLI flag lands in SandboxSettings; --fault-rate adds the five-status mix."""
    parser = argparse.ArgumentParser()
    sandbox_cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--conversations",
            "50",
            "--start",
            "2026-10-01",
            "--days",
            "2",
            "--seed",
            "9",
            "--client-id",
            "a",
            "--client-secret",
            "b",
            "--token-ttl",
            "60",
            "--token-error-status",
            "401",
            "--no-analytics-permission",
            "--deny-permission",
            "routing:queue:view",
            "--deny-permission",
            "groups:team:view",
            "--listing-max-page-size",
            "200",
            "--queue-members-max-page-size",
            "50",
            "--listing-refuse-oversize",
            "users",
            "--listing-refuse-oversize",
            "teams",
            "--listing-drift",
            "0.25",
            "--retention-days",
            "365",
            "--evaluated-share",
            "0.2",
            "--surveyed-share",
            "0.1",
            "--evaluation-edits-per-hour",
            "3",
            "--form-max-page-size",
            "50",
            "--latency-ms",
            "5",
            "--jitter-ms",
            "2",
            "--rate-per-minute",
            "0",
            "--rate-window",
            "30",
            "--max-concurrent-jobs",
            "3",
            "--job-delay",
            "0.5",
            "--job-expiry",
            "9",
            "--availability-lag",
            "60",
            "--query-drift",
            "0.1",
            "--fault-rate",
            "0.02",
            "--fault",
            "kind=drop,routes=users,count=1",
            "--fault-seed",
            "4",
        ]
    )
    s = sandbox_cli.settings_from_args(args)
    assert (s.dataset.conversations, s.dataset.days, s.dataset.seed) == (50, 2, 9)
    assert s.dataset.start.isoformat() == "2026-10-01T00:00:00+00:00"
    assert (s.client_id, s.client_secret, s.token_ttl_s, s.token_error_status) == (
        "a",
        "b",
        60,
        401,
    )
    denied = ("analytics:conversationDetail:view", "analytics:agentConversationDetail:view",
              "routing:queue:view", "groups:team:view")  # fmt: skip
    assert (s.denied_permissions, s.latency_ms, s.latency_jitter_ms) == (denied, 5, 2)
    assert (s.listing_max_page_size, s.queue_members_max_page_size) == (200, 50)
    assert (s.listing_drift, s.retention_days) == (0.25, 365)
    assert s.listing_refuse_oversize == ("users", "teams")
    assert (s.rate_per_minute, s.rate_window_s, s.max_concurrent_jobs) == (None, 30, 3)
    assert (s.job_delay_s, s.job_expiry_s, s.availability_lag_s) == (0.5, 9, 60)
    assert (s.query_drift, s.fault_seed, len(s.faults)) == (0.1, 4, 6)
    assert s.faults[-1] == FaultRule("drop", routes=("users",), count=1)
    assert (s.dataset.evaluated_share, s.dataset.surveyed_share) == (0.2, 0.1)
    assert (s.evaluation_edits_per_hour, s.form_max_page_size) == (3, 50)
    plain = sandbox_cli.settings_from_args(parser.parse_args([]))
    assert plain.listing_refuse_oversize == SandboxSettings().listing_refuse_oversize


def test_cli_serves_until_sigterm() -> None:
    """The CLI prints its URL and the demo credentials, serves, and exits 0 on SIGTERM."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "genesys_sandbox", "--port", "0", "--conversations", "200"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split(" on ", 1)[1].split()[0]
        banner = first + proc.stdout.readline() + proc.stdout.readline()
        assert "sandbox-client" in banner and "sandbox-secret" in banner
        status, _ = http("GET", url + "/sandbox/stats")
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped" in out


def test_cli_does_not_echo_a_chosen_secret() -> None:
    """A secret given on the command line is not printed back."""
    command = [
        sys.executable,
        "-m",
        "genesys_sandbox",
        "--port",
        "0",
        "--conversations",
        "10",
        "--client-secret",
        "hunter2-private",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        banner = "".join(proc.stdout.readline() for _ in range(3))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert "hunter2" not in banner + out and "(as given)" in banner
    assert proc.returncode == 0

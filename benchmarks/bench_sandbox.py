"""How fast the sandbox serves job results, and how long it takes to start.

Starts ``python -m genesys_sandbox`` in its own process (zero latency, no rate limit, no
faults), optionally pinned to one core with the client on another, then pages several details
jobs concurrently by cursor with a plain aiohttp client that does not parse the records. Prints
start-up time, conversations per second seen by the client, and conversations per second per
core of server CPU (the figure that says whether the sandbox can be a bottleneck).

    python benchmarks/bench_sandbox.py --conversations 100000 --jobs 7 --rounds 2 --pin
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp
import psutil

JOBS = "/api/v2/analytics/conversations/details/jobs"
DAY_MS = 86_400_000


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    startup_s: float
    build_line: str


def start_server(args: argparse.Namespace) -> Server:
    command = [
        sys.executable,
        "-m",
        "genesys_sandbox",
        "--port",
        "0",
        "--conversations",
        str(args.conversations),
        "--days",
        str(args.days),
        "--rate-per-minute",
        "0",
        "--job-delay",
        "0",
        "--max-concurrent-jobs",
        "1000",
    ]
    began = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    if args.pin:
        os.sched_setaffinity(process.pid, {0})
        os.sched_setaffinity(0, {1})
    assert process.stdout is not None
    banner = [process.stdout.readline() for _ in range(4)]
    startup = time.perf_counter() - began
    url = banner[0].split(" on ", 1)[1].split()[0]
    return Server(process, url, startup, banner[3].split(":", 1)[1].strip())


async def token(session: aiohttp.ClientSession, url: str) -> str:
    basic = base64.b64encode(b"sandbox-client:sandbox-secret").decode()
    async with session.post(
        url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    ) as r:
        return str((await r.json())["access_token"])


async def drain(
    session: aiohttp.ClientSession, url: str, job_id: str, page_size: int
) -> tuple[int, int]:
    """Page one job to the end; returns (conversations, bytes). Records are counted, not parsed."""
    conversations = size = 0
    params = {"pageSize": str(page_size)}
    while True:
        async with session.get(f"{url}{JOBS}/{job_id}/results", params=params) as r:
            body = await r.read()
        assert r.status == 200, body[:200]
        conversations += body.count(b'"conversationId":')
        size += len(body)
        at = body.rfind(b'"cursor":"')
        if at < 0:
            return conversations, size
        params["cursor"] = body[at + 10 : body.index(b'"', at + 10)].decode()


async def submit_day_jobs(session: aiohttp.ClientSession, url: str, days: int) -> list[str]:
    ids = []
    start_ms = 1_793_491_200_000  # 2026-11-01T00:00:00Z, the dataset's default start
    for day in range(days):
        a, b = start_ms + day * DAY_MS, start_ms + (day + 1) * DAY_MS
        interval = f"{_iso(a)}/{_iso(b)}"
        async with session.post(url + JOBS, json={"interval": interval}) as r:
            ids.append(str((await r.json())["jobId"]))
    return ids


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ms / 1000))


async def measure(server: Server, args: argparse.Namespace) -> dict[str, float]:
    server_proc = psutil.Process(server.process.pid)
    async with aiohttp.ClientSession() as session:
        session.headers["Authorization"] = "Bearer " + await token(session, server.url)
        jobs = await submit_day_jobs(session, server.url, min(args.jobs, args.days))
        cpu_before = sum(server_proc.cpu_times()[:2])
        began = time.perf_counter()
        totals = []
        for _ in range(args.rounds):
            totals += await asyncio.gather(
                *(drain(session, server.url, j, args.page_size) for j in jobs)
            )
        elapsed = time.perf_counter() - began
        cpu = sum(server_proc.cpu_times()[:2]) - cpu_before
    conversations = sum(c for c, _ in totals)
    return {
        "conversations": conversations,
        "megabytes": sum(b for _, b in totals) / 1e6,
        "elapsed_s": elapsed,
        "server_cpu_s": cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=7, help="concurrent cursors (one day each)")
    parser.add_argument("--rounds", type=int, default=2, help="times each job is paged")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, client on CPU 1")
    args = parser.parse_args()
    server = start_server(args)
    try:
        result = asyncio.run(measure(server, args))
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    conv, elapsed, cpu = result["conversations"], result["elapsed_s"], result["server_cpu_s"]
    print(f"start-up: {server.startup_s:.2f} s to listening ({server.build_line})")
    print(
        f"served:   {conv:,.0f} conversations, {result['megabytes']:,.0f} MB "
        f"in {elapsed:.2f} s, page size {args.page_size}, {args.jobs} cursors"
    )
    rate_mb = result["megabytes"] / elapsed
    print(f"client:   {conv / elapsed:,.0f} conversations/s ({rate_mb:,.0f} MB/s)")
    print(f"server:   {cpu:.2f} CPU s -> {conv / cpu:,.0f} conversations/s per server core")
    return 0


if __name__ == "__main__":
    sys.exit(main())

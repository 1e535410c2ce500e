"""CPU floors: the least per-record work any exporter must do on these pages, measured here.

Downloads job result pages from a sandbox (not timed), then times, in this fresh process and
with the garbage collector on as in any exporter:

- ``orjson``: parse each page with orjson and write every record back out with orjson.dumps;
- ``msgspec-raw``: split each page into the raw bytes of each record with msgspec's ``Raw``,
  read only ``conversationId`` and ``conversationStart``, write the raw bytes out;
- ``exporter-select``: genesys-export's own page step (``records.select_for_windows``), for
  comparison with the two floors.

Each method writes newline-joined records to a file, so the floors include the write. The best
of ``--repeat`` passes counts (CPU time of this process, ``time.process_time``). Prints one JSON
line: microseconds of CPU per record for each method.

    python -m benchmarks.floors --url http://127.0.0.1:8080 --start 2026-11-02 --end 2026-11-03
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import orjson

from benchmarks.scenarios import utc_instant
from exporter.datasets.conversations import CONVERSATIONS, HEAD
from exporter.datasets.records import WindowBounds, select_for_windows
from exporter.datasets.seen import SeenKeys
from exporter.windows import Window

JOBS = "/api/v2/analytics/conversations/details/jobs"


class _Page(msgspec.Struct):
    conversations: list[msgspec.Raw] = []
    cursor: str | None = None


class _Key(msgspec.Struct):
    conversationId: str
    conversationStart: str


_page_decoder = msgspec.json.Decoder(_Page)
_key_decoder = msgspec.json.Decoder(_Key)


def via_orjson(pages: list[bytes], out: BinaryIO, window: Window) -> int:
    """Parse every page into Python objects and dump every record back to JSON."""
    records = 0
    dumps = orjson.dumps
    for body in pages:
        conversations = orjson.loads(body).get("conversations", [])
        lines = [dumps(c) for c in conversations]
        lines.append(b"")
        out.write(b"\n".join(lines))
        records += len(conversations)
    return records


def via_msgspec_raw(pages: list[bytes], out: BinaryIO, window: Window) -> int:
    """Split pages into raw record bytes; read only the id and the start of each."""
    records = 0
    decode_key = _key_decoder.decode
    for body in pages:
        kept: list[Any] = []
        for raw in _page_decoder.decode(body).conversations:
            key = decode_key(raw)
            if key.conversationId and key.conversationStart:
                kept.append(raw)
        kept.append(b"")
        out.write(b"\n".join(kept))
        records += len(kept) - 1
    return records


def via_exporter(pages: list[bytes], out: BinaryIO, window: Window) -> int:
    """genesys-export's own page step for job pages: decode, keep the records that start in
    the window and were not written before, join them as JSONL."""
    records, bounds, seen = 0, WindowBounds([window]), SeenKeys()
    for body in pages:
        page = CONVERSATIONS.api.decode_results(body)
        (kept,) = select_for_windows(
            page.records, bounds, seen, single_line=b"\n" not in body, head=HEAD
        ).windows
        out.write(b"\n".join([*kept, b""]))
        records += len(kept)
    return records


METHODS: dict[str, Callable[[list[bytes], BinaryIO, Window], int]] = {
    "orjson": via_orjson,
    "msgspec-raw": via_msgspec_raw,
    "exporter-select": via_exporter,
}


def download(url: str, start: datetime, end: datetime, max_records: int) -> list[bytes]:
    """Result pages of one details job over [start, end), up to ``max_records`` records."""
    env = os.environ
    pair = f"{env['GENESYSCLOUD_OAUTHCLIENT_ID']}:{env['GENESYSCLOUD_OAUTHCLIENT_SECRET']}"
    token = _call(
        url + "/oauth/token",
        data=b"grant_type=client_credentials",
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
    )["access_token"]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    interval = f"{start:%Y-%m-%dT%H:%M:%S.000Z}/{end:%Y-%m-%dT%H:%M:%S.000Z}"
    job = _call(url + JOBS, data=orjson.dumps({"interval": interval}), headers=auth)["jobId"]
    while _call(f"{url}{JOBS}/{job}", headers=auth)["state"] != "FULFILLED":
        time.sleep(0.2)
    pages: list[bytes] = []
    params = {"pageSize": "1000"}
    records = 0
    while records < max_records:
        query = urllib.parse.urlencode(params)
        body = _fetch(f"{url}{JOBS}/{job}/results?{query}", auth)
        page = _page_decoder.decode(body)
        pages.append(body)
        records += len(page.conversations)
        if not page.cursor:
            break
        params["cursor"] = page.cursor
    return pages


def _request(url: str, data: bytes | None, headers: dict[str, str]) -> urllib.request.Request:
    return urllib.request.Request(url, data=data, headers=headers)


def _fetch(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(_request(url, None, headers)) as response:
        return bytes(response.read())


def _call(url: str, *, headers: dict[str, str], data: bytes | None = None) -> Any:
    with urllib.request.urlopen(_request(url, data, headers)) as response:
        return orjson.loads(response.read())


def measure(
    pages: list[bytes], records: int, window: Window, repeat: int
) -> dict[str, dict[str, float]]:
    """Best-of-``repeat`` CPU microseconds per record of the pages, for each method.

    Every method is charged per record it read, whether or not it wrote it (the exporter drops
    records that started before the window)."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="floors-") as folder:
        for name, method in METHODS.items():
            best, written = float("inf"), 0
            for _ in range(repeat):
                with open(Path(folder) / f"{name}.jsonl", "wb") as out:
                    began = time.process_time()
                    written = method(pages, out, window)
                    out.flush()
                    best = min(best, time.process_time() - began)
            results[name] = {"us_per_record": round(best / records * 1e6, 2), "written": written}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--start", required=True, type=utc_instant)
    parser.add_argument("--end", required=True, type=utc_instant)
    parser.add_argument("--max-records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pages = download(args.url, args.start, args.end, args.max_records)
    sizes = [len(p) for p in pages]
    records = sum(len(_page_decoder.decode(p).conversations) for p in pages)
    result = measure(pages, records, Window(args.start, args.end), args.repeat)
    summary = {
        "pages": len(pages),
        "records": records,
        "mean_record_bytes": round(sum(sizes) / max(records, 1)),
        "methods": result,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The exporter a user would write from the official SDK's docs: the baseline genesys-export beats.

PureCloudPlatformClientV2 as its README and AnalyticsApi docs show it: log in with client
credentials, then for each day submit a conversation details job, poll its status until
FULFILLED, page its results by cursor (1,000 per page) and write every conversation as one JSON
line. Sequential, one day per job, no retries: what users run today. Deliberately plain; it is a
baseline, not a second exporter.

    python -m benchmarks.sdk_baseline --url http://127.0.0.1:8080 \
        --start 2026-11-01 --end 2026-11-02 --out /tmp/sdk.jsonl

Credentials come from GENESYSCLOUD_OAUTHCLIENT_ID / GENESYSCLOUD_OAUTHCLIENT_SECRET. The last
line of stdout is a JSON summary (records, pages, polls, seconds) for ``benchmarks.run``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timedelta

import PureCloudPlatformClientV2 as gc

from benchmarks.scenarios import utc_instant

POLL_S = 1.0  # the docs' examples sleep between status checks; 1 s is generous to the baseline


def day_intervals(start: datetime, end: datetime) -> list[str]:
    """[start, end) cut at UTC midnights, as Genesys interval strings (one job each)."""
    intervals, cursor = [], start
    while cursor < end:
        nxt = min(end, (cursor + timedelta(days=1)).replace(hour=0, minute=0, second=0))
        intervals.append(f"{_iso(cursor)}/{_iso(nxt)}")
        cursor = nxt
    return intervals


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def export_interval(
    api: gc.AnalyticsApi, interval: str, out: object, counts: dict[str, int]
) -> None:
    """One details job for ``interval``: submit, poll to FULFILLED, page by cursor, write."""
    query = gc.AsyncConversationQuery()
    query.interval = interval
    query.order = "asc"
    query.order_by = "conversationStart"
    job_id = api.post_analytics_conversations_details_jobs(query).job_id
    while True:
        time.sleep(POLL_S)
        counts["polls"] += 1
        state = api.get_analytics_conversations_details_job(job_id).state
        if state == "FULFILLED":
            break
        if state not in ("QUEUED", "PENDING"):
            raise RuntimeError(f"job {job_id} ended {state}")
    cursor = None
    while True:
        kwargs = {"page_size": 1000} | ({"cursor": cursor} if cursor else {})
        page = api.get_analytics_conversations_details_job_results(job_id, **kwargs)
        counts["pages"] += 1
        for conversation in page.conversations or []:
            out.write(conversation.to_json() + "\n")  # type: ignore[attr-defined]
            counts["records"] += 1
        cursor = page.cursor
        if not cursor:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="API base URL (the sandbox's)")
    parser.add_argument("--start", required=True, type=utc_instant)
    parser.add_argument("--end", required=True, type=utc_instant)
    parser.add_argument("--out", required=True, help="JSONL file to write")
    args = parser.parse_args()
    began = time.perf_counter()
    gc.configuration.host = args.url
    client = gc.api_client.ApiClient().get_client_credentials_token(
        os.environ["GENESYSCLOUD_OAUTHCLIENT_ID"], os.environ["GENESYSCLOUD_OAUTHCLIENT_SECRET"]
    )
    api = gc.AnalyticsApi(client)
    counts = {"records": 0, "pages": 0, "polls": 0, "jobs": 0}
    with open(args.out, "w", encoding="utf-8") as out:
        for interval in day_intervals(args.start, args.end):
            export_interval(api, interval, out, counts)
            counts["jobs"] += 1
    seconds = time.perf_counter() - began
    print(json.dumps({**counts, "seconds": round(seconds, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

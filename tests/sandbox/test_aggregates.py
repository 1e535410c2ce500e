"""Conversation aggregates: the rule computed from the records the details jobs serve, the
body's pageSize, the cursor pages, the watermark cut, and what the sandbox refuses."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from tests.sandbox.support import DAY1, START, Client, error_of, running

AGG_JOBS = "/api/v2/analytics/conversations/aggregates/jobs"
AGG_QUERY = "/api/v2/analytics/conversations/aggregates/query"
REQUEST = {"interval": DAY1, "granularity": "PT1H", "timeZone": "UTC",
           "groupBy": ["queueId", "mediaType", "direction"],
           "metrics": ["nOffered", "tHandle", "tTalk"]}  # fmt: skip


async def results(c: Client, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every result of an aggregates job, following cursors; and how many pages it took."""
    reply = await c.call("POST", AGG_JOBS, json=body)
    assert reply.status == 202, reply.body
    job = reply.json()["jobId"]
    found, params, pages = [], {}, 0
    while True:
        reply = await c.call("GET", f"{AGG_JOBS}/{job}/results", params=params)
        assert reply.status == 200, reply.body
        page, pages = reply.json(), pages + 1
        found += page["results"]
        if "cursor" not in page:
            return found, pages
        params = {"cursor": page["cursor"]}


def by_rule(records: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[int]]:
    """The rule, applied to conversation records independently of the sandbox's code: each
    session metric emitted on the first day, in the hour of its emitDate, under its session's
    first queue, media type and direction."""
    found: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for record in records:
        for p in record["participants"]:
            for s in p["sessions"]:
                queue = next((g["queueId"] for g in s["segments"] if "queueId" in g), None)
                for m in s.get("metrics", []):
                    if m["name"] in REQUEST["metrics"] and m["emitDate"].startswith("2026-11-01"):
                        hour = m["emitDate"][:13] + ":00:00.000Z"
                        key = (queue, s["mediaType"], s["direction"], hour, m["name"])
                        found[key].append(m["value"])
    return found


async def test_a_job_counts_each_metric_in_the_hour_of_its_emit_date_under_its_session() -> None:
    """Over the first day (and the conversations of the day before it could hold: none):
    every group, hour and metric the rule gives from the details records, with count, sum,
    min and max (an n metric: its count alone), paged by the body's pageSize."""
    async with running() as c:
        records = await c.all_results(await c.submit({"interval": DAY1}), page_size=500)
        expected = by_rule(records)
        found, pages = await results(c, {**REQUEST, "pageSize": 4})
    assert pages > 3 and all(len(r["data"]) >= 1 for r in found)
    assert len({tuple(sorted(r["group"].items())) for r in found}) == len(found)
    got = {}
    for r in found:
        g = r["group"]
        for bucket in r["data"]:
            start, end = bucket["interval"].split("/")
            assert end[:13] > start[:13] and start.endswith(":00:00.000Z")
            for m in bucket["metrics"]:
                key = (g.get("queueId"), g["mediaType"], g["direction"], start, m["metric"])
                got[key] = m["stats"]
    assert got.keys() == expected.keys() and len(got) > 50
    for key, values in expected.items():
        if key[-1].startswith("n"):
            assert got[key] == {"count": sum(values)}, key
        else:
            assert got[key] == {"max": max(values), "min": min(values), "count": len(values),
                                "sum": sum(values)}, key  # fmt: skip


async def test_a_job_counts_only_what_was_emitted_before_the_watermark_the_query_all() -> None:
    """With the watermark at noon a job's buckets end before it; the sync query (no paging)
    has them all."""
    mark = START + timedelta(hours=12)
    async with running(availability_date=mark) as c:
        found, _ = await results(c, REQUEST)
        reply = await c.call("POST", AGG_QUERY, json=REQUEST)
    starts = Counter(b["interval"][11:13] for r in found for b in r["data"])
    assert starts and max(starts) == "11"
    queried = reply.json()["results"]
    assert "cursor" not in reply.json()
    assert max(b["interval"][11:13] for r in queried for b in r["data"]) == "23"


async def test_no_availability_route_and_refusals() -> None:
    """The aggregates have no availability route of their own (404); a time zone other than
    UTC, an unknown dimension or no metrics is a 400; without the permission, a 403."""
    async with running(denied_permissions=()) as c:
        assert (await c.call("GET", f"{AGG_JOBS}/availability")).status in (404, 405)
        for change in ({"timeZone": "Europe/Paris"}, {"groupBy": ["flowId"]}, {"metrics": []}):
            reply = await c.call("POST", AGG_JOBS, json={**REQUEST, **change})
            assert reply.status == 400 and error_of(reply)["code"] == "bad.request", change
    async with running(denied_permissions=("analytics:conversationAggregate:view",)) as c:
        reply = await c.call("POST", AGG_JOBS, json=REQUEST)
        assert reply.status == 403 and error_of(reply)["code"] == "missing.any.permissions"


async def test_the_ground_truth_route_serves_the_default_request() -> None:
    """/sandbox/aggregates/ground-truth: one entry per group, half hour and metric of the
    default request, the same figures its jobs serve for that request."""
    async with running() as c:
        day = {"start": "2026-11-01", "end": "2026-11-02"}
        reply = await c.session.get(c.sb.url + "/sandbox/aggregates/ground-truth", params=day)
        truth = await reply.json()
        body = {"interval": DAY1, "granularity": "PT30M", "timeZone": "UTC",
                "groupBy": ["queueId", "mediaType", "direction"],
                "metrics": ["nOffered", "tAnswered", "tAbandon", "tAcd", "tTalk", "tHandle",
                            "tAcw", "tHeld", "tHeldComplete", "nTransferred", "nOverSla",
                            "tWait", "nConnected"]}  # fmt: skip
        found, _ = await results(c, body)
    served = {(tuple(sorted(r["group"].items())), b["interval"], m["metric"], str(m["stats"]))
              for r in found for b in r["data"] for m in b["metrics"]}  # fmt: skip
    listed = {(tuple(sorted(e["group"].items())), e["interval"], e["metric"], str(e["stats"]))
              for e in truth["results"]}  # fmt: skip
    assert truth["count"] == len(truth["results"]) == len(listed) > 100 and listed == served

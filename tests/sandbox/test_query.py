"""The synchronous details query: touched-day matching, paging, limits and drift."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.sandbox.support import DAY1, QUERY, START, Client, error_of, running

HOUR = "2026-11-02T10:00:00.000Z/2026-11-02T11:00:00.000Z"


async def page(c: Client, number: int, size: int = 100, **body: Any) -> dict[str, Any]:
    reply = await c.call(
        "POST",
        QUERY,
        json={"interval": HOUR, "paging": {"pageSize": size, "pageNumber": number}, **body},
    )
    assert reply.status == 200, reply.body
    return dict(reply.json())


async def all_pages(c: Client, size: int = 100, **body: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    number = 1
    while "conversations" in (current := await page(c, number, size, **body)):
        records += current["conversations"]
        number += 1
    return records


async def test_paging_returns_every_conversation_of_the_touched_day() -> None:
    """An hour of day 2 returns, page by page, every conversation that started on day 2."""
    async with running() as c:
        day2 = START + timedelta(days=1)
        expected = c.sb.dataset.ids_starting_in(day2, day2 + timedelta(days=1))
        records = await all_pages(c)
        ids = [r["conversationId"] for r in records]
        assert set(ids) == expected and len(ids) == len(expected)
        starts = [r["conversationStart"] for r in records]
        assert starts == sorted(starts)
        assert (await page(c, 1))["totalHits"] == len(expected)


async def test_past_the_last_page_there_is_no_conversations_key() -> None:
    """A page beyond the end has totalHits and no conversations key at all."""
    async with running() as c:
        beyond = await page(c, 10_000)
        assert set(beyond) == {"totalHits"} and beyond["totalHits"] > 0


async def test_query_records_have_no_attributes_but_job_records_do() -> None:
    """Sync query records carry no participant attributes; the same conversations in a job do."""
    async with running() as c:
        records = await all_pages(c)
        assert all("attributes" not in p for r in records for p in r["participants"])
        job = await c.all_results(await c.submit({"interval": HOUR}))
        assert any("attributes" in p for r in job for p in r["participants"])


async def test_default_page_size_and_both_or_none_paging() -> None:
    """Without paging the first query_default_page_size records come back; half paging is 400."""
    async with running(query_default_page_size=10) as c:
        reply = await c.call("POST", QUERY, json={"interval": HOUR})
        assert len(reply.json()["conversations"]) == 10
        for paging in ({"pageSize": 5}, {"pageNumber": 1}, {"pageSize": 5, "pageNumber": 0}):
            half = await c.call("POST", QUERY, json={"interval": HOUR, "paging": paging})
            assert half.status == 400 and error_of(half)["code"] == "bad.request", paging


async def test_page_size_above_the_maximum_is_400() -> None:
    """pageSize above query_max_page_size is refused; at the maximum it is served."""
    async with running(query_default_page_size=10, query_max_page_size=20) as c:
        assert len((await page(c, 1, size=20))["conversations"]) == 20
        reply = await c.call(
            "POST", QUERY, json={"interval": HOUR, "paging": {"pageSize": 21, "pageNumber": 1}}
        )
        assert reply.status == 400 and error_of(reply)["code"] == "constraint.validation"


async def test_intervals_longer_than_the_maximum_are_400() -> None:
    """An interval longer than query_max_interval_days is 400; exactly the maximum is fine."""
    async with running(query_max_interval_days=1) as c:
        assert (await c.call("POST", QUERY, json={"interval": DAY1})).status == 200
        two_days = "2026-11-01T00:00:00Z/2026-11-03T00:00:00Z"
        reply = await c.call("POST", QUERY, json={"interval": two_days})
        assert reply.status == 400 and error_of(reply)["code"] == "bad.request"
        bad_order = await c.call("POST", QUERY, json={"interval": DAY1, "order": "random"})
        assert error_of(bad_order)["code"] == "invalid.value"


async def test_order_desc_reverses_the_pages() -> None:
    """order=desc pages newest first."""
    async with running() as c:
        asc = [r["conversationId"] for r in await all_pages(c)]
        desc = [r["conversationId"] for r in await all_pages(c, order="desc")]
        assert desc == asc[::-1]


async def test_drift_repeats_the_previous_pages_last_record() -> None:
    """query_drift=1: every later page starts with the previous page's last record, nothing lost."""
    async with running(query_drift=1.0) as c:
        first, second = await page(c, 1, size=50), await page(c, 2, size=50)
        assert second["conversations"][0] == first["conversations"][-1]
        ids = [r["conversationId"] for r in await all_pages(c, size=50)]
        assert len(ids) > len(set(ids))
        day2 = START + timedelta(days=1)
        assert set(ids) == c.sb.dataset.ids_starting_in(day2, day2 + timedelta(days=1))


async def test_no_drift_by_default() -> None:
    """With query_drift=0 no record appears twice across pages."""
    async with running() as c:
        ids = [r["conversationId"] for r in await all_pages(c, size=50)]
        assert len(ids) == len(set(ids))

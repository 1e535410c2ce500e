"""The user-details router (pure): statuses to the window of their start, once, merged per user."""

from __future__ import annotations

from datetime import timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from exporter.datasets.records import WindowBounds
from exporter.datasets.seen import SeenKeys
from exporter.datasets.user_details import USER_DETAILS
from exporter.store.manifest import Opened
from exporter.windows import plan_windows
from tests.support import START, days

ROUTER = USER_DETAILS.router
BOUNDS = WindowBounds(plan_windows(START, START + days(2), timedelta(days=1)))


def presence(start: str, end: str | None = "x") -> dict[str, object]:
    status: dict[str, object] = {"startTime": start, "systemPresence": "ON_QUEUE"}
    if end is not None:
        status["endTime"] = start if end == "x" else end
    return status


def entry(user: str, *starts: str, routing: tuple[str, ...] = ()) -> dict[str, object]:
    return {
        "userId": user,
        "primaryPresence": [presence(s) for s in starts],
        "routingStatus": [{"startTime": s, "endTime": s, "routingStatus": "IDLE"} for s in routing],
    }


def raws(*entries: dict[str, object]):
    body = orjson.dumps({"userDetails": list(entries), "cursor": "c"})
    return USER_DETAILS.api.decode_results(body).records


def route(seen: SeenKeys, *entries: dict[str, object]):
    return ROUTER.route(raws(*entries), BOUNDS, seen, single_line=True)


def merged(lines) -> dict[str, dict[str, list[str]]]:
    finished = ROUTER.finish(iter(lines))
    assert finished is not None
    out = {}
    for line in finished:
        data = orjson.loads(line)
        out[data["userId"]] = {
            kind: [s["startTime"] for s in data[kind]]
            for kind in ("primaryPresence", "routingStatus")
        }
    return out


DAY1, DAY2 = "2026-11-01T10:00:00.000Z", "2026-11-02T10:00:00.000Z"
BEFORE = "2026-10-31T22:00:00.000Z"  # a status still going on at midnight, stored again on day 1


def test_statuses_go_to_the_window_of_their_start_and_earlier_ones_are_dropped() -> None:
    selection = route(SeenKeys(), entry("u1", BEFORE, DAY1, DAY2))
    day1, day2 = (merged(window) for window in selection.windows)
    assert day1 == {"u1": {"primaryPresence": [DAY1], "routingStatus": []}}
    assert day2 == {"u1": {"primaryPresence": [DAY2], "routingStatus": []}}


def test_a_status_repeated_within_a_page_and_on_later_pages_is_written_once() -> None:
    """The service stores a status once per day it touches and de-duplicates within a page
    only: every repeat after the first is dropped and counted."""
    seen = SeenKeys()
    first = route(seen, entry("u1", DAY1), entry("u1", DAY1, routing=(DAY1,)))
    second = route(seen, entry("u1", DAY1, "2026-11-01T11:00:00.000Z"), entry("u2", DAY1))
    assert (first.repeats, second.repeats) == (1, 1)
    lines = first.windows[0] + second.windows[0]
    assert merged(lines) == {
        "u1": {"primaryPresence": [DAY1, "2026-11-01T11:00:00.000Z"], "routingStatus": [DAY1]},
        "u2": {"primaryPresence": [DAY1], "routingStatus": []},
    }


def test_a_status_not_yet_ended_is_found_open_when_routed_and_in_a_written_line() -> None:
    """A status with no endTime is reported still going on, keyed by user, kind and start,
    with the user as what a refresh asks for; on the page and later in the written line."""
    open_entry = {
        "userId": "u1",
        "primaryPresence": [presence(DAY1, end=None)],
        "routingStatus": [{"startTime": DAY1, "endTime": DAY2, "routingStatus": "IDLE"}],
    }
    selection = ROUTER.route(raws(open_entry), BOUNDS, SeenKeys(), single_line=True)
    expected = Opened(f"u1|primaryPresence|{DAY1}", "u1", DAY1)
    assert selection.opened == [(0, expected)]
    (line,) = ROUTER.finish(iter(selection.windows[0])) or []
    assert list(ROUTER.opened(line)) == [expected]
    assert ROUTER.finish(iter(route(SeenKeys(), entry("u1", DAY1)).windows[0])) is not None
    assert list(ROUTER.opened(route(SeenKeys(), entry("u1", DAY1)).windows[0][0])) == []


def test_a_refreshed_status_replaces_its_older_version_in_the_line() -> None:
    """fresh() picks the wanted statuses out of a refresh's page (closed or not); merge()
    puts them in place of the open ones, leaving every other status and field as it was."""
    later = "2026-11-01T11:00:00.000Z"
    old = {"userId": "u1", "primaryPresence": [presence(DAY1, end=None), presence(later)]}
    (line,) = ROUTER.finish(iter(ROUTER.route(raws(old), BOUNDS, SeenKeys(),
                                              single_line=True).windows[0])) or []  # fmt: skip
    key = f"u1|primaryPresence|{DAY1}"
    closed = {"userId": "u1", "primaryPresence": [presence(DAY1, end=DAY2)]}
    found = ROUTER.fresh(raws(closed, entry("u2", DAY1)), {key}, single_line=True)
    assert list(found) == [key] and not found[key].still_open
    merged_line = orjson.loads(ROUTER.merge(line, {key: found[key].body}))
    assert merged_line["primaryPresence"][0] == presence(DAY1, end=DAY2)
    assert merged_line["primaryPresence"][1] == orjson.loads(line)["primaryPresence"][1]
    assert ROUTER.merge(line, {}) is line


def test_keys_of_a_written_line_are_the_keys_its_statuses_were_seen_by() -> None:
    """A resumed batch learns from its part file exactly the keys it had seen."""
    seen = SeenKeys()
    selection = route(seen, entry("u1", DAY1, routing=(DAY1,)))
    again = SeenKeys()
    again.update(pair for line in selection.windows[0] for pair in ROUTER.keys(line))
    assert route(again, entry("u1", DAY1, routing=(DAY1,))).repeats == 2


starts = st.sampled_from(
    [BEFORE, "2026-11-01T00:00:00.000Z", DAY1, "2026-11-01T23:59:59.999Z", DAY2,
     "2026-11-02T23:00:00.000Z", "2026-11-03T00:00:00.000Z"]
)  # fmt: skip
pages = st.lists(
    st.lists(st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.lists(starts, max_size=4)),
             max_size=4),
    max_size=5,
)  # fmt: skip


@given(pages)
def test_every_status_lands_once_in_its_window_however_it_is_paged(pages_) -> None:
    """Any split of statuses over entries and pages, with repeats: each distinct (user, start)
    inside the range ends up exactly once, in its start's window, in time order."""
    seen = SeenKeys()
    windows: list[list[bytes]] = [[], []]
    expected: list[dict[str, set[str]]] = [{}, {}]
    for page in pages_:
        selection = route(seen, *(entry(user, *s) for user, s in page))
        for i, lines in enumerate(selection.windows):
            windows[i] += lines
        for user, s in page:
            for start in s:
                i = (
                    0
                    if start.startswith("2026-11-01")
                    else 1
                    if start.startswith("2026-11-02")
                    else -1
                )
                if i >= 0:
                    expected[i].setdefault(user, set()).add(start)
    for i in range(2):
        got = merged(windows[i]) if windows[i] else {}
        assert {u: v["primaryPresence"] for u, v in got.items()} == {
            u: sorted(s) for u, s in expected[i].items()
        }

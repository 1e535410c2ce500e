"""Reading record keys from record heads, and sorting page records into windows (pure)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exporter.datasets.conversations import CONVERSATIONS, HEAD
from exporter.datasets.records import (
    HeadDecoder,
    WindowBounds,
    select_for_windows,
)
from exporter.datasets.seen import SeenKeys
from exporter.windows import parse_api_instant, plan_windows
from tests.support import START, days


class _RecordKey(msgspec.Struct):
    conversationId: str
    conversationStart: str


full_decode = msgspec.json.Decoder(_RecordKey).decode
head_decoder = HeadDecoder(_RecordKey)

# Text that looks like the keys the head decoder searches for, to hide in strings and objects.
DECOYS = (
    '"conversationStart":"',
    "conversationStart",
    '\\"',
    '"conversationId":"x"',
    "}",
    '"conversationEnd":"',
)
texts = st.one_of(st.text(max_size=12), st.sampled_from(DECOYS), st.just("x" * 600))
integers = st.integers(-(2**63), 2**63 - 1)  # what orjson serialises
scalars = st.one_of(st.none(), st.booleans(), integers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["conversationStart", "conversationId", "conversationEnd", "a"]), inner
        ),
    ),
    max_leaves=6,
)
others = st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=4)
key_values = st.one_of(st.just("2026-11-01T13:45:12.345Z"), texts, integers)


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A compact JSON object whose id and start (when present) sit anywhere among other keys."""
    fields = list(draw(others).items())
    for name in ("conversationEnd", "conversationId", "conversationStart"):
        if draw(st.integers(0, 9)):  # now and then leave a field out
            fields.insert(draw(st.integers(0, len(fields))), (name, draw(key_values)))
    return orjson.dumps(dict(fields))


def decode_or_error(decode, raw: bytes) -> object:
    try:
        return decode(raw)
    except msgspec.ValidationError as exc:
        return type(exc)


@given(records())
def test_head_decoder_answers_exactly_as_a_full_decode(raw: bytes) -> None:
    assert decode_or_error(head_decoder.decode, raw) == decode_or_error(full_decode, raw)


@pytest.mark.parametrize(
    "raw",
    [
        # the usual shape: top-level scalars first (alphabetical, as the API sends them)
        b'{"conversationEnd":"e","conversationId":"id","conversationStart":"s","participants":[]}',
        # a nested object carries the keys first
        b'{"p":{"conversationId":"no","conversationStart":"no"},"conversationId":"id",'
        b'"conversationStart":"s"}',
        # the key text inside a string, and as the tail of a longer key
        b'{"note":"\\"conversationStart\\":\\"no\\"","x\\"conversationStart":"no",'
        b'"conversationId":"id","conversationStart":"s"}',
        # an escaped quote inside a value
        b'{"conversationId":"i\\"d","conversationStart":"s"}',
        # the keys only after a long participants array: past the head
        b'{"participants":["' + b"p" * 2000 + b'"],"conversationId":"id","conversationStart":"s"}',
    ],
)
def test_head_decoder_reads_top_level_keys_only(raw: bytes) -> None:
    assert head_decoder.decode(raw) == full_decode(raw)
    assert head_decoder.decode(raw).conversationStart == "s"


class _Start(msgspec.Struct):
    conversationStart: object


full_start = msgspec.json.Decoder(_Start).decode


@given(records())
def test_canonical_start_is_the_full_decode_or_nothing(raw: bytes) -> None:
    """When the plain reading answers, it is the top-level value a full decode finds."""
    start = HEAD.plain_time(raw)
    if start is not None:
        assert full_start(raw).conversationStart == start.decode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"conversationEnd":"e","conversationStart":"2026-11-01T13:45:12.345Z","p":[]}',
         b"2026-11-01T13:45:12.345Z"),
        (b'{"conversationStart":"2026-11-01T13:45:12.345Z"}', b"2026-11-01T13:45:12.345Z"),
        # nested first, the key's text as the tail of a longer key, an escaped value, an
        # offset instead of Z, a space before the key: all left to the full decode
        (b'{"p":{"conversationStart":"2026-11-01T13:45:12.345Z"},'
         b'"conversationStart":"2026-11-02T00:00:00.000Z"}', None),
        (b'{"p":{"a":1,"conversationStart":"2026-11-01T13:45:12.345Z"},'
         b'"conversationStart":"2026-11-02T00:00:00.000Z"}', None),
        (b'{"p":[{"a":1,"conversationStart":"2026-11-01T13:45:12.345Z"}],'
         b'"conversationStart":"2026-11-02T00:00:00.000Z"}', None),
        (b'{"x\\"conversationStart":"2026-11-01T13:45:12.345Z",'
         b'"conversationStart":"2026-11-02T00:00:00.000Z"}', None),
        (b'{"conversationStart":"2026-11-01T13:45:12.34\\u0035Z"}', None),
        (b'{"conversationStart":"2026-11-01T13:45:12.345+00:00"}', None),
        (b'{"a":1, "conversationStart":"2026-11-01T13:45:12.345Z"}', None),
    ],
)  # fmt: skip
def test_canonical_start_reads_only_a_plain_top_level_value(raw, expected) -> None:
    assert HEAD.plain_time(raw) == expected


@given(records())
def test_record_head_reads_what_a_full_decode_reads(raw: bytes) -> None:
    """The key and time the head reader returns are the full decode's (the time in canonical
    form), or it raises as that does: ValidationError, or ValueError for a time that is not
    an instant."""
    expected = decode_or_error(full_decode, raw)
    try:
        key, time = HEAD.read(raw)
    except msgspec.ValidationError as exc:
        assert expected is type(exc)
        return
    except ValueError:
        assert isinstance(expected, _RecordKey)
        with pytest.raises(ValueError):
            parse_api_instant(expected.conversationStart)
        return
    assert isinstance(expected, _RecordKey)
    assert key.decode() == expected.conversationId
    assert parse_api_instant(time.decode()) == parse_api_instant(expected.conversationStart)


class _Ended(msgspec.Struct):
    conversationEnd: str | None = None


def open_by_full_decode(raw: bytes) -> tuple[str, bool] | str:
    """(id, whether it has no end) by decoding everything, or "error" where that fails."""
    try:
        head = full_decode(raw)
        parse_api_instant(head.conversationStart)
        ended = msgspec.json.decode(raw, type=_Ended)
    except (msgspec.ValidationError, ValueError):
        return "error"
    return head.conversationId, ended.conversationEnd is None


OPEN = b'"conversationId":"c","conversationStart":"2026-11-01T13:45:12.345Z"'


@given(records())
@example(b'{"a":{"conversationEnd":"2026-11-01T14:00:00.000Z"},' + OPEN + b"}")
@example(b'{"a":"\\"conversationEnd\\":\\"x","b":1,' + OPEN + b"}")
@example(b'{"conversationEnd":null,' + OPEN + b"}")
@example(b'{"conversationEnd":"2026-11-01T14:00:00.000Z",' + OPEN + b"}")
def test_a_record_is_open_exactly_when_a_full_decode_finds_no_end(raw: bytes) -> None:
    """read_open (the key, the time and whether the record is still going on, from one look
    at the head) answers as decoding everything does: no conversationEnd, or a null one, is
    open; a record that decoding refuses raises."""
    try:
        key, _, still_open = HEAD.read_open(raw)
        got: tuple[str, bool] | str = (key.decode(), still_open)
    except (msgspec.ValidationError, ValueError):
        got = "error"
    assert got == open_by_full_decode(raw)


def test_head_decoder_raises_as_the_full_decode_does_when_a_key_is_missing() -> None:
    with pytest.raises(msgspec.ValidationError, match="conversationId"):
        head_decoder.decode(b'{"conversationStart":"s","p":{"conversationId":"nested"}}')


def page(*records: dict[str, object], pretty: bool = False) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps({"conversations": list(records), "cursor": "c"}, option=option)


def record(conversation_id: str, start: str) -> dict[str, object]:
    return {"conversationId": conversation_id, "conversationStart": start, "participants": []}


def test_records_go_to_the_window_they_started_in_and_others_are_dropped() -> None:
    windows = plan_windows(START, START + days(2), timedelta(days=1))
    body = page(
        record("before", "2026-10-31T23:59:59.999Z"),
        record("first", "2026-11-01T00:00:00.000Z"),
        record("second", "2026-11-02T00:00:00.000Z"),
        record("offset", "2026-11-02T23:30:00+00:00"),  # not the API's shape: parsed instead
        record("after", "2026-11-03T00:00:00.000Z"),
    )
    raws = CONVERSATIONS.api.decode_results(body).records
    chosen = select_for_windows(
        raws, WindowBounds(windows), SeenKeys(), single_line=True, head=HEAD
    )
    ids = [[orjson.loads(bytes(r))["conversationId"] for r in w] for w in chosen.windows]
    assert ids == [["first"], ["second", "offset"]] and chosen.repeats == 0


def test_seen_ids_are_dropped_and_pretty_records_are_written_on_one_line() -> None:
    windows = plan_windows(START, START + days(1), timedelta(days=1))
    body = page(record("a", "2026-11-01T01:00:00.000Z"), record("b", "2026-11-01T02:00:00.000Z"),
                pretty=True)  # fmt: skip
    seen = SeenKeys()
    seen.update([(b"a", b"2026-11-01T01:00:00.000Z")])
    raws = CONVERSATIONS.api.decode_query(body).records
    chosen = select_for_windows(raws, WindowBounds(windows), seen, single_line=False, head=HEAD)
    (records_,) = chosen.windows
    assert [bytes(r) for r in records_] == [orjson.dumps(record("b", "2026-11-01T02:00:00.000Z"))]
    assert chosen.repeats == 1 and len(seen) == 2


def test_repeats_within_a_page_and_across_pages_are_written_once() -> None:
    """A record repeated inside one page, and again on the next page, is kept the first time
    only; the repeats are counted."""
    windows = plan_windows(START, START + days(1), timedelta(days=1))
    a, b = record("a", "2026-11-01T01:00:00.000Z"), record("b", "2026-11-01T02:00:00.000Z")
    seen, bounds = SeenKeys(), WindowBounds(windows)
    first = select_for_windows(
        CONVERSATIONS.api.decode_results(page(a, a, b)).records,
        bounds,
        seen,
        single_line=True,
        head=HEAD,
    )
    second = select_for_windows(
        CONVERSATIONS.api.decode_results(page(b, record("c", "2026-11-01T03:00:00.000Z"))).records,
        bounds,
        seen,
        single_line=True,
        head=HEAD,
    )
    ids = [orjson.loads(bytes(r))["conversationId"] for r in first.windows[0] + second.windows[0]]
    assert ids == ["a", "b", "c"] and (first.repeats, second.repeats) == (1, 1)


EDGE = "2026-11-02T00:00:00.000Z"
near_edges = st.sampled_from(
    ["2026-10-31T23:59:59.999Z", "2026-11-01T00:00:00.000Z", "2026-11-01T12:00:00.000Z",
     "2026-11-01T23:59:59.999Z", EDGE, "2026-11-02T18:00:00.000Z", "2026-11-02T23:59:59.999Z",
     "2026-11-03T00:00:00.000Z", "2026-11-01T23:30:00-01:00", "2026-11-02T10:00:00.123456Z"]
)  # fmt: skip


@given(st.lists(near_edges, max_size=12), st.booleans())
def test_job_pages_are_routed_as_by_parsing_every_start(starts: list[str], sort: bool) -> None:
    """Whatever the mix of shapes and windows, in order or not, each record goes where its
    parsed start says, in page order; whole-window pages take the same answer."""
    windows = plan_windows(START, START + days(2), timedelta(days=1))
    starts = sorted(starts) if sort else starts
    body = page(*(record(f"c{n}", start) for n, start in enumerate(starts)))
    chosen = select_for_windows(
        CONVERSATIONS.api.decode_results(body).records,
        WindowBounds(windows),
        SeenKeys(),
        single_line=True,
        head=HEAD,
    ).windows
    expected: list[list[str]] = [[] for _ in windows]
    for n, start in enumerate(starts):
        ms = parse_api_instant(start)
        for i, w in enumerate(windows):
            if w.start_ms <= ms < w.end_ms:
                expected[i].append(f"c{n}")
    ids = [[orjson.loads(bytes(r))["conversationId"] for r in window] for window in chosen]
    assert ids == expected


def test_a_record_without_a_usable_start_fails_its_batch_in_one_line(tmp_path) -> None:
    """A record whose start is no instant is an ApiError (its window fails, the run goes
    on), not a traceback."""
    from exporter.engine.fetch import _select
    from exporter.engine.ledger import Ledger
    from exporter.engine.windowset import WindowSet
    from exporter.engine.writer import BatchRun
    from exporter.errors import ApiError
    from exporter.plan import Batch
    from exporter.store.manifest import Manifest

    windows = plan_windows(START, START + days(1), timedelta(days=1))
    ledger = Ledger(Manifest(tmp_path), "conversations", run_id="r", compression="none")
    files = WindowSet([tmp_path / "x.jsonl"], ledger.sink)
    run = BatchRun(Batch(CONVERSATIONS, ()), files, WindowBounds(windows), ledger)
    raws = CONVERSATIONS.api.decode_results(page(record("a", "soon"))).records
    with pytest.raises(ApiError, match="without a usable key or time"):
        _select(run, raws, single_line=True)

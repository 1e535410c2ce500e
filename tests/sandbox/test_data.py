"""The sandbox dataset: deterministic, realistic records and exact matching rules."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesys_sandbox.data import DAY_MS, Dataset, DatasetSpec, to_ms
from tests.sandbox.support import normalised

START = datetime(2026, 11, 1, tzinfo=UTC)
# A long ongoing tail so that the index tests see plenty of conversations without an end.
SPEC = DatasetSpec(conversations=2_000, start=START, days=3, seed=5, ongoing_tail_minutes=240)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

# Enum values of genesys-api.md §5.3 (the SDK's allowed_values).
PURPOSES = {"acd", "agent", "api", "botflow", "campaign", "customer", "dialer",
            "external", "fax", "group", "inbound", "ivr", "manual", "outbound",
            "station", "user", "voicemail", "voicesurveyflow", "workflow"}  # fmt: skip
MEDIA_TYPES = {"callback", "chat", "cobrowse", "email", "internalmessage", "message",
               "screenmonitoring", "screenshare", "unknown", "video", "voice"}  # fmt: skip
ROUTINGS = {"Bullseye", "Conditional", "Direct", "Last", "Manual", "Predictive",
            "Preferred", "Standard", "Vip"}  # fmt: skip
SEGMENT_TYPES = {"alert", "barging", "callback", "coaching", "contacting",
                 "converting", "delay", "dialing", "hold", "interact", "ivr",
                 "monitoring", "parked", "scheduled", "screenmonitoring", "sharing",
                 "system", "transmitting", "unknown", "uploading", "voicemail",
                 "wrapup"}  # fmt: skip
DISCONNECT_TYPES = {"client", "conferenceTransfer", "consultTransfer", "dndEndpoint",
                    "dndTransfer", "endpoint", "error", "forwardTransfer",
                    "inactivity", "noAnswerTransfer", "notAvailableTransfer", "other",
                    "peer", "sessionExpired", "spam", "system", "takeover", "timeout",
                    "transfer", "transportFailure", "uncallable"}  # fmt: skip
FLOW_TYPES = {"BOT", "BUSINESSPROCESS", "COMMONMODULE", "DIGITALBOT", "EMAILSEND",
              "INBOUNDCALL", "INBOUNDCHAT", "INBOUNDEMAIL", "INBOUNDSHORTMESSAGE",
              "INQUEUECALL", "INQUEUEEMAIL", "INQUEUESHORTMESSAGE", "OUTBOUNDCALL",
              "SECURECALL", "SPEECH", "SURVEYINVITE", "VOICE", "VOICEMAIL",
              "VOICESURVEY", "WORKFLOW", "WORKITEM"}  # fmt: skip
ENTRY_TYPES = {"agent", "direct", "dnis", "flow", "outbound"}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset.build(SPEC)


@pytest.fixture(scope="module")
def records(dataset: Dataset) -> list[dict[str, Any]]:
    return [orjson.loads(dataset.job_record(i)) for i in range(len(dataset))]


def digest(dataset: Dataset) -> str:
    h = hashlib.sha256()
    for i in range(len(dataset)):
        h.update(dataset.job_record(i))
        h.update(b"\n")
    return h.hexdigest()


def sessions(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for participant in record["participants"]:
        yield from participant["sessions"]


def timestamps(value: Any) -> Iterator[str]:
    """Every string in `value` that looks like a timestamp."""
    if isinstance(value, dict):
        for item in value.values():
            yield from timestamps(item)
    elif isinstance(value, list):
        for item in value:
            yield from timestamps(item)
    elif isinstance(value, str) and value[:2] == "20" and "T" in value:
        yield value


def test_same_spec_gives_identical_bytes(dataset: Dataset) -> None:
    """Building the same spec again yields the same ids, instants and record bytes."""
    again = Dataset.build(SPEC)
    assert (again.ids, again.starts_ms, again.ends_ms) == (
        dataset.ids,
        dataset.starts_ms,
        dataset.ends_ms,
    )
    assert digest(again) == digest(dataset)


def test_different_seeds_give_different_data(dataset: Dataset) -> None:
    """Another seed gives other ids and other records."""
    other = Dataset.build(DatasetSpec(conversations=2_000, start=START, days=3, seed=6))
    assert not set(other.ids) & set(dataset.ids)
    assert digest(other) != digest(dataset)


def test_records_are_sorted_with_unique_ids(
    dataset: Dataset, records: list[dict[str, Any]]
) -> None:
    """Records are sorted by conversationStart; ids are unique v4 UUIDs matching the records."""
    assert len(dataset) == SPEC.conversations
    assert dataset.starts_ms == sorted(dataset.starts_ms)
    assert len(set(dataset.ids)) == len(dataset)
    assert SPEC.start_ms <= dataset.starts_ms[0] and dataset.starts_ms[-1] < SPEC.end_ms
    for i, record in enumerate(records):
        assert record["conversationId"] == dataset.ids[i]
        assert to_ms(datetime.fromisoformat(record["conversationStart"])) == dataset.starts_ms[i]
    assert {uuid.UUID(i).version for i in dataset.ids} == {4}


def test_records_have_the_documented_shape(records: list[dict[str, Any]]) -> None:
    """Every record uses only documented enum values and well-formed timestamps and metrics."""
    for record in records:
        assert record["originatingDirection"] in {"inbound", "outbound"}
        assert record["conversationInitiator"] in PURPOSES
        assert all(TIMESTAMP.fullmatch(t) for t in timestamps(record))
        for participant in record["participants"]:
            assert participant["purpose"] in PURPOSES
            uuid.UUID(participant["participantId"])
        for session in sessions(record):
            assert session["mediaType"] in MEDIA_TYPES
            assert session["direction"] in {"inbound", "outbound"}
            assert session["segments"]
            assert session.get("usedRouting", "Standard") in ROUTINGS
            assert set(session.get("requestedRoutings", ())) <= ROUTINGS
            for segment in session["segments"]:
                assert segment["segmentType"] in SEGMENT_TYPES
                assert segment.get("disconnectType", "peer") in DISCONNECT_TYPES
            for metric in session.get("metrics", ()):
                assert metric.keys() == {"name", "value", "emitDate"}
                assert isinstance(metric["value"], int) and metric["value"] >= 0
            if "flow" in session:
                assert session["flow"]["flowType"] in FLOW_TYPES
                assert session["flow"]["entryType"] in ENTRY_TYPES


def test_inbound_voice_is_customer_ivr_acd_agent(records: list[dict[str, Any]]) -> None:
    """A typical inbound call has the four participants, voice stats and a routed ACD session."""
    calls = [
        r
        for r in records
        if [p["purpose"] for p in r["participants"]] == ["customer", "ivr", "acd", "agent"]
        and r["participants"][0]["sessions"][0]["mediaType"] == "voice"
        and r["originatingDirection"] == "inbound"
        and "conversationEnd" in r
    ]
    assert len(calls) > len(records) // 4
    for record in calls:
        customer, ivr, acd, agent = (p["sessions"][0] for p in record["participants"])
        assert customer["ani"].startswith("tel:+") and customer["dnis"].startswith("tel:+")
        assert customer["mediaEndpointStats"][0]["minMos"] >= record["mediaStatsMinConversationMos"]
        assert (
            ivr["flow"]["flowType"] == "INBOUNDCALL" and ivr["segments"][0]["segmentType"] == "ivr"
        )
        assert acd["usedRouting"] in ROUTINGS and "queueId" in acd["segments"][0]
        assert agent["segments"][-1]["segmentType"] == "wrapup"
        assert "userId" in record["participants"][3]


def test_mix_covers_media_directions_and_flows(records: list[dict[str, Any]]) -> None:
    """The data mixes voice, message, email, callback and chat, inbound and outbound."""
    media = {s["mediaType"] for r in records for s in sessions(r)}
    assert {"voice", "message", "email", "callback", "chat"} <= media
    assert {r["originatingDirection"] for r in records} == {"inbound", "outbound"}
    flow_types = {s["flow"]["flowType"] for r in records for s in sessions(r) if "flow" in s}
    assert {"INBOUNDCALL", "OUTBOUNDCALL", "INBOUNDEMAIL", "INBOUNDSHORTMESSAGE"} <= flow_types
    messages = [s for r in records for s in sessions(r) if s["mediaType"] in {"message", "email"}]
    assert all("addressFrom" in s and "addressTo" in s for s in messages)


def test_attributes_only_in_job_records(dataset: Dataset, records: list[dict[str, Any]]) -> None:
    """Job records carry participant attributes; the query record is exactly them removed."""
    finished = [r for r in records if "conversationEnd" in r]  # an ongoing dial may be agent-only
    assert all(any("attributes" in p for p in r["participants"]) for r in finished)
    for i in range(0, len(dataset), 7):
        stripped = orjson.loads(dataset.job_record(i))
        for participant in stripped["participants"]:
            participant.pop("attributes", None)
        assert b'"attributes"' not in dataset.query_record(i)
        assert dataset.query_record(i) == orjson.dumps(stripped)


def test_mean_job_record_size_is_about_5_kb(dataset: Dataset) -> None:
    """Job records average a few kilobytes, like real ones."""
    mean = sum(len(dataset.job_record(i)) for i in range(len(dataset))) / len(dataset)
    assert 3_000 <= mean <= 8_000


def test_some_conversations_cross_utc_midnight(dataset: Dataset) -> None:
    """A few percent of finished conversations end on a later UTC day than they start."""
    pairs = [(s, e) for s, e in zip(dataset.starts_ms, dataset.ends_ms, strict=True) if e]
    crossing = sum(1 for s, e in pairs if s // DAY_MS != (e - 1) // DAY_MS)
    assert 0.01 <= crossing / len(pairs) <= 0.10


def test_finished_conversations_are_consistent(
    dataset: Dataset, records: list[dict[str, Any]]
) -> None:
    """Before the tail every segment is closed and conversationEnd is the last segment end."""
    tail_from = SPEC.end_ms - SPEC.ongoing_tail_minutes * 60_000
    for i, record in enumerate(records):
        if dataset.starts_ms[i] >= tail_from:
            continue
        segments = [g for s in sessions(record) for g in s["segments"]]
        assert all("segmentEnd" in g for g in segments)
        assert record["conversationEnd"] == max(g["segmentEnd"] for g in segments)
        assert min(g["segmentStart"] for g in segments) == record["conversationStart"]
        assert to_ms(datetime.fromisoformat(record["conversationEnd"])) == dataset.ends_ms[i]


def test_ongoing_tail_has_no_end(dataset: Dataset, records: list[dict[str, Any]]) -> None:
    """Conversations starting in the tail have no end, an open segment and nothing later."""
    tail_from = SPEC.end_ms - SPEC.ongoing_tail_minutes * 60_000
    tail = [i for i, start in enumerate(dataset.starts_ms) if start >= tail_from]
    assert len(tail) > 10
    assert [i for i, end in enumerate(dataset.ends_ms) if end is None] == tail
    range_end = datetime.fromtimestamp(SPEC.end_ms / 1000, UTC).isoformat()[:23] + "Z"
    for i in tail:
        record = records[i]
        assert "conversationEnd" not in record
        assert any("segmentEnd" not in s["segments"][-1] for s in sessions(record))
        assert max(timestamps(record)) <= range_end


def test_ids_starting_in_is_the_ground_truth(dataset: Dataset) -> None:
    """ids_starting_in returns exactly the ids whose start is in [start, end); naive = UTC."""
    start, end = START + timedelta(hours=30), START + timedelta(hours=41, minutes=7)
    expected = {
        i
        for i, s in zip(dataset.ids, dataset.starts_ms, strict=True)
        if to_ms(start) <= s < to_ms(end)
    }
    assert expected and dataset.ids_starting_in(start, end) == expected
    naive = dataset.ids_starting_in(start.replace(tzinfo=None), end.replace(tzinfo=None))
    assert naive == expected
    assert dataset.ids_starting_in(end, start) == set()


instants = st.integers(SPEC.start_ms - 2 * DAY_MS, SPEC.end_ms + 2 * DAY_MS)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(a=instants, b=instants)
def test_index_functions_match_a_brute_force_scan(dataset: Dataset, a: int, b: int) -> None:
    """The three matching rules agree with a scan over every conversation."""
    starts, ends = dataset.starts_ms, dataset.ends_ms
    everything = range(len(dataset))
    assert list(dataset.index_range_starting_in(a, b)) == [
        i for i in everything if a <= starts[i] < b
    ]
    day_lo, day_hi = a // DAY_MS * DAY_MS, -(-b // DAY_MS) * DAY_MS
    touched = [i for i in everything if a < b and day_lo <= starts[i] < day_hi]
    assert list(dataset.indices_starting_on_days_touched(a, b)) == touched
    overlapping = [
        i for i in everything if starts[i] < b and (ends[i] is None or ends[i] > a) and a < b
    ]
    assert dataset.indices_overlapping(a, b) == overlapping


def test_empty_dataset_has_no_matches() -> None:
    """A dataset of zero conversations builds and matches nothing."""
    empty = Dataset.build(DatasetSpec(conversations=0))
    assert len(empty) == 0
    assert empty.indices_overlapping(0, 2**62) == []
    assert list(empty.indices_starting_on_days_touched(0, 2**62)) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"conversations": -1},
        {"days": 0},
        {"start": datetime(2026, 11, 1)},
        {"ongoing_tail_minutes": -5},
        {"ongoing_tail_minutes": 3 * 1440 + 1, "days": 3},
    ],
)
def test_impossible_specs_are_rejected(changes: dict[str, Any]) -> None:
    """A spec that cannot describe a dataset raises ValueError with a sentence."""
    with pytest.raises(ValueError, match=r"\."):
        DatasetSpec(**changes)


class _Response:
    """Just enough of the SDK's RESTResponse for ApiClient.deserialize."""

    def __init__(self, data: bytes) -> None:
        self.data = data.decode()

    def getheader(self, name: str) -> str | None:
        return "application/json" if name == "Content-Type" else None


def test_official_sdk_deserialises_records_losslessly(dataset: Dataset) -> None:
    """The official SDK reads job and query records with every field and enum value intact."""
    sdk = pytest.importorskip("PureCloudPlatformClientV2")
    client = sdk.ApiClient()
    picked = [*range(0, len(dataset), 8), *range(len(dataset) - 20, len(dataset))]
    for i in picked:
        for raw, model in (
            (dataset.job_record(i), "AnalyticsConversation"),
            (dataset.query_record(i), "AnalyticsConversationWithoutAttributes"),
        ):
            conversation = client.deserialize(_Response(raw), model)
            assert conversation.conversation_id == dataset.ids[i]
            back = client.sanitize_for_serialization(conversation)
            # The SDK maps unknown enum values to this marker instead of raising.
            assert "outdated_sdk_version" not in orjson.dumps(back).decode()
            assert normalised(back) == normalised(orjson.loads(raw))

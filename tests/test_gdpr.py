"""The GDPR eraser on records built by hand: every spelling of a subject's values goes, ids and
other people's values stay, and a record without one is returned byte for byte."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from exporter.gdpr import Eraser, GdprRequest, parse_request, parse_subject, token_of
from exporter.privacy import Policy

KEY = "gdpr-test-key-0123456789abcdef"
SUBJECT = {
    "name": "Jane Q. Doe",
    "phoneNumbers": ["+1 (317) 555-0123"],
    "emailAddresses": ["Jane.Doe@Example.com"],
    "externalContactId": "ext-contact-0001",
    "socialHandle": {"type": "twitter", "value": "@janeqdoe"},
    "addresses": ["12 Elm Street, Springfield"],
}


def request(
    subject: dict[str, Any] = SUBJECT,
    *,
    id: str = "req-1",
    kind: str = "GDPR_DELETE",
    status: str = "COMPLETED",
) -> GdprRequest:
    return parse_request({"id": id, "requestType": kind, "status": status,
                          "createdDate": "2026-11-20T10:00:00Z", "subject": subject})  # fmt: skip


def record(**session: Any) -> dict[str, Any]:
    return {
        "conversationId": "c0ffee00-0000-4000-8000-131755501230",
        "participants": [
            {"participantId": "p1", "purpose": "customer", "participantName": "JANE Q. DOE",
             "sessions": [{"sessionId": "s1", **session}]},
            {"participantId": "p2", "purpose": "agent", "userId": "u-1",
             "participantName": "Agent Smith",
             "sessions": [{"ani": "tel:+19995550000", "segments": [
                 {"wrapUpNote": "called Jane  Q. Doe back on +13175550123, all fine"}]}]},
        ],
    }  # fmt: skip


def erase(eraser: Eraser, data: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    out, found = eraser.erase(orjson.dumps(data))
    return orjson.loads(out), found


def test_every_spelling_of_the_subject_is_erased_and_nothing_else() -> None:
    eraser = Eraser([request()])
    token = token_of("req-1")
    data, found = erase(eraser, record(
        ani="tel:+13175550123", dnis="sip:13175550123@trunk.example",
        addressFrom="jane.doe@example.com", addressTo="@JaneQDoe",
        externalContactId="ext-contact-0001", callbackNumbers=["+13175550123", "+19995550000"],
    ))  # fmt: skip
    assert found == {token}
    customer, agent = data["participants"]
    session = customer["sessions"][0]
    assert customer["participantName"] == token
    for name in ("ani", "dnis", "addressFrom", "addressTo", "externalContactId"):
        assert session[name] == token, name
    assert session["callbackNumbers"] == [token, "+19995550000"]
    note = agent["sessions"][0]["segments"][0]["wrapUpNote"]
    assert note == f"called {token} back on {token}, all fine"
    # The ids (one ends in the subject's digits), the agent and other numbers stay.
    assert data["conversationId"] == "c0ffee00-0000-4000-8000-131755501230"
    assert agent["participantName"] == "Agent Smith"
    assert agent["sessions"][0]["ani"] == "tel:+19995550000"


def test_a_record_without_the_subject_is_returned_byte_for_byte() -> None:
    eraser = Eraser([request()])
    raw = b'{"conversationId":"c1", "participants":[{"participantName":"Janet Doe"}]}'
    assert eraser.erase(raw) == (raw, set())


@pytest.mark.parametrize(("kind", "status"), [
    ("GDPR_DELETE", "INITIATED"), ("GDPR_DELETE", "ERROR"), ("GDPR_EXPORT", "COMPLETED"),
    ("GDPR_UPDATE", "COMPLETED"),
])  # fmt: skip
def test_only_completed_deletions_count(kind: str, status: str) -> None:
    eraser = Eraser([request(kind=kind, status=status)])
    assert not eraser.active
    raw = orjson.dumps(record(ani="tel:+13175550123"))
    assert eraser.erase(raw) == (raw, set())


def test_two_subjects_get_two_tokens() -> None:
    other = {"name": "Bob Roe", "phoneNumbers": ["+442071234567"]}
    eraser = Eraser([request(), request(other, id="req-2")])
    data, found = erase(eraser, {"a": "tel:+442071234567", "b": "jane.doe@example.com",
                                 "c": "bob roe", "d": "Jane Q. Doe"})  # fmt: skip
    assert found == {token_of("req-1"), token_of("req-2")}
    assert data == {"a": token_of("req-2"), "b": token_of("req-1"), "c": token_of("req-2"),
                    "d": token_of("req-1")}  # fmt: skip


def test_a_name_goes_only_with_the_subjects_other_values() -> None:
    """Another customer, or an agent, of the same name is not the subject; a subject known by
    nothing but a name is looked for by name everywhere."""
    eraser = Eraser([request()])
    namesake = {"participants": [{"participantName": "Jane Q. Doe", "sessions": [
        {"ani": "tel:+14045550199"}]}]}  # fmt: skip
    assert erase(eraser, namesake) == (namesake, set())
    only_named = Eraser([request({"name": "Jane Q. Doe"})])
    data, found = erase(only_named, namesake)
    assert found == {token_of("req-1")}
    assert data["participants"][0]["participantName"] == token_of("req-1")


def test_non_ascii_names_are_found_raw_and_json_escaped() -> None:
    eraser = Eraser([request({"name": "Zoë Ångström"})])
    raw = '{"participantName":"Zoë Ångström"}'.encode()
    escaped = b'{"participantName":"Zo\\u00eb \\u00c5ngstr\\u00f6m"}'
    for line in (raw, escaped):
        out, _ = eraser.erase(line)
        assert orjson.loads(out) == {"participantName": token_of("req-1")}, line


def test_pseudonymised_values_are_found_under_the_folders_key() -> None:
    policy = Policy("strict", [], KEY)
    protect = policy.for_dataset("conversations")
    assert protect is not None
    protected = protect(
        orjson.dumps(record(ani="tel:+13175550123", addressFrom="jane.doe@example.com"))
    )
    eraser = Eraser([request()], pseudonym=policy.pseudonym)
    data, found = erase(eraser, orjson.loads(protected))
    session = data["participants"][0]["sessions"][0]
    assert found == {token_of("req-1")}
    assert session["ani"] == session["addressFrom"] == token_of("req-1")
    assert data["participants"][1]["sessions"][0]["ani"] == policy.pseudonym("tel:+19995550000")


def test_subject_parsing_keeps_every_identifier_and_skips_tiny_values() -> None:
    subject = parse_subject({**SUBJECT, "userId": "u-9", "dialerContactId": {"id": "dc-1"},
                             "journeyCustomer": {"id": "jc-1", "type": "cookie"},
                             "phoneNumbers": ["+1 317 555 0123", "12"], "name": "Al"})  # fmt: skip
    assert subject.phones == ("13175550123",)
    assert subject.names == ()
    assert set(subject.ids) == {"u-9", "ext-contact-0001", "dc-1", "jc-1"}
    assert "@janeqdoe" in subject.texts and "Jane.Doe@Example.com" in subject.texts

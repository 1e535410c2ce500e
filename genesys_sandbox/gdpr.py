"""The org's GDPR requests (genesys-datasets.md I): the GDPRRequest JSON its listing serves, the
customers the requests are about, and which served conversations hold a subject's values.

A subject is the customer of one conversation the sandbox serves (or the party an agent
dialled), with every identifier of theirs the record shows: the participant's name when it is
a person's (a caller-ID label such as "Mobile Caller" is not), the phone numbers of their end
of its sessions in E.164 (the record's ``tel:+1...`` without ``tel:``) and their e-mail
addresses. Their end is the calling one of an inbound session (``ani``, ``addressFrom``), the
called one of an outbound session (``dnis``, ``addressTo``), and any ``callbackNumbers``.

The generated requests are about customers of conversations starting on the data's first UTC
day (the whole range when that day has none), drawn with the dataset's seed: each with a
person's name that no user of the org also has (so forgetting it never touches an agent's), a
phone number or an e-mail address, and a name no other subject has; by turns an e-mail sender,
a caller, a messaging customer and a callback customer, where the draws find one. Of ``count``
of them all are completed deletes but the last two: one delete still INITIATED and one
completed export, as far as the count leaves room (1: a completed delete; 2: and the initiated
one). They are created an hour apart after the data range ends.

The sandbox never changes a conversation for a request: forgetting exported copies is the
exporter's job.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from genesys_sandbox.data import DAY_MS, Dataset
from genesys_sandbox.listings import Entity
from genesys_sandbox.orgdata import PEOPLE
from genesys_sandbox.wire import format_instant, from_ms

PATH = "/api/v2/gdpr/requests"
# [SRC SDK 269 GDPRRequest] the allowed values.
REQUEST_TYPES = ("GDPR_EXPORT", "GDPR_UPDATE", "GDPR_DELETE")
STATUSES = ("INITIATED", "SEARCHING", "UPDATING", "DELETING", "COMPLETED", "ERROR", "FINALIZING")
_PERSONS = frozenset(PEOPLE)
_MEDIA_TURNS = ("email", "voice", "message", "callback")
_DRAWS = 400  # conversations drawn for one subject before a customer of other media will do
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Subject:
    """A conversation's customer: the values its record holds of them."""

    name: str | None
    phone_numbers: tuple[str, ...]  # E.164
    email_addresses: tuple[str, ...]
    media_type: str  # of the conversation they were found in

    def json(self) -> dict[str, Any]:
        """As a GDPRSubject."""
        body: dict[str, Any] = {} if self.name is None else {"name": self.name}
        body["phoneNumbers"] = list(self.phone_numbers)
        body["emailAddresses"] = list(self.email_addresses)
        return body


@dataclass(frozen=True, slots=True)
class Request:
    """One GDPR request; ``subject`` is its GDPRSubject JSON, ``created`` its createdDate."""

    id: str
    name: str
    created_by: Mapping[str, str]  # a user reference, {id, selfUri}
    request_type: str
    status: str
    created: str
    subject: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.request_type not in REQUEST_TYPES:
            raise ValueError(f"GDPR requestType {self.request_type!r} is not one of "
                             f"{REQUEST_TYPES}.")  # fmt: skip
        if self.status not in STATUSES:
            raise ValueError(f"GDPR status {self.status!r} is not one of {STATUSES}.")

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Request:
        return cls(body["id"], body["name"], body["createdBy"], body["requestType"],
                   body["status"], body["createdDate"], body["subject"])  # fmt: skip

    def json(self) -> dict[str, Any]:
        """The GDPRRequest, fields in the SDK model's order; no replacement terms (they belong
        to updates). Only a completed export has results to fetch."""
        body = {"id": self.id, "name": self.name, "createdBy": dict(self.created_by),
                "replacementTerms": [], "requestType": self.request_type,
                "createdDate": self.created, "status": self.status,
                "subject": dict(self.subject)}  # fmt: skip
        if self.request_type == "GDPR_EXPORT" and self.status == "COMPLETED":
            # [UNVERIFIED] where the service keeps an export's archive; nothing serves it here.
            body["resultsUrl"] = f"https://gdpr-exports.sandbox.example.com/{self.id}/results.json"
        body["selfUri"] = f"{PATH}/{self.id}"
        return body

    def entity(self) -> Entity:
        return Entity(self.id, self.name, self.json())


def with_status(request: Entity, status: str) -> Entity:
    """The request with another status; ValueError for a status the SDK does not know."""
    return dataclasses.replace(Request.from_json(request.body), status=status).entity()


class GdprRequests:
    """Makes requests about customers of ``dataset``'s conversations, created by ``created_by``."""

    def __init__(self, dataset: Dataset, created_by: Mapping[str, str]) -> None:
        self._dataset = dataset
        self._created_by = created_by
        self._user_names = frozenset(u.name for u in dataset.entities.users)
        self._added_ids = random.Random(f"gdpr-added-{dataset.spec.seed}")
        self._made = 0  # numbers the requests' names

    def generated(self, count: int) -> list[Entity]:
        """The ``count`` requests the sandbox starts with (fewer when the draws find fewer
        customers that fit)."""
        rng = random.Random(f"gdpr-{self._dataset.spec.seed}")
        subjects = self._draw_subjects(rng, count)
        self._made = 0
        end_ms = self._dataset.spec.end_ms
        return [self._request(_new_id(rng), kind, subject, from_ms(end_ms + n * _HOUR_MS))
                for n, (kind, subject) in enumerate(zip(_kinds(len(subjects)), subjects,
                                                        strict=True), start=1)]  # fmt: skip

    def about(
        self, conversation_id: str, request_type: str, status: str, created: datetime
    ) -> Entity:
        """A request about the customer of a conversation the sandbox serves; ValueError for
        another id or an unknown type or status."""
        i = self._dataset.index_of(conversation_id)
        subject = None if i is None else customer_of(orjson.loads(self._dataset.job_record(i)))
        if subject is None:
            raise ValueError(f"The sandbox serves no conversation {conversation_id!r} with a "
                             "customer.")  # fmt: skip
        return self._request(_new_id(self._added_ids), (request_type, status), subject, created)

    def _request(
        self, request_id: str, kind: tuple[str, str], subject: Subject, created: datetime
    ) -> Entity:
        name = f"Data subject request {self._made + 1:03d}"  # [UNVERIFIED] the service's names
        request = Request(request_id, name, self._created_by, *kind, format_instant(created),
                          subject.json())  # fmt: skip
        self._made += 1
        return request.entity()

    def _draw_subjects(self, rng: random.Random, count: int) -> list[Subject]:
        spec = self._dataset.spec
        first_day = self._dataset.index_range_starting_in(spec.start_ms, spec.start_ms + DAY_MS)
        pool = first_day or range(len(self._dataset))
        chosen: list[Subject] = []
        for n in range(count):
            media = _MEDIA_TURNS[n % len(_MEDIA_TURNS)]
            found = self._draw(rng, pool, media, {s.name for s in chosen})
            if found is None:
                break
            chosen.append(found)
        return chosen

    def _draw(
        self, rng: random.Random, pool: range, media: str, taken: set[str | None]
    ) -> Subject | None:
        """A fitting customer of ``media`` from ``pool``, else the first other one drawn."""
        fallback = None
        for _ in range(_DRAWS if pool else 0):
            i = pool[int(rng.random() * len(pool))]
            subject = customer_of(orjson.loads(self._dataset.job_record(i)))
            if subject is None or not self._fits(subject, taken):
                continue
            if subject.media_type == media:
                return subject
            fallback = fallback or subject
        return fallback

    def _fits(self, subject: Subject, taken: set[str | None]) -> bool:
        name = subject.name
        return (name is not None and name not in self._user_names and name not in taken
                and bool(subject.phone_numbers or subject.email_addresses))  # fmt: skip


def customer_of(record: Mapping[str, Any]) -> Subject | None:
    """The customer (or the party an agent dialled) of a conversation record, if it has one."""
    for participant in record["participants"]:
        if participant["purpose"] not in ("customer", "external"):
            continue
        sessions = participant["sessions"]
        ends = [value for session in sessions for value in _own_end(session)]
        name = participant.get("participantName")
        return Subject(
            name if name in _PERSONS else None,
            _unique(value.removeprefix("tel:") for value in ends if value.startswith("tel:")),
            _unique(value for value in ends if "@" in value),
            sessions[0]["mediaType"],
        )
    return None


def _own_end(session: Mapping[str, Any]) -> list[str]:
    """The customer's addresses in a session of theirs: its calling end when it is inbound,
    its called end when outbound, and the numbers to call back."""
    inbound = session.get("direction") == "inbound"
    keys = ("ani", "addressFrom") if inbound else ("dnis", "addressTo")
    callback: list[str] = session.get("callbackNumbers", [])
    return [session[key] for key in keys if key in session] + callback


def truth(
    requests: Sequence[Entity], record: Callable[[int], bytes], ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Each request's id, requestType, status and subject, with ``conversationIds``: the ids,
    sorted, of the conversations served (all of the data range, as ``record`` reads them now)
    whose record holds a string equal to one of the subject's values. One pass over every
    record per request: a quarter of a second for four requests over 10,000 conversations."""
    found = []
    for request in requests:
        body, spellings = request.body, _spellings(request.body["subject"])
        held = sorted(ids[i] for i in range(len(ids)) if _holds(record(i), spellings))
        found.append({"id": body["id"], "requestType": body["requestType"],
                      "status": body["status"], "subject": body["subject"],
                      "conversationIds": held})  # fmt: skip
    return found


def _spellings(subject: Mapping[str, Any]) -> list[bytes]:
    """The subject's values as the JSON strings a record would hold them in: its name, each
    phone number as given and as a ``tel:`` URI, each e-mail address."""
    values = [subject["name"]] if "name" in subject else []
    for number in subject.get("phoneNumbers", ()):
        values += [number, f"tel:{number}"]
    values += subject.get("emailAddresses", ())
    return [orjson.dumps(value) for value in values]


def _holds(record: bytes, spellings: list[bytes]) -> bool:
    # A quoted JSON string only matches a whole string (orjson escapes every quote inside
    # one), and no record has a key spelled like a name, a number or an address.
    return any(spelling in record for spelling in spellings)


def _kinds(count: int) -> list[tuple[str, str]]:
    """(requestType, status) of each of ``count`` generated requests, in order."""
    last = [("GDPR_DELETE", "INITIATED"), ("GDPR_EXPORT", "COMPLETED")][: max(count - 1, 0)]
    return [("GDPR_DELETE", "COMPLETED")] * (count - len(last)) + last


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))

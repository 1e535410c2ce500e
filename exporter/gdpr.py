"""GDPR deletions: which requests count, and what is erased from a record for them.

A request counts once Genesys has done its part: ``requestType`` GDPR_DELETE and ``status``
COMPLETED (genesys-datasets.md §I). Its ``subject`` names the person by any of: name, phone
numbers, e-mail addresses, postal addresses, a social handle, and ids (user, external contact,
dialer contact, journey customer, external id).

An ``Eraser`` holds every counted subject and replaces each value of theirs in a record with
the request's token (``forgotten:`` and 12 hex digits of the sha256 of the request id): the
record, its ids and its shape stay, the person's values go, and the rows of one subject still
group together (so a table's keys stay unique, and nothing about the person is left).

How a value is found, per identifier:
- phone numbers by their digits, with or without ``+``, wherever they stand (``tel:+1317...``,
  ``sip:+1317...@host``, free text), never inside a longer run of letters or digits (an id);
- e-mail addresses, social handles, postal addresses and ids the same way, case-insensitively
  for the first three;
- names as a whole value (``participantName``, ``remote``), case-insensitively; a name of two
  words or more also inside free text; but only in a record that also holds one of the
  subject's other values (a namesake is not the subject: a name is no identifier on its own),
  unless the request names the subject by nothing else;
- under a privacy profile, also the pseudonym of each spelling a record holds
  (``tel:+1317...`` and ``+1317...``, an address as given and in lower case).
A string holding a value becomes the token when it is one token (an address, a URI), and has
each occurrence replaced when it is text (it holds a space).

Records are checked first as bytes, lower-cased, for every spelling at once (raw UTF-8 and
JSON escaped) with an Aho-Corasick automaton (``pyahocorasick``): one pass over the record
whatever the number of values, where an alternation of them in one regular expression cost
1.8 ms a record for 50 requests (measured, benchmarks/README.md). Only a record that may hold
a value is parsed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick
import orjson

from exporter.errors import ApiError

DELETE = "GDPR_DELETE"
COMPLETED = "COMPLETED"
TOKEN_PREFIX = "forgotten:"
_MIN_TEXT = 4  # shorter values (initials, a one-letter name) would match everywhere
_MIN_DIGITS = 7  # a phone number shorter than this is no number that identifies anyone
_BOUNDED = r"(?<![0-9A-Za-z]){}(?![0-9A-Za-z])"  # not inside a longer word or id
_NON_DIGIT = re.compile(r"\D")


@dataclass(frozen=True, slots=True)
class Subject:
    """The values a request names its person by, grouped by how they are matched."""

    names: tuple[str, ...] = ()  # whole values; inside text when of two words or more
    phones: tuple[str, ...] = ()  # digits only
    texts: tuple[str, ...] = ()  # e-mail addresses, handles, postal addresses: case-insensitive
    ids: tuple[str, ...] = ()  # exact

    @property
    def empty(self) -> bool:
        return not (self.names or self.phones or self.texts or self.ids)


@dataclass(frozen=True, slots=True)
class GdprRequest:
    """One of the org's GDPR requests, as far as forgetting needs it."""

    id: str
    request_type: str
    status: str
    created: str
    subject: Subject

    @property
    def counted(self) -> bool:
        """A deletion Genesys has completed: its subject is forgotten in every copy."""
        return self.request_type == DELETE and self.status == COMPLETED

    @property
    def token(self) -> str:
        return token_of(self.id)


def token_of(request_id: str) -> str:
    """What the request's subject's values become."""
    return TOKEN_PREFIX + hashlib.sha256(request_id.encode()).hexdigest()[:12]


def parse_request(data: Any) -> GdprRequest:
    """A ``GDPRRequest`` from the API; ApiError when it lacks what forgetting relies on."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise ApiError("The API answered a GDPR request without an id; it is not Genesys Cloud.")
    subject = data.get("subject")
    return GdprRequest(
        id=data["id"],
        request_type=str(data.get("requestType") or ""),
        status=str(data.get("status") or ""),
        created=str(data.get("createdDate") or ""),
        subject=parse_subject(subject if isinstance(subject, dict) else {}),
    )


def parse_subject(data: Mapping[str, Any]) -> Subject:
    """Every identifier of a ``GDPRSubject`` (SDK model), sorted by how it is matched."""

    def strings(*values: Any) -> list[str]:
        found: list[str] = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            found += [item.strip() for item in items if isinstance(item, str) and item.strip()]
        return found

    def field(name: str, inner: str) -> Any:
        value = data.get(name)
        return value.get(inner) if isinstance(value, dict) else None

    phones = [_NON_DIGIT.sub("", phone) for phone in strings(data.get("phoneNumbers"))]
    texts = strings(data.get("emailAddresses"), data.get("addresses"),
                    field("socialHandle", "value"))  # fmt: skip
    ids = strings(data.get("userId"), data.get("externalContactId"), data.get("externalId"),
                  field("dialerContactId", "id"), field("journeyCustomer", "id"))  # fmt: skip
    return Subject(
        names=_unique(name for name in strings(data.get("name")) if len(name) >= _MIN_TEXT),
        phones=_unique(phone for phone in phones if len(phone) >= _MIN_DIGITS),
        texts=_unique(text for text in texts if len(text) >= _MIN_TEXT),
        ids=_unique(ids),
    )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


@dataclass
class _Values:
    """Values compiled for the walk: each whole value (lower-cased) and each pattern found
    inside a string, with the token that replaces it; ``needles``, lower-cased, are what a
    string must contain for the patterns to be tried (a substring check costs far less)."""

    whole: dict[str, str]
    inside: dict[str, str]
    needles: tuple[str, ...]

    def __post_init__(self) -> None:
        self._tokens = list(self.inside.values())
        # One group per value, so a match names its token by ``lastindex``.
        joined = "|".join(f"({pattern})" for pattern in self.inside) or r"(?!x)x"
        self._pattern = re.compile(joined, re.IGNORECASE)

    @classmethod
    def joined(cls, parts: Iterable[_Values]) -> _Values:
        chosen = list(parts)
        return cls({k: t for v in chosen for k, t in v.whole.items()},
                   {k: t for v in chosen for k, t in v.inside.items()},
                   tuple(dict.fromkeys(n for v in chosen for n in v.needles)))  # fmt: skip

    def string(self, text: str, found: set[str]) -> str:
        low = text.lower()
        token = self.whole.get(low.strip())
        if token is not None:
            found.add(token)
            return token
        if not any(needle in low for needle in self.needles):
            return text
        match = self._pattern.search(text)
        if match is None:
            return text
        if not any(char.isspace() for char in text):  # one token: an address, a URI
            token = self._tokens[(match.lastindex or 1) - 1]
            found.add(token)
            return token

        def replace(inner: re.Match[str]) -> str:
            token = self._tokens[(inner.lastindex or 1) - 1]
            found.add(token)
            return token

        return self._pattern.sub(replace, text)


@dataclass(slots=True)
class _Person:
    """One request's subject, compiled: the values that identify them, and their names."""

    strong: _Values
    names: _Values


class Eraser:
    """Every counted request's subject, compiled: ``erase`` takes one record's bytes and
    gives them back with the subjects' values replaced, and the requests it found.

    A name is erased only from a record that also holds one of the subject's other values (a
    number, an address, an id): another customer, or an agent, of the same name is not the
    subject. A subject named by nothing but a name is looked for by its name everywhere.

    ``pseudonym``: the folder's privacy pseudonym function, when its profile has one: the
    values are then also looked for as the pseudonyms a protected file holds."""

    def __init__(
        self,
        requests: Sequence[GdprRequest],
        pseudonym: Callable[[str], str] | None = None,
    ) -> None:
        self.requests = tuple(r for r in requests if r.counted and not r.subject.empty)
        self._people: dict[str, _Person] = {}
        spellings: dict[str, str] = {}  # what the bytes check looks for -> its token
        for request in self.requests:
            token, subject = request.token, request.subject
            self._people[token] = _compile(subject, token, pseudonym)
            strong = (*subject.phones, *subject.texts, *subject.ids)
            looked_for = [*strong, *_pseudonymised(subject, pseudonym)]
            if not strong:  # named by nothing but a name: looked for by it
                looked_for += [*subject.names, *_pseudonyms(subject.names, pseudonym)]
            spellings.update((value, token) for value in looked_for)
        self._name_only = frozenset(t for t, p in self._people.items() if not p.strong.needles)
        self._compiled: dict[tuple[str, frozenset[str]], _Values] = {}
        self._check = _automaton(spellings)

    @property
    def active(self) -> bool:
        return bool(self.requests)

    def may_hold(self, record: bytes) -> bool:
        """Whether the record may hold a subject's value (the cheap check: no parsing)."""
        return bool(self._suspects(record))

    def erase(self, record: bytes) -> tuple[bytes, set[str]]:
        """The record with every subject value replaced, and the tokens of the requests whose
        values it held (none: the record is returned as it was, byte for byte)."""
        suspects = self._suspects(record)
        if not suspects:
            return record, set()
        data = orjson.loads(record)
        found: set[str] = set()
        data = _walk(data, self._values("strong", suspects), found)
        named = frozenset(found) | (suspects & self._name_only)
        if named:
            data = _walk(data, self._values("names", named), found)
        return (orjson.dumps(data), found) if found else (record, found)

    def protect(self, record: bytes) -> bytes:
        """``erase`` as a sink's protection: the record only."""
        return self.erase(record)[0]

    def _suspects(self, record: bytes) -> frozenset[str]:
        """The tokens of the requests one of whose spellings the record's bytes hold. Bytes are
        matched as latin-1 characters, one each, so any UTF-8 spelling matches as bytes;
        ``bytes.lower`` folds ASCII letters only, in the record and the spellings alike."""
        if self._check is None:
            return frozenset()
        return frozenset(token for _, token in self._check.iter(record.lower().decode("latin-1")))

    def _values(self, which: str, tokens: frozenset[str]) -> _Values:
        """The strong values or the names of these requests' subjects, compiled once per set."""
        key = (which, tokens)
        values = self._compiled.get(key)
        if values is None:
            people = [self._people[token] for token in sorted(tokens)]
            parts = (p.strong if which == "strong" else p.names for p in people)
            values = self._compiled[key] = _Values.joined(parts)
        return values


def _compile(subject: Subject, token: str, pseudonym: Callable[[str], str] | None) -> _Person:
    inside = {_BOUNDED.format(r"\+?" + digits): token for digits in subject.phones}
    inside.update((_BOUNDED.format(re.escape(v)), token) for v in (*subject.texts, *subject.ids))
    strong = _Values(
        {value.lower(): token for value in _pseudonymised(subject, pseudonym)},
        inside,
        tuple(v.lower() for v in (*subject.phones, *subject.texts, *subject.ids)),
    )
    names = _Values(
        {value.lower(): token
         for value in (*subject.names, *_pseudonyms(subject.names, pseudonym))},
        {_BOUNDED.format(_spaced(name)): token for name in subject.names if len(name.split()) > 1},
        tuple(name.split()[0].lower() for name in subject.names if len(name.split()) > 1),
    )  # fmt: skip
    return _Person(strong, names)


def _walk(value: Any, values: _Values, found: set[str]) -> Any:
    """``value`` with its strings erased, in place; the tokens used are added to ``found``."""
    if isinstance(value, str):
        return values.string(value, found)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str | dict | list):
                value[key] = _walk(item, values, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str | dict | list):
                value[index] = _walk(item, values, found)
    return value


def _spaced(name: str) -> str:
    """A name as a pattern that takes any run of spaces between its words."""
    return r"\s+".join(re.escape(word) for word in name.split())


def _pseudonyms(values: Iterable[str], pseudonym: Callable[[str], str] | None) -> list[str]:
    return [] if pseudonym is None else [pseudonym(value) for value in values]


def _pseudonymised(subject: Subject, pseudonym: Callable[[str], str] | None) -> list[str]:
    """The pseudonyms a protected file holds in place of the subject's numbers, addresses and
    ids: each of the spellings a record gives them (a profile pseudonymises the value as the
    API sent it)."""
    if pseudonym is None:
        return []
    spellings = list(subject.ids)
    for digits in subject.phones:
        spellings += [f"+{digits}", f"tel:+{digits}", digits, f"tel:{digits}"]
    for text in subject.texts:
        spellings += [text, text.lower(), f"mailto:{text}", f"mailto:{text.lower()}"]
    return [pseudonym(value) for value in dict.fromkeys(spellings)]


def _automaton(spellings: Mapping[str, str]) -> Any:
    """An automaton of every spelling, raw and as JSON escapes it (non-ASCII as ``\\uXXXX``),
    lower-cased bytes as latin-1 text, each giving its request's token; None for none."""
    if not spellings:
        return None
    automaton = ahocorasick.Automaton()
    for text, token in spellings.items():
        for form in (text, json.dumps(text)[1:-1]):
            automaton.add_word(form.encode().lower().decode("latin-1"), token)
    automaton.make_automaton()
    return automaton

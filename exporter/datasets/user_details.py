"""Agent status history: presence and routing status from the analytics user-details family.

Results are ``userDetails`` entries, ``{"userId", "primaryPresence": [...], "routingStatus":
[...]}``. The service stores a status once per UTC day it touches and removes repeats only
within a page, and spreads one user's statuses over several entries and pages
(genesys-datasets.md §B). So the router works per status, not per entry: each status goes to the
window holding its ``startTime``, once, keyed (userId, presence or routing, startTime); a page
becomes one fragment line per user and window, and a window's fragments are merged into one
line per user (statuses in time order) when it is committed. A status that has not ended (no
``endTime``: the one an agent is in, a leaver's last OFFLINE) is still going on: the engine
refreshes it in its window's file, by its user, until it ends.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
import orjson

from exporter.datasets.base import Fresh, JobsApi, Windowed
from exporter.datasets.records import (
    HeadDecoder,
    Records,
    Selection,
    WindowBounds,
    canonical,
)
from exporter.datasets.seen import SeenKeys
from exporter.store.manifest import Opened
from exporter.windows import Window, parse_api_instant

PATH = "/api/v2/analytics/users/details"
KINDS = (("primaryPresence", b"p"), ("routingStatus", b"r"))  # field, key tag
FIELDS = frozenset(field for field, _ in KINDS)


class _Status(msgspec.Struct):
    startTime: str


class _Ended(msgspec.Struct):
    startTime: str
    endTime: str | None = None


_decode_entry = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_statuses = msgspec.json.Decoder(list[msgspec.Raw]).decode
_read_start = HeadDecoder(_Status).decode
_read_ended = msgspec.json.Decoder(_Ended).decode


def job_body(window: Window) -> dict[str, Any]:
    """A user-details job over ``window``: every status overlapping it, in time order [INF:
    the API takes ``order`` but documents no orderBy or startOfDayIntervalMatching here]."""
    return {"interval": window.interval, "order": "asc"}


def query_body(window: Window, page_size: int, page_number: int) -> dict[str, Any]:
    return {
        "interval": window.interval,
        "order": "asc",
        "paging": {"pageSize": page_size, "pageNumber": page_number},
    }


class _Fragment:
    """One user's new statuses of one window, from one page, and the entry's other fields."""

    __slots__ = ("extras", "statuses", "user")

    def __init__(self, user: msgspec.Raw, extras: dict[str, msgspec.Raw]) -> None:
        self.user = user
        self.extras = extras
        self.statuses: dict[str, list[bytes]] = {field: [] for field, _ in KINDS}

    def line(self) -> bytes:
        parts = [b'"userId":' + bytes(self.user)]
        parts += [orjson.dumps(name) + b":" + bytes(raw) for name, raw in self.extras.items()]
        parts += [
            orjson.dumps(field) + b":[" + b",".join(self.statuses[field]) + b"]"
            for field, _ in KINDS
        ]
        return b"{" + b",".join(parts) + b"}"


class UserDetailsRouter:
    """Each status to the window of its start, once; one line per user per window."""

    def route(
        self, raws: list[msgspec.Raw], bounds: WindowBounds, seen: SeenKeys, *, single_line: bool
    ) -> Selection:
        fragments: list[dict[bytes, _Fragment]] = [{} for _ in range(len(bounds))]
        repeats, opened = 0, []
        for raw in raws:
            entry = _decode_entry(raw)
            user = entry.pop("userId")
            user_id = bytes(user)
            extras = {k: v for k, v in entry.items() if k not in FIELDS}
            for field, tag in KINDS:
                statuses = _decode_statuses(entry[field]) if field in entry else []
                starts = [canonical(_read_start(status).startTime) for status in statuses]
                keys = [user_id + tag + start for start in starts]
                for status, start, new in zip(
                    statuses, starts, seen.keep_new(keys, starts), strict=True
                ):
                    if not new:
                        repeats += 1
                        continue
                    i = bounds.index_canonical(start)
                    if i < 0:
                        continue
                    fragment = fragments[i].get(user_id)
                    if fragment is None:
                        fragment = fragments[i][user_id] = _Fragment(user, extras)
                    fragment.statuses[field].append(_compact(status, single_line))
                    if _read_ended(status).endTime is None:
                        opened.append((i, _opened(user, field, start)))
        windows: list[Records] = [[f.line() for f in by_user.values()] for by_user in fragments]
        return Selection(windows, repeats, opened)

    def keys(self, line: bytes) -> Iterable[tuple[bytes, bytes]]:
        entry = _decode_entry(line)
        user_id = bytes(entry["userId"])
        for field, tag in KINDS:
            for status in _decode_statuses(entry[field]) if field in entry else []:
                start = canonical(_read_start(status).startTime)
                yield user_id + tag + start, start

    def opened(self, line: bytes) -> Iterable[Opened]:
        entry = _decode_entry(line)
        user = entry["userId"]
        for field, _ in KINDS:
            for status in _decode_statuses(entry[field]) if field in entry else []:
                ended = _read_ended(status)
                if ended.endTime is None:
                    yield _opened(user, field, canonical(ended.startTime))

    def finish(self, lines: Iterator[bytes]) -> Records:
        """One line per user (by userId), statuses merged in time order."""
        users: dict[bytes, _Fragment] = {}
        for line in lines:
            entry = _decode_entry(line)
            user = entry.pop("userId")
            extras = {k: v for k, v in entry.items() if k not in FIELDS}
            merged = users.setdefault(bytes(user), _Fragment(user, extras))
            for field, _ in KINDS:
                merged.statuses[field] += map(bytes, _decode_statuses(entry.get(field, b"[]")))
        for merged in users.values():
            for field, _ in KINDS:
                merged.statuses[field].sort(
                    key=lambda s: parse_api_instant(_read_start(s).startTime)
                )
        return [users[user].line() for user in sorted(users)]

    def fresh(
        self, raws: list[msgspec.Raw], wanted: Container[str], *, single_line: bool
    ) -> dict[str, Fresh]:
        found = {}
        for raw in raws:
            entry = _decode_entry(raw)
            user = orjson.loads(bytes(entry["userId"]))
            for field, _ in KINDS:
                for status in _decode_statuses(entry[field]) if field in entry else []:
                    ended = _read_ended(status)
                    key = status_key(user, field, canonical(ended.startTime))
                    if key in wanted:
                        found[key] = Fresh(_compact(status, single_line), ended.endTime is None)
        return found

    def merge(self, line: bytes, fresh: Mapping[str, bytes]) -> bytes:
        entry = _decode_entry(line)
        user = entry.pop("userId")
        user_id = orjson.loads(bytes(user))
        merged = _Fragment(user, {k: v for k, v in entry.items() if k not in FIELDS})
        changed = False
        for field, _ in KINDS:
            for status in _decode_statuses(entry[field]) if field in entry else []:
                start = canonical(_read_start(status).startTime)
                newer = fresh.get(status_key(user_id, field, start))
                changed = changed or newer is not None
                merged.statuses[field].append(bytes(status) if newer is None else newer)
        return merged.line() if changed else line

    def time_ms(self, raw: msgspec.Raw) -> int:
        """The latest start among an entry's statuses (its first when it holds none)."""
        entry = _decode_entry(raw)
        starts = [
            parse_api_instant(_read_start(status).startTime)
            for field, _ in KINDS
            for status in (_decode_statuses(entry[field]) if field in entry else [])
        ]
        return max(starts, default=0)


def status_key(user_id: str, field: str, start: bytes) -> str:
    """A status's key among open records: its user, its kind and its start."""
    return f"{user_id}|{field}|{start.decode()}"


def _opened(user: msgspec.Raw, field: str, start: bytes) -> Opened:
    user_id = orjson.loads(bytes(user))
    return Opened(status_key(user_id, field, start), user_id, start.decode())


def refresh_body(window: Window, user_ids: Sequence[str]) -> dict[str, Any]:
    """A job for these users only: their statuses overlapping ``window``."""
    predicates = [{"dimension": "userId", "value": u} for u in user_ids]
    return {"interval": window.interval, "order": "asc",
            "userFilters": [{"type": "or", "predicates": predicates}]}  # fmt: skip


def _compact(raw: msgspec.Raw, single_line: bool) -> bytes:
    return bytes(raw) if single_line else orjson.dumps(orjson.loads(bytes(raw)))


USER_DETAILS = Windowed(
    name="user-details",
    summary="agents' presence and routing-status history, one line per user per window",
    permission="analytics:userDetail:view",
    api=JobsApi(
        jobs=f"{PATH}/jobs",
        query=f"{PATH}/query",
        records="userDetails",
        job_body=job_body,
        query_body=query_body,
        refresh_body=refresh_body,
    ),
    router=UserDetailsRouter(),
)

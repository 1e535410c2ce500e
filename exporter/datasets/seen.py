"""Which record keys a batch has already written, in about 8 bytes a key.

A Python ``set`` of a million ids costs about 100 MB (a str object per id plus the table); the
exporter's whole budget at a million conversations is 150 MB. So a key is kept as its 64-bit
hash: the recent ones in a small set, the rest in one sorted ``array('q')`` that the recent
ones are merged into when the set fills. A lookup is a set probe and a bisect.

Most lookups are skipped: a repeat carries the time of its first copy (a conversation's start
does not change), so a key whose time is later than every time seen before cannot be a repeat.
Job results come in time order, so that is nearly every key; the answer never depends on the
order, only the speed does (measured: 0.3 against 0.8 us a key).

The hash is Python's own (SipHash over the key's bytes, salted per process), never stored: a
resumed batch rebuilds its keys from its part files. Two different keys of one batch share a
hash with odds of about n^2 / 2^65: one in 30 million for a million keys.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import chain

# Recent hashes kept in a set before they are merged into the sorted array: a larger set
# merges less often, a smaller one holds less memory per open batch (~70 bytes a hash).
RECENT_MAX = 16_384


class SeenKeys:
    """The keys written so far; ``keep_new`` filters a page's keys down to the unseen ones."""

    __slots__ = ("_latest", "_recent", "_recent_max", "_sorted")

    def __init__(self, recent_max: int = RECENT_MAX) -> None:
        self._recent_max = recent_max
        self._sorted = array("q")
        self._recent: set[int] = set()
        self._latest = b""  # the latest time among the keys seen

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def keep_new(self, keys: Sequence[bytes], times: Sequence[bytes] | None = None) -> list[bool]:
        """For each key, whether it is new (seen neither before nor earlier in ``keys``);
        every key is seen afterwards. ``times`` (each key's record's time as canonical
        instant bytes, in which byte order is time order) let most keys skip the lookup;
        without them (records with no time) every key is looked up."""
        recent, latest = self._recent, self._latest
        verdicts = []
        for key, time in zip(keys, times or [b""] * len(keys), strict=True):
            digest = hash(key)
            if time > latest:
                latest, new = time, True
            else:
                new = digest not in recent and not self._settled(digest)
            if new:
                recent.add(digest)
            verdicts.append(new)
        self._latest = latest
        if len(recent) >= self._recent_max:
            self._merge()
        return verdicts

    def update(self, fields: Iterable[tuple[bytes, bytes]]) -> None:
        """Mark keys seen (a resumed batch's records already on disk), from (key, time) pairs."""
        latest = self._latest
        for key, time in fields:
            self._recent.add(hash(key))
            latest = max(latest, time)
            if len(self._recent) >= self._recent_max:
                self._merge()
        self._latest = latest

    def _settled(self, digest: int) -> bool:
        known = self._sorted
        at = bisect_left(known, digest)
        return at < len(known) and known[at] == digest

    def _merge(self) -> None:
        # Both runs are sorted or nearly so: timsort merges them in linear time.
        self._sorted = array("q", sorted(chain(self._sorted, self._recent)))
        self._recent = set()

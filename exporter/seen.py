"""Which record keys a batch has already written, in about 8 bytes a key.

A Python ``set`` of a million ids costs about 100 MB (a str object per id plus the table); the
exporter's whole budget at a million conversations is 150 MB. So a key is kept as its 64-bit
hash in one sorted ``array('q')``; a page's new keys are merged in once per page, by slicing
the array around them (C memcpy), not by inserting one by one. A lookup is a bisect.

The hash is Python's own (SipHash over the key's bytes, salted per process), never stored: a
resumed batch rebuilds its keys from its part files. Two different keys of one batch share a
hash with odds of about n^2 / 2^65: one in 30 million for a million keys.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence


class SeenKeys:
    """The keys written so far; ``keep_new`` filters a page's keys down to the unseen ones."""

    __slots__ = ("_sorted",)

    def __init__(self) -> None:
        self._sorted = array("q")

    def __len__(self) -> int:
        return len(self._sorted)

    def keep_new(self, keys: Sequence[bytes]) -> list[bool]:
        """For each key, whether it is new (seen neither before nor earlier in ``keys``);
        every key is seen afterwards."""
        known = self._sorted
        fresh: dict[int, int] = {}  # digest -> where it goes in ``known``
        verdicts = []
        for key in keys:
            digest = hash(key)
            at = bisect_left(known, digest)
            new = not (at < len(known) and known[at] == digest) and digest not in fresh
            if new:
                fresh[digest] = at
            verdicts.append(new)
        self._merge(fresh)
        return verdicts

    def update(self, keys: Iterable[bytes]) -> None:
        """Mark ``keys`` seen (a resumed batch's records already on disk)."""
        self.keep_new(list(keys))

    def _merge(self, fresh: dict[int, int]) -> None:
        """Insert ``fresh`` digests at their positions, one slice copy per digest."""
        if not fresh:
            return
        known, merged, start = self._sorted, array("q"), 0
        for digest in sorted(fresh):
            at = fresh[digest]
            merged.extend(known[start:at])
            merged.append(digest)
            start = at
        merged.extend(known[start:])
        self._sorted = merged

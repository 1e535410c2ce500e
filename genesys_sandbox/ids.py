"""Fresh ids for generated entities and records: random version-4 UUIDs, made in batches."""

from __future__ import annotations

import random
import struct

_ID_BATCH = 1024
# Applied to 128 random bits per id: version nibble 4, variant bits 10 (RFC 4122 version 4).
_ID_CLEAR = int.from_bytes(bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * _ID_BATCH, "big")
_ID_SET = int.from_bytes(bytes.fromhex("00000000000040008000000000000000") * _ID_BATCH, "big")
_ID_LAYOUT = struct.Struct("8s4s4s4s12s" * _ID_BATCH)  # hex digits -> the five UUID groups
_ID_TEMPLATE = b"%s-%s-%s-%s-%s " * _ID_BATCH


class IdSource:
    """Fresh random version-4 UUID strings, formatted a batch at a time (per id is slow)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._pool: list[str] = []
        self._next = 0

    def take(self, count: int) -> list[str]:
        start = self._next
        if start + count > len(self._pool):
            self._pool, start = self._batch(), 0
        self._next = start + count
        return self._pool[start : start + count]

    def _batch(self) -> list[str]:
        bits = self._rng.getrandbits(128 * _ID_BATCH) & _ID_CLEAR | _ID_SET
        groups = _ID_LAYOUT.unpack(bits.to_bytes(16 * _ID_BATCH, "big").hex().encode())
        return (_ID_TEMPLATE % groups).decode().split()

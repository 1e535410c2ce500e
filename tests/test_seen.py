"""The compact set of keys a batch has written (pure, property-tested against a plain set)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exporter.datasets.seen import SeenKeys

pages = st.lists(st.lists(st.binary(min_size=1, max_size=6), max_size=20), max_size=12)


@given(pages, st.booleans())
def test_keep_new_answers_exactly_as_a_set_of_everything_seen(
    pages_: list[list[bytes]], timed: bool
) -> None:
    """Page after page, a key is new exactly when no earlier key, in this page or before,
    equals it; with times (a repeat carries its first copy's time) or without, in any order,
    across the merges of recent keys into the sorted array."""
    seen, reference = SeenKeys(recent_max=16), set[bytes]()
    for keys in pages_:
        expected = []
        for key in keys:
            expected.append(key not in reference)
            reference.add(key)
        times = [key[::-1] for key in keys] if timed else None
        assert seen.keep_new(keys, times) == expected
    assert len(seen) == len(reference)


def test_keys_survive_the_merge_into_the_sorted_array() -> None:
    """More keys than the recent set holds: the merged ones are still found."""
    seen = SeenKeys(recent_max=8)
    keys = [str(n).encode() for n in range(100)]
    assert all(seen.keep_new(keys[:50], [b"%03d" % n for n in range(50)]))
    assert seen.keep_new(keys, [b"%03d" % n for n in range(100)]) == [False] * 50 + [True] * 50


def test_update_marks_keys_seen_without_answering() -> None:
    """Keys loaded from a resumed part file count as seen."""
    seen = SeenKeys()
    seen.update([(b"a", b"1"), (b"b", b"2"), (b"a", b"1")])
    assert seen.keep_new([b"b", b"c"], [b"2", b"3"]) == [False, True] and len(seen) == 3

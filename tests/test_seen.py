"""The compact set of keys a batch has written (pure, property-tested against a plain set)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exporter.seen import SeenKeys

pages = st.lists(st.lists(st.binary(min_size=1, max_size=6), max_size=20), max_size=12)


@given(pages)
def test_keep_new_answers_exactly_as_a_set_of_everything_seen(pages_: list[list[bytes]]) -> None:
    """Page after page, a key is new exactly when no earlier key, in this page or before,
    equals it."""
    seen, reference = SeenKeys(), set[bytes]()
    for keys in pages_:
        expected = []
        for key in keys:
            expected.append(key not in reference)
            reference.add(key)
        assert seen.keep_new(keys) == expected
    assert len(seen) == len(reference)


def test_update_marks_keys_seen_without_answering() -> None:
    """Keys loaded from a resumed part file count as seen."""
    seen = SeenKeys()
    seen.update([b"a", b"b", b"a"])
    assert seen.keep_new([b"b", b"c"]) == [False, True] and len(seen) == 3

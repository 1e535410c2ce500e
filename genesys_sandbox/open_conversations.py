"""Conversations still going on: served without ``conversationEnd`` until they close.

Messaging and e-mail conversations can stay open for days, so a day's records are not final
when its day is exported. The ``open_conversations`` setting names how many of the data's
messaging and e-mail conversations are still going on: the sandbox serves each as the API shows
a conversation in progress (``recordgen.truncate_ongoing`` at 40% of its life), to jobs and the
query alike, until the setting is lowered; then it is served whole, closed. The candidates
come in one seeded order, so lowering the count closes the last ones opened first and
raising it again reopens them: a test moves the data's present with one setting.
"""

from __future__ import annotations

import random

import orjson

from genesys_sandbox.data import Dataset
from genesys_sandbox.orgdata import make_formatter
from genesys_sandbox.recordgen import truncate_ongoing

_LONG_LIVED = (b'"mediaType":"message"', b'"mediaType":"email"')
OPEN_SHARE = 0.4  # of its life: where an open conversation is cut


class OpenConversations:
    """Which conversations are open now, and their in-progress bytes."""

    def __init__(self, dataset: Dataset, count: int) -> None:
        self._dataset = dataset
        self._order = _candidates(dataset)
        if count > len(self._order):
            raise ValueError(
                f"Sandbox open_conversations {count} is more than the data's "
                f"{len(self._order)} finished messaging and e-mail conversations."
            )
        self.indices = frozenset(self._order[:count])
        self._cut: dict[int, bytes] = {}

    def record(self, i: int) -> bytes:
        """Conversation ``i`` as the jobs API shows it now (open or whole)."""
        if i not in self.indices:
            return self._dataset.job_record(i)
        cut = self._cut.get(i)
        if cut is None:
            cut = self._cut[i] = _in_progress(self._dataset, i)
        return cut


def _candidates(dataset: Dataset) -> list[int]:
    """Finished messaging and e-mail conversations, in one seeded order."""
    found = [
        i
        for i, end in enumerate(dataset.ends_ms)
        if end is not None and any(m in dataset.job_record(i) for m in _LONG_LIVED)
    ]
    random.Random(f"open-{dataset.spec.seed}").shuffle(found)
    return found


def _in_progress(dataset: Dataset, i: int) -> bytes:
    record = orjson.loads(dataset.job_record(i))
    start, end = dataset.starts_ms[i], dataset.ends_ms[i]
    assert end is not None
    truncate_ongoing(record, make_formatter()(start + int((end - start) * OPEN_SHARE)))
    return orjson.dumps(record)

"""Every kind of data the engine runs, and which one a dataset's description is.

Callers ask ``kind_of(dataset)`` and then the kind; none of them tells kinds apart itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exporter.datasets.base import BulkUnitDays, ById, Dataset, Listing, UnitDays, Windowed
from exporter.engine.kinds.base import Kind, PlanContext, PlanLine, Preview, RunContext, Tally, Work
from exporter.engine.kinds.by_id import BY_ID
from exporter.engine.kinds.snapshot import SNAPSHOT
from exporter.engine.kinds.unit_days import UNIT_DAYS
from exporter.engine.kinds.windowed import WINDOWED

_KINDS: dict[type[Any], Kind[Any]] = {
    Windowed: WINDOWED,
    Listing: SNAPSHOT,
    ById: BY_ID,
    UnitDays: UNIT_DAYS,
    BulkUnitDays: UNIT_DAYS,
}


def kind_of(dataset: Dataset) -> Kind[Any]:
    """The kind a dataset's description is of."""
    return _KINDS[type(dataset)]


def by_kind(datasets: Iterable[Dataset]) -> list[tuple[Kind[Any], list[Dataset]]]:
    """``datasets`` grouped by kind, kinds in the order the engine knows them."""
    chosen = list(datasets)
    kinds = dict.fromkeys(_KINDS.values())  # a kind may run several descriptions
    groups = [(kind, [d for d in chosen if kind_of(d) is kind]) for kind in kinds]
    return [(kind, members) for kind, members in groups if members]


__all__ = ["Kind", "PlanContext", "PlanLine", "Preview", "RunContext", "Tally", "Work",
           "by_kind", "kind_of"]  # fmt: skip

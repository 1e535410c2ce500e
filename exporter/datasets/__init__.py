"""Every dataset the exporter knows, by name, and how a selection names them."""

from __future__ import annotations

from exporter.datasets.base import ById, Dataset, Listing, UnitDays, Windowed
from exporter.datasets.conversation_aggregates import CONVERSATION_AGGREGATES
from exporter.datasets.conversations import CONVERSATIONS
from exporter.datasets.listings import LISTINGS
from exporter.datasets.quality import BY_ID, FORMS
from exporter.datasets.user_details import USER_DETAILS
from exporter.datasets.workforce import ADHERENCE, SCHEDULES, UNITS
from exporter.errors import ConfigError

_ALL: tuple[Dataset, ...] = (
    CONVERSATIONS, CONVERSATION_AGGREGATES, USER_DETAILS, *BY_ID, *LISTINGS, *FORMS, *UNITS,
    SCHEDULES, ADHERENCE,
)  # fmt: skip
DATASETS: dict[str, Dataset] = {d.name: d for d in _ALL}
_QUALITY: tuple[Dataset, ...] = (*BY_ID, *FORMS)
# Workforce management is a product of its own (an org without it is denied every WFM route):
# its snapshots are not ``dimensions``, so a run that reads the dimensions does not start
# failing with exit 3 where WFM is not licensed.
_WORKFORCE: tuple[Dataset, ...] = (*UNITS, SCHEDULES, ADHERENCE)
GROUPS = {
    "dimensions": [d.name for d in (*LISTINGS, *FORMS)],
    "quality": [d.name for d in _QUALITY],
    "workforce": [d.name for d in _WORKFORCE],
    "all": list(DATASETS),
}
DEFAULT = "conversations"


def select(spec: str, *, what: str = "--datasets") -> tuple[Dataset, ...]:
    """The datasets a comma-separated selection names, in the registry's order, each once.

    ``dimensions`` means every snapshot dataset but the workforce ones, ``quality`` the
    evaluations and surveys with their forms, ``workforce`` the workforce management datasets,
    ``all`` every dataset."""
    chosen: set[str] = set()
    for word in (part.strip().lower() for part in spec.split(",")):
        if not word:
            continue
        if word in GROUPS:
            chosen.update(GROUPS[word])
        elif word in DATASETS:
            chosen.add(word)
        else:
            names = ", ".join([*DATASETS, *GROUPS])
            raise ConfigError(f"{what} names an unknown dataset {word!r}; choose from {names}.")
    if not chosen:
        raise ConfigError(f"{what} is empty; name at least one dataset, e.g. conversations.")
    return tuple(d for name, d in DATASETS.items() if name in chosen)


__all__ = ["DATASETS", "DEFAULT", "ById", "Dataset", "Listing", "UnitDays", "Windowed", "select"]

"""Building blocks of generated records: ids, timestamps, the generator's org view, media.

Everything here is drawn once per dataset (or is constant); `recordgen` combines it per
conversation. Several pools exist only to keep the per-conversation work small.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from statistics import NormalDist
from typing import TYPE_CHECKING

from genesys_sandbox.ids import IdSource

if TYPE_CHECKING:
    from genesys_sandbox.entities import Entities

_MINUTE_MS = 60_000
# Quantiles of the standard normal and unit exponential: picking one at random (plus jitter) is a
# cheap stand-in for gauss() / expovariate() in the hot loop.
QUANTILES = 512
_NORMAL = tuple(NormalDist().inv_cdf((i + 0.5) / QUANTILES) for i in range(QUANTILES))
_EXPONENTIAL = tuple(-math.log(1 - (i + 0.5) / QUANTILES) for i in range(QUANTILES))


@cache
def _second_ms_suffixes() -> tuple[str, ...]:
    """ "SS.mmmZ" for every millisecond of a minute: one table lookup per timestamp later."""
    return tuple(f"{ms // 1000:02d}.{ms % 1000:03d}Z" for ms in range(_MINUTE_MS))


def make_formatter() -> Callable[[int], str]:
    """Return epoch-ms -> `yyyy-MM-ddTHH:mm:ss.SSSZ`, caching the per-minute prefix."""
    suffixes = _second_ms_suffixes()
    prefixes: dict[int, str] = {}

    def fmt(ms: int) -> str:
        prefix = prefixes.get(ms // _MINUTE_MS)
        if prefix is None:
            moment = datetime.fromtimestamp(ms // _MINUTE_MS * 60, UTC)
            prefix = prefixes[ms // _MINUTE_MS] = moment.strftime("%Y-%m-%dT%H:%M:")
        return prefix + suffixes[ms % _MINUTE_MS]

    return fmt


@dataclass(frozen=True, slots=True)
class Org:
    """What the generator draws from: the entities' ids as flat tuples (fast to index in the
    hot loop), and pools of values that are not entities (edges, numbers, attributes, ...)."""

    home_division: str
    queues: tuple[tuple[str, str, str], ...]  # (id, name, divisionId)
    agents: tuple[tuple[str, str, str], ...]  # (userId, name, teamId)
    flows: dict[str, tuple[tuple[str, str, str], ...]]  # flowType -> (id, name, version)
    wrapup_codes: tuple[str, ...]
    skills: tuple[str, ...]
    languages: tuple[str, ...]
    edges: tuple[str, ...]
    outcomes: tuple[str, ...]
    campaigns: tuple[tuple[str, str], ...]  # (campaignId, contactListId)
    numbers: tuple[str, ...]  # the org's own phone numbers
    # Pools drawn once: reusing them keeps generation fast and still looks varied.
    attributes: tuple[dict[str, str], ...]
    quality: tuple[tuple[float, float], ...]  # (MOS, R-factor) of a voice endpoint


_FIRST = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Ines", "Jon", "Kai")
_LAST = ("Silva", "Okafor", "Nguyen", "Smith", "Kowalski", "Haddad", "Tanaka", "Brown", "Rossi")
PEOPLE = tuple(f"{first} {last}" for first in _FIRST for last in _LAST)  # customers' names
# Participant data as flows set it. No value may contain "}" or '"': data.py strips attributes
# from the serialised record with a regex that relies on it.
_ATTRS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ivr.language", ("en-us", "es-us", "fr-ca")),
    ("ivr.intent", ("billing", "order_status", "tech_issue", "cancel", "new_service", "other")),
    ("customer.tier", ("bronze", "silver", "gold", "platinum")),
    ("ivr.authenticated", ("true", "false")),
    ("crm.caseStatus", ("new", "open", "pending", "escalated")),
    ("survey.optIn", ("yes", "no")),
    ("marketing.source", ("web", "email-campaign", "tv", "partner", "referral")),
)


def build_org(rng: random.Random, entities: Entities) -> Org:
    """The generator's view of ``entities``, plus pools drawn from ``rng``."""
    take = IdSource(rng).take
    flows: dict[str, list[tuple[str, str, str]]] = {}
    for flow in entities.flows:
        flows.setdefault(flow.type, []).append((flow.id, flow.name, flow.version))
    return Org(
        home_division=entities.divisions[0].id,
        queues=tuple((q.id, q.name, q.division_id) for q in entities.queues),
        agents=tuple((a.id, a.name, a.team_id or "") for a in entities.agents),
        flows={flow_type: tuple(found) for flow_type, found in flows.items()},
        wrapup_codes=tuple(w.id for w in entities.wrapup_codes),
        skills=tuple(s.id for s in entities.skills),
        languages=tuple(lang.id for lang in entities.languages),
        edges=tuple(take(4)),
        outcomes=tuple(take(6)),
        campaigns=tuple(zip(take(3), take(3), strict=True)),
        numbers=tuple(f"tel:+1800555{rng.randrange(10_000):04d}" for _ in range(6)),
        attributes=tuple(_attributes(rng) for _ in range(1024)),
        quality=tuple(_quality(rng) for _ in range(256)),
    )


def _attributes(rng: random.Random) -> dict[str, str]:
    """Participant data a flow might have set: an account number and 3-6 other keys."""
    first = rng.randrange(len(_ATTRS))
    attributes = {"crm.accountId": f"AC-{rng.randrange(100_000_000):08d}"}
    for j in range(rng.randint(3, 6)):
        key, values = _ATTRS[(first + j) % len(_ATTRS)]
        attributes[key] = rng.choice(values)
    return attributes


def _quality(rng: random.Random) -> tuple[float, float]:
    """A minimum MOS skewed towards good calls, and an R-factor that roughly agrees with it."""
    mos = round(3.2 + 1.25 * (1.0 - rng.random() * rng.random()), 2)
    return mos, round(min(93.2, 40.0 + (mos - 2.5) * 27.0 - rng.random() * 2.0), 1)


@dataclass(frozen=True, slots=True)
class Media:
    """How one kind of routed interaction behaves; durations in ms.

    `waits` and `talks` tabulate the queue-wait and talk-time distributions once.
    """

    media_type: str
    flow_type: str | None  # flow before the queue; None = straight to the queue
    entry_type: str
    flow_ms: tuple[int, int]  # uniform range of time in the flow
    wait_mean_ms: int  # exponential time in queue
    wait_cap_ms: int
    talk_median_ms: int  # log-normal time interacting with the agent
    talk_sigma: float
    abandon: float  # fraction abandoned in queue
    self_served: float  # fraction that ends in the flow
    transfer: float  # fraction handed to a second queue and agent
    hold: float  # fraction with a hold
    routing: str = "Standard"
    waits: tuple[int, ...] = field(init=False, repr=False)
    talks: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        waits = (min(int(self.wait_mean_ms * q), self.wait_cap_ms) for q in _EXPONENTIAL)
        talks = (int(self.talk_median_ms * math.exp(self.talk_sigma * z)) for z in _NORMAL)
        object.__setattr__(self, "waits", tuple(waits))
        object.__setattr__(self, "talks", tuple(min(max(t, 15_000), 10_800_000) for t in talks))


VOICE = Media("voice", "INBOUNDCALL", "dnis", (8_000, 90_000), 40_000, 1_200_000,
              240_000, 0.85, 0.07, 0.10, 0.06, 0.25)  # fmt: skip
CAMPAIGN = Media("voice", "OUTBOUNDCALL", "outbound", (800, 4_000), 3_000, 60_000,
                 200_000, 0.8, 0.03, 0.0, 0.02, 0.15, "Predictive")  # fmt: skip
MESSAGE = Media("message", "INBOUNDSHORTMESSAGE", "direct", (2_000, 20_000), 120_000, 3_600_000,
                600_000, 1.0, 0.04, 0.05, 0.03, 0.0)  # fmt: skip
# Emails wait in queue for hours: these are most of the conversations that cross UTC midnight.
EMAIL = Media("email", "INBOUNDEMAIL", "direct", (200, 2_000), 10_800_000, 79_200_000,
              360_000, 0.7, 0.0, 0.0, 0.02, 0.0)  # fmt: skip
CHAT = Media("chat", "INBOUNDCHAT", "direct", (3_000, 20_000), 60_000, 1_800_000,
             420_000, 0.8, 0.06, 0.03, 0.02, 0.0)  # fmt: skip
CALLBACK = Media("callback", None, "direct", (0, 0), 900_000, 7_200_000,
                 300_000, 0.8, 0.0, 0.0, 0.0, 0.0)  # fmt: skip

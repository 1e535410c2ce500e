"""The sandbox's configuration: every behaviour knob as one frozen, validated value.

Defaults follow Part A of genesys-api.md. ``FaultRule`` declares one injected failure;
``fault_mix`` turns a single rate into an even mix of 429 and 5xx answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from genesys_sandbox.data import DatasetSpec

# The quality form listings: forms (each one's draft) and their published versions.
FORM_LISTINGS = (
    "evaluation-forms",
    "published-evaluation-forms",
    "survey-forms",
    "published-survey-forms",
)
LISTING_ROUTES = (
    "users",
    "queues",
    "queue-members",
    "wrapup-codes",
    "divisions",
    "groups",
    "teams",
    "skills",
    "languages",
    "presence-definitions",
    "flows",
    "flow-outcomes",
    "flow-milestones",
    "locations",
    *FORM_LISTINGS,
    "gdpr-requests",
)
# GET <listing>/{id}: the real API has one for every listing but queue members [SRC].
LOOKUP_ROUTES = tuple(f"{route}.by-id" for route in LISTING_ROUTES if route != "queue-members")
# Workforce management's unit listings (one page each, no paging) and its by-id reads.
WFM_LISTING_ROUTES = ("business-units", "management-units", "management-unit-users",
                      "activity-codes")  # fmt: skip
WFM_LOOKUP_ROUTES = ("business-units.by-id", "management-units.by-id")
# A schedule search, and the pre-signed links its answers give (no token, no rate limit).
WFM_ROUTES = ("schedules.search", "adherence.bulk", "adherence.job", "download")
SCHEDULE_SEARCH_MODES = ("auto", "inline", "download", "async")
ROUTES = (
    "oauth.token",
    "jobs.submit",
    "jobs.status",
    "jobs.results",
    "jobs.delete",
    "jobs.availability",
    "query",
    "user-details.jobs.submit",
    "user-details.jobs.status",
    "user-details.jobs.results",
    "user-details.jobs.delete",
    "user-details.jobs.availability",
    "user-details.query",
    "aggregates.jobs.submit",
    "aggregates.jobs.status",
    "aggregates.jobs.results",
    "aggregates.jobs.delete",
    "aggregates.query",
    *LISTING_ROUTES,
    *LOOKUP_ROUTES,
    *WFM_LISTING_ROUTES,
    *WFM_LOOKUP_ROUTES,
    *WFM_ROUTES,
    "quality.evaluation",
    "quality.survey",
    "org-limits",
    "data-retention",
    "tokens.me",
    "organizations.me",
)
FAULT_KINDS = (
    "status",
    "drop",
    "drop-mid-body",
    "trickle-body",
    "hang",
    "truncate",
    "invalid-json",
    "job-failed",
    "job-expired",
    "job-stuck",
    "repeat-records",
    "cursor-rejected",
    "forbidden",
    "link-expired",
    "empty-listing",
    "next-uri-loop",
    "entity-deleted",
)
# Kinds that only make sense on some routes: an empty ``routes`` means "those routes", not "all".
_SUBMITS = frozenset({"jobs.submit", "user-details.jobs.submit", "aggregates.jobs.submit"})
_RESULTS = frozenset({"jobs.results", "user-details.jobs.results", "aggregates.jobs.results"})
ROUTE_BOUND_KINDS = {
    "job-failed": _SUBMITS | {"adherence.bulk"},
    "job-expired": _RESULTS,
    "job-stuck": _SUBMITS,
    "repeat-records": _RESULTS,
    "cursor-rejected": _RESULTS | {"teams"},  # teams: the after cursor its nextUri carries
    "link-expired": frozenset({"download"}),  # a pre-signed link answers 403 as if expired
    "empty-listing": frozenset({*LISTING_ROUTES, *WFM_LISTING_ROUTES}),
    "next-uri-loop": frozenset({*LISTING_ROUTES, *WFM_LISTING_ROUTES}),
    # routes naming an entity
    "entity-deleted": frozenset({"queue-members", *LOOKUP_ROUTES, *WFM_LOOKUP_ROUTES}),
}
ALL_LISTINGS = "*"  # in listing_refuse_oversize: every listing route


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One injected failure: which kind, on which routes, how often and how many times."""

    kind: str
    routes: tuple[str, ...] = ()  # () = every API route; the token route only when named
    status: int = 503
    retry_after: str | None = None  # "5" = seconds, "http-date:5" = HTTP-date 5 s ahead
    probability: float = 1.0
    count: int | None = None  # fire at most this many times
    skip: int = 0  # let the first N matching requests through
    # hang, trickle-body: how long before the connection is dropped; job-stuck: how long
    # (sandbox clock) the job waits QUEUED before it runs its normal course
    hang_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Fault kind {self.kind!r} is unknown; use one of {FAULT_KINDS}.")
        unknown = set(self.routes) - set(ROUTES)
        if unknown:
            raise ValueError(f"Fault routes {sorted(unknown)} are unknown; use {ROUTES}.")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"Fault probability {self.probability} must be within [0, 1].")
        if not 100 <= self.status <= 599:
            raise ValueError(f"Fault status {self.status} is not an HTTP status.")
        if (self.count is not None and self.count < 0) or self.skip < 0 or self.hang_s < 0:
            raise ValueError("Fault count, skip and hang_s must not be negative.")
        if self.retry_after is not None:
            _check_retry_after(self.retry_after)

    def matches_route(self, route: str) -> bool:
        """Whether this rule covers ``route`` (ignoring skip, count and probability)."""
        if self.routes:
            return route in self.routes
        bound = ROUTE_BOUND_KINDS.get(self.kind)
        if bound is not None:
            return route in bound
        return route != "oauth.token"

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """Parse ``kind=status,status=503,probability=0.05,retry-after=2,routes=query|users``."""
        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"Fault setting {part!r} needs the form name=value.")
            fields[name.strip().replace("-", "_")] = value.strip()
        return cls.from_json(fields)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from JSON-ish values (strings are converted to the field's type)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Fault settings {sorted(unknown)} are unknown; use {sorted(known)}.")
        if "kind" not in data:
            raise ValueError("A fault needs a kind, e.g. kind=status.")
        return cls(**{name: _convert_fault_field(name, value) for name, value in data.items()})

    def to_json(self) -> dict[str, Any]:
        """The rule as a JSON-ready dict (inverse of ``from_json``)."""
        data = dataclasses.asdict(self)
        data["routes"] = list(self.routes)
        return data


def _convert_fault_field(name: str, value: Any) -> Any:
    if not isinstance(value, str) or name in ("kind", "retry_after"):
        return tuple(value) if name == "routes" else value
    if name == "routes":
        return tuple(r for r in value.split("|") if r)
    if name in ("status", "skip"):
        return int(value)
    if name == "count":
        return None if value.lower() in ("", "none") else int(value)
    return float(value)


def _check_retry_after(value: str) -> None:
    seconds = value.removeprefix("http-date:")
    try:
        if float(seconds) < 0:
            raise ValueError
    except ValueError:
        raise ValueError(
            f'Retry-After {value!r} must be seconds ("5") or "http-date:SECONDS".'
        ) from None


def fault_mix(rate: float, retry_after: str = "1") -> tuple[FaultRule, ...]:
    """Rules answering a fraction ``rate`` of API requests with an even 429/500/502/503/504 mix.

    Rules are tried in order and the first that fires wins, so each later rule's probability is
    conditioned on the earlier ones not firing: every status then gets exactly rate / 5.
    429 and 503 carry Retry-After, the others do not (as the real gateway mixes them).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"Fault rate {rate} must be within [0, 1].")
    statuses = (429, 500, 502, 503, 504)
    share = rate / len(statuses)
    rules = []
    for k, status in enumerate(statuses):
        remaining = 1.0 - k * share
        probability = min(1.0, share / remaining) if remaining > 0 else 0.0
        header = retry_after if status in (429, 503) else None
        rules.append(
            FaultRule("status", status=status, retry_after=header, probability=probability)
        )
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """Every behaviour of the sandbox; defaults are the real service's as far as we know.

    ``denied_permissions``: permissions the client lacks; a route whose every accepted
    permission is denied answers 403 missing.any.permissions (``permissions.PERMISSIONS``).
    Listings page at most ``listing_max_page_size`` entities (``queue_members_max_page_size``
    for queue members, ``form_max_page_size`` for the quality forms), serving a larger request
    at the maximum, except the listing routes named in ``listing_refuse_oversize`` (``"*"``:
    all; the form listings by default), which refuse it with 400 invalid.query.param.value
    naming the allowed range. ``listing_drift``: the probability that a listing page is
    preceded by one entity deleted and one created. ``retention_days``: what GET
    /api/v2/analytics/dataretention/settings reports. ``evaluation_edits_per_hour``: how often
    a finished evaluation is re-reviewed, per hour of sandbox clock (``reviews``); with
    ``evaluation_edits_in_details`` the conversation records' evaluation entries follow.
    """

    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    # The org the client belongs to (GET /api/v2/organizations/me, tokens/me): another id
    # plays another org, as a wrong Secret or a copied volume would reach.
    org_id: str = "5f1c2b1e-0000-4000-8000-5a4db0c5e7e1"
    org_name: str = "Sandbox Org"
    token_ttl_s: float = 86_400
    token_error_status: int = 400  # status of a wrong-secret answer (400 observed, 401 possible)
    denied_permissions: tuple[str, ...] = ()
    rate_per_minute: int | None = 300  # budget per token per window (None = unlimited)
    rate_window_s: float = 60.0
    max_concurrent_jobs: int = 10
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    job_delay_s: float = 1.0  # QUEUED -> PENDING at half, FULFILLED at the full delay
    job_expiry_s: float = 3600.0  # after completion: EXPIRED, and 404 once as long again passed
    # Results also expire once this many pages of a job were served (None: by time only): a
    # reader slower than the results live, on any clock.
    job_expiry_pages: int | None = None
    availability_date: datetime | None = None  # None = now - availability_lag_s
    availability_lag_s: float = 0.0
    # User details have a watermark of their own [SRC]: the same two knobs, for that family.
    user_availability_date: datetime | None = None
    user_availability_lag_s: float = 0.0
    query_default_page_size: int = 25
    query_max_page_size: int = 100
    query_max_interval_days: float = 7.0
    job_default_page_size: int = 1000
    job_max_page_size: int = 10_000
    query_drift: float = 0.0  # fraction of query pages repeating the previous page's last record
    listing_max_page_size: int = 500  # users and queues page by 500 in production [OBS]
    queue_members_max_page_size: int = 100  # [SRC]
    # [UNVERIFIED] the quality form listings' maximum: 100, as other quality listings.
    form_max_page_size: int = 100
    # [UNVERIFIED] whether a listing serves an over-large pageSize at its maximum (seen for
    # users and queues) or refuses it varies by endpoint; clients must cope with both. The
    # form listings refuse it by default (a choice: nothing is known of them).
    listing_refuse_oversize: tuple[str, ...] = FORM_LISTINGS
    listing_drift: float = 0.0
    # Messaging and e-mail conversations still going on: served without conversationEnd
    # until this is lowered (open_conversations.py).
    open_conversations: int = 0
    retention_days: int = 1095  # [INF] an org's setting between 90 days and 5 years
    # 0: evaluations stay as first submitted, and tests opt in (reviews.py).
    evaluation_edits_per_hour: float = 0.0
    evaluation_edits_in_details: bool = True  # [UNVERIFIED] records follow re-reviews
    # How a schedule search answers (wfm_schedules.py): "auto" inline up to
    # schedule_inline_max_agents agent schedules and by a download link beyond [INF: "small
    # results inline"], or always "inline", "download" or "async" (Processing, with an
    # operationId, for schedule_async_asks asks of the same search, then a download link).
    schedule_search_mode: str = "auto"
    schedule_inline_max_agents: int = 100
    schedule_async_asks: int = 1
    download_ttl_s: float = 300.0  # [UNVERIFIED] how long a pre-signed link lives
    # A management unit's own timeZone and startDayOfWeek are "moving to the business unit"
    # [SRC SDK]: False serves management units without them (fixed when the sandbox starts).
    management_unit_time_zones: bool = True
    # The org's GDPR requests (gdpr.py), about real customers of the data's first day: all but
    # two are completed deletes, then one delete still INITIATED and one completed export, as
    # far as the count goes. Changing it makes the list anew (added requests are dropped).
    gdpr_requests: int = 4
    faults: tuple[FaultRule, ...] = ()
    fault_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("token_ttl_s", "rate_window_s", "latency_ms", "latency_jitter_ms",
                     "job_delay_s", "job_expiry_s", "availability_lag_s",
                     "user_availability_lag_s", "evaluation_edits_per_hour"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"Sandbox setting {name} must not be negative.")
        if min(self.open_conversations, self.gdpr_requests) < 0:
            raise ValueError("Sandbox open_conversations and gdpr_requests must not be negative.")
        if self.token_error_status not in (400, 401):
            raise ValueError("Sandbox token_error_status must be 400 or 401.")
        if self.rate_per_minute is not None and self.rate_per_minute < 1:
            raise ValueError("Sandbox rate_per_minute must be at least 1 (None = unlimited).")
        if self.rate_window_s == 0 or self.max_concurrent_jobs < 1:
            raise ValueError("Sandbox rate_window_s and max_concurrent_jobs must be positive.")
        self._check_page_sizes()
        self._check_listing_settings()
        for name in ("query_drift", "listing_drift"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Sandbox {name} must be within [0, 1].")
        for name in ("availability_date", "user_availability_date"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"Sandbox {name} must be timezone-aware (UTC).")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"Sandbox port {self.port} is not a TCP port.")
        self._check_org_settings()
        self._check_schedule_settings()

    def _check_schedule_settings(self) -> None:
        if self.schedule_search_mode not in SCHEDULE_SEARCH_MODES:
            raise ValueError(
                f"Sandbox schedule_search_mode must be one of {SCHEDULE_SEARCH_MODES}."
            )
        if min(self.schedule_inline_max_agents, self.schedule_async_asks) < 0:
            raise ValueError("Sandbox schedule_inline_max_agents and _async_asks must not be "
                             "negative.")  # fmt: skip
        if self.download_ttl_s < 0:
            raise ValueError("Sandbox download_ttl_s must not be negative.")

    def _check_listing_settings(self) -> None:
        refused = self.listing_refuse_oversize
        if not isinstance(refused, tuple) or not set(refused) <= {ALL_LISTINGS, *LISTING_ROUTES}:
            raise ValueError(
                f"Sandbox listing_refuse_oversize must be a tuple of {LISTING_ROUTES} or '*'."
            )

    def refuses_oversize(self, route: str) -> bool:
        """Whether listing ``route`` answers a pageSize above its maximum with 400."""
        return route in self.listing_refuse_oversize or ALL_LISTINGS in self.listing_refuse_oversize

    def _check_org_settings(self) -> None:
        denied = self.denied_permissions
        if not isinstance(denied, tuple) or not all(isinstance(p, str) for p in denied):
            raise ValueError("Sandbox denied_permissions must be a tuple of permission names.")
        if not 90 <= self.retention_days <= 1825:
            raise ValueError("Sandbox retention_days must be between 90 and 1825 (5 years).")

    def _check_page_sizes(self) -> None:
        if not 1 <= self.query_default_page_size <= self.query_max_page_size:
            raise ValueError("Sandbox query page sizes need 1 <= default <= max.")
        if not 1 <= self.job_default_page_size <= self.job_max_page_size:
            raise ValueError("Sandbox job page sizes need 1 <= default <= max.")
        if self.job_expiry_pages is not None and self.job_expiry_pages < 1:
            raise ValueError("Sandbox job_expiry_pages must be at least 1 (None = by time only).")
        if min(self.listing_max_page_size, self.queue_members_max_page_size,
               self.form_max_page_size) < 1:  # fmt: skip
            raise ValueError("Sandbox listing page size maximums must be at least 1.")
        if self.query_max_interval_days <= 0:
            raise ValueError("Sandbox query_max_interval_days must be positive.")

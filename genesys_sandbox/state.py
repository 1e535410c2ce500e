"""Everything a running sandbox knows: live settings, data, listings (GDPR requests included),
re-reviews, tokens, limiter, faults, jobs, counters.

Only the sandbox's event loop touches this object (the threaded runner marshals calls into it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from genesys_sandbox import gdpr
from genesys_sandbox.auth import TokenStore
from genesys_sandbox.clock import SandboxClock
from genesys_sandbox.data import Dataset
from genesys_sandbox.entity_json import Renderer, base_listings
from genesys_sandbox.faults import FaultInjector
from genesys_sandbox.jobs import JobBoard
from genesys_sandbox.listings import Collection, Entity
from genesys_sandbox.open_conversations import OpenConversations
from genesys_sandbox.quality_json import form_listings
from genesys_sandbox.queries import QueryPager
from genesys_sandbox.ratelimit import RollingWindowLimiter
from genesys_sandbox.reviews import Reviews
from genesys_sandbox.settings import FaultRule, SandboxSettings
from genesys_sandbox.stats import SandboxStats, StatsRecorder
from genesys_sandbox.wire import format_instant
from genesys_sandbox.workforce import WorkforceJson, build_workforce

# Settings fixed for the life of a sandbox: the data and the listening socket.
FIXED_SETTINGS = frozenset({"dataset", "host", "port"})
GDPR_REQUESTS = "gdpr-requests"  # the listing of the org's GDPR requests


class SandboxState:
    """The sandbox's mutable state, with the operations tests drive directly."""

    def __init__(self, settings: SandboxSettings, dataset: Dataset, clock: SandboxClock) -> None:
        self.settings = settings
        self.dataset = dataset
        self.clock = clock
        self.stats = StatsRecorder()
        self.tokens = TokenStore()
        self.jobs = JobBoard(clock)
        self.renderer = renderer = Renderer(dataset.entities, dataset.spec.start_ms)
        self.listings = {
            route: Collection(base, factory)
            for route, (base, factory) in base_listings(renderer).items()
        }
        home = renderer.division_ref(dataset.entities.divisions[0].id)
        forms, self.form_aliases = form_listings(dataset.quality, home)
        # Forms do not drift: one drift made would have no questions anyone answered.
        self.listings.update({route: Collection(base, None) for route, base in forms.items()})
        # Queue membership does not drift: a new member would need a user to point at.
        self.members: dict[str, list[Entity]] = {
            q.id: sorted(renderer.members(q), key=lambda e: e.key) for q in dataset.entities.queues
        }
        self._configure_workforce(renderer, home)
        self.gdpr = gdpr.GdprRequests(dataset, renderer.admin_ref)
        self._configure_gdpr()
        self.open = OpenConversations(dataset, settings.open_conversations)
        self._configure_reviews()
        self.closing = asyncio.Event()  # set on shutdown: hung requests give up at once
        self._configure_randomness()
        self._configure_limiter()

    def _configure_workforce(self, renderer: Renderer, home: dict[str, Any]) -> None:
        """WFM units (they do not drift): listings of business and management units (their
        by-id routes read them), each management unit's users, each business unit's codes."""
        self.workforce = build_workforce(self.dataset.entities, self.dataset.spec.seed)
        render = WorkforceJson(self.workforce, self.dataset.entities, home, renderer.modified)
        self.listings["business-units"] = Collection(
            [render.business_unit(bu) for bu in self.workforce.business_units], None
        )
        self.listings["management-units"] = Collection(
            [render.management_unit(mu, own_zone=self.settings.management_unit_time_zones)
             for mu in self.workforce.management_units], None)  # fmt: skip
        self.wfm_users = {mu.id: sorted(render.users(mu), key=lambda e: e.key)
                          for mu in self.workforce.management_units}  # fmt: skip
        self.wfm_codes = {bu.id: sorted(render.activity_codes(bu), key=lambda e: e.key)
                          for bu in self.workforce.business_units}  # fmt: skip
        # Pre-signed links given: token -> (signature, body, expiry on the sandbox clock).
        self.downloads: dict[str, tuple[str, bytes, float]] = {}
        self.search_asks: dict[str, int] = {}  # asynchronous searches: asks so far, by search
        # Adherence jobs: id -> (time zone, items, created on the sandbox clock, failed).
        self.adherence_jobs: dict[str, tuple[str, list[dict[str, Any]], float, bool]] = {}

    def _configure_gdpr(self) -> None:
        """The org's GDPR requests, made anew (they do not drift)."""
        made = self.gdpr.generated(self.settings.gdpr_requests)
        self.listings[GDPR_REQUESTS] = Collection(made, None)

    def _configure_randomness(self) -> None:
        seed = self.settings.fault_seed
        self.faults = FaultInjector(self.settings.faults, seed)
        self.pager = QueryPager(self.dataset, seed)
        self.drift_rng = random.Random(f"drift-{seed}")
        self.latency_rng = random.Random(f"latency-{seed}")

    def _configure_reviews(self) -> None:
        s = self.settings
        self.reviews = Reviews(
            self.dataset, self.clock, s.evaluation_edits_per_hour, s.evaluation_edits_in_details
        )

    def _configure_limiter(self) -> None:
        budget = self.settings.rate_per_minute
        self.limiter = (
            None if budget is None else RollingWindowLimiter(budget, self.settings.rate_window_s)
        )

    def update(self, **changes: Any) -> SandboxSettings:
        """Replace live settings; faults and seeds restart the fault stream, rate the windows."""
        fixed = FIXED_SETTINGS & changes.keys()
        if fixed:
            raise ValueError(f"Sandbox settings {sorted(fixed)} cannot change while it runs.")
        self.settings = dataclasses.replace(self.settings, **changes)
        if changes.keys() & {"faults", "fault_seed"}:
            self._configure_randomness()
        if changes.keys() & {"rate_per_minute", "rate_window_s"}:
            self._configure_limiter()
        if "open_conversations" in changes:
            self.open = OpenConversations(self.dataset, self.settings.open_conversations)
        if changes.keys() & {"evaluation_edits_per_hour", "evaluation_edits_in_details"}:
            self._configure_reviews()
        if "gdpr_requests" in changes:
            self._configure_gdpr()
        return self.settings

    def job_records(self) -> Callable[[int], bytes]:
        """How conversation ``i`` reads now in job results: cut while open, its evaluations'
        entries as last re-reviewed; the built bytes themselves when neither applies."""
        whole = self.reviews.record if self.reviews.changes_records else self.dataset.job_record
        if not self.open.indices:
            return whole
        opened, cut = self.open.indices, self.open.record
        return lambda i: cut(i) if i in opened else whole(i)

    def add_fault(self, rule: FaultRule) -> None:
        self.faults.add(rule)
        self.settings = dataclasses.replace(self.settings, faults=self.faults.rules)

    def clear_faults(self) -> None:
        self.faults.clear()
        self.settings = dataclasses.replace(self.settings, faults=())

    def revoke_tokens(self) -> None:
        """Every token issued so far now gets 401 bad.credentials."""
        self.tokens.revoke_all()
        if self.limiter is not None:
            self.limiter.forget()

    def snapshot(self) -> SandboxStats:
        return self.stats.snapshot()

    def availability(self) -> datetime:
        """dataAvailabilityDate: the fixed setting, else now minus the lag."""
        return self._watermark(self.settings.availability_date, self.settings.availability_lag_s)

    def availability_text(self) -> str:
        return format_instant(self.availability())

    def user_availability(self) -> datetime:
        """The user details family's own dataAvailabilityDate."""
        s = self.settings
        return self._watermark(s.user_availability_date, s.user_availability_lag_s)

    def _watermark(self, fixed: datetime | None, lag_s: float) -> datetime:
        if fixed is not None:
            return fixed
        return self.clock.wall() - timedelta(seconds=lag_s)

    def user_availability_text(self) -> str:
        return format_instant(self.user_availability())

    def drift(self, route: str) -> None:
        """Before a page of listing ``route``: with probability listing_drift, drift once
        (listings that do not drift draw nothing, leaving the others' drift as it was)."""
        chance, collection = self.settings.listing_drift, self.listings[route]
        if chance > 0 and collection.drifts and self.drift_rng.random() < chance:
            collection.drift(self.drift_rng, self.clock.now())

    def delete(self, route: str, entity_id: str) -> None:
        """The ``entity-deleted`` fault: the entity is gone (a queue with its members)."""
        if self.listings[route].delete(entity_id, self.clock.now()) and route == "queues":
            self.members.pop(entity_id, None)

    def add_gdpr_request(
        self, conversation_id: str, status: str = "COMPLETED", request_type: str = "GDPR_DELETE"
    ) -> Mapping[str, Any]:
        """List a request about the customer of a conversation the sandbox serves, created
        now; its GDPRRequest JSON. ValueError for another id or an unknown status or type."""
        made = self.gdpr.about(conversation_id, request_type, status, self.clock.wall())
        self.listings[GDPR_REQUESTS].put(made, self.clock.now())
        return made.body

    def set_gdpr_status(self, request_id: str, status: str) -> Mapping[str, Any]:
        """Change a listed request's status; its GDPRRequest JSON. KeyError for an id the
        listing does not hold, ValueError for an unknown status."""
        requests = self.listings[GDPR_REQUESTS]
        current = requests.find(request_id)
        if current is None:
            raise KeyError(f"The sandbox lists no GDPR request {request_id!r}.")
        changed = gdpr.with_status(current, status)
        requests.put(changed, self.clock.now())
        return changed.body

    def gdpr_truth(self) -> list[dict[str, Any]]:
        """Each listed GDPR request with the served conversations holding its subject's
        values (``gdpr.truth``)."""
        return gdpr.truth(self.listings[GDPR_REQUESTS].entities, self.job_records(),
                          self.dataset.ids)  # fmt: skip

    def latency_s(self) -> float:
        """This request's added latency: latency_ms plus up to latency_jitter_ms (seeded)."""
        s = self.settings
        jitter = self.latency_rng.uniform(0.0, s.latency_jitter_ms) if s.latency_jitter_ms else 0.0
        return (s.latency_ms + jitter) / 1000.0

"""HTTP control endpoints under ``/sandbox/`` for users in another process (benchmarks,
subprocess tests). They are not part of the emulated API and are not counted in the stats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from genesys_sandbox import conversation_aggregates as aggregates
from genesys_sandbox.quality_routes import QualityView
from genesys_sandbox.settings import FaultRule
from genesys_sandbox.state import SandboxState
from genesys_sandbox.wfm_schedules import shift_truth
from genesys_sandbox.wire import ApiProblem, format_instant, from_ms, parse_instant, to_ms
from genesys_sandbox.workforce_routes import units_truth

# Settings PATCH /sandbox/settings accepts: the scalar ones (faults have their own endpoint).
SCALAR_SETTINGS = frozenset({
    "client_id", "client_secret", "org_id", "org_name", "token_ttl_s", "token_error_status",
    "denied_permissions", "rate_per_minute", "rate_window_s", "max_concurrent_jobs",
    "latency_ms", "latency_jitter_ms", "job_delay_s", "job_expiry_s", "job_expiry_pages",
    "availability_date", "availability_lag_s",
    "user_availability_date", "user_availability_lag_s",
    "query_default_page_size", "query_max_page_size", "query_max_interval_days",
    "job_default_page_size", "job_max_page_size", "query_drift", "listing_max_page_size",
    "queue_members_max_page_size", "listing_refuse_oversize", "listing_drift", "retention_days",
    "fault_seed", "open_conversations", "form_max_page_size", "evaluation_edits_per_hour",
    "evaluation_edits_in_details", "schedule_search_mode", "schedule_inline_max_agents",
    "schedule_async_asks", "download_ttl_s", "gdpr_requests",
})  # fmt: skip
# Settings held as tuples, sent as JSON lists.
TUPLE_SETTINGS = ("denied_permissions", "listing_refuse_oversize")


def add_control_routes(app: web.Application, state: SandboxState) -> None:
    control = _Control(state)
    app.router.add_get("/sandbox/stats", control.stats)
    app.router.add_post("/sandbox/reset-stats", control.reset_stats)
    app.router.add_get("/sandbox/ground-truth", control.ground_truth)
    app.router.add_get("/sandbox/listings/{route}/ground-truth", control.listing_truth)
    app.router.add_get("/sandbox/user-details/ground-truth", control.status_truth)
    app.router.add_get("/sandbox/aggregates/ground-truth", control.aggregate_truth)
    app.router.add_get("/sandbox/quality/ground-truth", control.quality_truth)
    app.router.add_get("/sandbox/workforce/units", control.units_truth)
    app.router.add_get("/sandbox/workforce/shifts", control.shift_truth)
    app.router.add_post("/sandbox/revoke-tokens", control.revoke_tokens)
    app.router.add_post("/sandbox/faults", control.add_faults)
    app.router.add_delete("/sandbox/faults", control.clear_faults)
    app.router.add_patch("/sandbox/settings", control.patch_settings)
    app.router.add_post("/sandbox/gdpr/requests", control.add_gdpr_request)
    app.router.add_patch("/sandbox/gdpr/requests/{request_id}", control.set_gdpr_status)
    app.router.add_get("/sandbox/gdpr/ground-truth", control.gdpr_truth)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _bad(message: str) -> web.Response:
    return _json({"error": message}, 400)


class _Control:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def stats(self, request: web.Request) -> web.Response:
        return _json(self.state.snapshot().to_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.state.stats.reset()
        return web.Response(status=204)

    async def ground_truth(self, request: web.Request) -> web.Response:
        """{"count", "ids"}: conversations starting in [start, end), ids sorted."""
        try:
            start = parse_instant(request.query["start"])
            end = parse_instant(request.query["end"])
        except (KeyError, ApiProblem):
            return _bad("Give start and end as ISO-8601 instants.")
        ids = sorted(self.state.dataset.ids_starting_in(start, end))
        return _json({"count": len(ids), "ids": ids})

    async def status_truth(self, request: web.Request) -> web.Response:
        """{"count", "statuses"}: [userId, primaryPresence or routingStatus, startTime, endTime
        or null] of every status starting in [start, end), in the sandbox's order."""
        try:
            start = parse_instant(request.query["start"])
            end = parse_instant(request.query["end"])
        except (KeyError, ApiProblem):
            return _bad("Give start and end as ISO-8601 instants.")
        history = self.state.dataset.statuses
        found = [
            [history.user_ids[s.user], s.kind, format_instant(from_ms(s.start_ms)),
             None if s.end_ms is None else format_instant(from_ms(s.end_ms))]
            for s in history.truth(to_ms(start), to_ms(end))
        ]  # fmt: skip
        return _json({"count": len(found), "statuses": found})

    async def aggregate_truth(self, request: web.Request) -> web.Response:
        """{"count", "results"}: the default aggregates request over [start, end), one entry
        per group, half hour and metric ({"group", "interval", "metric", "stats"}), every
        observation counted (see ``conversation_aggregates``)."""
        try:
            start = parse_instant(request.query["start"])
            end = parse_instant(request.query["end"])
        except (KeyError, ApiProblem):
            return _bad("Give start and end as ISO-8601 instants.")
        found = aggregates.truth(self.state, to_ms(start), to_ms(end))
        return _json({"count": len(found), "results": found})

    async def quality_truth(self, request: web.Request) -> web.Response:
        """{"evaluations": {id: version}, "surveys": [id]}: what the records of conversations
        starting in [start, end) carry now, ids sorted."""
        try:
            start = parse_instant(request.query["start"])
            end = parse_instant(request.query["end"])
        except (KeyError, ApiProblem):
            return _bad("Give start and end as ISO-8601 instants.")
        evaluations, surveys = QualityView(self.state).truth(to_ms(start), to_ms(end))
        return _json({"evaluations": dict(sorted(evaluations.items())), "surveys": sorted(surveys)})

    async def units_truth(self, request: web.Request) -> web.Response:
        """The WFM units the routes serve now (``workforce_routes.units_truth``)."""
        return _json(units_truth(self.state))

    async def shift_truth(self, request: web.Request) -> web.Response:
        """{"count", "shifts"}: [businessUnitId, userId, shiftId, startDate] of every
        published shift starting in [start, end)."""
        try:
            start = parse_instant(request.query["start"])
            end = parse_instant(request.query["end"])
        except (KeyError, ApiProblem):
            return _bad("Give start and end as ISO-8601 instants.")
        found = shift_truth(self.state, to_ms(start), to_ms(end))
        return _json({"count": len(found), "shifts": found})

    async def listing_truth(self, request: web.Request) -> web.Response:
        """Ids of a listing present throughout [start, end] and ever present in it (sorted),
        with its drift history; start and end are wall-clock instants of the sandbox's clock."""
        collection = self.state.listings.get(request.match_info["route"])
        if collection is None:
            return _bad(f"Name a drifting listing: {sorted(self.state.listings)}.")
        try:
            start = parse_instant(request.query["start"])
            end = parse_instant(request.query["end"])
        except (KeyError, ApiProblem):
            return _bad("Give start and end as ISO-8601 instants.")
        t0, t1, wall = self.state.clock.at(start), self.state.clock.at(end), self.state.clock.wall
        history = [{"at": format_instant(wall(t)), "event": event, "id": entity_id}
                   for t, event, entity_id in collection.history()]  # fmt: skip
        return _json({
            "present_throughout": sorted(collection.present_throughout(t0, t1)),
            "ever_present": sorted(collection.ever_present(t0, t1)),
            "history": history,
        })  # fmt: skip

    async def revoke_tokens(self, request: web.Request) -> web.Response:
        self.state.revoke_tokens()
        return web.Response(status=204)

    async def add_faults(self, request: web.Request) -> web.Response:
        """Append a JSON list of FaultRule objects (the fields of FaultRule)."""
        try:
            rules = [FaultRule.from_json(item) for item in orjson.loads(await request.read())]
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            return _bad(f"Send a JSON list of fault rules: {exc}")
        for rule in rules:
            self.state.add_fault(rule)
        return web.Response(status=204)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.state.clear_faults()
        return web.Response(status=204)

    async def patch_settings(self, request: web.Request) -> web.Response:
        """Change scalar settings from a JSON object; answers the resulting scalar settings."""
        try:
            changes = orjson.loads(await request.read())
            unknown = set(changes) - SCALAR_SETTINGS
            if unknown:
                raise ValueError(f"settings {sorted(unknown)} cannot be patched")
            for name in ("availability_date", "user_availability_date"):
                if changes.get(name) is not None:
                    changes[name] = _instant(changes[name])
            for name in TUPLE_SETTINGS:
                if isinstance(changes.get(name), list):
                    changes[name] = tuple(changes[name])
            settings = self.state.update(**changes)
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            return _bad(f"Send a JSON object of scalar settings: {exc}")
        current = {name: getattr(settings, name) for name in sorted(SCALAR_SETTINGS)}
        for name in ("availability_date", "user_availability_date"):
            if (moment := getattr(settings, name)) is not None:
                current[name] = moment.isoformat()
        current.pop("client_secret")
        return _json(current)

    async def add_gdpr_request(self, request: web.Request) -> web.Response:
        """List a GDPR request about a conversation's customer from {"conversationId",
        "status" (default COMPLETED), "requestType" (default GDPR_DELETE)}; answers it."""
        try:
            body = orjson.loads(await request.read())
            conversation_id = str(body["conversationId"])
            status = str(body.get("status", "COMPLETED"))
            request_type = str(body.get("requestType", "GDPR_DELETE"))
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
            return _bad('Send a JSON object {"conversationId", "status", "requestType"}, the '
                        "last two optional.")  # fmt: skip
        try:
            return _json(self.state.add_gdpr_request(conversation_id, status, request_type))
        except ValueError as exc:
            return _bad(str(exc))

    async def set_gdpr_status(self, request: web.Request) -> web.Response:
        """Change a GDPR request's status from {"status"}; answers the request, 404 for an id
        the listing does not hold."""
        try:
            status = str(orjson.loads(await request.read())["status"])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return _bad('Send a JSON object {"status"}.')
        try:
            return _json(self.state.set_gdpr_status(request.match_info["request_id"], status))
        except KeyError as exc:
            return _json({"error": exc.args[0]}, 404)
        except ValueError as exc:
            return _bad(str(exc))

    async def gdpr_truth(self, request: web.Request) -> web.Response:
        """{"count", "requests"}: each listed GDPR request's id, requestType, status and
        subject, with the ids of the served conversations holding its subject's values
        (``gdpr.truth``)."""
        found = self.state.gdpr_truth()
        return _json({"count": len(found), "requests": found})


def _instant(text: Any) -> datetime:
    try:
        return parse_instant(str(text))
    except ApiProblem:
        raise ValueError(f"{text!r} is not an ISO-8601 instant") from None

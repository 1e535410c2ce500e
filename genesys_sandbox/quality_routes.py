"""The quality routes: an evaluation by conversation and id, a survey by id; and the view they
and the ground truth both read (``QualityView``), so tests compare with what is served.

An evaluation or survey of a conversation still going on (``open_conversations``) does not
exist yet: 404 not.found, as for an unknown id or an evaluation asked under another
conversation. ``expand`` (agent, assignee, evaluator, evaluationForm [SRC]) puts whole objects
in place of references; other names are ignored ("best effort"). The forms are listings
(``listing_routes``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from genesys_sandbox.listing_routes import expand_values
from genesys_sandbox.orgdata import make_formatter
from genesys_sandbox.quality_json import evaluation_form, evaluation_json, survey_json
from genesys_sandbox.state import SandboxState
from genesys_sandbox.wire import ApiProblem, json_response

Handler = Callable[[web.Request], Awaitable[web.Response]]
Json = dict[str, Any]


class QualityView:
    """Evaluations and surveys as the routes answer them, given the sandbox's state now."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        entities = state.dataset.entities
        self._users = {u.id: u for u in entities.users}
        self._teams = {t.id: t for t in entities.teams}
        self._queues = {q.id: q.name for q in entities.queues}
        self._fmt = make_formatter()

    def evaluation(
        self,
        evaluation_id: str,
        conversation_id: str | None = None,
        at: float | None = None,
        expand: frozenset[str] = frozenset(),
    ) -> Json | None:
        """The EvaluationResponse of ``evaluation_id`` as of sandbox instant ``at`` (default
        now); None where the route answers 404."""
        state = self.state
        e = state.dataset.quality.evaluation(evaluation_id)
        if e is None or e.conversation in state.open.indices:
            return None
        if conversation_id is not None and conversation_id != e.conversation_id:
            return None
        expanded = {name: self._user(user_id) for name, user_id in (
            ("agent", e.agent_id), ("evaluator", e.evaluator_id), ("assignee", e.evaluator_id)
        ) if name in expand}  # fmt: skip
        if "evaluationForm" in expand:
            home = state.renderer.division_ref(state.dataset.entities.divisions[0].id)
            expanded["evaluationForm"] = evaluation_form(e.form, home)
        revision = state.reviews.revision(e, at)
        return evaluation_json(e, revision, self._fmt, expanded, self._queues[e.queue_id])

    def survey(self, survey_id: str) -> Json | None:
        """The Survey of ``survey_id``; None where the route answers 404."""
        s = self.state.dataset.quality.survey(survey_id)
        if s is None or s.conversation in self.state.open.indices:
            return None
        team = dict(self.state.renderer.team(self._teams[s.team_id]).body)
        return survey_json(s, self._fmt, self._users[s.agent_id].name, team)

    def truth(
        self, start_ms: int, end_ms: int, at: float | None = None
    ) -> tuple[dict[str, int], set[str]]:
        """(evaluation id -> version, survey ids) that conversations starting in [start_ms,
        end_ms) carry at sandbox instant ``at`` (default now); open ones carry none."""
        state = self.state
        found = state.dataset.index_range_starting_in(start_ms, end_ms)
        shown = [i for i in found if i not in state.open.indices]
        quality = state.dataset.quality
        evaluations = {e.id: 1 + state.reviews.revision(e, at).number
                       for i in shown for e in quality.by_conversation.get(i, ())}  # fmt: skip
        kept = set(shown)
        return evaluations, {s.id for s in quality.surveys if s.conversation in kept}

    def _user(self, user_id: str) -> Json:
        return dict(self.state.renderer.user(self._users[user_id]).body)


class QualityRoutes:
    """The evaluation and survey handlers over one ``SandboxState``."""

    def __init__(self, state: SandboxState) -> None:
        self.view = QualityView(state)

    def table(self) -> list[tuple[str, str, str, Handler]]:
        evaluation = "/api/v2/quality/conversations/{conversation_id}/evaluations/{evaluation_id}"
        return [
            ("GET", evaluation, "quality.evaluation", self.evaluation),
            ("GET", "/api/v2/quality/surveys/{survey_id}", "quality.survey", self.survey),
        ]

    async def evaluation(self, request: web.Request) -> web.Response:
        found = self.view.evaluation(
            request.match_info["evaluation_id"],
            request.match_info["conversation_id"],
            expand=expand_values(request.query),
        )
        return _found(found)

    async def survey(self, request: web.Request) -> web.Response:
        return _found(self.view.survey(request.match_info["survey_id"]))


def _found(body: Json | None) -> web.Response:
    if body is None:
        raise ApiProblem.of(404, "not.found")
    return json_response(orjson.dumps(body))

"""Quality data as the API sends it: EvaluationResponse, Survey, and the forms
(EvaluationFormResponse, SurveyForm) as the form listings and lookups serve them, with the SDK
models' JSON names.

The evaluation form listing leaves out ``questionGroups`` (its by-id route has them) [SRC: the
SDK documents the listing so]; whether the published-form listings hold them is [UNVERIFIED]:
they do here, as a reader of evaluations needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from genesys_sandbox.listings import Entity
from genesys_sandbox.quality import (
    AGENT_COMMENTS,
    COMMENTS,
    FREE_TEXT,
    Evaluation,
    Quality,
    Revision,
    Survey,
)
from genesys_sandbox.quality_forms import CHOICE, NPS, FormVersion, Question
from genesys_sandbox.scoring import (
    GroupScore,
    QuestionScore,
    score_evaluation,
    score_groups,
    score_survey,
)
from genesys_sandbox.wire import format_instant, from_ms

Json = dict[str, Any]
Fmt = Callable[[int], str]
EVALUATION_FORMS = "/api/v2/quality/forms/evaluations"
PUBLISHED_EVALUATION_FORMS = "/api/v2/quality/publishedforms/evaluations"
SURVEY_FORMS = "/api/v2/quality/forms/surveys"
PUBLISHED_SURVEY_FORMS = "/api/v2/quality/publishedforms/surveys"
# EvaluationResponse.mediaType names the communication types [SRC description; values INF].
MEDIA = {"voice": "CALL", "callback": "CALLBACK", "message": "MESSAGE", "email": "EMAIL",
         "chat": "CHAT"}  # fmt: skip
ACTIONS = ("assign", "edit", "editScore", "editAgentSignoff", "delete", "release", "viewAudit")


def evaluation_path(conversation_id: str, evaluation_id: str) -> str:
    return f"/api/v2/quality/conversations/{conversation_id}/evaluations/{evaluation_id}"


def ref(entity_id: str, path: str, **more: Any) -> Json:
    return {"id": entity_id, **more, "selfUri": f"{path}/{entity_id}"}


def evaluation_json(e: Evaluation, revision: Revision, fmt: Fmt, expanded: Mapping[str, Json],
                    queue_name: str) -> Json:  # fmt: skip
    """The EvaluationResponse of ``e`` as of ``revision``; ``expanded`` replaces references
    (agent, assignee, evaluator, evaluationForm) by the whole objects asked for."""
    users = "/api/v2/users"
    body: Json = {
        "id": e.id, "conversation": ref(e.conversation_id, "/api/v2/conversations"),
        "evaluationForm": expanded.get("evaluationForm") or ref(
            e.form.id, PUBLISHED_EVALUATION_FORMS, name=e.form.name, contextId=e.form.context_id
        ),
        "evaluator": expanded.get("evaluator") or ref(e.evaluator_id, users),
        "agent": expanded.get("agent") or ref(e.agent_id, users), "status": e.status,
    }  # fmt: skip
    if revision.answers:
        body["answers"] = _evaluation_answers(e, revision)
    body.update(agentHasRead=e.agent_comments != -1,
                assignee=expanded.get("assignee") or ref(e.evaluator_id, users),
                assigneeApplicable=True)  # fmt: skip
    if e.released_ms is not None:
        body["releaseDate"] = fmt(e.released_ms)
    body.update(assignedDate=fmt(e.created_ms), createdDate=fmt(e.created_ms),
                changedDate=fmt(revision.changed_ms))  # fmt: skip
    if e.status in ("FINISHED", "INREVIEW"):
        body["submittedDate"] = fmt(e.changed_ms)
    body.update(
        queue=ref(e.queue_id, "/api/v2/routing/queues", name=queue_name),
        mediaType=[MEDIA[e.media_type]], divisionIds=list(e.division_ids),
        rescore=revision.number > 0, conversationDate=fmt(e.start_ms),
        conversationEndDate=fmt(e.end_ms), neverRelease=False, assigned=True,
        dateAssigneeChanged=fmt(e.created_ms),
    )  # fmt: skip
    if e.resource_id is not None:
        body.update(resourceId=e.resource_id, resourceType="EMAIL")
    body.update(redacted=False, isScoringIndex=False, authorizedActions=list(ACTIONS),
                hasAssistanceFailed=False, evaluationSource={"type": e.source}, disputeCount=0,
                version=1 + revision.number, declinedReview=False,
                selfUri=evaluation_path(e.conversation_id, e.id))  # fmt: skip
    return body


def _evaluation_answers(e: Evaluation, revision: Revision) -> Json:
    scores = score_evaluation(e.form, revision.answers)
    top, top_critical = scores.max_raw
    answers: Json = {
        "totalScore": scores.total, "totalCriticalScore": scores.critical,
        "maxTotalRawCriticalScore": top_critical, "maxTotalRawScore": top,
        "totalNonCriticalScore": scores.non_critical,
        "questionGroupScores": [_group_score(g) for g in scores.groups],
        "anyFailedKillQuestions": scores.any_failed_kill,
    }  # fmt: skip
    if e.comments != -1:
        answers["comments"] = COMMENTS[e.comments]
    if e.agent_comments != -1:
        answers["agentComments"] = AGENT_COMMENTS[e.agent_comments]
    return answers


def _group_score(g: GroupScore) -> Json:
    score, top = g.weighted
    return {
        "questionGroupId": g.group.id, "totalScore": round(score, 2), "maxTotalScore": top,
        "markedNA": g.marked_na, "systemMarkedNA": False,
        "totalScoreUnweighted": g.points, "maxTotalScoreUnweighted": g.max_points,
        "totalCriticalScoreUnweighted": g.critical[0],
        "maxTotalCriticalScoreUnweighted": g.critical[1],
        "totalNonCriticalScoreUnweighted": g.non_critical[0],
        "maxTotalNonCriticalScoreUnweighted": g.non_critical[1],
        "questionScores": [_question_score(q) for q in g.questions],
    }  # fmt: skip


def _question_score(q: QuestionScore) -> Json:
    found: Json = {"questionId": q.question.id}
    if q.option is not None:
        found["answerId"] = q.option.id
    found.update(score=q.score, markedNA=q.marked_na, systemMarkedNA=False)
    if q.question.kill and not q.marked_na:
        found["failedKillQuestion"] = q.failed_kill
    if q.option is not None and q.option.value < q.question.max_value:
        found["comments"] = COMMENTS[(len(q.question.text) + q.answer) % len(COMMENTS)]
    return found


def survey_json(s: Survey, fmt: Fmt, agent_name: str, team: Json) -> Json:
    """The Survey of ``s``; ``team`` is the agent's Team as the teams listing serves it."""
    body: Json = {
        "id": s.id, "conversation": ref(s.conversation_id, "/api/v2/conversations"),
        "surveyForm": ref(s.form.id, PUBLISHED_SURVEY_FORMS, name=s.form.name,
                          contextId=s.form.context_id),
        "agent": ref(s.agent_id, "/api/v2/users", name=agent_name), "status": s.status,
        "queue": ref(s.queue_id, "/api/v2/routing/queues"),
    }  # fmt: skip
    if s.status == "Finished":
        body["answers"] = _survey_answers(s)
        body["completedDate"] = fmt(s.event_ms)
    body.update(agentTeam=team, surveyType=s.survey_type)
    if s.status == "Finished":
        body["missingRequiredAnswer"] = False
    body["selfUri"] = f"/api/v2/quality/surveys/{s.id}"
    return body


def _survey_answers(s: Survey) -> Json:
    total, nps = score_survey(s.form, s.answers)
    answers: Json = {"totalScore": total}
    if nps is not None:
        answers["npsScore"] = nps
    answers["questionGroupScores"] = [
        {"questionGroupId": g.group.id, "totalScore": g.points, "maxTotalScore": g.max_points,
         "markedNA": g.marked_na, "systemMarkedNA": False,
         "questionScores": [_survey_question(q) for q in g.questions]}
        for g in score_groups(s.form, s.answers)
    ]  # fmt: skip
    return answers


def _survey_question(q: QuestionScore) -> Json:
    found: Json = {"questionId": q.question.id}
    if q.option is not None:
        found["answerId"] = q.option.id
    found.update(score=q.score, markedNA=q.marked_na, systemMarkedNA=False)
    if q.question.type == NPS and not q.marked_na:
        found["npsScore"] = q.answer
    elif q.question.type not in (CHOICE, NPS) and not q.marked_na:
        found["freeTextAnswer"] = FREE_TEXT[q.answer]
    return found


def form_listings(
    quality: Quality, division: Json
) -> tuple[dict[str, list[Entity]], dict[str, str]]:
    """The four form listings' entities by route (a form listing holds each form's draft, a
    published one every published version), and the aliases of the published forms' by-id
    routes: a form's contextId and its draft's id name its newest published version
    [UNVERIFIED: the SDK says those routes answer "the most recent published version"]."""
    listings: dict[str, list[Entity]] = {}
    aliases: dict[str, str] = {}
    kinds = (("evaluation-forms", quality.evaluation_forms, evaluation_form, _listed_form),
             ("survey-forms", quality.survey_forms, survey_form, survey_form))  # fmt: skip
    for route, forms, render, listed in kinds:
        drafts = listings[route] = []
        published = listings[f"published-{route}"] = []
        for form in forms:
            body, detail = listed(form.draft, division), render(form.draft, division)
            drafts.append(Entity(form.draft.id, form.name, body, detail=detail))
            published += [Entity(v.id, v.name, render(v, division)) for v in form.published]
            if form.published:
                newest = form.published[-1].id
                aliases.update(dict.fromkeys((form.context_id, form.draft.id), newest))
    return listings, aliases


def _listed_form(v: FormVersion, division: Json) -> Json:
    return evaluation_form(v, division, detailed=False)


def evaluation_form(v: FormVersion, division: Json, detailed: bool = True) -> Json:
    """EvaluationFormResponse; ``detailed``: with its question groups."""
    body: Json = {"id": v.id, "name": v.name, "division": division,
                  "modifiedDate": _iso(v.modified_ms), "published": v.published_ms is not None,
                  "contextId": v.context_id}  # fmt: skip
    if detailed:
        body["questionGroups"] = [
            {"id": g.id, "contextId": g.context_id, "name": g.name,
             "defaultAnswersToHighest": False, "defaultAnswersToNA": False,
             "naEnabled": any(q.na_enabled for q in g.questions), "weight": g.weight,
             "manualWeight": True, "questions": [_question(q, True) for q in g.questions]}
            for g in v.groups
        ]  # fmt: skip
    body.update(weightMode="SCALED", evaluationSettings={"revisionsEnabled": False,
                "disputesEnabled": False}, dialect="en-US",
                selfUri=f"{_forms_path(v, EVALUATION_FORMS)}/{v.id}")  # fmt: skip
    return body


def survey_form(v: FormVersion, division: Json) -> Json:
    """SurveyForm, question groups included (its listing is not documented to leave them out)."""
    groups = [{"id": g.id, "contextId": g.context_id, "name": g.name,
               "naEnabled": any(q.na_enabled for q in g.questions),
               "questions": [_question(q, False) for q in g.questions]}
              for g in v.groups]  # fmt: skip
    return {"id": v.id, "name": v.name, "division": division,
            "modifiedDate": _iso(v.modified_ms), "published": v.published_ms is not None,
            "disabled": False, "contextId": v.context_id, "language": "en-US",
            "header": f"## {v.name}", "footer": "Thank you for your time.",
            "questionGroups": groups,
            "selfUri": f"{_forms_path(v, SURVEY_FORMS)}/{v.id}"}  # fmt: skip


def _question(q: Question, evaluation: bool) -> Json:
    found: Json = {"id": q.id, "contextId": q.context_id, "text": q.text,
                   "helpText": f"Score: {q.text}", "type": q.type,
                   "naEnabled": q.na_enabled}  # fmt: skip
    if evaluation:
        found["commentsRequired"] = False
    if q.options:
        found["answerOptions"] = [{"id": o.id, "contextId": o.context_id, "text": o.text,
                                   "value": o.value} for o in q.options]  # fmt: skip
    if q.type != CHOICE and not evaluation:
        found["maxResponseCharacters"] = 500
    if q.type == NPS:
        found["explanationPrompt"] = "What is the main reason for your score?"
    if evaluation:
        found.update(isKill=q.kill, isCritical=q.critical)
    return found


def _forms_path(v: FormVersion, drafts: str) -> str:
    return drafts.replace("/forms/", "/publishedforms/") if v.published_ms is not None else drafts


def _iso(ms: int) -> str:
    return format_instant(from_ms(ms))

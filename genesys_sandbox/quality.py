"""Quality data of the conversations: which were evaluated and surveyed, by whom, with what
answers, and the ``evaluations[]`` and ``surveys[]`` entries their records carry.

Drawn while the dataset is built, right after each finished conversation, from streams of
their own (``random.Random`` seeded with the conversation id, itself drawn from the data seed),
so every other field of every record is what it is without them; whether a conversation is
evaluated or surveyed is read from bits of its id, so the others cost nothing. Of the
conversations an agent handled, ``DatasetSpec.evaluated_share`` are evaluated, hours to days
after they ended, by a quality analyst or the agent's team lead, on the form version in use
then; of the inbound ones, ``surveyed_share`` are surveyed, minutes to a day after they ended.
Conversations still going on have neither. The entries (AnalyticsEvaluation, AnalyticsSurvey)
go before ``participants``, where the SDK model has them.

Evaluations are re-reviewed later (``reviews``): ``revise`` gives the answers of a later
version, from a stream of the evaluation's own.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from genesys_sandbox.entities import Entities
from genesys_sandbox.quality_forms import CHOICE, NPS, Form, FormVersion, Question, build_forms
from genesys_sandbox.scoring import NOT_ANSWERED, score_evaluation, score_survey

Record = dict[str, Any]
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_BITS = 2**32  # a share is compared with 32 bits of the conversation id
# EvaluationResponse.status -> AnalyticsEvaluation.evaluationStatus [SRC enums of both models].
STATUSES = {"FINISHED": "Finished", "INPROGRESS": "InProgress", "PENDING": "Pending",
            "INREVIEW": "InReview"}  # fmt: skip
_STATUS_MIX = (("FINISHED", 0.86), ("INPROGRESS", 0.06), ("PENDING", 0.05), ("INREVIEW", 0.03))
_SURVEY_MIX = (("Finished", 0.75), ("Expired", 0.2), ("OptOut", 0.05))
COMMENTS = ("Good call control throughout.", "Remember to confirm the account first.",
            "Clear explanation of the next steps.", "Hold was long; explain why next time.",
            "Great empathy with a frustrated customer.",
            "Close with an offer of further help.")  # fmt: skip
AGENT_COMMENTS = ("Thanks, noted.", "The system was slow that day.", "Agreed, will do.")
FREE_TEXT = ("Quick and friendly, thank you.", "It took too long to get through.",
             "The agent knew exactly what to do.", "I had to explain my issue twice.")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluation as first submitted; ``answers`` per ``scoring`` (none while pending)."""

    id: str
    conversation: int  # index in the dataset
    conversation_id: str
    start_ms: int
    end_ms: int
    division_ids: tuple[str, ...]
    media_type: str  # the evaluated session's (analytics spelling)
    resource_id: str | None  # the agent's e-mail session, for e-mail evaluations only
    form: FormVersion
    agent_id: str
    evaluator_id: str
    queue_id: str
    status: str  # EvaluationResponse spelling (FINISHED)
    created_ms: int
    changed_ms: int  # its last change before any re-review: the record's eventTime
    released_ms: int | None
    answers: tuple[int, ...]
    comments: int  # index into COMMENTS, -1: none
    agent_comments: int  # index into AGENT_COMMENTS, -1: none
    source: str  # EvaluationSource.type


@dataclass(frozen=True, slots=True)
class Survey:
    id: str
    conversation: int
    conversation_id: str
    form: FormVersion
    agent_id: str
    team_id: str
    queue_id: str
    status: str  # Survey spelling (Finished)
    survey_type: str  # Voice or Web
    event_ms: int  # when it finished, expired or was opted out of
    answers: tuple[int, ...]  # none unless finished


@dataclass(frozen=True, slots=True)
class Revision:
    """An evaluation as of one (re-)review: version ``number`` (0: as first submitted)."""

    number: int
    answers: tuple[int, ...]
    changed_ms: int


class Quality:
    """The org's forms and every evaluation and survey, with lookups by id and conversation."""

    def __init__(self, forms: tuple[tuple[Form, ...], tuple[Form, ...]],
                 evaluations: list[Evaluation], surveys: list[Survey]) -> None:  # fmt: skip
        self.evaluation_forms, self.survey_forms = forms
        self.evaluations = tuple(evaluations)  # in conversation order
        self.surveys = tuple(surveys)
        self._evaluations = {e.id: e for e in evaluations}
        self._surveys = {s.id: s for s in surveys}
        self.by_conversation: dict[int, tuple[Evaluation, ...]] = {}
        for e in evaluations:
            found = self.by_conversation.get(e.conversation, ())
            self.by_conversation[e.conversation] = (*found, e)

    def evaluation(self, evaluation_id: str) -> Evaluation | None:
        return self._evaluations.get(evaluation_id)

    def survey(self, survey_id: str) -> Survey | None:
        return self._surveys.get(survey_id)


class QualityDraw:
    """Adds quality entries to finished records as the dataset is built; ``result()`` after."""

    def __init__(self, shares: tuple[float, float], seed: int, entities: Entities,
                 range_ms: tuple[int, int], fmt: Callable[[int], str]) -> None:  # fmt: skip
        self._below = (int(shares[0] * _BITS), int(shares[1] * _BITS))
        self._forms = build_forms(random.Random(f"forms-{seed}"), range_ms)
        self._fmt = fmt
        self._analysts = tuple(u.id for u in entities.users if u.title == "Quality Analyst")
        self._agents = {a.id: a for a in entities.agents}
        self._evaluations: list[Evaluation] = []
        self._surveys: list[Survey] = []

    def add(self, record: Record, index: int, span: tuple[int, int]) -> None:
        """Draw the quality data of finished conversation ``record`` (lasting ``span``, epoch
        ms) and add its entries."""
        cid: str = record["conversationId"]
        evaluated, surveyed = int(cid[:8], 16) < self._below[0], int(cid[-8:], 16) < self._below[1]
        legs = _agent_legs(record) if evaluated or surveyed else []
        if not legs:
            return
        entries: Record = {}
        if evaluated:
            e = self._evaluation(random.Random(f"evaluation-{cid}"), record, index, legs, span)
            self._evaluations.append(e)
            entries["evaluations"] = [analytics_evaluation(e, Revision(0, e.answers, e.changed_ms),
                                                           self._fmt)]  # fmt: skip
        if surveyed and record["conversationInitiator"] == "customer":
            s = self._survey(random.Random(f"survey-{cid}"), record, index, legs[-1], span[1])
            self._surveys.append(s)
            entries["surveys"] = [analytics_survey(s, self._fmt)]
        if not entries:
            return
        participants = record.pop("participants")
        tail = {"selfServed": record.pop("selfServed")} if "selfServed" in record else {}
        record.update(entries, participants=participants, **tail)

    def result(self) -> Quality:
        return Quality(self._forms, self._evaluations, self._surveys)

    def _form(self, forms: Iterable[Form], record: Record, leg: Record, at_ms: int) -> FormVersion:
        wanted = _channel(record, leg)
        return next(f for f in forms if wanted in f.channels).version_at(at_ms)

    def _evaluation(self, rng: random.Random, record: Record, index: int,
                    legs: list[tuple[str, str, Record]],
                    span: tuple[int, int]) -> Evaluation:  # fmt: skip
        start_ms, end_ms = span
        agent_id, queue_id, session = legs[int(rng.random() * len(legs))]
        created = end_ms + HOUR_MS + min(int(rng.expovariate(1 / 20) * HOUR_MS), 6 * DAY_MS)
        form = self._form(self._forms[0], record, session, created)
        status = _pick(rng, _STATUS_MIX)
        submitted = created + 600_000 + min(int(rng.expovariate(1 / 6) * HOUR_MS), 2 * DAY_MS)
        changed = {"PENDING": created, "INPROGRESS": created + 1_800_000}.get(status, submitted)
        released = changed + int(rng.random() * 2 * HOUR_MS) if (
            status == "FINISHED" and rng.random() < 0.8
        ) else None  # fmt: skip
        evaluator = self._agents[agent_id].manager_id  # the team lead, 30% of the time
        if evaluator is None or rng.random() >= 0.3:
            evaluator = _choice(rng, self._analysts)
        media = session["mediaType"]
        return Evaluation(
            id=_new_id(rng), conversation=index, conversation_id=record["conversationId"],
            start_ms=start_ms, end_ms=end_ms, division_ids=tuple(record["divisionIds"]),
            media_type=media, resource_id=session["sessionId"] if media == "email" else None,
            form=form, agent_id=agent_id, evaluator_id=evaluator, queue_id=queue_id,
            status=status, created_ms=created, changed_ms=changed, released_ms=released,
            answers=() if status == "PENDING" else _evaluation_answers(rng, form),
            comments=_maybe(rng, 0.6, COMMENTS),
            agent_comments=_maybe(rng, 0.2, AGENT_COMMENTS) if released else -1,
            source="Policy" if rng.random() < 0.8 else "User",
        )  # fmt: skip

    def _survey(self, rng: random.Random, record: Record, index: int,
                leg: tuple[str, str, Record], end_ms: int) -> Survey:  # fmt: skip
        agent_id, queue_id, session = leg
        sent = end_ms + 60_000 + int(rng.random() * 540_000)
        form = self._form(self._forms[1], record, session, sent)
        status = _pick(rng, _SURVEY_MIX)
        if status == "Finished":  # within the day the invitation lasts
            took = 60_000 + min(int(rng.expovariate(1 / 90) * 60_000), DAY_MS - HOUR_MS)
        else:  # expired a day later, or opted out within half an hour
            took = DAY_MS if status == "Expired" else 60_000 + int(rng.random() * 1_800_000)
        voice = _channel(record, session).startswith("voice")
        return Survey(
            id=_new_id(rng), conversation=index, conversation_id=record["conversationId"],
            form=form, agent_id=agent_id, team_id=self._agents[agent_id].team_id or "",
            queue_id=queue_id, status=status, survey_type="Voice" if voice else "Web",
            event_ms=sent + took,
            answers=_survey_answers(rng, form) if status == "Finished" else (),
        )  # fmt: skip


def analytics_evaluation(e: Evaluation, revision: Revision, fmt: Callable[[int], str]) -> Record:
    """The record's AnalyticsEvaluation entry for ``e`` as of ``revision``."""
    entry: Record = {
        "assigneeApplicable": True, "assigneeId": e.evaluator_id,
        "contextId": e.form.context_id, "deleted": False, "evaluationId": e.id,
        "evaluationStatus": STATUSES[e.status], "evaluatorId": e.evaluator_id,
        "eventTime": fmt(revision.changed_ms), "formId": e.form.id, "formName": e.form.name,
        "queueId": e.queue_id, "released": e.released_ms is not None,
        "rescored": revision.number > 0, "systemSubmitted": False, "userId": e.agent_id,
    }  # fmt: skip
    if revision.answers:
        scores = score_evaluation(e.form, revision.answers)
        entry["oTotalCriticalScore"] = round(scores.critical)
        entry["oTotalScore"] = round(scores.total)
    return entry


def analytics_survey(s: Survey, fmt: Callable[[int], str]) -> Record:
    """The record's AnalyticsSurvey entry for ``s``."""
    finished = s.status == "Finished"
    entry: Record = {"eventTime": fmt(s.event_ms), "queueId": s.queue_id}
    if finished:
        entry["surveyCompletedDate"] = fmt(s.event_ms)
    entry.update(surveyFormContextId=s.form.context_id, surveyFormId=s.form.id,
                 surveyFormName=s.form.name, surveyId=s.id,
                 surveyPartialResponse=False)  # fmt: skip
    total, nps = score_survey(s.form, s.answers) if finished else (0.0, None)
    if nps is not None:
        entry["surveyPromoterScore"] = nps
    entry.update(surveyStatus=s.status, surveyType=s.survey_type, userId=s.agent_id)
    if finished:
        entry["oSurveyTotalScore"] = round(total)
    return entry


def revise(e: Evaluation, previous: Revision, changed_ms: int) -> Revision:
    """The next version after ``previous``: one or two answered questions scored anew."""
    rng = random.Random(f"review-{e.id}-{previous.number + 1}")
    answers = list(previous.answers)
    questions = e.form.questions
    answered = [i for i, a in enumerate(answers) if a != NOT_ANSWERED and questions[i].options]
    for i in rng.sample(answered, min(len(answered), 1 + int(rng.random() * 2))):
        answers[i] = int(rng.random() * len(questions[i].options))
    return Revision(previous.number + 1, tuple(answers), changed_ms)


def _agent_legs(record: Record) -> list[tuple[str, str, Record]]:
    """(userId, queueId, session) of each agent leg; every agent leg's wrap-up names a queue."""
    legs = []
    for participant in record["participants"]:
        if participant["purpose"] == "agent":
            session = participant["sessions"][0]
            queue = next(s["queueId"] for s in session["segments"] if "queueId" in s)
            legs.append((participant["userId"], queue, session))
    return legs


def _channel(record: Record, session: Record) -> str:
    """What a form is chosen by: voice-inbound (callbacks too), voice-outbound, or the media."""
    media = session["mediaType"]
    if media == "callback" or (media == "voice" and record["originatingDirection"] == "inbound"):
        return "voice-inbound"
    return "voice-outbound" if media == "voice" else str(media)


def _evaluation_answers(rng: random.Random, form: FormVersion) -> tuple[int, ...]:
    """Mostly good answers (an agent's day decides how good); kill questions rarely failed."""
    skew = 1.5 + 3 * rng.random()
    return tuple(_choice_answer(rng, q, skew) for q in form.questions)


def _choice_answer(rng: random.Random, q: Question, skew: float) -> int:
    if q.na_enabled and rng.random() < 0.15:
        return NOT_ANSWERED
    if q.kill:
        return 0 if rng.random() < 0.97 else 1
    return int(len(q.options) * rng.random() ** skew)


def _survey_answers(rng: random.Random, form: FormVersion) -> tuple[int, ...]:
    """NPS leaning to promoters, choices to the good end, free text from a third of people."""
    answers = []
    for q in form.questions:
        if q.type == NPS:
            answers.append(min(10, int(11 * rng.random() ** 0.4)))
        elif q.type == CHOICE:
            answers.append(int(len(q.options) * rng.random() ** 1.8))
        else:
            answers.append(_maybe(rng, 0.35, FREE_TEXT))
    return tuple(answers)


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pick(rng: random.Random, mix: Sequence[tuple[str, float]]) -> str:
    x = rng.random()
    for value, share in mix:
        x -= share
        if x < 0:
            return value
    return mix[-1][0]


def _choice(rng: random.Random, pool: Sequence[str]) -> str:
    return pool[int(rng.random() * len(pool))]


def _maybe(rng: random.Random, chance: float, pool: Sequence[str]) -> int:
    """An index into ``pool`` with probability ``chance``, else -1."""
    return int(rng.random() * len(pool)) if rng.random() < chance else NOT_ANSWERED

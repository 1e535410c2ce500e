"""Quality data: evaluations and surveys, read by the ids the conversations name, and the
forms they answer, taken as snapshots.

Neither evaluations nor surveys can be listed by date (genesys-datasets.md §F: the evaluation
query needs a conversation, evaluator, agent or assignee), but a conversation details record
names them: ``evaluations[]`` entries carry ``evaluationId`` (with the conversation's id, the
path of ``GET /api/v2/quality/conversations/{conversationId}/evaluations/{evaluationId}``) and
``surveys[]`` entries ``surveyId``. So each conversations window gives an evaluations window
and a surveys window of the same name, holding the full objects as the API sends them.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from exporter.datasets.base import ById, Listing, Ref
from exporter.datasets.conversations import CONVERSATIONS


def _named(line: bytes, array: bytes, id_field: str) -> Iterator[tuple[str, str]]:
    """(conversationId, id) of each ``array`` entry of a conversation line; most lines have
    none, and are passed over without being parsed."""
    if array not in line:
        return
    record = orjson.loads(line)
    conversation = record.get("conversationId")
    for entry in record.get(array.strip(b'"').decode(), None) or ():
        if isinstance(entry, dict) and isinstance(entry.get(id_field), str) and conversation:
            yield conversation, entry[id_field]


def evaluation_refs(line: bytes) -> Iterator[Ref]:
    for conversation, evaluation in _named(line, b'"evaluations"', "evaluationId"):
        yield Ref(evaluation, (("conversationId", conversation), ("evaluationId", evaluation)))


def survey_refs(line: bytes) -> Iterator[Ref]:
    for _, survey in _named(line, b'"surveys"', "surveyId"):
        yield Ref(survey, (("surveyId", survey),))


EVALUATIONS = ById(
    "evaluations",
    "quality evaluations of the exported conversations: answers, scores, evaluator, agent, "
    "form (read again while they may still be edited: [lookups])",
    "quality:evaluation:view",
    CONVERSATIONS,
    "/api/v2/quality/conversations/{conversationId}/evaluations/{evaluationId}",
    evaluation_refs,
)
SURVEYS = ById(
    "surveys",
    "the exported conversations' customer surveys: answers, scores, NPS",
    "quality:survey:view",
    CONVERSATIONS,
    "/api/v2/quality/surveys/{surveyId}",
    survey_refs,
)
EVALUATION_FORMS = Listing(
    "evaluation-forms",
    "published evaluation forms: question groups, questions and answer options",
    "/api/v2/quality/publishedforms/evaluations",
    "quality:evaluationForm:view",
    page_size=100,  # UNVERIFIED largest page: a refusal naming a smaller one lowers it
)
SURVEY_FORMS = Listing(
    "survey-forms",
    "published survey forms",
    "/api/v2/quality/publishedforms/surveys",
    "quality:surveyForm:view",
    page_size=100,
)

BY_ID: tuple[ById, ...] = (EVALUATIONS, SURVEYS)
FORMS: tuple[Listing, ...] = (EVALUATION_FORMS, SURVEY_FORMS)

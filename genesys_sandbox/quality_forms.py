"""The org's evaluation and survey forms: every published version and the draft of each.

Publishing a form freezes the draft as a published version, keeping its id, and opens a new
draft under a new id [OBS terraform-provider-genesyscloud publishes a form and continues with
the new draft's id]; every version has ids of its own for its groups, questions and answer
options, and shares their ``contextId`` (and the form's) with the other versions [SRC SDK model
descriptions]. The voice evaluation form is republished part-way through the data range, with
one question more, so evaluations name the version published when they were created.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from genesys_sandbox.ids import IdSource

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Answer scales: (text, value), best first.
YES_NO = (("Yes", 1), ("No", 0))
RATING = (("Excellent", 4), ("Good", 3), ("Fair", 1), ("Poor", 0))
SATISFACTION = (("Very satisfied", 4), ("Satisfied", 3), ("Neutral", 2), ("Dissatisfied", 1),
                ("Very dissatisfied", 0))  # fmt: skip
# Question flags.
NA, KILL, CRITICAL = "na", "kill", "critical"
CHOICE, NPS, FREE_TEXT = "multipleChoiceQuestion", "npsQuestion", "freeTextQuestion"


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    context_id: str
    text: str
    value: int


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    context_id: str
    text: str
    type: str  # CHOICE, NPS or FREE_TEXT
    options: tuple[Option, ...]  # best first; none for NPS and free text
    max_value: int  # the most it scores: its best option's value, 10 for an NPS question
    na_enabled: bool = False
    kill: bool = False  # failing it (any answer but the best) zeroes the evaluation [INF]
    critical: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    context_id: str
    name: str
    weight: float  # the groups of an evaluation form weigh 1 together
    questions: tuple[Question, ...]


@dataclass(frozen=True, slots=True)
class FormVersion:
    """One version of a form; ``published_ms`` is None for the draft."""

    id: str
    context_id: str
    name: str
    modified_ms: int
    published_ms: int | None
    groups: tuple[Group, ...]

    @property
    def questions(self) -> tuple[Question, ...]:
        return tuple(q for g in self.groups for q in g.questions)


@dataclass(frozen=True, slots=True)
class Form:
    """A form: its published versions (oldest first) and its draft; ``channels`` are the
    conversations it is used for (``quality.channel``; none: not in use)."""

    context_id: str
    name: str
    published: tuple[FormVersion, ...]
    draft: FormVersion
    channels: frozenset[str]

    def version_at(self, ms: int) -> FormVersion:
        """The version in use at ``ms``: the newest published by then (else the first)."""
        chosen = self.published[0]
        for version in self.published:
            if version.published_ms is not None and version.published_ms <= ms:
                chosen = version
        return chosen


# A template question: (text, type, answer scale, flags).
TQuestion = tuple[str, str, Sequence[tuple[str, int]], frozenset[str]]
TGroup = tuple[str, float, tuple[TQuestion, ...]]


def _q(text: str, scale: Sequence[tuple[str, int]] = YES_NO, *flags: str) -> TQuestion:
    return (text, CHOICE, scale, frozenset(flags))


_GREETING = _q("Did the agent greet the customer and give their name?")
_IDENTITY = _q("Did the agent verify the customer's identity?", YES_NO, KILL, CRITICAL)
_UNDERSTOOD = _q("How well did the agent understand the customer's need?", RATING)
_RESOLVED = _q("Was the issue resolved or correctly escalated?", YES_NO, CRITICAL)
_NEXT_STEPS = _q("Did the agent set expectations for next steps?", YES_NO, NA)
_MORE_HELP = _q("Did the agent offer further help before closing?")
_COURTESY = _q("Tone and courtesy", RATING)
_HOLDS = _q("Were holds and transfers explained to the customer?", YES_NO, NA)
VOICE_REVIEW: tuple[TGroup, ...] = (
    ("Opening", 0.2, (_GREETING, _IDENTITY)),
    ("Resolution", 0.5, (_UNDERSTOOD, _RESOLVED, _NEXT_STEPS)),
    ("Professionalism", 0.3, (_COURTESY, _HOLDS)),
)
VOICE_REVIEW_2: tuple[TGroup, ...] = (
    VOICE_REVIEW[0],
    ("Resolution", 0.5, (_UNDERSTOOD, _RESOLVED, _NEXT_STEPS, _MORE_HELP)),
    VOICE_REVIEW[2],
)
DIGITAL_REVIEW: tuple[TGroup, ...] = (
    ("Response", 0.4, (_q("Was the first response timely?"),
                       _q("Spelling, grammar and formatting", RATING))),
    ("Resolution", 0.6, (_q("Was the issue resolved?", YES_NO, CRITICAL),
                         _q("Was the tone right for the channel?"), _NEXT_STEPS)),
)  # fmt: skip
SALES_REVIEW: tuple[TGroup, ...] = (
    ("Compliance", 0.5, (_q("Was the recording disclosure read?", YES_NO, KILL, CRITICAL),)),
    ("Opportunity", 0.5, (_q("Needs discovery", RATING),
                          _q("Did the agent ask for the sale?", YES_NO, NA))),
)  # fmt: skip
COACHING_REVIEW: tuple[TGroup, ...] = (("Coaching", 1.0, (_q("Was coaching feedback applied?"),)),)
_RECOMMEND: TQuestion = ("How likely are you to recommend us to a friend?", NPS, (), frozenset())
_COMMENTS: TQuestion = ("Is there anything else you would like to tell us?", FREE_TEXT, (),
                        frozenset())  # fmt: skip
CALL_SURVEY: tuple[TGroup, ...] = (
    ("Your call", 1.0, (_RECOMMEND, _q("Was your issue resolved today?"),
                        _q("How satisfied were you with the agent?", SATISFACTION), _COMMENTS)),
)  # fmt: skip
DIGITAL_SURVEY: tuple[TGroup, ...] = (
    ("Your conversation", 1.0, (_RECOMMEND, _q("Did we answer your question?"),
                                _q("How easy was it to reach us?", SATISFACTION), _COMMENTS)),
)  # fmt: skip
DIGITAL = frozenset({"message", "email", "chat"})
VOICE_IN, VOICE_OUT = frozenset({"voice-inbound"}), frozenset({"voice-outbound"})
# A form: (name, the channels it is used for, its draft, its published versions as (template,
# minutes after the range start it was published; None: part-way through the range)).
FormSpec = tuple[str, frozenset[str], tuple[TGroup, ...],
                 tuple[tuple[tuple[TGroup, ...], int | None], ...]]  # fmt: skip
EVALUATION_FORMS: tuple[FormSpec, ...] = (
    ("Voice Quality Review", VOICE_IN, VOICE_REVIEW_2,
     ((VOICE_REVIEW, -60 * 1440), (VOICE_REVIEW_2, None))),
    ("Digital Interaction Review", DIGITAL, DIGITAL_REVIEW, ((DIGITAL_REVIEW, -45 * 1440),)),
    ("Outbound Sales Review", VOICE_OUT, SALES_REVIEW, ((SALES_REVIEW, -90 * 1440),)),
    ("Coaching Follow-up", frozenset(), COACHING_REVIEW, ()),  # never published
)  # fmt: skip
SURVEY_FORMS: tuple[FormSpec, ...] = (
    ("Post-Call Survey", VOICE_IN, CALL_SURVEY, ((CALL_SURVEY, -120 * 1440),)),
    ("Digital Satisfaction Survey", DIGITAL, DIGITAL_SURVEY, ((DIGITAL_SURVEY, -75 * 1440),)),
)


class _Builder:
    """Draws the ids of forms and their versions from one stream, in a fixed order."""

    def __init__(self, rng: random.Random) -> None:
        self._take = IdSource(rng).take
        self._contexts: dict[tuple[str, ...], str] = {}  # element path -> contextId

    def context(self, *path: str) -> str:
        """The contextId of an element (the same in every version of its form)."""
        if path not in self._contexts:
            self._contexts[path] = self._take(1)[0]
        return self._contexts[path]

    def version(self, name: str, template: tuple[TGroup, ...], published: int | None,
                modified: int) -> FormVersion:  # fmt: skip
        groups = tuple(self._group(name, g) for g in template)
        return FormVersion(self._take(1)[0], self.context(name), name, modified, published, groups)

    def _group(self, form: str, template: TGroup) -> Group:
        name, weight, questions = template
        built = tuple(self._question(form, name, q) for q in questions)
        return Group(self._take(1)[0], self.context(form, name), name, weight, built)

    def _question(self, form: str, group: str, template: TQuestion) -> Question:
        text, kind, scale, flags = template
        options = tuple(
            Option(self._take(1)[0], self.context(form, group, text, label), label, value)
            for label, value in scale
        )
        top = 10 if kind == NPS else max((o.value for o in options), default=0)
        return Question(self._take(1)[0], self.context(form, group, text), text, kind, options,
                        top, NA in flags, KILL in flags, CRITICAL in flags)  # fmt: skip


def build_forms(
    rng: random.Random, range_ms: tuple[int, int]
) -> tuple[tuple[Form, ...], tuple[Form, ...]]:
    """(evaluation forms, survey forms) of an org whose data spans ``range_ms`` = (start, end);
    a form republished part-way was so at 40% of the range, on the hour."""
    builder = _Builder(rng)
    start, end = range_ms
    midway = (start + (end - start) * 2 // 5) // HOUR_MS * HOUR_MS

    def form(spec: FormSpec) -> Form:
        name, channels, draft, versions = spec
        instants = [midway if m is None else start + m * 60_000 for _, m in versions]
        published = tuple(
            builder.version(name, template, at, at)
            for (template, _), at in zip(versions, instants, strict=True)
        )
        edited = (instants[-1] if instants else start - 10 * DAY_MS) + HOUR_MS
        return Form(builder.context(name), name, published,
                    builder.version(name, draft, None, edited), channels)  # fmt: skip

    return tuple(map(form, EVALUATION_FORMS)), tuple(map(form, SURVEY_FORMS))

"""How answers score, on both kinds of form: pure arithmetic the routes and the tests share.

An answer is a number per question of the form version, in question order: the chosen
option's index (best first), -1 when marked N/A; an NPS question holds its 0-10 score and a
free-text question the index of its text. The rules [INF: the SDK names the fields, not how
they are computed]:
- a question scores its option's value; N/A questions count in neither score nor maximum;
- an evaluation group scores ``weight * 100 * points / max points`` (out of ``weight * 100``),
  and the evaluation ``100 * sum of group scores / sum of group maxima``, so with every group
  answered it is the weighted percentage; critical and non-critical scores are percentages of
  their own questions' points;
- a kill question answered with anything but its best option zeroes the evaluation's total;
- a survey scores ``100 * points / max points`` over its choice and NPS questions (an NPS
  question is out of 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genesys_sandbox.quality_forms import CHOICE, NPS, FormVersion, Group, Option, Question

NOT_ANSWERED = -1


@dataclass(frozen=True, slots=True)
class QuestionScore:
    question: Question
    answer: int  # as given (see the module docstring)
    option: Option | None  # None: N/A, or an NPS or free-text question
    score: int
    marked_na: bool

    @property
    def failed_kill(self) -> bool:
        return failed_kill(self.question, self.answer)


@dataclass(frozen=True, slots=True)
class GroupScore:
    """A group's sums; its ``questions`` are scored one by one only when asked for (the
    records need the sums of every evaluation, the routes the detail of a few)."""

    group: Group
    answers: tuple[int, ...]  # of its questions, in order
    points: int
    max_points: int
    critical: tuple[int, int]  # (points, max points) of its critical questions
    non_critical: tuple[int, int]

    @property
    def questions(self) -> tuple[QuestionScore, ...]:
        pairs = zip(self.group.questions, self.answers, strict=True)
        return tuple(_question(q, a) for q, a in pairs)

    @property
    def marked_na(self) -> bool:
        return self.max_points == 0

    @property
    def weighted(self) -> tuple[float, float]:
        """(score, maximum) weighted: out of ``weight * 100``; (0, 0) when all N/A."""
        if self.marked_na:
            return 0.0, 0.0
        top = self.group.weight * 100
        return top * self.points / self.max_points, top


@dataclass(frozen=True, slots=True)
class Scores:
    groups: tuple[GroupScore, ...]
    total: float  # percent, 2 decimals
    critical: float  # percent of the critical questions' points (0 when there are none)
    non_critical: float
    any_failed_kill: bool

    @property
    def max_raw(self) -> tuple[int, int]:
        """(max points of all answered questions, of the critical ones)."""
        return (sum(g.max_points for g in self.groups), sum(g.critical[1] for g in self.groups))


def score_evaluation(form: FormVersion, answers: Sequence[int]) -> Scores:
    groups = score_groups(form, answers)
    weighted = [g.weighted for g in groups]
    top = sum(m for _, m in weighted)
    failed = any(failed_kill(q, a) for q, a in zip(form.questions, answers, strict=True))
    total = 0.0 if failed or not top else 100 * sum(s for s, _ in weighted) / top
    critical = _percent([g.critical for g in groups])
    return Scores(groups, round(total, 2), critical, _percent([g.non_critical for g in groups]),
                  failed)  # fmt: skip


def score_survey(form: FormVersion, answers: Sequence[int]) -> tuple[float, int | None]:
    """(total score in percent, the NPS answer or None)."""
    groups = score_groups(form, answers)
    points = sum(g.points for g in groups)
    top = sum(g.max_points for g in groups)
    nps = next((a for q, a in zip(form.questions, answers, strict=True)
                if q.type == NPS and a != NOT_ANSWERED), None)  # fmt: skip
    return round(100 * points / top, 2) if top else 0.0, nps


def score_groups(form: FormVersion, answers: Sequence[int]) -> tuple[GroupScore, ...]:
    """Each group's sums (raw points)."""
    groups, at = [], 0
    for group in form.groups:
        groups.append(_group(group, tuple(answers[at : at + len(group.questions)])))
        at += len(group.questions)
    return tuple(groups)


def failed_kill(question: Question, answer: int) -> bool:
    """A kill question answered with anything but its best option."""
    return question.kill and answer != NOT_ANSWERED and (
        question.options[answer].value < question.max_value
    )  # fmt: skip


def _question(question: Question, answer: int) -> QuestionScore:
    if answer == NOT_ANSWERED:
        return QuestionScore(question, answer, None, 0, True)
    if question.type == CHOICE:
        option = question.options[answer]
        return QuestionScore(question, answer, option, option.value, False)
    return QuestionScore(question, answer, None, answer if question.type == NPS else 0, False)


def _group(group: Group, answers: tuple[int, ...]) -> GroupScore:
    points = top = critical = critical_top = 0
    for q, a in zip(group.questions, answers, strict=True):
        if a == NOT_ANSWERED or q.type not in (CHOICE, NPS):
            continue
        score = q.options[a].value if q.type == CHOICE else a
        points, top = points + score, top + q.max_value
        if q.critical:
            critical, critical_top = critical + score, critical_top + q.max_value
    return GroupScore(group, answers, points, top, (critical, critical_top),
                      (points - critical, top - critical_top))  # fmt: skip


def _percent(parts: list[tuple[int, int]]) -> float:
    points, top = sum(p for p, _ in parts), sum(m for _, m in parts)
    return round(100 * points / top, 2) if top else 0.0

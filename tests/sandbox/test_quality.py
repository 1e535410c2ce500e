"""Quality data: conversations carry evaluations and surveys whose every id resolves, the
evaluation and survey routes, the form listings, re-reviews on the sandbox clock, and the
records' other bytes exactly as before quality data existed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from genesys_sandbox import DatasetSpec, FaultRule, ManualClock
from genesys_sandbox.data import Dataset, to_ms
from genesys_sandbox.entity_json import Renderer, base_listings
from tests.sandbox.support import SPEC, START, Client, error_of, running

FORMS = "/api/v2/quality/forms/evaluations"
PUBLISHED = "/api/v2/quality/publishedforms/evaluations"
SURVEY_FORMS = "/api/v2/quality/forms/surveys"
PUBLISHED_SURVEYS = "/api/v2/quality/publishedforms/surveys"
QUALITY = ("evaluations", "surveys")
THREE_DAYS = "2026-11-01T00:00:00.000Z/2026-11-04T00:00:00.000Z"
# sha256 of the records (quality keys removed) and of the entity listings' bodies, computed
# with the generator as it was before quality data existed.
DIGESTS = {
    SPEC: ("8a0174bac1e6f1a0a909a957e1429f08b961f8fdf8a6fc1cb6164adbe22c87a8",
           "443045a8658d3c67dbb93dc43b2a1753f953f1e59a92514216a51fd03ce16cf0"),
    DatasetSpec(conversations=20_000, start=datetime(2026, 10, 1, tzinfo=UTC), days=7, seed=7):
        ("45f093fb341c6b6a5d14aea65556dc84353d807d1ddda2b9d614f09eef15b649",
         "4fefced7fe65d1246777c3c93b625bf6e67189ddaba12e2442407b751ba7ac92"),
}  # fmt: skip
LISTINGS_THEN = ("users", "queues", "wrapup-codes", "divisions", "groups", "teams", "skills",
                 "languages", "presence-definitions", "flows")  # fmt: skip


def evaluation_path(e: Any) -> str:
    return f"/api/v2/quality/conversations/{e.conversation_id}/evaluations/{e.id}"


def records(data: Dataset) -> Iterator[dict[str, Any]]:
    for i in range(len(data)):
        yield orjson.loads(data.job_record(i))


def ms(text: str) -> int:
    return to_ms(datetime.fromisoformat(text))


async def get(c: Client, path: str, **params: Any) -> dict[str, Any]:
    reply = await c.call("GET", path, params={k: str(v) for k, v in params.items()})
    assert reply.status == 200, reply.body
    return dict(reply.json())


async def walk(c: Client, path: str, size: int = 100, **params: Any) -> list[dict[str, Any]]:
    """Every entity of a numbered listing, page by page until nextUri is absent."""
    entities, number = [], 1
    while True:
        page = await get(c, path, pageSize=size, pageNumber=number, **params)
        entities += page["entities"]
        if "nextUri" not in page:
            return entities
        number += 1


@pytest.mark.parametrize("spec", list(DIGESTS), ids=["small", "20k"])
def test_records_and_listings_are_as_before_apart_from_the_quality_keys(
    spec: DatasetSpec,
) -> None:
    """With evaluations and surveys removed, every record of a seed is the bytes it was before
    they existed, and the existing listings' entities are unchanged."""
    data = Dataset.build(spec)
    digest = hashlib.sha256()
    for record in records(data):
        for key in QUALITY:
            record.pop(key, None)
        digest.update(orjson.dumps(record) + b"\n")
    listings = hashlib.sha256()
    bases = base_listings(Renderer(data.entities, spec.start_ms))
    for route in sorted(LISTINGS_THEN):
        for entity in bases[route][0]:
            listings.update(orjson.dumps(entity.json(frozenset(entity.expansions))))
    assert (digest.hexdigest(), listings.hexdigest()) == DIGESTS[spec]


def test_shares_timing_and_every_id_of_the_entries() -> None:
    """About 8% of agent-handled conversations are evaluated and 5% of inbound ones surveyed;
    each entry names an agent who handled it, that agent's queue, an evaluator who is someone
    else, a published form version in use then, and comes after the conversation ended;
    conversations still going on carry none."""
    data = Dataset.build(SPEC)
    users = {u.id: u for u in data.entities.users}
    analysts = {u.id for u in data.entities.users if u.title == "Quality Analyst"}
    published = {v.id: v for f in data.quality.evaluation_forms for v in f.published}
    surveys = {v.id: v for f in data.quality.survey_forms for v in f.published}
    handled = evaluated = inbound = surveyed = 0
    for record in records(data):
        legs = {(p["userId"], s.get("queueId")) for p in record["participants"]
                if p["purpose"] == "agent" for s in p["sessions"][0]["segments"]}  # fmt: skip
        if "conversationEnd" not in record:
            assert not QUALITY & record.keys()
            continue
        handled += bool(legs)
        inbound += bool(legs) and record["conversationInitiator"] == "customer"
        end = ms(record["conversationEnd"])
        for entry in record.get("evaluations", ()):
            evaluated += 1
            assert (entry["userId"], entry["queueId"]) in legs
            evaluator = entry["evaluatorId"]
            assert evaluator != entry["userId"] and entry["assigneeId"] == evaluator
            assert evaluator in analysts or evaluator == users[entry["userId"]].manager_id
            form = published[entry["formId"]]
            assert (entry["contextId"], entry["formName"]) == (form.context_id, form.name)
            assert form.published_ms is not None and form.published_ms < ms(entry["eventTime"])
            assert end + 3_600_000 <= ms(entry["eventTime"]) <= end + 9 * 86_400_000
        for entry in record.get("surveys", ()):
            surveyed += 1
            assert (entry["userId"], entry["queueId"]) in legs
            form = surveys[entry["surveyFormId"]]
            assert (entry["surveyFormContextId"], entry["surveyFormName"]) == (
                form.context_id, form.name
            )  # fmt: skip
            assert end < ms(entry["eventTime"]) <= end + 86_400_000 + 600_000
    assert 0.05 <= evaluated / handled <= 0.11 and 0.025 <= surveyed / inbound <= 0.08
    assert (evaluated, surveyed) == (len(data.quality.evaluations), len(data.quality.surveys))


def test_a_republished_form_is_named_by_version_as_evaluations_were_created() -> None:
    """The voice form was republished part-way: evaluations created before name the first
    version, those after the second; both are published versions of one contextId."""
    data = Dataset.build(SPEC)
    voice = data.quality.evaluation_forms[0]
    first, second = voice.published
    named = {e.form.id for e in data.quality.evaluations if e.form.context_id == voice.context_id}
    assert named == {first.id, second.id}
    for e in data.quality.evaluations:
        if e.form.context_id == voice.context_id:
            assert (e.form is second) == (e.created_ms >= (second.published_ms or 0))


async def test_every_evaluation_resolves_and_its_answers_fit_its_form() -> None:
    """Each evaluation's form version is served by the published listing, its agent and
    evaluator by users, its queue by queues; answers name that version's groups, questions and
    options, scores are the options' values, and the totals follow from the group scores (0
    when a kill question failed); the record's oTotalScore is the total rounded."""
    async with running() as c:
        forms = {f["id"]: f for f in await walk(c, PUBLISHED)}
        user_ids = {u["id"] for u in await walk(c, "/api/v2/users", 500, state="any")}
        queue_ids = {q["id"] for q in await walk(c, "/api/v2/routing/queues")}
        data = c.sb.dataset
        for e in data.quality.evaluations:
            body = await get(c, evaluation_path(e))
            assert body["conversation"]["id"] == e.conversation_id and body["id"] == e.id
            assert {body["agent"]["id"], body["evaluator"]["id"]} <= user_ids
            assert body["queue"]["id"] in queue_ids
            form = forms[body["evaluationForm"]["id"]]
            assert body["evaluationForm"]["contextId"] == form["contextId"]
            entry = orjson.loads(data.job_record(e.conversation))["evaluations"][0]
            assert body["changedDate"] == entry["eventTime"] and body["version"] == 1
            if "answers" not in body:
                assert body["status"] == "PENDING" and "oTotalScore" not in entry
                continue
            total = check_answers(body["answers"], form)
            assert abs(body["answers"]["totalScore"] - total) < 0.01
            assert entry["oTotalScore"] == round(body["answers"]["totalScore"])


def check_answers(answers: dict[str, Any], form: dict[str, Any]) -> float:
    """The total score the answers' group scores make, checking each against ``form``."""
    groups = {g["id"]: g for g in form["questionGroups"]}
    assert [g["questionGroupId"] for g in answers["questionGroupScores"]] == list(groups)
    points = top = 0.0
    for scored in answers["questionGroupScores"]:
        group = groups[scored["questionGroupId"]]
        questions = {q["id"]: q for q in group["questions"]}
        assert [q["questionId"] for q in scored["questionScores"]] == list(questions)
        raw = raw_top = 0
        for answer in scored["questionScores"]:
            question = questions[answer["questionId"]]
            if answer["markedNA"]:
                assert question["naEnabled"] and "answerId" not in answer
                continue
            option = next(o for o in question["answerOptions"] if o["id"] == answer["answerId"])
            assert answer["score"] == option["value"]
            raw += answer["score"]
            raw_top += max(o["value"] for o in question["answerOptions"])
        assert (scored["totalScoreUnweighted"], scored["maxTotalScoreUnweighted"]) == (raw, raw_top)
        if raw_top:
            assert scored["maxTotalScore"] == pytest.approx(group["weight"] * 100)
            assert scored["totalScore"] == pytest.approx(group["weight"] * 100 * raw / raw_top,
                                                         abs=0.01)  # fmt: skip
            points += group["weight"] * 100 * raw / raw_top
            top += group["weight"] * 100
    return 0.0 if answers["anyFailedKillQuestions"] else 100 * points / top


async def test_every_survey_resolves_and_its_answers_fit_its_form() -> None:
    """Each survey's form version, agent, team and queue resolve; a finished one answers that
    version's questions, its NPS score is the record's promoter score and its total the
    choice and NPS points over their maximum."""
    async with running() as c:
        forms = {f["id"]: f for f in await walk(c, PUBLISHED_SURVEYS)}
        teams = {t.id for t in c.sb.dataset.entities.teams}
        for s in c.sb.dataset.quality.surveys:
            body = await get(c, f"/api/v2/quality/surveys/{s.id}")
            form = forms[body["surveyForm"]["id"]]
            assert body["agentTeam"]["id"] in teams and body["queue"]["id"] == s.queue_id
            entry = orjson.loads(c.sb.dataset.job_record(s.conversation))["surveys"][0]
            assert (entry["surveyId"], entry["surveyStatus"]) == (body["id"], body["status"])
            if body["status"] != "Finished":
                assert "answers" not in body and "oSurveyTotalScore" not in entry
                continue
            questions = {q["id"]: q for g in form["questionGroups"] for q in g["questions"]}
            points = top = 0
            for answer in body["answers"]["questionGroupScores"][0]["questionScores"]:
                question = questions[answer["questionId"]]
                if question["type"] == "npsQuestion":
                    assert answer["npsScore"] == body["answers"]["npsScore"]
                    points, top = points + answer["npsScore"], top + 10
                elif question["type"] == "multipleChoiceQuestion":
                    options = {o["id"]: o["value"] for o in question["answerOptions"]}
                    points += options[answer["answerId"]]
                    top += max(options.values())
            assert body["answers"]["totalScore"] == pytest.approx(100 * points / top, abs=0.01)
            assert entry["surveyPromoterScore"] == body["answers"]["npsScore"]
            assert entry["oSurveyTotalScore"] == round(body["answers"]["totalScore"])


async def test_form_listings_page_and_find_each_version_by_id() -> None:
    """The form listings page with the numbered envelope; the evaluation form listing holds
    each form's draft without its question groups (its by-id has them), the published listing
    every version, or the newest of each form; a version's id answers that version, a form's
    contextId its newest."""
    async with running() as c:
        quality = c.sb.dataset.quality
        page = await get(c, FORMS, pageSize=1, pageNumber=2)
        assert (page["total"], page["pageCount"], page["pageNumber"]) == (4, 4, 2)
        assert page["nextUri"] == f"{FORMS}?pageSize=1&pageNumber=3"
        assert page["previousUri"].endswith("pageNumber=1") and page["lastUri"].endswith("=4")
        drafts = await walk(c, FORMS, 2)
        assert {d["id"] for d in drafts} == {f.draft.id for f in quality.evaluation_forms}
        assert not any(d["published"] or "questionGroups" in d for d in drafts)
        assert (await get(c, f"{FORMS}/{drafts[0]['id']}"))["questionGroups"]
        versions = await walk(c, PUBLISHED, 1)
        assert len(versions) == sum(len(f.published) for f in quality.evaluation_forms) == 4
        newest = (await get(c, PUBLISHED, onlyLatestPerContext="true"))["entities"]
        assert {v["id"] for v in newest} == {f.published[-1].id for f in quality.evaluation_forms
                                             if f.published}  # fmt: skip
        voice = quality.evaluation_forms[0]
        old = voice.published[0].id
        assert (await get(c, f"{PUBLISHED}/{old}"))["id"] == old
        assert (await get(c, f"{FORMS}/{old}"))["id"] == old
        assert (await get(c, f"{PUBLISHED}/{voice.context_id}"))["id"] == voice.published[1].id
        surveys = await walk(c, SURVEY_FORMS, 1)
        assert all(s["questionGroups"] and not s["published"] for s in surveys)
        assert len(await walk(c, PUBLISHED_SURVEYS, 1)) == len(quality.survey_forms)


async def test_forms_stand_still_where_the_other_listings_drift() -> None:
    """With drift on every page, the form listings keep their forms (one drift made would have
    no questions anyone answered) while locations gain one."""
    async with running(listing_drift=1.0) as c:
        for _ in range(3):
            assert (await get(c, FORMS))["total"] == 4
            assert (await get(c, PUBLISHED_SURVEYS))["total"] == 2
        locations = len(c.sb.dataset.entities.locations)
        assert (await get(c, "/api/v2/locations"))["total"] == locations + 1


async def test_form_listings_refuse_a_page_over_their_maximum() -> None:
    """pageSize above form_max_page_size is 400 naming the range on the form listings (by
    default), where other listings serve it at their maximum."""
    async with running(form_max_page_size=3) as c:
        for path in (FORMS, PUBLISHED, SURVEY_FORMS, PUBLISHED_SURVEYS):
            refused = await c.call("GET", path, params={"pageSize": "4"})
            body = error_of(refused)
            assert refused.status == 400 and body["code"] == "invalid.query.param.value"
            assert body["messageParams"]["allowed"] == "1-3"
            assert (await get(c, path, pageSize=3))["pageSize"] == 3
        assert (await get(c, "/api/v2/locations", pageSize=1000))["pageSize"] == 500
    async with running(listing_refuse_oversize=()) as c:
        assert (await get(c, FORMS, pageSize=1000))["pageSize"] == 100


async def test_unknown_ids_and_mismatches_are_404() -> None:
    """An unknown evaluation, survey or form id, or an evaluation asked under another
    conversation, is 404 not.found, counted by route."""
    async with running() as c:
        nobody = "00000000-0000-4000-8000-000000000000"
        first, second = c.sb.dataset.quality.evaluations[:2]
        paths = [f"/api/v2/quality/conversations/{first.conversation_id}/evaluations/{nobody}",
                 f"/api/v2/quality/conversations/{second.conversation_id}/evaluations/{first.id}",
                 f"/api/v2/quality/surveys/{nobody}", f"{FORMS}/{nobody}",
                 f"{PUBLISHED}/{nobody}", f"{SURVEY_FORMS}/{nobody}",
                 f"{PUBLISHED_SURVEYS}/{nobody}"]  # fmt: skip
        for path in paths:
            reply = await c.call("GET", path)
            assert reply.status == 404 and error_of(reply)["code"] == "not.found", path
        stats = c.sb.stats()
        assert stats.count("quality.evaluation", 404) == 2
        assert stats.count("quality.survey", 404) == 1


async def test_each_route_is_refused_naming_its_permission() -> None:
    """Without every permission an evaluation read accepts (view, assign, release), it is 403
    naming them; one of them is enough; surveys and forms need their own."""
    evaluation = ("quality:evaluation:view", "quality:evaluation:assign",
                  "quality:evaluation:release")  # fmt: skip
    async with running(denied_permissions=evaluation[:2]) as c:
        e = c.sb.dataset.quality.evaluations[0]
        assert (await c.call("GET", evaluation_path(e))).status == 200
    denied = (*evaluation, "quality:survey:view", "quality:evaluationForm:view")
    async with running(denied_permissions=denied) as c:
        quality = c.sb.dataset.quality
        refused = await c.call("GET", evaluation_path(quality.evaluations[0]))
        body = error_of(refused)
        assert refused.status == 403 and body["code"] == "missing.any.permissions"
        assert all(p in body["message"] for p in evaluation)
        survey = await c.call("GET", f"/api/v2/quality/surveys/{quality.surveys[0].id}")
        assert survey.status == 403 and "quality:survey:view" in error_of(survey)["message"]
        for path in (FORMS, PUBLISHED):
            assert (await c.call("GET", path)).status == 403
        assert (await c.call("GET", SURVEY_FORMS)).status == 200


async def test_faults_reach_the_quality_routes_by_name() -> None:
    """A status fault on the evaluation route fires there once; entity-deleted on a published
    form's lookup deletes that version (404, and gone from its listing); empty-listing and
    next-uri-loop reach the form listings."""
    async with running() as c:
        e = c.sb.dataset.quality.evaluations[0]
        c.sb.add_fault(FaultRule("status", status=503, routes=("quality.evaluation",), count=1))
        assert (await c.call("GET", evaluation_path(e))).status == 503
        assert (await c.call("GET", evaluation_path(e))).status == 200
        c.sb.add_fault(FaultRule("entity-deleted", routes=("published-evaluation-forms.by-id",),
                                 count=1))  # fmt: skip
        gone = await c.call("GET", f"{PUBLISHED}/{e.form.id}")
        assert gone.status == 404
        assert e.form.id not in {v["id"] for v in await walk(c, PUBLISHED)}
        c.sb.add_fault(FaultRule("empty-listing", routes=("survey-forms",), count=1))
        assert (await get(c, SURVEY_FORMS))["entities"] == []
        c.sb.add_fault(FaultRule("next-uri-loop", routes=("evaluation-forms",), count=1))
        page = await get(c, FORMS, pageSize=1)
        assert page["nextUri"] == page["selfUri"]
        assert c.sb.stats().count("quality.evaluation", 503) == 1


def first_edit_s(c: Client, evaluation_id: str) -> float:
    """Sandbox seconds from the start to the evaluation's first re-review (the ground truth
    answers any instant, so bisect it)."""
    lo, hi = 0.0, 100 * 3600.0
    assert (c.sb.evaluation(evaluation_id, at=hi) or {})["version"] > 1
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if (c.sb.evaluation(evaluation_id, at=mid) or {})["version"] > 1 else (
            mid, hi
        )  # fmt: skip
    return hi


async def test_a_re_review_gives_a_newer_version_later_on_the_clock_and_not_before() -> None:
    """With re-reviews on, a finished evaluation reads as submitted until its first
    re-review's instant on the sandbox clock, then as version 2 with a later changedDate and
    answers scored anew; its record's entry follows, other records stay as built."""
    clock = ManualClock()
    async with running(clock=clock, evaluation_edits_per_hour=0.5) as c:
        data = c.sb.dataset
        e = next(e for e in data.quality.evaluations if e.status == "FINISHED")
        before = await get(c, evaluation_path(e))
        edit = first_edit_s(c, e.id)
        clock.advance(edit - 0.05)
        assert await get(c, evaluation_path(e)) == before
        clock.advance(0.1)
        after = await get(c, evaluation_path(e))
        assert (after["version"], after["rescore"]) == (2, True)
        assert after["changedDate"] > before["changedDate"]
        assert after == c.sb.evaluation(e.id) and c.sb.evaluation(e.id, at=0) == before
        served = {r["conversationId"]: r for r in await c.all_results(
            await c.submit({"interval": THREE_DAYS}))}  # fmt: skip
        entry = served[e.conversation_id]["evaluations"][0]
        assert entry["oTotalScore"] == round(after["answers"]["totalScore"])
        assert (entry["eventTime"], entry["rescored"]) == (after["changedDate"], True)
        versions = c.sb.quality_truth(START, START + timedelta(days=3)).evaluations
        for i, cid in enumerate(data.ids):
            if cid in served and all(versions[x.id] == 1
                                     for x in data.quality.by_conversation.get(i, ())):  # fmt: skip
                assert served[cid] == orjson.loads(data.job_record(i))


async def test_records_can_keep_the_first_score_while_evaluations_are_re_reviewed() -> None:
    """evaluation_edits_in_details off: the evaluation moves on, its record's entry does not."""
    clock = ManualClock()
    async with running(clock=clock, evaluation_edits_per_hour=2.0,
                       evaluation_edits_in_details=False) as c:  # fmt: skip
        clock.advance(24 * 3600)
        data = c.sb.dataset
        truth = c.sb.quality_truth(START, START + timedelta(days=3))
        assert max(truth.evaluations.values()) > 2
        served = await c.all_results(await c.submit({"interval": THREE_DAYS}))
        overlapping = data.indices_overlapping(SPEC.start_ms, SPEC.end_ms)
        assert served == [orjson.loads(data.job_record(i)) for i in overlapping]


async def test_conversations_still_open_have_no_quality_yet() -> None:
    """An open conversation's record carries no evaluations or surveys and its evaluation is
    404 until it closes; the ground truth leaves it out meanwhile."""
    async with running(open_conversations=300) as c:
        data = c.sb.dataset
        opened = c.sb.state.open.indices
        e = next(e for e in data.quality.evaluations if e.conversation in opened)
        assert (await c.call("GET", evaluation_path(e))).status == 404
        truth = c.sb.quality_truth(START, START + timedelta(days=3))
        assert e.id not in truth.evaluations
        served = await c.all_results(await c.submit({"interval": THREE_DAYS}))
        assert all(not QUALITY & r.keys() for r in served if "conversationEnd" not in r)
        c.sb.update(open_conversations=0)
        assert (await c.call("GET", evaluation_path(e))).status == 200
        assert e.id in c.sb.quality_truth(START, START + timedelta(days=3)).evaluations


async def test_the_ground_truth_is_what_the_records_carry() -> None:
    """quality_truth and /sandbox/quality/ground-truth name exactly the evaluations and
    surveys the records of a window carry; the dataset's ids agree."""
    async with running() as c:
        start, end = START + timedelta(hours=20), START + timedelta(hours=44)
        served = await c.all_results(await c.submit({"interval": THREE_DAYS}))
        inside = [r for r in served
                  if to_ms(start) <= ms(r["conversationStart"]) < to_ms(end)]  # fmt: skip
        evaluations = {x["evaluationId"] for r in inside for x in r.get("evaluations", ())}
        surveys = {x["surveyId"] for r in inside for x in r.get("surveys", ())}
        truth = c.sb.quality_truth(start, end)
        assert evaluations and set(truth.evaluations) == evaluations and truth.surveys == surveys
        assert c.sb.dataset.evaluation_ids_starting_in(start, end) == evaluations
        assert c.sb.dataset.survey_ids_starting_in(start, end) == surveys
        query = {"start": start.isoformat(), "end": end.isoformat()}
        async with c.session.get(f"{c.sb.url}/sandbox/quality/ground-truth", params=query) as r:
            control = await r.json()
        assert control == {"evaluations": dict.fromkeys(sorted(evaluations), 1),
                           "surveys": sorted(surveys)}  # fmt: skip


async def test_two_sandboxes_of_one_seed_serve_the_same_quality() -> None:
    """The same seed gives the same quality data, built twice, and the same answers from two
    sandboxes, with re-reviews as of one clock instant too."""
    again = Dataset.build(SPEC)
    clocks = ManualClock(), ManualClock()
    async with running(clock=clocks[0], evaluation_edits_per_hour=1.0) as one, running(
        clock=clocks[1], evaluation_edits_per_hour=1.0
    ) as two:  # fmt: skip
        assert again.quality.evaluations == one.sb.dataset.quality.evaluations
        assert again.quality.surveys == one.sb.dataset.quality.surveys
        for path in (FORMS, PUBLISHED, SURVEY_FORMS, PUBLISHED_SURVEYS, "/api/v2/locations",
                     "/api/v2/flows/outcomes", "/api/v2/flows/milestones"):  # fmt: skip
            assert await walk(one, path) == await walk(two, path)
        quality = one.sb.dataset.quality
        for s in quality.surveys[:20]:
            assert one.sb.survey(s.id) == two.sb.survey(s.id)
        for clock in clocks:
            clock.advance(5 * 3600)
        for e in quality.evaluations[:40]:
            first, second = one.sb.evaluation(e.id), two.sb.evaluation(e.id)
            assert first is not None and second is not None
            for body in (first, second):  # dated by each sandbox's own wall clock
                body.pop("changedDate")
            assert first == second


async def test_flow_outcomes_in_records_resolve() -> None:
    """Every flowOutcomeId a record's flow reports is a flow outcome the listing serves."""
    async with running() as c:
        outcomes = {o["id"] for o in await walk(c, "/api/v2/flows/outcomes")}
        reported = {outcome["flowOutcomeId"] for record in records(c.sb.dataset)
                    for p in record["participants"] for s in p["sessions"]
                    for outcome in s.get("flow", {}).get("outcomes", ())}  # fmt: skip
        assert reported and reported <= outcomes

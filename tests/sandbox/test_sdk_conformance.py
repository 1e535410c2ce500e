"""Fidelity: the official Python SDK (PureCloudPlatformClientV2) works against the sandbox.

The SDK logs in with client credentials, runs a details job to the end by cursor, runs a paged
sync query, and deserialises every record: no error, no enum value it does not know (it would
silently become "outdated_sdk_version") and no field it would drop.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest

from genesys_sandbox import DatasetSpec, run_sandbox_in_thread
from tests.sandbox.support import START, normalised, settings

gc = pytest.importorskip("PureCloudPlatformClientV2")

SMALL = DatasetSpec(conversations=400, start=START, days=2, seed=23)
DAY1 = "2026-11-01T00:00:00.000Z/2026-11-02T00:00:00.000Z"


@pytest.fixture
def sdk() -> Iterator[tuple[Any, Any]]:
    """A logged-in AnalyticsApi on a private ApiClient; the SDK's global host is left as found."""
    config = gc.configuration
    saved_host = config.host
    with run_sandbox_in_thread(settings(dataset=SMALL, rate_per_minute=300)) as sb:
        client = gc.ApiClient(host=sb.url)
        client.get_client_credentials_token(sb.client_id, sb.client_secret)
        yield gc.AnalyticsApi(client), sb
    assert config.host == saved_host


def unknown_fields(raw: Any, model: Any, client: Any, path: str = "") -> list[str]:
    """Paths of JSON keys the SDK model dropped or enum values it did not recognise."""
    if isinstance(raw, dict) and isinstance(model, dict):  # a free-form map (attributes)
        return [f"{path}.{k}" for k in raw if k not in model]
    if isinstance(raw, dict):
        serialised = client.sanitize_for_serialization(model)
        problems = [f"{path}.{k}" for k in raw if k not in serialised]
        for key in raw.keys() & serialised.keys():
            value = getattr(model, model_attribute(model, key))
            problems += unknown_fields(raw[key], value, client, f"{path}.{key}")
        return problems
    if isinstance(raw, list):
        return [
            p
            for i, (r, m) in enumerate(zip(raw, model, strict=True))
            for p in unknown_fields(r, m, client, f"{path}[{i}]")
        ]
    return [path] if model == "outdated_sdk_version" else []


def model_attribute(model: Any, json_key: str) -> str:
    return next(a for a, k in model.attribute_map.items() if k == json_key)


def check_records(records: list[Any], client: Any, raw_records: list[dict[str, Any]]) -> None:
    for model, raw in zip(records, raw_records, strict=True):
        assert model.conversation_id == raw["conversationId"]
        problems = unknown_fields(raw, model, client)
        assert not problems, problems[:10]


def test_sdk_runs_a_details_job_to_the_end(sdk: tuple[Any, Any]) -> None:
    """Login, submit, poll to FULFILLED, page by cursor: the ids are the job's overlap set."""
    analytics, sb = sdk
    query = gc.AsyncConversationQuery()
    query.interval = DAY1
    job_id = analytics.post_analytics_conversations_details_jobs(query).job_id
    deadline = time.monotonic() + 20
    while (state := analytics.get_analytics_conversations_details_job(job_id).state) != "FULFILLED":
        assert state in ("QUEUED", "PENDING") and time.monotonic() < deadline
        time.sleep(0.05)
    ids, cursor, pages = [], None, 0
    while True:
        kwargs = {"page_size": 50} | ({"cursor": cursor} if cursor else {})
        page = analytics.get_analytics_conversations_details_job_results(job_id, **kwargs)
        ids += [c.conversation_id for c in page.conversations]
        assert page.data_availability_date is not None
        pages += 1
        cursor = page.cursor
        if not cursor:
            break
    data = sb.dataset
    start_ms = int(START.timestamp() * 1000)
    expected = [data.ids[i] for i in data.indices_overlapping(start_ms, start_ms + 86_400_000)]
    assert ids == expected and pages == -(-len(expected) // 50)
    assert set(ids) >= data.ids_starting_in(START, START + timedelta(days=1))


def test_sdk_deserialises_every_job_record_completely(sdk: tuple[Any, Any]) -> None:
    """Every job record becomes an AnalyticsConversation with no dropped field or unknown enum."""
    analytics, sb = sdk
    query = gc.AsyncConversationQuery()
    query.interval = "2026-11-01T00:00:00.000Z/2026-11-03T00:00:00.000Z"
    job_id = analytics.post_analytics_conversations_details_jobs(query).job_id
    while analytics.get_analytics_conversations_details_job(job_id).state != "FULFILLED":
        time.sleep(0.05)
    page = analytics.get_analytics_conversations_details_job_results(job_id, page_size=1000)
    assert page.cursor is None and len(page.conversations) == len(sb.dataset)
    raw = [orjson.loads(sb.dataset.job_record(i)) for i in range(len(sb.dataset))]
    check_records(page.conversations, analytics.api_client, raw)


def test_sdk_pages_the_sync_query(sdk: tuple[Any, Any]) -> None:
    """The sync query pages by pageNumber to the end and returns the touched-day set."""
    analytics, sb = sdk
    ids: list[str] = []
    number = 1
    while True:
        body = gc.ConversationQuery()
        body.interval = "2026-11-01T08:00:00.000Z/2026-11-01T09:00:00.000Z"
        paging = gc.PagingSpec()
        paging.page_size, paging.page_number = 100, number
        body.paging = paging
        response = analytics.post_analytics_conversations_details_query(body)
        if not response.conversations:
            break
        assert response.total_hits == len(sb.dataset.ids_starting_in(START, START + timedelta(1)))
        ids += [c.conversation_id for c in response.conversations]
        number += 1
    assert set(ids) == sb.dataset.ids_starting_in(START, START + timedelta(days=1))
    assert len(ids) == len(set(ids))


def raw_get(sb: Any, client: Any, path: str) -> Any:
    """The JSON the sandbox answers at ``path``, fetched plainly with the SDK's token."""
    request = urllib.request.Request(
        sb.url + path, headers={"Authorization": f"Bearer {client.access_token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


# (SDK API class, method, its arguments, the same request as a path)
LISTINGS = [
    ("UsersApi", "get_users",
     {"page_size": 500, "state": "any", "expand": ["team", "skills", "languages"]},
     "/api/v2/users?pageSize=500&expand=team,skills,languages&state=any"),
    ("RoutingApi", "get_routing_queues", {"page_size": 100}, "/api/v2/routing/queues?pageSize=100"),
    ("RoutingApi", "get_routing_wrapupcodes", {"page_size": 7, "page_number": 2},
     "/api/v2/routing/wrapupcodes?pageSize=7&pageNumber=2"),
    ("AuthorizationApi", "get_authorization_divisions", {}, "/api/v2/authorization/divisions"),
    ("GroupsApi", "get_groups", {}, "/api/v2/groups"),
    ("TeamsApi", "get_teams", {"page_size": 5}, "/api/v2/teams?pageSize=5"),
    ("RoutingApi", "get_routing_skills", {}, "/api/v2/routing/skills"),
    ("RoutingApi", "get_routing_languages", {}, "/api/v2/routing/languages"),
    ("PresenceApi", "get_presencedefinitions", {}, "/api/v2/presencedefinitions"),
    ("ArchitectApi", "get_flows", {"page_size": 100}, "/api/v2/flows?pageSize=100"),
    ("ArchitectApi", "get_flows_outcomes", {}, "/api/v2/flows/outcomes"),
    ("ArchitectApi", "get_flows_milestones", {"page_size": 3},
     "/api/v2/flows/milestones?pageSize=3"),
    ("LocationsApi", "get_locations", {}, "/api/v2/locations"),
    ("QualityApi", "get_quality_forms_evaluations", {}, "/api/v2/quality/forms/evaluations"),
    ("QualityApi", "get_quality_publishedforms_evaluations", {"page_size": 100},
     "/api/v2/quality/publishedforms/evaluations?pageSize=100"),
    ("QualityApi", "get_quality_forms_surveys", {}, "/api/v2/quality/forms/surveys"),
    ("QualityApi", "get_quality_publishedforms_surveys", {},
     "/api/v2/quality/publishedforms/surveys"),
    ("OrganizationApi", "get_organizations_limits_namespace", {"namespace_name": "analytics"},
     "/api/v2/organizations/limits/namespaces/analytics"),
    ("AnalyticsApi", "get_analytics_dataretention_settings", {},
     "/api/v2/analytics/dataretention/settings"),
    ("OrganizationApi", "get_organizations_me", {}, "/api/v2/organizations/me"),
    ("TokensApi", "get_tokens_me", {}, "/api/v2/tokens/me"),
]  # fmt: skip


@pytest.mark.parametrize(("api", "method", "kwargs", "path"), LISTINGS)
def test_sdk_reads_every_listing_without_losing_a_field(
    sdk: tuple[Any, Any], api: str, method: str, kwargs: dict[str, Any], path: str
) -> None:
    """The SDK's own call deserialises the listing; serialised back it is the JSON sent."""
    analytics, sb = sdk
    client = analytics.api_client
    # The SDK marks GET /api/v2/presencedefinitions deprecated (for /presence/definitions).
    deprecated = api == "PresenceApi"
    with pytest.warns(DeprecationWarning) if deprecated else contextlib.nullcontext():
        model = getattr(getattr(gc, api)(client), method)(**kwargs)
    raw = raw_get(sb, client, path)
    back = client.sanitize_for_serialization(model)
    assert normalised(back) == normalised(raw)
    assert b"outdated_sdk_version" not in orjson.dumps(back)


# (SDK API class, method, its id argument, the entities attribute, the path of one, extra
# arguments and their query)
LOOKUPS = [
    ("UsersApi", "get_user", "user_id", "agents", "/api/v2/users",
     {"expand": ["team", "skills", "languages"]}, "?expand=team,skills,languages"),
    ("RoutingApi", "get_routing_queue", "queue_id", "queues", "/api/v2/routing/queues", {}, ""),
    ("RoutingApi", "get_routing_wrapupcode", "code_id", "wrapup_codes",
     "/api/v2/routing/wrapupcodes", {}, ""),
    ("AuthorizationApi", "get_authorization_division", "division_id", "divisions",
     "/api/v2/authorization/divisions", {}, ""),
    ("GroupsApi", "get_group", "group_id", "groups", "/api/v2/groups", {}, ""),
    ("TeamsApi", "get_team", "team_id", "teams", "/api/v2/teams", {}, ""),
    ("RoutingApi", "get_routing_skill", "skill_id", "skills", "/api/v2/routing/skills", {}, ""),
    ("RoutingApi", "get_routing_language", "language_id", "languages",
     "/api/v2/routing/languages", {}, ""),
    ("PresenceApi", "get_presencedefinition", "presence_id", "presences",
     "/api/v2/presencedefinitions", {}, ""),
    ("ArchitectApi", "get_flow", "flow_id", "flows", "/api/v2/flows", {}, ""),
    ("ArchitectApi", "get_flows_outcome", "flow_outcome_id", "flow_outcomes",
     "/api/v2/flows/outcomes", {}, ""),
    ("ArchitectApi", "get_flows_milestone", "milestone_id", "flow_milestones",
     "/api/v2/flows/milestones", {}, ""),
    ("LocationsApi", "get_location", "location_id", "locations", "/api/v2/locations", {}, ""),
]  # fmt: skip


@pytest.mark.parametrize(("api", "method", "argument", "entities", "path", "kwargs", "query"),
                         LOOKUPS, ids=[row[1] for row in LOOKUPS])  # fmt: skip
def test_sdk_reads_every_entity_by_id_without_losing_a_field(
    sdk: tuple[Any, Any], api: str, method: str, argument: str, entities: str, path: str,
    kwargs: dict[str, Any], query: str,
) -> None:  # fmt: skip
    """The GET-by-id routes, by the SDK's own calls: each serialises back to the JSON sent."""
    analytics, sb = sdk
    client = analytics.api_client
    entity = next(e for e in getattr(sb.dataset.entities, entities)
                  if getattr(e, "state", "active") == "active")  # fmt: skip
    deprecated = api == "PresenceApi"  # as its listing
    with pytest.warns(DeprecationWarning) if deprecated else contextlib.nullcontext():
        model = getattr(getattr(gc, api)(client), method)(**{argument: entity.id}, **kwargs)
    raw = raw_get(sb, client, f"{path}/{entity.id}{query}")
    assert raw["id"] == entity.id
    assert normalised(client.sanitize_for_serialization(model)) == normalised(raw)


def test_sdk_reads_queue_members_without_losing_a_field(sdk: tuple[Any, Any]) -> None:
    """QueueMemberEntityListing: members with their users, by the SDK's own call."""
    analytics, sb = sdk
    client = analytics.api_client
    queue = sb.dataset.entities.queues[3].id
    model = gc.RoutingApi(client).get_routing_queue_members(queue, page_size=100)
    raw = raw_get(sb, client, f"/api/v2/routing/queues/{queue}/members?pageSize=100")
    assert raw["entities"] and normalised(client.sanitize_for_serialization(model)) == normalised(
        raw
    )


def raw_post(sb: Any, client: Any, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        sb.url + path, data=orjson.dumps(body), method="POST",
        headers={"Authorization": f"Bearer {client.access_token}",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


def test_sdk_reads_user_details_job_results_without_losing_a_field(sdk: tuple[Any, Any]) -> None:
    """AnalyticsUserDetailsAsyncQueryResponse: every page, by the SDK's own calls, serialises
    back to the JSON the sandbox sent, presence and routing enums known to the SDK."""
    analytics, sb = sdk
    client = analytics.api_client
    query = gc.AsyncUserDetailsQuery()
    query.interval = "2026-11-01T00:00:00.000Z/2026-11-03T00:00:00.000Z"
    job_id = analytics.post_analytics_users_details_jobs(query).job_id
    while analytics.get_analytics_users_details_job(job_id).state != "FULFILLED":
        time.sleep(0.05)
    assert analytics.get_analytics_users_details_jobs_availability().data_availability_date
    cursor, statuses = None, 0
    while True:
        kwargs = {"page_size": 100} | ({"cursor": cursor} if cursor else {})
        page = analytics.get_analytics_users_details_job_results(job_id, **kwargs)
        path = f"/api/v2/analytics/users/details/jobs/{job_id}/results?pageSize=100"
        raw = raw_get(sb, client, path + (f"&cursor={cursor}" if cursor else ""))
        back = client.sanitize_for_serialization(page)
        # The watermark moves with the clock between the two reads.
        assert back.pop("dataAvailabilityDate") and raw.pop("dataAvailabilityDate")
        assert normalised(back) == normalised(raw)
        assert b"outdated_sdk_version" not in orjson.dumps(back)
        statuses += sum(len(e.primary_presence or []) for e in page.user_details)
        cursor = page.cursor
        if not cursor:
            break
    assert statuses > 100


def test_sdk_reads_the_user_details_query_without_losing_a_field(sdk: tuple[Any, Any]) -> None:
    analytics, sb = sdk
    client = analytics.api_client
    body = gc.UserDetailsQuery()
    body.interval = "2026-11-01T00:00:00.000Z/2026-11-02T00:00:00.000Z"
    paging = gc.PagingSpec()
    paging.page_size, paging.page_number = 50, 2
    body.paging = paging
    model = analytics.post_analytics_users_details_query(body)
    raw = raw_post(sb, client, "/api/v2/analytics/users/details/query",
                   client.sanitize_for_serialization(body))  # fmt: skip
    back = client.sanitize_for_serialization(model)
    assert raw["userDetails"] and normalised(back) == normalised(raw)
    assert b"outdated_sdk_version" not in orjson.dumps(back)


def test_sdk_reads_every_form_version_by_id_without_losing_a_field(sdk: tuple[Any, Any]) -> None:
    """EvaluationFormResponse and SurveyForm, drafts and published versions, by the SDK's own
    calls: each serialises back to the JSON the sandbox sent."""
    analytics, sb = sdk
    client = analytics.api_client
    quality = gc.QualityApi(client)
    calls = [
        (quality.get_quality_forms_evaluation, "forms/evaluations", f.draft)
        for f in sb.dataset.quality.evaluation_forms
    ]
    calls += [
        (quality.get_quality_publishedforms_evaluation, "publishedforms/evaluations", v)
        for f in sb.dataset.quality.evaluation_forms
        for v in f.published
    ]
    calls += [
        (quality.get_quality_forms_survey, "forms/surveys", f.draft)
        for f in sb.dataset.quality.survey_forms
    ]
    calls += [(quality.get_quality_publishedforms_survey, "publishedforms/surveys", v)
              for f in sb.dataset.quality.survey_forms for v in f.published]  # fmt: skip
    for call, path, version in calls:
        model = call(version.id)
        raw = raw_get(sb, client, f"/api/v2/quality/{path}/{version.id}")
        assert raw["id"] == version.id and raw["questionGroups"]
        assert normalised(client.sanitize_for_serialization(model)) == normalised(raw)


@pytest.mark.parametrize("expand", ["", "agent,assignee,evaluator,evaluationForm"])
def test_sdk_reads_evaluations_and_surveys_without_losing_a_field(
    sdk: tuple[Any, Any], expand: str
) -> None:
    """EvaluationResponse (plain and expanded) and Survey, every one of the data, by the
    SDK's own calls: no dropped field, no enum value the SDK does not know."""
    analytics, sb = sdk
    client = analytics.api_client
    quality = gc.QualityApi(client)
    for e in sb.dataset.quality.evaluations:
        model = quality.get_quality_conversation_evaluation(
            e.conversation_id, e.id, **({"expand": expand} if expand else {})
        )
        path = f"/api/v2/quality/conversations/{e.conversation_id}/evaluations/{e.id}"
        raw = raw_get(sb, client, path + (f"?expand={expand}" if expand else ""))
        back = client.sanitize_for_serialization(model)
        assert normalised(back) == normalised(raw), unknown_fields(raw, model, client)
        assert b"outdated_sdk_version" not in orjson.dumps(back)
    for s in sb.dataset.quality.surveys:
        model = quality.get_quality_survey(s.id)
        raw = raw_get(sb, client, f"/api/v2/quality/surveys/{s.id}")
        back = client.sanitize_for_serialization(model)
        assert normalised(back) == normalised(raw), unknown_fields(raw, model, client)
        assert b"outdated_sdk_version" not in orjson.dumps(back)


WFM = "/api/v2/workforcemanagement"


def test_sdk_reads_the_workforce_units_without_losing_a_field(sdk: tuple[Any, Any]) -> None:
    """Business units, management units (with settings), a unit's users and activity codes,
    by the SDK's own calls: each serialises back to the JSON sent."""
    analytics, sb = sdk
    client = analytics.api_client
    wfm = gc.WorkforceManagementApi(client)
    bu = raw_get(sb, client, f"{WFM}/businessunits")["entities"][0]["id"]
    mu = raw_get(sb, client, f"{WFM}/businessunits/{bu}/managementunits")["entities"][0]["id"]
    calls = [
        (wfm.get_workforcemanagement_businessunits, {}, "/businessunits"),
        (wfm.get_workforcemanagement_businessunit,
         {"business_unit_id": bu, "expand": ["settings"]}, f"/businessunits/{bu}?expand=settings"),
        (wfm.get_workforcemanagement_businessunit_managementunits, {"business_unit_id": bu},
         f"/businessunits/{bu}/managementunits"),
        (wfm.get_workforcemanagement_businessunit_activitycodes, {"business_unit_id": bu},
         f"/businessunits/{bu}/activitycodes"),
        (wfm.get_workforcemanagement_managementunit,
         {"management_unit_id": mu, "expand": ["settings"]},
         f"/managementunits/{mu}?expand=settings"),
        (wfm.get_workforcemanagement_managementunit_users, {"management_unit_id": mu},
         f"/managementunits/{mu}/users"),
    ]  # fmt: skip
    for call, kwargs, path in calls:
        raw = raw_get(sb, client, WFM + path)
        back = client.sanitize_for_serialization(call(**kwargs))
        assert normalised(back) == normalised(raw), path
        assert b"outdated_sdk_version" not in orjson.dumps(back), path


def test_sdk_reads_a_schedule_search_inline_and_downloaded_without_losing_a_field(
    sdk: tuple[Any, Any],
) -> None:
    """The schedule search by the SDK's own call (one unit answers inline, the other by a
    link): the answer and the downloaded result each serialise back to the JSON sent."""
    analytics, sb = sdk
    client = analytics.api_client
    wfm = gc.WorkforceManagementApi(client)
    body = {"startDate": "2026-11-01T04:00:00.000Z", "endDate": "2026-11-02T05:00:00.000Z"}
    shapes = set()
    for unit in raw_get(sb, client, f"{WFM}/businessunits")["entities"]:
        request = gc.BuSearchAgentSchedulesRequest()
        request.start_date, request.end_date = body["startDate"], body["endDate"]
        model = wfm.post_workforcemanagement_businessunit_agentschedules_search(unit["id"], request)
        raw = raw_post(sb, client, f"{WFM}/businessunits/{unit['id']}/agentschedules/search", body)
        back = client.sanitize_for_serialization(model)
        if "downloadUrl" in raw:
            shapes.add("download")
            with urllib.request.urlopen(raw["downloadUrl"], timeout=10) as response:
                raw = orjson.loads(response.read())
            model = client._ApiClient__deserialize(raw, "BuAgentSchedulesSearchResponse")
            back = client.sanitize_for_serialization(model)
        else:
            shapes.add("inline")
            back.pop("downloadUrl", None)
        assert raw and normalised(back) == normalised(raw), unit["name"]
        assert b"outdated_sdk_version" not in orjson.dumps(back)
    assert shapes == {"inline", "download"}


def test_sdk_reads_an_adherence_job_and_its_result_without_losing_a_field(
    sdk: tuple[Any, Any],
) -> None:
    """The bulk adherence job by the SDK's own calls (submit, status), and its downloaded
    result as WfmHistoricalAdherenceBulkResult: each serialises back to the JSON sent."""
    analytics, sb = sdk
    client = analytics.api_client
    wfm = gc.WorkforceManagementApi(client)
    bu = raw_get(sb, client, f"{WFM}/businessunits")["entities"][0]["id"]
    mu = raw_get(sb, client, f"{WFM}/businessunits/{bu}/managementunits")["entities"][0]["id"]
    item = gc.WfmHistoricalAdherenceBulkItem()
    item.management_unit_id, item.include_exceptions, item.include_actuals = mu, True, True
    item.start_date, item.end_date = "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"
    query = gc.WfmHistoricalAdherenceBulkQuery()
    query.time_zone, query.items = "America/New_York", [item]
    job = wfm.post_workforcemanagement_adherence_historical_bulk(query).job
    deadline = time.monotonic() + 20
    while (
        model := wfm.get_workforcemanagement_adherence_historical_bulk_job(job.id)
    ).job.status != "Complete":
        assert model.job.status == "Processing" and time.monotonic() < deadline
        time.sleep(0.1)
    raw = raw_get(sb, client, f"{WFM}/adherence/historical/bulk/jobs/{job.id}")
    back = client.sanitize_for_serialization(model)
    assert normalised({**back, "downloadUrls": []}) == normalised({**raw, "downloadUrls": []})
    with urllib.request.urlopen(model.download_urls[0], timeout=10) as response:
        result = orjson.loads(response.read())
    parsed = client._ApiClient__deserialize(result, "WfmHistoricalAdherenceBulkResult")
    assert result["userResults"]
    assert normalised(client.sanitize_for_serialization(parsed)) == normalised(result)

"""Entity listings: envelopes, the three paging styles, page-size clamps, filters, expand,
permissions, org limits, data retention, and drift with its ground truth."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from genesys_sandbox import FaultRule, ManualClock
from tests.sandbox.support import Client, error_of, running

USERS = "/api/v2/users"
QUEUES = "/api/v2/routing/queues"
TEAMS = "/api/v2/teams"
NUMBERED = {
    "queues": QUEUES,
    "wrapup-codes": "/api/v2/routing/wrapupcodes",
    "divisions": "/api/v2/authorization/divisions",
    "groups": "/api/v2/groups",
    "skills": "/api/v2/routing/skills",
    "languages": "/api/v2/routing/languages",
    "presence-definitions": "/api/v2/presencedefinitions",
    "flows": "/api/v2/flows",
    "flow-outcomes": "/api/v2/flows/outcomes",
    "flow-milestones": "/api/v2/flows/milestones",
    "locations": "/api/v2/locations",
}
NAV = {"firstUri", "selfUri", "nextUri", "previousUri", "lastUri"}


async def get(c: Client, path: str, **params: Any) -> dict[str, Any]:
    reply = await c.call("GET", path, params={k: str(v) for k, v in params.items()})
    assert reply.status == 200, reply.body
    return dict(reply.json())


async def walk_numbered(c: Client, path: str, size: int, **params: Any) -> list[dict[str, Any]]:
    """Every entity of a pageNumber listing, by pageNumber until nextUri is absent."""
    entities, number = [], 1
    while True:
        page = await get(c, path, pageSize=size, pageNumber=number, **params)
        entities += page["entities"]
        if "nextUri" not in page:
            return entities
        number += 1


async def test_users_page_by_number_with_totals_and_navigation() -> None:
    """Users page by pageNumber with total, pageCount and the five navigation URIs."""
    async with running() as c:
        active = [u for u in c.sb.dataset.entities.users if u.state == "active"]
        first = await get(c, USERS, pageSize=100)
        assert (first["pageSize"], first["pageNumber"], first["total"]) == (100, 1, len(active))
        assert first["pageCount"] == -(-len(active) // 100) == 3
        assert "previousUri" not in first and first["nextUri"] == (
            f"{USERS}?pageSize=100&pageNumber=2"
        )
        last = await get(c, USERS, pageSize=100, pageNumber=3)
        assert "nextUri" not in last and last["lastUri"].endswith("pageNumber=3")
        assert last["previousUri"].endswith("pageNumber=2")
        default = await get(c, USERS)
        assert default["pageSize"] == 25 and default["entities"] == first["entities"][:25]
        names = [u["name"].casefold() for u in await walk_numbered(c, USERS, 100)]
        assert names == sorted(names) and len(names) == len(active)


async def test_past_the_last_page_is_empty_without_next_uri() -> None:
    """A pageNumber past the end answers empty entities and no nextUri."""
    async with running() as c:
        page = await get(c, USERS, pageSize=100, pageNumber=9)
        assert page["entities"] == [] and "nextUri" not in page and page["pageNumber"] == 9


async def test_a_page_size_above_the_maximum_is_served_at_the_maximum() -> None:
    """pageSize beyond listing_max_page_size is served at the maximum, which the page reports;
    a pageSize that is not a positive integer is 400 invalid.query.param.value."""
    async with running(listing_max_page_size=40) as c:
        page = await get(c, USERS, pageSize=1000)
        assert page["pageSize"] == 40 and len(page["entities"]) == 40
        assert page["nextUri"] == f"{USERS}?pageSize=40&pageNumber=2"
        for bad in ("0", "ten"):
            reply = await c.call("GET", USERS, params={"pageSize": bad})
            assert reply.status == 400 and error_of(reply)["code"] == "invalid.query.param.value"


async def test_user_state_filter_and_its_uris() -> None:
    """state=active is the default; inactive, deleted and any select by state; URIs keep it."""
    async with running() as c:
        users = c.sb.dataset.entities.users
        for state in ("inactive", "deleted"):
            page = await get(c, USERS, pageSize=500, state=state)
            assert {u["id"] for u in page["entities"]} == {u.id for u in users if u.state == state}
            assert page["selfUri"] == f"{USERS}?pageSize=500&pageNumber=1&state={state}"
        everyone = await get(c, USERS, pageSize=500, state="any")
        assert everyone["total"] == len(users) > (await get(c, USERS))["total"]
        bad = await c.call("GET", USERS, params={"state": "retired"})
        assert bad.status == 400 and error_of(bad)["code"] == "invalid.query.param.value"


async def test_expand_adds_team_skills_and_languages_best_effort() -> None:
    """expand=team,skills,languages (comma-separated or repeated) adds them; unknown is ignored."""
    async with running() as c:
        plain = (await get(c, USERS, pageSize=500))["entities"]
        assert not any({"team", "skills", "languages"} & u.keys() for u in plain)
        params = [("pageSize", "500"), ("expand", "team,skills"), ("expand", "languages,bogus")]
        reply = await c.call("GET", USERS, params=params)
        expanded = {u["id"]: u for u in reply.json()["entities"]}
        agents = c.sb.dataset.entities.agents
        teams = {t.id: t.name for t in c.sb.dataset.entities.teams}
        for agent in agents:
            if agent.state != "active":
                continue
            user = expanded[agent.id]
            assert (
                user["team"]["id"] == agent.team_id and user["team"]["name"] == teams[agent.team_id]
            )
            assert [(s["id"], s["proficiency"]) for s in user["skills"]] == list(agent.skills)
            assert [lang["id"] for lang in user["languages"]] == [i for i, _ in agent.languages]
        assert "bogus" not in next(iter(expanded.values()))


@pytest.mark.parametrize("route", sorted(NUMBERED))
async def test_every_numbered_listing_pages_its_entities(route: str) -> None:
    """Each pageNumber listing serves exactly the org's entities in name order, with totals."""
    async with running() as c:
        e = c.sb.dataset.entities
        expected = {
            "queues": e.queues, "wrapup-codes": e.wrapup_codes, "divisions": e.divisions,
            "groups": e.groups, "skills": e.skills, "languages": e.languages,
            "presence-definitions": e.presences, "flows": e.flows,
            "flow-outcomes": e.flow_outcomes, "flow-milestones": e.flow_milestones,
            "locations": e.locations,
        }[route]  # fmt: skip
        path = NUMBERED[route]
        entities = await walk_numbered(c, path, 5)
        assert sorted(x["id"] for x in entities) == sorted(x.id for x in expected)
        names = [x.get("name", x.get("languageLabels", {}).get("en_US", "")) for x in entities]
        assert [n.casefold() for n in names] == sorted(n.casefold() for n in names)
        first = await get(c, path, pageSize=2)
        assert first["total"] == len(expected) and first["pageCount"] == -(-len(expected) // 2)
        assert NAV - {"previousUri"} <= first.keys() and c.sb.stats().count(route, 200) >= 2


async def test_queue_members_page_by_number_and_next_uri_only() -> None:
    """Members: pageNumber and nextUri, no total/pageCount/lastUri; at most 100 a page;
    deleted users left out; an unknown queue is 404."""
    async with running(queue_members_max_page_size=3) as c:
        e = c.sb.dataset.entities
        queue = e.queues[0]
        states = {u.id: u.state for u in e.users}
        path = f"{QUEUES}/{queue.id}/members"
        page = await get(c, path, pageSize=50)
        assert page["pageSize"] == 3 and not {"total", "pageCount", "lastUri"} & page.keys()
        assert page["nextUri"] == f"{path}?pageSize=3&pageNumber=2"
        members = await walk_numbered(c, path, 3)
        expected = {m for m in queue.member_ids if states[m] != "deleted"}
        assert {m["id"] for m in members} == expected and len(members) == len(expected)
        assert all(m["joined"] == (states[m["id"]] == "active") for m in members)
        assert all(m["user"]["id"] == m["id"] for m in members)
        missing = await c.call("GET", f"{QUEUES}/00000000-0000-4000-8000-000000000000/members")
        assert missing.status == 404 and error_of(missing)["code"] == "not.found"
    async with running() as c:
        assert (await get(c, path, pageSize=500))["pageSize"] == 100


async def test_teams_page_by_an_after_cursor() -> None:
    """Teams follow nextUri's after cursor to the end; no pageNumber, no total; a bad cursor 400."""
    async with running() as c:
        teams, params = [], {"pageSize": "5"}
        while True:
            page = (await c.call("GET", TEAMS, params=params)).json()
            assert not {"pageNumber", "total", "pageCount"} & page.keys()
            teams += page["entities"]
            if "nextUri" not in page:
                break
            assert page["nextUri"].startswith(f"{TEAMS}?pageSize=5&after=")
            params["after"] = page["nextUri"].rsplit("after=", 1)[1]
        expected = c.sb.dataset.entities.teams
        assert sorted(t["id"] for t in teams) == sorted(t.id for t in expected)
        assert teams[0]["memberCount"] > 0
        bad = await c.call("GET", TEAMS, params={"after": "not-a-cursor"})
        assert bad.status == 400 and error_of(bad)["code"] == "bad.request"


async def test_org_limits_and_data_retention() -> None:
    """Analytics limits report the sandbox's job cap; an unknown namespace is 404; retention
    reports retention_days."""
    async with running(max_concurrent_jobs=4, retention_days=400) as c:
        limits = await get(c, "/api/v2/organizations/limits/namespaces/analytics")
        assert {"key": "details.jobs.concurrent.access.max", "namespace": "analytics",
                "value": 4} in limits["entities"]  # fmt: skip
        platform = await get(c, "/api/v2/organizations/limits/namespaces/platform.api")
        assert all(x["namespace"] == "platform.api" for x in platform["entities"])
        nowhere = await c.call("GET", "/api/v2/organizations/limits/namespaces/nowhere")
        assert nowhere.status == 404
        retention = await get(c, "/api/v2/analytics/dataretention/settings")
        assert retention["retentionDays"] == 400 and "dateCreated" in retention


async def test_denied_permissions_refuse_only_routes_left_without_any() -> None:
    """Denying routing:queue:view refuses queues and members 403 naming it; the rest serve."""
    async with running(denied_permissions=("routing:queue:view", "groups:team:view")) as c:
        queue = c.sb.dataset.entities.queues[0].id
        for path in (QUEUES, f"{QUEUES}/{queue}/members", TEAMS):
            reply = await c.call("GET", path)
            body = error_of(reply)
            assert reply.status == 403 and body["code"] == "missing.any.permissions", path
        assert "routing:queue:view" in error_of(await c.call("GET", QUEUES))["message"]
        for path in (USERS, "/api/v2/routing/wrapupcodes", "/api/v2/flows"):
            assert (await c.call("GET", path)).status == 200
        stats = c.sb.stats()
        assert stats.count("queues", 403) == 2 and stats.count("teams", 403) == 1


async def walk_drifting(c: Client, clock: ManualClock, path: str, **params: Any) -> list[str]:
    """Ids seen paging ``path`` by pageNumber (pageSize 10), the clock moving 1 s a page."""
    ids, number = [], 1
    while True:
        clock.advance(1)
        page = await get(c, path, pageSize=10, pageNumber=number, **params)
        ids += [e["id"] for e in page["entities"]]
        if "nextUri" not in page:
            return ids
        number += 1


async def test_drift_shifts_pages_both_ways_and_the_truth_says_what_was_there() -> None:
    """With drift on every page, paging by number both repeats and misses entities; the truth
    holds every base user throughout, and everything seen was present at some point."""
    clock = ManualClock()
    async with running(clock=clock, listing_drift=1.0) as c:
        t0 = c.sb.now()
        seen = await walk_drifting(c, clock, USERS, state="any")
        truth = c.sb.listing_truth("users", t0, c.sb.now())
        base = {u.id for u in c.sb.dataset.entities.users}
        assert truth.present_throughout == base
        assert set(seen) <= truth.ever_present and truth.ever_present > base
        assert len(seen) > len(set(seen)), "a creation before the offset repeats an entity"
        assert base - set(seen), "a deletion before the offset misses one"


async def test_drift_deletes_only_what_it_created_and_keeps_a_history() -> None:
    """Each drift deletes an earlier drift entity and creates one: the count stays base + 1,
    and the history (also at /sandbox/listings/...) lists every event on the clock."""
    clock = ManualClock()
    async with running(clock=clock, listing_drift=1.0) as c:
        base = {q.id for q in c.sb.dataset.entities.queues}
        for _ in range(5):
            clock.advance(10)
            page = await get(c, QUEUES, pageSize=100)
            assert page["total"] == len(base) + 1 and base <= {q["id"] for q in page["entities"]}
        clock.advance(5)  # off the last drift's instant: the interval is closed
        t0 = c.sb.now()
        clock.advance(5)
        await get(c, QUEUES)
        truth = c.sb.listing_truth("queues", t0, c.sb.now())
        assert len(truth.ever_present) == len(base) + 2  # the one deleted and the one created
        assert len(truth.present_throughout) == len(base)  # neither lasted the whole interval
        wall = c.sb.state.clock.wall
        query = {"start": wall(t0).isoformat(), "end": wall(c.sb.now()).isoformat()}
        async with c.session.get(f"{c.sb.url}/sandbox/listings/queues/ground-truth",
                                 params=query) as r:  # fmt: skip
            served = await r.json()
        assert set(served["ever_present"]) == truth.ever_present
        assert set(served["present_throughout"]) == truth.present_throughout
        events = [h["event"] for h in served["history"]]
        assert events.count("created") == 6 and events.count("deleted") == 5


@pytest.mark.parametrize("route", sorted(NUMBERED))
async def test_drift_creates_entities_every_listing_can_serve(route: str) -> None:
    """Drift on every page of each numbered listing: each page is served (a created division
    names itself), one drift entity alive beside the base ones."""
    async with running(listing_drift=1.0) as c:
        base = len(c.sb.state.listings[route].entities)
        for _ in range(3):
            page = await get(c, NUMBERED[route], pageSize=100)
            assert page["total"] == base + 1 and len(page["entities"]) == base + 1


async def test_cursor_paging_sees_every_lasting_team_exactly_once_under_drift() -> None:
    """Teams page by keyset, so drift never shifts them: each lasting team comes once."""
    clock = ManualClock()
    async with running(clock=clock, listing_drift=1.0) as c:
        t0, seen, params = c.sb.now(), [], {"pageSize": "2"}
        while True:
            clock.advance(1)
            page = (await c.call("GET", TEAMS, params=params)).json()
            seen += [t["id"] for t in page["entities"]]
            if "nextUri" not in page:
                break
            params["after"] = page["nextUri"].rsplit("after=", 1)[1]
        truth = c.sb.listing_truth("teams", t0, c.sb.now())
        lasting = [t for t in seen if t in truth.present_throughout]
        assert sorted(lasting) == sorted(truth.present_throughout)
        assert set(seen) <= truth.ever_present


async def test_without_drift_listings_stand_still() -> None:
    """listing_drift=0 (the default): the same walk twice gives the same ids, no history."""
    async with running() as c:
        first = await walk_numbered(c, USERS, 50, state="any")
        assert first == await walk_numbered(c, USERS, 50, state="any")
        assert c.sb.state.listings["users"].history() == []


@pytest.mark.parametrize(
    ("route", "path"),
    [("queue-members", "members"), ("teams", TEAMS), ("flows", NUMBERED["flows"]),
     ("org-limits", "/api/v2/organizations/limits/namespaces/analytics")],
)  # fmt: skip
async def test_shared_faults_hit_the_listing_routes(route: str, path: str) -> None:
    """status, truncate and drop faults fire on a listing route by name, counted as such."""
    async with running() as c:
        if path == "members":
            path = f"{QUEUES}/{c.sb.dataset.entities.queues[0].id}/members"
        await c.login()
        c.sb.add_fault(FaultRule("status", status=503, routes=(route,), count=1))
        c.sb.add_fault(FaultRule("truncate", routes=(route,), count=1))
        # Unbounded: aiohttp retries a GET once when a reused connection drops.
        c.sb.add_fault(FaultRule("drop", routes=(route,)))
        assert (await c.call("GET", path)).status == 503
        truncated = await c.call("GET", path)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(truncated.body)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await c.call("GET", path)
        c.sb.clear_faults()
        assert (await c.call("GET", path)).status == 200
        stats = c.sb.stats()
        assert stats.faults_injected["status"] == stats.faults_injected["truncate"] == 1
        assert stats.count(route, 503) == 1 and stats.count(route, 200) == 2
        assert stats.count(route, 0) == stats.faults_injected["drop"] >= 1


# (route, path) of every listing with a GET-by-id route: all but queue members.
LOOKUPS = {"users": USERS, **NUMBERED, "teams": TEAMS}


@pytest.mark.parametrize("route", sorted(LOOKUPS))
async def test_every_listing_answers_by_id_with_the_listings_json(route: str) -> None:
    """GET <listing>/{id} answers each entity exactly as the listing does (expand too); an id
    the listing does not hold is 404 not.found in the ErrorBody envelope, counted by name."""
    async with running() as c:
        path = LOOKUPS[route]
        params = {"state": "any", "expand": "team,skills,languages"} if route == "users" else {}
        listed = (await get(c, path, pageSize=500, **params))["entities"]
        lookup = {"expand": "team,skills,languages"} if route == "users" else {}
        for entity in listed[:5]:
            state = {"state": "deleted"} if entity.get("state") == "deleted" else {}
            assert await get(c, f"{path}/{entity['id']}", **lookup, **state) == entity
        missing = await c.call("GET", f"{path}/00000000-0000-4000-8000-000000000000")
        assert missing.status == 404 and error_of(missing)["code"] == "not.found"
        assert c.sb.stats().count(f"{route}.by-id", 404) == 1


async def test_a_user_by_id_is_found_by_its_state() -> None:
    """state=active (the default) finds active and inactive users, state=deleted the deleted
    ones; each is 404 under the other; another state is 400."""
    async with running() as c:
        users = {u.state: u.id for u in c.sb.dataset.entities.users}
        for state, user in users.items():
            deleted = state == "deleted"
            found = await c.call("GET", f"{USERS}/{user}")
            assert found.status == (404 if deleted else 200), state
            as_deleted = await c.call("GET", f"{USERS}/{user}", params={"state": "deleted"})
            assert as_deleted.status == (200 if deleted else 404), state
        bad = await c.call("GET", f"{USERS}/{users['active']}", params={"state": "any"})
        assert bad.status == 400 and error_of(bad)["code"] == "invalid.query.param.value"


@pytest.mark.parametrize("refused", [("users",), ("*",)])
async def test_a_listing_can_refuse_an_over_large_page_size(refused: tuple[str, ...]) -> None:
    """Routes named in listing_refuse_oversize ("*": all) answer a pageSize over the maximum
    with 400 invalid.query.param.value naming the allowed range, in the message and its
    parameters; others still serve it at the maximum; the maximum itself is served."""
    async with running(listing_max_page_size=40, listing_refuse_oversize=refused) as c:
        reply = await c.call("GET", USERS, params={"pageSize": "500"})
        body = error_of(reply)
        assert reply.status == 400 and body["code"] == "invalid.query.param.value"
        assert body["message"] == (
            "Value [500] is not valid for parameter [pageSize]. Allowable values are: 1-40"
        )
        assert body["messageParams"] == {"value": "500", "parameter": "pageSize", "allowed": "1-40"}
        assert (await get(c, USERS, pageSize=40))["pageSize"] == 40
        queues = await c.call("GET", QUEUES, params={"pageSize": "500"})
        assert queues.status == (400 if refused == ("*",) else 200)


@pytest.mark.parametrize("route", ["users", "queues", "teams", "queue-members"])
async def test_empty_listing_answers_a_page_with_nothing(route: str) -> None:
    """empty-listing: one page is 200 with no entities, as an empty listing pages (total and
    pageCount 0 where the listing reports them, no nextUri); the next page is whole again."""
    async with running() as c:
        path = {"users": USERS, "queues": QUEUES, "teams": TEAMS}.get(route)
        path = path or f"{QUEUES}/{c.sb.dataset.entities.queues[0].id}/members"
        c.sb.add_fault(FaultRule("empty-listing", count=1))
        empty = await get(c, path, pageSize=5)
        assert empty["entities"] == [] and "nextUri" not in empty
        if route in ("users", "queues"):
            assert (empty["total"], empty["pageCount"]) == (0, 0)
        assert len((await get(c, path, pageSize=5))["entities"]) == 5
        assert c.sb.stats().faults_injected == {"empty-listing": 1}


@pytest.mark.parametrize("route", ["users", "teams", "queue-members"])
async def test_next_uri_loop_points_a_page_back_at_itself(route: str) -> None:
    """next-uri-loop: a page's nextUri is its own selfUri, on every listing style."""
    async with running() as c:
        path = {"users": USERS, "teams": TEAMS}.get(route)
        path = path or f"{QUEUES}/{c.sb.dataset.entities.queues[0].id}/members"
        c.sb.add_fault(FaultRule("next-uri-loop"))
        page = await get(c, path, pageSize=2)
        assert page["entities"] and page["nextUri"] == page["selfUri"]
        assert page["selfUri"].startswith(f"{path}?pageSize=2")


async def test_entity_deleted_removes_a_queue_between_two_reads() -> None:
    """entity-deleted on queue members: the queue is deleted just before, so the answer is
    404, the queue leaves its listing and its GET-by-id, and the truth records it."""
    async with running() as c:
        queue = c.sb.dataset.entities.queues[2].id
        t0 = c.sb.now()
        c.sb.add_fault(FaultRule("entity-deleted", routes=("queue-members",), count=1))
        gone = await c.call("GET", f"{QUEUES}/{queue}/members")
        assert gone.status == 404 and error_of(gone)["code"] == "not.found"
        assert queue not in {q["id"] for q in (await get(c, QUEUES, pageSize=100))["entities"]}
        assert (await c.call("GET", f"{QUEUES}/{queue}")).status == 404
        assert (await c.call("GET", f"{QUEUES}/{queue}/members")).status == 404
        truth = c.sb.listing_truth("queues", t0, c.sb.now())
        assert queue in truth.ever_present and queue not in truth.present_throughout


async def test_entity_deleted_on_a_lookup_answers_404() -> None:
    """entity-deleted on a GET-by-id route: the entity named is deleted, then 404."""
    async with running() as c:
        skill = c.sb.dataset.entities.skills[0].id
        c.sb.add_fault(FaultRule("entity-deleted", count=1))
        assert (await c.call("GET", f"/api/v2/routing/skills/{skill}")).status == 404
        assert c.sb.state.listings["skills"].find(skill) is None


async def test_cursor_rejected_hits_the_teams_after_cursor() -> None:
    """cursor-rejected on teams: the first page passes, a page asked with an after cursor is
    400 bad.request (once here), the same page again is served."""
    async with running() as c:
        c.sb.add_fault(FaultRule("cursor-rejected", count=1))
        first = await get(c, TEAMS, pageSize=5)
        params = {"pageSize": "5", "after": first["nextUri"].rsplit("after=", 1)[1]}
        refused = await c.call("GET", TEAMS, params=params)
        assert refused.status == 400 and error_of(refused)["code"] == "bad.request"
        assert error_of(refused)["message"] == "The after cursor is not valid."
        assert (await c.call("GET", TEAMS, params=params)).status == 200
        assert c.sb.stats().faults_injected == {"cursor-rejected": 1}

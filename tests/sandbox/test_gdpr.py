"""The org's GDPR requests: the listing and the request by id, their permission, subjects that
are real customers of the served conversations, the ground truth of where their values are,
the control endpoints that add and complete a request, and the official SDK reading them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest

from genesys_sandbox import run_sandbox_in_thread
from genesys_sandbox.orgdata import PEOPLE
from tests.sandbox.support import START, Client, error_of, normalised, running, settings

REQUESTS = "/api/v2/gdpr/requests"
CONTROL = "/sandbox/gdpr/requests"
WHOLE_RANGE = "2026-11-01T00:00:00.000Z/2026-11-04T00:00:00.000Z"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
E164 = re.compile(r"\+1\d{10}")


async def get(c: Client, path: str, **params: Any) -> dict[str, Any]:
    reply = await c.call("GET", path, params={k: str(v) for k, v in params.items()})
    assert reply.status == 200, reply.body
    return dict(reply.json())


async def walk(c: Client, size: int) -> list[dict[str, Any]]:
    """Every request of the listing, by pageNumber until nextUri is absent."""
    requests, number = [], 1
    while True:
        page = await get(c, REQUESTS, pageSize=size, pageNumber=number)
        requests += page["entities"]
        if "nextUri" not in page:
            return requests
        number += 1


async def control(c: Client, method: str, path: str, body: Any = None) -> Any:
    """A control endpoint's reply (no token: they are not part of the API)."""
    return await c.call(method, path, json=body, authorization=None)


def strings(value: Any) -> Iterator[str]:
    """Every string value in a JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def values_of(subject: dict[str, Any]) -> set[str]:
    """A subject's values as records spell them: phone numbers as tel: URIs."""
    names = {subject["name"]} if "name" in subject else set()
    return names | {f"tel:{n}" for n in subject["phoneNumbers"]} | set(subject["emailAddresses"])


def customer(record: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in record["participants"] if p["purpose"] in ("customer", "external"))


async def test_the_listing_pages_every_request_once_and_each_reads_by_id() -> None:
    """Four requests by default (two completed deletes, one initiated delete, one completed
    export), each once whatever the page size, in the numbered envelope; by id as listed,
    404 not.found for an unknown id."""
    async with running() as c:
        first = await get(c, REQUESTS, pageSize=3)
        assert (first["total"], first["pageCount"], first["pageSize"]) == (4, 2, 3)
        assert first["nextUri"] == f"{REQUESTS}?pageSize=3&pageNumber=2"
        assert first["lastUri"] == f"{REQUESTS}?pageSize=3&pageNumber=2"
        assert first["selfUri"] == f"{REQUESTS}?pageSize=3&pageNumber=1"
        listed = {size: await walk(c, size) for size in (1, 3, 25)}
        assert listed[1] == listed[3] == listed[25] and len({r["id"] for r in listed[1]}) == 4
        kinds = Counter((r["requestType"], r["status"]) for r in listed[1])
        assert kinds == {("GDPR_DELETE", "COMPLETED"): 2, ("GDPR_DELETE", "INITIATED"): 1,
                         ("GDPR_EXPORT", "COMPLETED"): 1}  # fmt: skip
        for request in listed[1]:
            assert await get(c, f"{REQUESTS}/{request['id']}") == request
            assert ("resultsUrl" in request) == (request["requestType"] == "GDPR_EXPORT")
        missing = await c.call("GET", f"{REQUESTS}/{UNKNOWN}")
        assert missing.status == 404 and error_of(missing)["code"] == "not.found"
        stats = c.sb.stats()
        assert stats.count("gdpr-requests.by-id", 200) == 4
        assert stats.count("gdpr-requests.by-id", 404) == 1


async def test_a_request_has_the_gdpr_request_shape() -> None:
    """Each request: a uuid, a name, createdBy an active user of the org, no replacement terms,
    an ISO createdDate after the data, its selfUri, and a subject of E.164 numbers."""
    async with running() as c:
        users = {u.id: u for u in c.sb.dataset.entities.users}
        for request in await walk(c, 25):
            keys = {"id", "name", "createdBy", "replacementTerms", "requestType", "createdDate",
                    "status", "subject", "selfUri"}  # fmt: skip
            assert set(request) - {"resultsUrl"} == keys
            assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                r"[0-9a-f]{12}", request["id"])  # fmt: skip
            creator = request["createdBy"]
            assert creator == {"id": creator["id"], "selfUri": f"/api/v2/users/{creator['id']}"}
            assert users[creator["id"]].state == "active"
            assert request["replacementTerms"] == []
            assert request["createdDate"] >= "2026-11-04T00:00:00.000Z"
            assert request["selfUri"] == f"{REQUESTS}/{request['id']}"
            subject = request["subject"]
            assert all(E164.fullmatch(n) for n in subject["phoneNumbers"])
            assert subject["phoneNumbers"] or subject["emailAddresses"]


async def test_denying_gdpr_request_view_refuses_both_routes() -> None:
    """Without gdpr:request:view the listing and the request by id are 403, naming it."""
    async with running(denied_permissions=("gdpr:request:view",)) as c:
        request_id = c.sb.state.listings["gdpr-requests"].entities[0].id
        for path in (REQUESTS, f"{REQUESTS}/{request_id}"):
            reply = await c.call("GET", path)
            body = error_of(reply)
            assert reply.status == 403 and body["code"] == "missing.any.permissions", path
            assert "gdpr:request:view" in body["message"]
        stats = c.sb.stats()
        assert stats.count("gdpr-requests", 403) == stats.count("gdpr-requests.by-id", 403) == 1


async def test_subjects_are_customers_the_served_conversations_hold() -> None:
    """Every subject is a person (no user's name) whose values all stand in one first-day
    conversation's customer; the ground truth (state and control route) lists exactly the
    served conversations holding any of its values."""
    async with running() as c:
        records = await c.all_results(await c.submit({"interval": WHOLE_RANGE}))
        assert len(records) == len(c.sb.dataset)
        held = {r["conversationId"]: set(strings(r)) for r in records}
        day1 = c.sb.dataset.ids_starting_in(START, START + timedelta(days=1))
        user_names = {u.name for u in c.sb.dataset.entities.users}
        truth = c.sb.state.gdpr_truth()
        reply = await control(c, "GET", "/sandbox/gdpr/ground-truth")
        assert reply.json() == {"count": 4, "requests": truth}
        for entry in truth:
            subject = entry["subject"]
            assert subject["name"] in PEOPLE and subject["name"] not in user_names
            values = values_of(subject)
            expected = sorted(cid for cid, found in held.items() if values & found)
            assert entry["conversationIds"] == expected
            whole = [cid for cid in day1 & set(expected) if values <= held[cid]]
            assert whole, f"no first-day conversation holds all of {subject}"


def first_of(c: Client, media: str) -> dict[str, Any]:
    """The earliest conversation whose customer's session is of ``media``."""
    data = c.sb.dataset
    records = (orjson.loads(data.job_record(i)) for i in range(len(data)))
    return next(r for r in records if customer(r)["sessions"][0]["mediaType"] == media)


async def test_the_control_endpoints_add_a_request_and_complete_it() -> None:
    """POST /sandbox/gdpr/requests lists a request about a conversation's customer, PATCH
    completes it, and the truth lists the conversation; both uncounted; unknown ids, types
    and statuses are refused."""
    async with running() as c:
        record = first_of(c, "email")
        cid, person = record["conversationId"], customer(record)
        added = await control(c, "POST", CONTROL, {"conversationId": cid, "status": "INITIATED"})
        made = added.json()
        assert added.status == 200 and made["status"] == "INITIATED"
        assert made["requestType"] == "GDPR_DELETE"
        addresses = [person["sessions"][0]["addressFrom"]]
        name = person["participantName"]
        assert made["subject"] == {"name": name, "phoneNumbers": [], "emailAddresses": addresses}
        assert await get(c, f"{REQUESTS}/{made['id']}") == made
        assert (await get(c, REQUESTS))["total"] == 5
        done = await control(c, "PATCH", f"{CONTROL}/{made['id']}", {"status": "COMPLETED"})
        assert done.status == 200 and done.json() == {**made, "status": "COMPLETED"}
        assert await get(c, f"{REQUESTS}/{made['id']}") == done.json()
        truth = {entry["id"]: entry for entry in c.sb.state.gdpr_truth()}
        assert truth[made["id"]]["status"] == "COMPLETED"
        assert cid in truth[made["id"]]["conversationIds"]
        defaults = (await control(c, "POST", CONTROL, {"conversationId": cid})).json()
        assert (defaults["requestType"], defaults["status"]) == ("GDPR_DELETE", "COMPLETED")
        for bad in ({"conversationId": UNKNOWN}, {"conversationId": cid, "status": "DONE"},
                    {"conversationId": cid, "requestType": "GDPR_FORGET"}, {}, [cid]):  # fmt: skip
            assert (await control(c, "POST", CONTROL, bad)).status == 400, bad
        patch = {"status": "COMPLETED"}
        assert (await control(c, "PATCH", f"{CONTROL}/{UNKNOWN}", patch)).status == 404
        refused = await control(c, "PATCH", f"{CONTROL}/{made['id']}", {"status": "DONE"})
        assert refused.status == 400
        assert c.sb.stats().count() == 1 + 1 + 2  # the token, the listing, two by id


async def test_state_methods_add_and_complete_requests_in_process() -> None:
    """add_gdpr_request and set_gdpr_status do what the control routes do; a completed export
    gains its resultsUrl; an unknown id is KeyError, an unknown conversation ValueError."""
    async with running() as c:
        state = c.sb.state
        cid = first_of(c, "voice")["conversationId"]
        export = state.add_gdpr_request(cid, "SEARCHING", "GDPR_EXPORT")
        assert "resultsUrl" not in export
        finished = state.set_gdpr_status(export["id"], "COMPLETED")
        assert finished["resultsUrl"].startswith("https://")
        assert await get(c, f"{REQUESTS}/{export['id']}") == finished
        with pytest.raises(KeyError):
            state.set_gdpr_status(UNKNOWN, "COMPLETED")
        with pytest.raises(ValueError):
            state.add_gdpr_request(UNKNOWN)


def own_end(session: dict[str, Any]) -> list[str]:
    """The customer's end of their session, as the spec reads each media."""
    media, inbound = session["mediaType"], session["direction"] == "inbound"
    if media == "voice":
        return [session["ani" if inbound else "dnis"]]
    if media in ("message", "email"):
        return [session["addressFrom"]]
    return list(session.get("callbackNumbers", []))  # a callback's; a chat has none


async def test_a_subject_carries_its_customers_own_identifiers_in_every_media() -> None:
    """A request about any conversation names its customer when the name is a person's (not a
    caller-ID label) and carries their own end: an inbound call's ani, an outbound call's
    dnis, a message's or an e-mail's addressFrom, a callback's numbers; nothing of the org's."""
    async with running() as c:
        data, seen = c.sb.dataset, set()
        for i in range(400):
            record = orjson.loads(data.job_record(i))
            person = customer(record)
            session = person["sessions"][0]
            subject = c.sb.state.add_gdpr_request(record["conversationId"])["subject"]
            name = person["participantName"]
            assert subject.get("name") == (name if name in PEOPLE else None)
            own = own_end(session)
            assert subject["phoneNumbers"] == [v[4:] for v in own if v.startswith("tel:")]
            assert subject["emailAddresses"] == [v for v in own if "@" in v]
            assert values_of(subject) <= set(strings(record))
            seen.add((session["mediaType"], session["direction"], "name" in subject))
        assert {("voice", "inbound", False), ("voice", "outbound", True),
                ("message", "inbound", True), ("email", "inbound", True),
                ("callback", "inbound", True), ("chat", "inbound", True)} <= seen  # fmt: skip


DELETED = ("GDPR_DELETE", "COMPLETED")
DELETING = ("GDPR_DELETE", "INITIATED")
EXPORTED = ("GDPR_EXPORT", "COMPLETED")


async def test_the_count_setting_sizes_and_mixes_the_requests() -> None:
    """gdpr_requests=N: completed deletes, then one initiated delete and one completed export
    as far as N goes; 0 lists none; patchable; the same seed gives the same requests."""
    async with running() as c:
        first = await walk(c, 25)
        for count, kinds in ((0, []), (1, [DELETED]), (2, [DELETED, DELETING]),
                             (3, [DELETED, DELETING, EXPORTED]),
                             (6, [DELETED] * 4 + [DELETING, EXPORTED])):  # fmt: skip
            c.sb.update(gdpr_requests=count)
            listed = await walk(c, 25)
            assert [(r["requestType"], r["status"]) for r in listed] == kinds, count
            assert len({r["subject"]["name"] for r in listed}) == count
        patched = await control(c, "PATCH", "/sandbox/settings", {"gdpr_requests": 4})
        assert patched.json()["gdpr_requests"] == 4 and await walk(c, 25) == first
    async with running() as again:
        assert await walk(again, 25) == first
    with pytest.raises(ValueError):
        settings(gdpr_requests=-1)


def test_the_sdk_reads_the_requests_without_losing_a_field() -> None:
    """The SDK's own calls read the listing and each request by id: no field dropped, no enum
    it does not know, and each serialises back to the JSON sent."""
    gc = pytest.importorskip("PureCloudPlatformClientV2")
    from tests.sandbox.test_sdk_conformance import raw_get, unknown_fields

    saved_host = gc.configuration.host
    with run_sandbox_in_thread(settings()) as sb:
        client = gc.ApiClient(host=sb.url)
        client.get_client_credentials_token(sb.client_id, sb.client_secret)
        api = gc.GeneralDataProtectionRegulationApi(client)
        listing = api.get_gdpr_requests(page_size=25)
        raw = raw_get(sb, client, f"{REQUESTS}?pageSize=25")
        assert len(raw["entities"]) == 4 and not unknown_fields(raw, listing, client)
        assert normalised(client.sanitize_for_serialization(listing)) == normalised(raw)
        for entity in raw["entities"]:
            model = api.get_gdpr_request(entity["id"])
            assert not unknown_fields(entity, model, client)
            assert normalised(client.sanitize_for_serialization(model)) == normalised(entity)
    assert gc.configuration.host == saved_host

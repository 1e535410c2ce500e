"""The sandbox's login service and bearer-token checks, byte for byte where the shape matters."""

from __future__ import annotations

from genesys_sandbox import ManualClock
from genesys_sandbox.permissions import CONVERSATION_DETAIL_ANY, PERMISSIONS
from genesys_sandbox.settings import ROUTES
from tests.sandbox.support import JOBS, basic, error_of, running

GRANT = {"grant_type": "client_credentials"}
AVAILABILITY = f"{JOBS}/availability"


async def test_basic_auth_issues_a_bearer_token() -> None:
    """Basic client auth gets 200 {access_token, token_type: bearer, expires_in} and counts."""
    async with running(token_ttl_s=600) as c:
        reply = await c.token_request(GRANT, basic("sandbox-client", "sandbox-secret"))
        body = reply.json()
        assert reply.status == 200 and set(body) == {"access_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer" and body["expires_in"] == 600
        assert reply.headers["Content-Type"].startswith("application/json")
        stats = c.sb.stats()
        assert stats.token_requests == stats.tokens_issued == 1
        assert stats.count("oauth.token", 200) == 1


async def test_form_body_client_auth_is_accepted() -> None:
    """client_secret_post (id and secret in the form body) works like Basic."""
    async with running() as c:
        form = {**GRANT, "client_id": "sandbox-client", "client_secret": "sandbox-secret"}
        reply = await c.token_request(form, None)
        assert reply.status == 200
        token = reply.json()["access_token"]
        api = await c.call("GET", AVAILABILITY, authorization=f"Bearer {token}")
        assert api.status == 200


async def test_unknown_client_is_400_client_not_found() -> None:
    """An unknown client id gets the login service's exact 400 body."""
    async with running() as c:
        reply = await c.token_request(GRANT, basic("who", "sandbox-secret"))
        assert reply.status == 400
        assert reply.body == (
            b'{"error":"invalid_client","description":"client not found",'
            b'"error_description":"client not found"}'
        )
        assert c.sb.stats().tokens_issued == 0 and c.sb.stats().count("oauth.token", 400) == 1


async def test_wrong_secret_is_authentication_failed_with_settable_status() -> None:
    """A wrong secret gets invalid_client "authentication failed", 400 by default, 401 if set."""
    expected = (
        b'{"error":"invalid_client","description":"authentication failed",'
        b'"error_description":"authentication failed"}'
    )
    for status in (400, 401):
        async with running(token_error_status=status) as c:
            reply = await c.token_request(GRANT, basic("sandbox-client", "nope"))
            assert (reply.status, reply.body) == (status, expected)


async def test_other_grant_types_are_unsupported() -> None:
    """grant_type other than client_credentials is 400 unsupported_grant_type; none is 400 too."""
    async with running() as c:
        auth = basic("sandbox-client", "sandbox-secret")
        reply = await c.token_request({"grant_type": "password"}, auth)
        assert reply.status == 400 and reply.json()["error"] == "unsupported_grant_type"
        assert set(reply.json()) == {"error", "description", "error_description"}
        missing = await c.token_request({}, auth)
        assert missing.status == 400 and missing.json()["error"] == "invalid_request"


async def test_custom_credentials_are_the_only_ones_accepted() -> None:
    """client_id/client_secret settings replace the demo pair."""
    async with running(client_id="mine", client_secret="s3cret") as c:
        assert (c.sb.client_id, c.sb.client_secret) == ("mine", "s3cret")
        demo = await c.token_request(GRANT, basic("sandbox-client", "sandbox-secret"))
        assert demo.status == 400
        assert (await c.token_request(GRANT, basic("mine", "s3cret"))).status == 200


async def test_missing_bearer_is_401_authentication_required() -> None:
    """No Authorization header gets 401 authentication.required in the ErrorBody envelope."""
    async with running() as c:
        reply = await c.call("GET", AVAILABILITY, authorization=None)
        body = error_of(reply)
        assert reply.status == 401 and body["code"] == "authentication.required"
        assert c.sb.stats().count("jobs.availability", 401) == 1


async def test_token_expires_after_its_ttl_on_the_sandbox_clock() -> None:
    """A token works until token_ttl_s passes on the clock, then gets 401 bad.credentials."""
    clock = ManualClock()
    async with running(clock=clock, token_ttl_s=30) as c:
        await c.login()
        clock.advance(29.9)
        assert (await c.call("GET", AVAILABILITY)).status == 200
        clock.advance(0.1)
        reply = await c.call("GET", AVAILABILITY)
        body = error_of(reply)
        assert reply.status == 401 and body["code"] == "bad.credentials"
        assert body["message"] == "Invalid login credentials."


async def test_revoked_and_garbage_tokens_get_bad_credentials() -> None:
    """revoke_tokens() kills every issued token; a made-up token was never valid."""
    async with running() as c:
        await c.login()
        garbage = await c.call("GET", AVAILABILITY, authorization="Bearer made-up")
        assert error_of(garbage)["code"] == "bad.credentials"
        c.sb.revoke_tokens()
        reply = await c.call("GET", AVAILABILITY)
        assert reply.status == 401 and error_of(reply)["code"] == "bad.credentials"
        await c.login()
        assert (await c.call("GET", AVAILABILITY)).status == 200


async def test_tokens_me_describes_and_deletes_the_token() -> None:
    """GET /api/v2/tokens/me answers TokenInfo; DELETE revokes just the caller's token."""
    async with running() as c:
        info = await c.call("GET", "/api/v2/tokens/me")
        assert info.status == 200 and info.json()["OAuthClient"]["id"] == "sandbox-client"
        other = c.token
        await c.login()
        assert (await c.call("DELETE", "/api/v2/tokens/me")).status == 200
        assert (await c.call("GET", "/api/v2/tokens/me")).status == 401
        still = await c.call("GET", "/api/v2/tokens/me", authorization=f"Bearer {other}")
        assert still.status == 200
        assert c.sb.stats().count("tokens.me") == 4


async def test_organizations_me_and_tokens_me_name_the_settings_org() -> None:
    """GET /api/v2/organizations/me answers the Organization of the org_id/org_name settings,
    and tokens/me names the same org; another org_id plays another org."""
    async with running(org_id="other-org-id", org_name="Other Org") as c:
        org = await c.call("GET", "/api/v2/organizations/me")
        assert org.status == 200
        assert (org.json()["id"], org.json()["name"]) == ("other-org-id", "Other Org")
        info = (await c.call("GET", "/api/v2/tokens/me")).json()
        assert (
            info["organization"]["id"]
            == info["OAuthClient"]["organization"]["id"]
            == ("other-org-id")
        )


async def test_without_analytics_permissions_analytics_routes_are_403() -> None:
    """Both conversation-detail permissions denied: analytics routes 403 naming them; users 200."""
    async with running(denied_permissions=CONVERSATION_DETAIL_ANY) as c:
        reply = await c.call("POST", JOBS, json={"interval": "2026-11-01/2026-11-02"})
        body = error_of(reply)
        assert reply.status == 403 and body["code"] == "missing.any.permissions"
        assert "analytics:conversationDetail:view" in body["message"]
        assert "analytics:agentConversationDetail:view" in body["message"]
        assert (await c.call("GET", AVAILABILITY)).status == 403
        assert (await c.call("GET", "/api/v2/users")).status == 200
        assert c.sb.stats().jobs_created == 0


JOB = f"{JOBS}/00000000-0000-4000-8000-000000000000"
WFM = "/api/v2/workforcemanagement"
JOB_ID = "00000000-0000-4000-8000-000000000000"
USER_JOBS = "/api/v2/analytics/users/details/jobs"
USER_JOB = f"{USER_JOBS}/00000000-0000-4000-8000-000000000000"
AGG_JOBS = "/api/v2/analytics/conversations/aggregates/jobs"
AGG_JOB = f"{AGG_JOBS}/00000000-0000-4000-8000-000000000000"
# One request per API route: (route name, method, path).
REQUESTS = [
    ("jobs.submit", "POST", JOBS), ("jobs.status", "GET", JOB),
    ("jobs.results", "GET", f"{JOB}/results"), ("jobs.delete", "DELETE", JOB),
    ("jobs.availability", "GET", AVAILABILITY),
    ("query", "POST", "/api/v2/analytics/conversations/details/query"),
    ("user-details.jobs.submit", "POST", USER_JOBS),
    ("user-details.jobs.status", "GET", USER_JOB),
    ("user-details.jobs.results", "GET", f"{USER_JOB}/results"),
    ("user-details.jobs.delete", "DELETE", USER_JOB),
    ("user-details.jobs.availability", "GET", f"{USER_JOBS}/availability"),
    ("user-details.query", "POST", "/api/v2/analytics/users/details/query"),
    ("aggregates.jobs.submit", "POST", AGG_JOBS),
    ("aggregates.jobs.status", "GET", AGG_JOB),
    ("aggregates.jobs.results", "GET", f"{AGG_JOB}/results"),
    ("aggregates.jobs.delete", "DELETE", AGG_JOB),
    ("aggregates.query", "POST", "/api/v2/analytics/conversations/aggregates/query"),
    ("users", "GET", "/api/v2/users"), ("queues", "GET", "/api/v2/routing/queues"),
    ("queue-members", "GET", "/api/v2/routing/queues/q/members"),
    ("wrapup-codes", "GET", "/api/v2/routing/wrapupcodes"),
    ("divisions", "GET", "/api/v2/authorization/divisions"), ("groups", "GET", "/api/v2/groups"),
    ("teams", "GET", "/api/v2/teams"), ("skills", "GET", "/api/v2/routing/skills"),
    ("languages", "GET", "/api/v2/routing/languages"),
    ("presence-definitions", "GET", "/api/v2/presencedefinitions"),
    ("flows", "GET", "/api/v2/flows"),
    ("org-limits", "GET", "/api/v2/organizations/limits/namespaces/analytics"),
    ("data-retention", "GET", "/api/v2/analytics/dataretention/settings"),
    ("tokens.me", "GET", "/api/v2/tokens/me"),
    ("organizations.me", "GET", "/api/v2/organizations/me"),
    ("users.by-id", "GET", "/api/v2/users/{id}"),
    ("queues.by-id", "GET", "/api/v2/routing/queues/{id}"),
    ("wrapup-codes.by-id", "GET", "/api/v2/routing/wrapupcodes/{id}"),
    ("divisions.by-id", "GET", "/api/v2/authorization/divisions/{id}"),
    ("groups.by-id", "GET", "/api/v2/groups/{id}"),
    ("teams.by-id", "GET", "/api/v2/teams/{id}"),
    ("skills.by-id", "GET", "/api/v2/routing/skills/{id}"),
    ("languages.by-id", "GET", "/api/v2/routing/languages/{id}"),
    ("presence-definitions.by-id", "GET", "/api/v2/presencedefinitions/{id}"),
    ("flows.by-id", "GET", "/api/v2/flows/{id}"),
    ("flow-outcomes", "GET", "/api/v2/flows/outcomes"),
    ("flow-outcomes.by-id", "GET", "/api/v2/flows/outcomes/{id}"),
    ("flow-milestones", "GET", "/api/v2/flows/milestones"),
    ("flow-milestones.by-id", "GET", "/api/v2/flows/milestones/{id}"),
    ("locations", "GET", "/api/v2/locations"),
    ("locations.by-id", "GET", "/api/v2/locations/{id}"),
    ("evaluation-forms", "GET", "/api/v2/quality/forms/evaluations"),
    ("evaluation-forms.by-id", "GET", "/api/v2/quality/forms/evaluations/{id}"),
    ("published-evaluation-forms", "GET", "/api/v2/quality/publishedforms/evaluations"),
    ("published-evaluation-forms.by-id", "GET", "/api/v2/quality/publishedforms/evaluations/{id}"),
    ("survey-forms", "GET", "/api/v2/quality/forms/surveys"),
    ("survey-forms.by-id", "GET", "/api/v2/quality/forms/surveys/{id}"),
    ("published-survey-forms", "GET", "/api/v2/quality/publishedforms/surveys"),
    ("published-survey-forms.by-id", "GET", "/api/v2/quality/publishedforms/surveys/{id}"),
    ("gdpr-requests", "GET", "/api/v2/gdpr/requests"),
    ("gdpr-requests.by-id", "GET", "/api/v2/gdpr/requests/{id}"),
    ("quality.evaluation", "GET", "/api/v2/quality/conversations/{conversation}/evaluations/{id}"),
    ("quality.survey", "GET", "/api/v2/quality/surveys/{id}"),
    ("business-units", "GET", f"{WFM}/businessunits"),
    ("business-units.by-id", "GET", f"{WFM}/businessunits/{{id}}"),
    ("management-units", "GET", f"{WFM}/businessunits/{{bu}}/managementunits"),
    ("management-units.by-id", "GET", f"{WFM}/managementunits/{{id}}"),
    ("management-unit-users", "GET", f"{WFM}/managementunits/{{mu}}/users"),
    ("activity-codes", "GET", f"{WFM}/businessunits/{{bu}}/activitycodes"),
    ("schedules.search", "POST", f"{WFM}/businessunits/{{bu}}/agentschedules/search"),
    ("adherence.bulk", "POST", f"{WFM}/adherence/historical/bulk"),
    ("adherence.job", "GET", f"{WFM}/adherence/historical/bulk/jobs/{JOB_ID}"),
]  # fmt: skip
# Not an API route: a pre-signed download link takes no token and exists only once a search
# or an adherence job made it (tests/test_workforce.py and tests/test_download.py follow them).
NOT_API = {"oauth.token", "download"}


def with_id(sb, route: str, path: str) -> str:
    """``path`` with a GET-by-id route's {id} filled by an entity of its listing (an
    evaluation's, its conversation's too)."""
    quality = sb.dataset.quality
    if route == "quality.evaluation":
        e = quality.evaluations[0]
        return path.replace("{conversation}", e.conversation_id).replace("{id}", e.id)
    if route == "quality.survey":
        return path.replace("{id}", quality.surveys[0].id)
    for marker, route_of in (("{bu}", "business-units"), ("{mu}", "management-units")):
        path = path.replace(marker, sb.state.listings[route_of].entities[0].id)
    if "{id}" not in path:
        return path
    return path.replace("{id}", sb.state.listings[route.removesuffix(".by-id")].entities[0].id)


def test_every_api_route_has_a_request_here() -> None:
    """REQUESTS covers every route but the token endpoint, so the next test misses none."""
    assert {r for r, _, _ in REQUESTS} == set(ROUTES) - NOT_API


async def test_each_route_is_refused_when_every_permission_it_accepts_is_denied() -> None:
    """With every declared permission denied, exactly the routes declaring some answer 403,
    naming their own; the others serve as usual."""
    everything = tuple({p for needed in PERMISSIONS.values() for p in needed})
    async with running(denied_permissions=everything) as c:
        for route, method, path in REQUESTS:
            path = with_id(c.sb, route, path)
            reply = await c.call(method, path, json={} if method == "POST" else None)
            if route in PERMISSIONS:
                body = error_of(reply)
                assert reply.status == 403 and body["code"] == "missing.any.permissions", route
                assert all(p in body["message"] for p in PERMISSIONS[route]), route
            else:
                assert reply.status == 200, route
        stats = c.sb.stats()
        assert stats.count(status=403) == len(PERMISSIONS)

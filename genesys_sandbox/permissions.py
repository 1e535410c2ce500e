"""Which permissions each route needs (ANY of them will do), and the 403 for a caller without.

The table follows the spec's declared permissions [SRC genesys-api.md §3.2, genesys-datasets.md,
the SDK docs]; routes that declare none (users, divisions, groups, locations, ...) are never
refused. The sandbox's
client has every permission except the ``denied_permissions`` setting names.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from genesys_sandbox.wire import ApiProblem

CONVERSATION_DETAIL = "analytics:conversationDetail:view"
CONVERSATION_DETAIL_ANY = (CONVERSATION_DETAIL, "analytics:agentConversationDetail:view")
QUEUE_VIEW = ("routing:queue:view",)
USER_DETAIL = ("analytics:userDetail:view",)
CONVERSATION_AGGREGATE = ("analytics:conversationAggregate:view",)
# [SRC SDK docs] reading an evaluation takes any of the three.
EVALUATION = ("quality:evaluation:view", "quality:evaluation:assign", "quality:evaluation:release")
EVALUATION_FORM = ("quality:evaluationForm:view",)
SURVEY_FORM = ("quality:surveyForm:view",)
FLOW_OUTCOME = ("architect:flowOutcome:view",)
FLOW_MILESTONE = ("architect:flowMilestone:view",)
GDPR_REQUEST = ("gdpr:request:view",)  # [SRC SDK docs] the listing and the request by id
# [UNVERIFIED] WFM unit permissions: the spec's names are not in our notes; these follow the
# pattern of the ones that are (wfm:schedule:view, wfm:historicalAdherence:view).
BUSINESS_UNIT = ("wfm:businessUnit:view",)
MANAGEMENT_UNIT = ("wfm:managementUnit:view",)
ACTIVITY_CODE = ("wfm:activityCode:view",)
DETAILS_ROUTES = ("jobs.submit", "jobs.status", "jobs.results", "jobs.delete",
                  "jobs.availability", "query")  # fmt: skip

PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "jobs.submit": CONVERSATION_DETAIL_ANY,
    "jobs.status": CONVERSATION_DETAIL_ANY,
    "jobs.results": CONVERSATION_DETAIL_ANY,
    "jobs.delete": CONVERSATION_DETAIL_ANY,
    "jobs.availability": (CONVERSATION_DETAIL,),
    "query": CONVERSATION_DETAIL_ANY,
    **{f"user-details.{route}": USER_DETAIL for route in DETAILS_ROUTES},
    # The aggregates jobs have no availability route: the details' watermark is theirs.
    **{f"aggregates.{route}": CONVERSATION_AGGREGATE
       for route in DETAILS_ROUTES if route != "jobs.availability"},
    "queues": QUEUE_VIEW,
    "queue-members": QUEUE_VIEW,
    "wrapup-codes": ("routing:wrapupCode:view",),
    "teams": ("groups:team:view",),
    "flows": ("architect:flow:view",),
    "data-retention": ("analytics:dataRetention:view",),
    # A GET-by-id route needs what its listing needs [SRC].
    "queues.by-id": QUEUE_VIEW,
    "wrapup-codes.by-id": ("routing:wrapupCode:view",),
    "teams.by-id": ("groups:team:view",),
    "flows.by-id": ("architect:flow:view",),
    "business-units": BUSINESS_UNIT,
    "business-units.by-id": BUSINESS_UNIT,
    "management-units": MANAGEMENT_UNIT,
    "management-units.by-id": MANAGEMENT_UNIT,
    "management-unit-users": MANAGEMENT_UNIT,
    "activity-codes": ACTIVITY_CODE,
    "schedules.search": ("wfm:schedule:view", "wfm:publishedSchedule:view"),  # [SRC]
    "adherence.bulk": ("wfm:historicalAdherence:view",),  # [SRC]
    "adherence.job": ("wfm:historicalAdherence:view",),
    "quality.evaluation": EVALUATION,
    "quality.survey": ("quality:survey:view",),
    **{f"{route}{by_id}": needed
       for route, needed in (("evaluation-forms", EVALUATION_FORM),
                             ("published-evaluation-forms", EVALUATION_FORM),
                             ("survey-forms", SURVEY_FORM), ("published-survey-forms", SURVEY_FORM),
                             ("flow-outcomes", FLOW_OUTCOME), ("flow-milestones", FLOW_MILESTONE),
                             ("gdpr-requests", GDPR_REQUEST))
       for by_id in ("", ".by-id")},
}  # fmt: skip


def required(route: str) -> tuple[str, ...]:
    """The permissions ``route`` accepts (any one of them); () when it declares none."""
    return PERMISSIONS.get(route, ())


def check(route: str, denied: Collection[str]) -> None:
    """Raise the 403 of a caller whose every permission for ``route`` is in ``denied``."""
    needed = required(route)
    if needed and all(permission in denied for permission in needed):
        raise forbidden(needed)


def forbidden(permissions: tuple[str, ...]) -> ApiProblem:
    """403 missing.any.permissions naming ``permissions`` (list formatting unverified); a route
    that declares none gets ``not.authorized`` instead."""
    if not permissions:
        return ApiProblem.of(403, "not.authorized")
    names = "[" + ", ".join(permissions) + "]"
    return ApiProblem.of(403, "missing.any.permissions", names, extra={"messageParams": {}})

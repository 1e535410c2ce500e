"""Every table built from an export: its source dataset, its key and its columns, declared once.

A table is the objects at one level of a dataset's records: a conversation, the participants
in its ``participants`` array, their sessions, the sessions' segments and metrics, the
participants' ``attributes`` map. Each ``Table`` names the level above it (``parent``) and the
field that holds its objects there (``field``), and declares its own columns after the API's
field names. A table's key is its parent's key plus its own part (an id, a name, or the
position in the array: neither ``segmentEnd`` nor (name, emitDate) is a safe key). From these
declarations ``exporter.tables.sql`` derives the read type, the DDL and the SELECTs, and
``table_list`` the README's table list, so nothing here is written twice.

Snapshot datasets become one table each, named with underscores, from the newest snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Container = Literal["record", "list", "map"]


def snake(name: str) -> str:
    """``mediaStatsMinConversationRFactor`` -> ``media_stats_min_conversation_r_factor``;
    ``division.id`` -> ``division_id``."""
    name = name.replace(".", "_")
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z])([A-Z][a-z])", r"\1_\2", name)
    return name.lower()


@dataclass(frozen=True, slots=True)
class Column:
    """One column: the API field it holds (``a.b`` for a field inside an object), its DuckDB
    type, and its name (snake_case of the field unless given). ``derive``: a SQL expression
    over ``{}``, the field read as text, giving the column's value (two columns may derive
    from one field: an aggregates bucket's start and end from its ``interval``)."""

    field: str
    type: str
    name: str = ""
    derive: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", snake(self.field))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.field.split("."))

    @property
    def read_type(self) -> str:
        """The type its field is read as."""
        return "VARCHAR" if self.derive else self.type


@dataclass(frozen=True, slots=True)
class Table:
    """The objects at one level of a dataset's records, as rows.

    ``own_key`` names the columns (or the ``index`` column) that, with the parent's key, make
    a row's key. ``listed`` is False for a level that is not a table itself (a user-details
    line: only its statuses are). A root table of a snapshot dataset is a ``snapshot``; the
    root of a windowed one carries ``extra``, the record's fields no column or child holds."""

    name: str
    dataset: str
    summary: str
    own_key: tuple[str, ...]
    columns: tuple[Column, ...]
    parent: Table | None = None
    field: str | None = None
    container: Container = "record"
    index: str | None = None  # the column holding the 0-based position in the parent's array
    listed: bool = True
    snapshot: bool = False
    extra: bool = False

    def __post_init__(self) -> None:
        if (self.parent is None) != (self.field is None) or (self.parent is None) != (
            self.container == "record"
        ):
            raise ValueError(f"table {self.name}: a child needs a parent, a field and a container")
        names = [c.name for c in self.own_columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name} declares a column twice")
        if self.extra and not self.snapshot and any(len(c.path) > 1 for c in self.columns):
            # the typed read's census keeps whole top-level fields only (exporter.tables.sql)
            raise ValueError(f"table {self.name}: a windowed root reads whole fields only")
        if self.field is not None and "." in self.field and self.root.extra:
            # ``extra`` holds what no column holds whole: a field split across tables is not
            raise ValueError(f"table {self.name}: a table with extra reads whole fields only")
        unknown = set(self.own_key) - set(names)
        if unknown:
            raise ValueError(f"table {self.name}: key columns {sorted(unknown)} are not declared")

    @property
    def key(self) -> tuple[str, ...]:
        inherited = self.parent.key if self.parent is not None else ()
        return (*inherited, *self.own_key)

    @property
    def own_columns(self) -> tuple[Column, ...]:
        """The declared columns, and the position column when there is one."""
        if self.index is None:
            return self.columns
        return (*self.columns, Column("", "BIGINT", self.index))

    @property
    def inherited(self) -> tuple[str, ...]:
        """The parent's key columns, carried into every row."""
        return self.parent.key if self.parent is not None else ()

    @property
    def root(self) -> Table:
        return self if self.parent is None else self.parent.root

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1


def _cols(spec: str) -> tuple[Column, ...]:
    """Columns from a comma-separated ``field TYPE [name]`` list."""
    columns = []
    for item in spec.split(","):
        parts = item.split()
        columns.append(Column(parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return tuple(columns)


# The fields of genesys-api.md §5.3 (AnalyticsConversation and what it holds). Nested objects
# that are not split out (flow, mediaEndpointStats, evaluations, properties, ...) stay JSON.
CONVERSATIONS = Table(
    "conversations",
    "conversations",
    "one row per conversation; `extra` holds any top-level field the API adds later",
    ("conversation_id",),
    _cols("""
        conversationId VARCHAR, conversationStart TIMESTAMPTZ, conversationEnd TIMESTAMPTZ,
        originatingDirection VARCHAR, conversationInitiator VARCHAR,
        customerParticipation BOOLEAN, divisionIds VARCHAR[], externalTag VARCHAR,
        mediaStatsMinConversationMos DOUBLE, mediaStatsMinConversationRFactor DOUBLE,
        selfServed BOOLEAN, conferenceStart TIMESTAMPTZ, inactivityTimeout TIMESTAMPTZ,
        knowledgeBaseIds VARCHAR[], evaluations JSON, surveys JSON, resolutions JSON"""),
    extra=True,
)
PARTICIPANTS = Table(
    "participants",
    "conversations",
    "each conversation's participants (customer, ivr, acd, agent, ...)",
    ("participant_id",),
    _cols("""
        participantId VARCHAR, participantName VARCHAR, purpose VARCHAR, userId VARCHAR,
        teamId VARCHAR, externalContactId VARCHAR, externalOrganizationId VARCHAR,
        flaggedReason VARCHAR, screenRecording BOOLEAN"""),
    parent=CONVERSATIONS,
    field="participants",
    container="list",
)
PARTICIPANT_ATTRIBUTES = Table(
    "participant_attributes",
    "conversations",
    "participant attributes (job exports only), one row per name",
    ("name",),
    _cols("key VARCHAR name, value VARCHAR value"),
    parent=PARTICIPANTS,
    field="attributes",
    container="map",
)
SESSIONS = Table(
    "sessions",
    "conversations",
    "each participant's sessions (one per media leg)",
    ("session_id",),
    _cols("""
        sessionId VARCHAR, mediaType VARCHAR, direction VARCHAR, ani VARCHAR, dnis VARCHAR,
        sessionDnis VARCHAR, addressFrom VARCHAR, addressTo VARCHAR, remote VARCHAR,
        edgeId VARCHAR, protocolCallId VARCHAR, provider VARCHAR, peerId VARCHAR,
        recording BOOLEAN, requestedRoutings VARCHAR[], usedRouting VARCHAR,
        messageType VARCHAR, deliveryStatus VARCHAR, outboundCampaignId VARCHAR,
        outboundContactId VARCHAR, outboundContactListId VARCHAR, callbackNumbers VARCHAR[],
        callbackUserName VARCHAR, callbackScheduledTime TIMESTAMPTZ, flow JSON,
        mediaEndpointStats JSON"""),
    parent=PARTICIPANTS,
    field="sessions",
    container="list",
)
SEGMENTS = Table(
    "segments",
    "conversations",
    "each session's segments, `segment_index` their position (0 first)",
    ("segment_index",),
    _cols("""
        segmentStart TIMESTAMPTZ, segmentEnd TIMESTAMPTZ, segmentType VARCHAR,
        disconnectType VARCHAR, queueId VARCHAR, wrapUpCode VARCHAR, wrapUpNote VARCHAR,
        wrapUpTags VARCHAR[], requestedRoutingSkillIds VARCHAR[], requestedLanguageId VARCHAR,
        conference BOOLEAN, errorCode VARCHAR, sipResponseCodes JSON, q850ResponseCodes JSON,
        subject VARCHAR, groupId VARCHAR, audioMuted BOOLEAN, videoMuted BOOLEAN,
        properties JSON, scoredAgents JSON, sourceConversationId VARCHAR,
        sourceSessionId VARCHAR, destinationConversationId VARCHAR,
        destinationSessionId VARCHAR"""),
    parent=SESSIONS,
    field="segments",
    container="list",
    index="segment_index",
)
METRICS = Table(
    "metrics",
    "conversations",
    "each session's metrics (`t*` in milliseconds), `metric_index` their position (0 first)",
    ("metric_index",),
    _cols("name VARCHAR, value BIGINT, emitDate TIMESTAMPTZ"),
    parent=SESSIONS,
    field="metrics",
    container="list",
    index="metric_index",
)

# Conversation aggregates (genesys-datasets.md §H): one line per group and bucket. The group's
# dimensions are columns (those [aggregates] group_by does not name stay NULL), the bucket's
# interval is split into its start and end, and each metric's stats are a row.
_BUCKET = "CAST(split_part({}, '/', %d) AS TIMESTAMPTZ)"
AGGREGATE_GROUPS = Table(
    "conversation_aggregate_groups",
    "conversation-aggregates",
    "one line per group and bucket (not a table itself)",
    ("queue_id", "media_type", "direction", "user_id", "wrap_up_code"),
    _cols("""
        group.queueId VARCHAR queue_id, group.mediaType VARCHAR media_type,
        group.direction VARCHAR direction, group.userId VARCHAR user_id,
        group.wrapUpCode VARCHAR wrap_up_code"""),
    listed=False,
)
AGGREGATE_BUCKETS = Table(
    "conversation_aggregate_buckets",
    "conversation-aggregates",
    "each line's bucket (not a table itself)",
    ("bucket_start", "bucket_end"),  # the end too, so every metric's row carries it
    (
        Column("interval", "TIMESTAMPTZ", "bucket_start", _BUCKET % 1),
        Column("interval", "TIMESTAMPTZ", "bucket_end", _BUCKET % 2),
    ),
    parent=AGGREGATE_GROUPS,
    field="data",
    container="list",
    listed=False,
)
CONVERSATION_AGGREGATES = Table(
    "conversation_aggregates",
    "conversation-aggregates",
    "each metric's stats per group and bucket (`t*` in milliseconds; an `n*` metric has only "
    "`count`); a dimension [aggregates] does not group by is NULL",
    ("metric",),
    _cols("""
        metric VARCHAR, stats.count BIGINT count, stats.sum DOUBLE sum, stats.min DOUBLE min,
        stats.max DOUBLE max"""),
    parent=AGGREGATE_BUCKETS,
    field="metrics",
    container="list",
)

USER_DETAILS = Table(
    "user_details",
    "user-details",
    "one line per user and day (not a table itself)",
    ("user_id",),
    _cols("userId VARCHAR"),
    listed=False,
)
USER_PRESENCE = Table(
    "user_presence",
    "user-details",
    "agents' presence history; `end_time` is null while it lasts",
    ("start_time",),
    _cols("""
        startTime TIMESTAMPTZ, endTime TIMESTAMPTZ, systemPresence VARCHAR,
        organizationPresenceId VARCHAR"""),
    parent=USER_DETAILS,
    field="primaryPresence",
    container="list",
)
USER_ROUTING_STATUS = Table(
    "user_routing_status",
    "user-details",
    "agents' routing status history (IDLE, INTERACTING, ...); `end_time` is null while it lasts",
    ("start_time",),
    _cols("startTime TIMESTAMPTZ, endTime TIMESTAMPTZ, routingStatus VARCHAR"),
    parent=USER_DETAILS,
    field="routingStatus",
    container="list",
)

# Quality (genesys-datasets.md §F): the objects as the by-id reads store them. Scores and
# answers sit inside ``answers``, so these roots declare nested columns and keep no ``extra``
# (the raw files keep every field).
EVALUATIONS = Table(
    "evaluations",
    "evaluations",
    "one row per evaluation, as last read (re-reviews replace it)",
    ("evaluation_id",),
    _cols("""
        id VARCHAR evaluation_id, conversation.id VARCHAR conversation_id,
        evaluationForm.id VARCHAR form_id, evaluationForm.name VARCHAR form_name,
        evaluationForm.contextId VARCHAR form_context_id, evaluator.id VARCHAR evaluator_id,
        agent.id VARCHAR agent_id, assignee.id VARCHAR assignee_id, queue.id VARCHAR queue_id,
        calibration.id VARCHAR calibration_id, status VARCHAR,
        answers.totalScore DOUBLE total_score,
        answers.totalCriticalScore DOUBLE total_critical_score,
        answers.totalNonCriticalScore DOUBLE total_non_critical_score,
        answers.anyFailedKillQuestions BOOLEAN any_failed_kill_questions,
        answers.comments VARCHAR comments, answers.agentComments VARCHAR agent_comments,
        agentHasRead BOOLEAN, assignedDate TIMESTAMPTZ, submittedDate TIMESTAMPTZ,
        releaseDate TIMESTAMPTZ, changedDate TIMESTAMPTZ, conversationDate TIMESTAMPTZ,
        conversationEndDate TIMESTAMPTZ, mediaType VARCHAR[], divisionIds VARCHAR[],
        rescore BOOLEAN, neverRelease BOOLEAN, version BIGINT,
        evaluationSource.type VARCHAR evaluation_source"""),
)
EVALUATION_GROUPS = Table(
    "evaluation_question_groups",
    "evaluations",
    "each evaluation's score per question group of its form",
    ("question_group_id",),
    _cols("""
        questionGroupId VARCHAR, totalScore DOUBLE, maxTotalScore DOUBLE, markedNA BOOLEAN,
        totalScoreUnweighted DOUBLE, maxTotalScoreUnweighted DOUBLE"""),
    parent=EVALUATIONS,
    field="answers.questionGroupScores",
    container="list",
)
EVALUATION_ANSWERS = Table(
    "evaluation_answers",
    "evaluations",
    "each evaluation's answer to each question (`answer_id`: the option chosen)",
    ("question_id",),
    _cols("""
        questionId VARCHAR, answerId VARCHAR, score DOUBLE, markedNA BOOLEAN,
        failedKillQuestion BOOLEAN, comments VARCHAR"""),
    parent=EVALUATION_GROUPS,
    field="questionScores",
    container="list",
)
SURVEYS = Table(
    "surveys",
    "surveys",
    "one row per customer survey of an exported conversation",
    ("survey_id",),
    _cols("""
        id VARCHAR survey_id, conversation.id VARCHAR conversation_id,
        surveyForm.id VARCHAR form_id, surveyForm.name VARCHAR form_name,
        surveyForm.contextId VARCHAR form_context_id, agent.id VARCHAR agent_id,
        agentTeam.id VARCHAR team_id, queue.id VARCHAR queue_id, status VARCHAR,
        surveyType VARCHAR, completedDate TIMESTAMPTZ, answers.totalScore DOUBLE total_score,
        answers.npsScore BIGINT nps_score, missingRequiredAnswer BOOLEAN"""),
)
SURVEY_GROUPS = Table(
    "survey_question_groups",
    "surveys",
    "each survey's score per question group",
    ("question_group_id",),
    _cols("questionGroupId VARCHAR, totalScore DOUBLE, maxTotalScore DOUBLE, markedNA BOOLEAN"),
    parent=SURVEYS,
    field="answers.questionGroupScores",
    container="list",
)
SURVEY_ANSWERS = Table(
    "survey_answers",
    "surveys",
    "each survey's answer to each question: the option, the NPS score or the free text",
    ("question_id",),
    _cols("""
        questionId VARCHAR, answerId VARCHAR, score DOUBLE, markedNA BOOLEAN, npsScore BIGINT,
        freeTextAnswer VARCHAR"""),
    parent=SURVEY_GROUPS,
    field="questionScores",
    container="list",
)


def _snapshot(name: str, summary: str, columns: str, key: tuple[str, ...] = ("id",)) -> Table:
    dataset = name.replace("_", "-")
    return Table(name, dataset, summary, key, _cols(columns), snapshot=True, extra=True)


SNAPSHOTS: tuple[Table, ...] = (
    _snapshot("users", "users of every state", """
        id VARCHAR, name VARCHAR, email VARCHAR, username VARCHAR, state VARCHAR,
        title VARCHAR, department VARCHAR, division.id VARCHAR, manager.id VARCHAR,
        team.id VARCHAR"""),
    _snapshot("queues", "routing queues", """
        id VARCHAR, name VARCHAR, description VARCHAR, division.id VARCHAR,
        memberCount BIGINT, dateCreated TIMESTAMPTZ, dateModified TIMESTAMPTZ"""),
    _snapshot("queue_members", "queue membership: one row per queue and user", """
        queueId VARCHAR, id VARCHAR user_id, name VARCHAR, ringNumber BIGINT,
        joined BOOLEAN, memberBy VARCHAR""", key=("queue_id", "user_id")),
    _snapshot("wrapup_codes", "wrap-up codes",
              "id VARCHAR, name VARCHAR, division.id VARCHAR, dateCreated TIMESTAMPTZ"),
    _snapshot("divisions", "authorization divisions",
              "id VARCHAR, name VARCHAR, description VARCHAR, homeDivision BOOLEAN"),
    _snapshot("groups", "groups", """
        id VARCHAR, name VARCHAR, description VARCHAR, type VARCHAR, visibility VARCHAR,
        state VARCHAR, memberCount BIGINT"""),
    _snapshot("teams", "work teams", """
        id VARCHAR, name VARCHAR, description VARCHAR, division.id VARCHAR,
        memberCount BIGINT"""),
    _snapshot("skills", "routing skills",
              "id VARCHAR, name VARCHAR, state VARCHAR, dateModified TIMESTAMPTZ"),
    _snapshot("languages", "routing languages",
              "id VARCHAR, name VARCHAR, state VARCHAR, dateModified TIMESTAMPTZ"),
    _snapshot("presence_definitions", "system and org-defined presences", """
        id VARCHAR, systemPresence VARCHAR, primary BOOLEAN, deactivated BOOLEAN,
        languageLabels JSON"""),
    _snapshot("flows", "Architect flows", """
        id VARCHAR, name VARCHAR, type VARCHAR, description VARCHAR, active BOOLEAN,
        system BOOLEAN, deleted BOOLEAN, division.id VARCHAR"""),
    _snapshot("flow_outcomes", "Architect flow outcomes",
              "id VARCHAR, name VARCHAR, description VARCHAR, division.id VARCHAR"),
    _snapshot("flow_milestones", "Architect flow milestones",
              "id VARCHAR, name VARCHAR, description VARCHAR, division.id VARCHAR"),
    _snapshot("locations", "the org's locations (sites' addresses)", """
        id VARCHAR, name VARCHAR, state VARCHAR, address.street1 VARCHAR,
        address.city VARCHAR, address.state VARCHAR, address.zipcode VARCHAR,
        address.country VARCHAR, emergencyNumber.e164 VARCHAR emergency_number"""),
)  # fmt: skip


# Workforce management's units (genesys-datasets.md §G): the time zones schedules and
# adherence are defined in, and who belongs where.
UNITS: tuple[Table, ...] = (
    _snapshot("business_units", "WFM business units: time zone and first day of the week", """
        id VARCHAR, name VARCHAR, division.id VARCHAR, settings.timeZone VARCHAR time_zone,
        settings.startDayOfWeek VARCHAR start_day_of_week"""),
    _snapshot("management_units", "WFM management units: time zone and adherence settings", """
        id VARCHAR, businessUnitId VARCHAR, name VARCHAR, division.id VARCHAR,
        timeZone VARCHAR, startDayOfWeek VARCHAR,
        settings.adherence.adherenceTargetPercent BIGINT adherence_target_percent,
        settings.adherence.severeAlertThresholdMinutes BIGINT severe_alert_threshold_minutes,
        settings.adherence.adherenceExceptionThresholdSeconds BIGINT
        adherence_exception_threshold_seconds,
        settings.adherence.nonOnQueueActivitiesEquivalent BOOLEAN
        non_on_queue_activities_equivalent,
        settings.adherence.trackOnQueueActivity BOOLEAN track_on_queue_activity"""),
    _snapshot("management_unit_users", "which agent is in which management unit (names: `users`)",
              "managementUnitId VARCHAR, id VARCHAR user_id",
              key=("management_unit_id", "user_id")),
    _snapshot("activity_codes", "each business unit's activity codes (on queue, break, ...)", """
        businessUnitId VARCHAR, id VARCHAR, name VARCHAR, category VARCHAR, active BOOLEAN,
        defaultCode BOOLEAN, lengthInMinutes BIGINT, countsAsPaidTime BOOLEAN,
        countsAsWorkTime BOOLEAN, countsTowardShrinkage BOOLEAN, plannedShrinkage BOOLEAN,
        interruptible BOOLEAN""", key=("business_unit_id", "id")),
)  # fmt: skip


# Published schedules (datasets/workforce.py): a line is one agent's day of one business
# unit's calendar; its shifts (those starting that day) and their activities are the tables.
SCHEDULES = Table(
    "schedules",
    "schedules",
    "one line per agent and unit-local day (not a table itself)",
    ("business_unit_id", "local_date", "user_id"),
    _cols("businessUnitId VARCHAR, date DATE local_date, user.id VARCHAR user_id"),
    listed=False,
)
SCHEDULE_SHIFTS = Table(
    "schedule_shifts",
    "schedules",
    "published shifts, each in the business-unit-local day it starts on (`local_date`)",
    ("shift_id",),
    _cols("""
        id VARCHAR shift_id, startDate TIMESTAMPTZ, lengthMinutes BIGINT,
        manuallyEdited BOOLEAN, schedule.id VARCHAR schedule_id,
        schedule.weekDate DATE week_date"""),
    parent=SCHEDULES,
    field="shifts",
    container="list",
)
SCHEDULE_ACTIVITIES = Table(
    "schedule_activities",
    "schedules",
    "each shift's activities in order (`activity_code_id`: see `activity_codes`)",
    ("activity_index",),
    _cols("""
        startDate TIMESTAMPTZ, lengthMinutes BIGINT, description VARCHAR,
        activityCodeId VARCHAR, paid BOOLEAN"""),
    parent=SCHEDULE_SHIFTS,
    field="activities",
    container="list",
    index="activity_index",
)


# Historical adherence (datasets/workforce.py): a line is one agent's day of one management
# unit's calendar, with the day's metrics; its exceptions and actual presence are children.
ADHERENCE_DAYS = Table(
    "adherence_days",
    "adherence",
    "each agent's adherence per management-unit-local day (`local_date`): scheduled and "
    "adherent seconds",
    ("management_unit_id", "local_date", "user_id"),
    _cols("""
        managementUnitId VARCHAR, date DATE local_date, userId VARCHAR,
        metrics.startDate TIMESTAMPTZ day_start,
        metrics.scheduleLengthSeconds BIGINT schedule_length_seconds,
        metrics.adherenceScheduleSeconds BIGINT adherence_schedule_seconds,
        metrics.adherencePercentage DOUBLE adherence_percentage,
        metrics.conformanceScheduleSeconds BIGINT conformance_schedule_seconds,
        metrics.conformanceActualSeconds BIGINT conformance_actual_seconds,
        metrics.conformancePercentage DOUBLE conformance_percentage,
        metrics.exceptionCount BIGINT exception_count,
        metrics.exceptionDurationSeconds BIGINT exception_duration_seconds,
        metrics.impactSeconds BIGINT impact_seconds"""),
)
ADHERENCE_EXCEPTIONS = Table(
    "adherence_exceptions",
    "adherence",
    "each stretch out of adherence, in the day it starts: scheduled activity against presence",
    ("exception_index",),
    _cols("""
        startDate TIMESTAMPTZ, endDate TIMESTAMPTZ, scheduledActivityCodeId VARCHAR,
        scheduledActivityCategory VARCHAR, actualActivityCategory VARCHAR,
        systemPresence VARCHAR, routingStatus VARCHAR, impact VARCHAR"""),
    parent=ADHERENCE_DAYS,
    field="exceptions",
    container="list",
    index="exception_index",
)
ADHERENCE_ACTUALS = Table(
    "adherence_actuals",
    "adherence",
    "each agent's actual activity (from presence), in the day it starts",
    ("actual_index",),
    _cols("startDate TIMESTAMPTZ, endDate TIMESTAMPTZ, actualActivityCategory VARCHAR"),
    parent=ADHERENCE_DAYS,
    field="actuals",
    container="list",
    index="actual_index",
)


def _form_parts(root: Table, question_columns: str) -> tuple[Table, ...]:
    """A form's question groups, their questions and the questions' answer options, as
    tables under the form's snapshot table (the ids evaluations' answers name)."""
    prefix = root.name.removesuffix("s")
    groups = Table(
        f"{prefix}_question_groups", root.dataset, "each form version's question groups",
        ("question_group_id",),
        _cols("id VARCHAR question_group_id, contextId VARCHAR, name VARCHAR, weight DOUBLE, "
              "naEnabled BOOLEAN"),
        parent=root, field="questionGroups", container="list", snapshot=True,
    )  # fmt: skip
    questions = Table(
        f"{prefix}_questions", root.dataset, "each question group's questions",
        ("question_id",), _cols(question_columns),
        parent=groups, field="questions", container="list", snapshot=True,
    )  # fmt: skip
    options = Table(
        f"{prefix}_answer_options", root.dataset, "each question's answer options and values",
        ("answer_option_id",),
        _cols("id VARCHAR answer_option_id, contextId VARCHAR, text VARCHAR, value DOUBLE"),
        parent=questions, field="answerOptions", container="list", snapshot=True,
    )  # fmt: skip
    return groups, questions, options


EVALUATION_FORMS = _snapshot("evaluation_forms", "published evaluation forms, every version",
                             """id VARCHAR form_id, name VARCHAR, contextId VARCHAR,
                             published BOOLEAN, modifiedDate TIMESTAMPTZ, weightMode VARCHAR,
                             division.id VARCHAR""", key=("form_id",))  # fmt: skip
SURVEY_FORMS = _snapshot("survey_forms", "published survey forms, every version",
                         """id VARCHAR form_id, name VARCHAR, contextId VARCHAR,
                         published BOOLEAN, disabled BOOLEAN, modifiedDate TIMESTAMPTZ,
                         language VARCHAR, division.id VARCHAR""", key=("form_id",))  # fmt: skip
FORM_PARTS = (
    *_form_parts(
        EVALUATION_FORMS,
        """
        id VARCHAR question_id, contextId VARCHAR, text VARCHAR, helpText VARCHAR, type VARCHAR,
        naEnabled BOOLEAN, commentsRequired BOOLEAN, isKill BOOLEAN, isCritical BOOLEAN""",
    ),
    *_form_parts(
        SURVEY_FORMS,
        """
        id VARCHAR question_id, contextId VARCHAR, text VARCHAR, helpText VARCHAR, type VARCHAR,
        naEnabled BOOLEAN, maxResponseCharacters BIGINT, explanationPrompt VARCHAR""",
    ),
)

ALL: tuple[Table, ...] = (
    CONVERSATIONS, PARTICIPANTS, PARTICIPANT_ATTRIBUTES, SESSIONS, SEGMENTS, METRICS,
    AGGREGATE_GROUPS, AGGREGATE_BUCKETS, CONVERSATION_AGGREGATES, USER_DETAILS,
    USER_PRESENCE, USER_ROUTING_STATUS, EVALUATIONS, EVALUATION_GROUPS,
    EVALUATION_ANSWERS, SURVEYS, SURVEY_GROUPS, SURVEY_ANSWERS, *SNAPSHOTS, EVALUATION_FORMS,
    SURVEY_FORMS, *FORM_PARTS, *UNITS, SCHEDULES, SCHEDULE_SHIFTS, SCHEDULE_ACTIVITIES,
    ADHERENCE_DAYS, ADHERENCE_EXCEPTIONS, ADHERENCE_ACTUALS,
)  # fmt: skip
TABLES: dict[str, Table] = {t.name: t for t in ALL if t.listed}


def tables_of(dataset: str) -> tuple[Table, ...]:
    """The tables (listed or not) a dataset's records fill, parents before children."""
    return tuple(t for t in ALL if t.dataset == dataset)


def datasets() -> tuple[str, ...]:
    """Every dataset some table is built from, in declaration order."""
    return tuple(dict.fromkeys(t.dataset for t in ALL))


def table_list() -> str:
    """The README's table list (Markdown), generated from the declarations above."""
    lines = ["| table | key | from | what |", "| --- | --- | --- | --- |"]
    for table in TABLES.values():
        key = ", ".join(table.key)
        source = f"`{table.dataset}`" + (" (newest snapshot)" if table.snapshot else "")
        lines.append(f"| `{table.name}` | {key} | {source} | {table.summary} |")
    return "\n".join(lines) + "\n"

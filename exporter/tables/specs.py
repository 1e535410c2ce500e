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
    type, and its name (snake_case of the field unless given)."""

    field: str
    type: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", snake(self.field))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.field.split("."))


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
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1


def _cols(*specs: str) -> tuple[Column, ...]:
    """Columns from ``field TYPE`` or ``field TYPE name`` strings."""
    columns = []
    for spec in specs:
        parts = spec.split(" ", 2)
        columns.append(Column(parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return tuple(columns)


V, TS, B, I, D, J, VL = "VARCHAR", "TIMESTAMPTZ", "BOOLEAN", "BIGINT", "DOUBLE", "JSON", "VARCHAR[]"

# The fields of genesys-api.md §5.3 (AnalyticsConversation and what it holds). Nested objects
# that are not split out (flow, mediaEndpointStats, evaluations, properties, ...) stay JSON.
CONVERSATIONS = Table(
    "conversations",
    "conversations",
    "one row per conversation; `extra` holds any top-level field the API adds later",
    ("conversation_id",),
    _cols(
        f"conversationId {V}", f"conversationStart {TS}", f"conversationEnd {TS}",
        f"originatingDirection {V}", f"conversationInitiator {V}",
        f"customerParticipation {B}", f"divisionIds {VL}", f"externalTag {V}",
        f"mediaStatsMinConversationMos {D}", f"mediaStatsMinConversationRFactor {D}",
        f"selfServed {B}", f"conferenceStart {TS}", f"inactivityTimeout {TS}",
        f"knowledgeBaseIds {VL}", f"evaluations {J}", f"surveys {J}", f"resolutions {J}",
    ),  # fmt: skip
    extra=True,
)
PARTICIPANTS = Table(
    "participants",
    "conversations",
    "each conversation's participants (customer, ivr, acd, agent, ...)",
    ("participant_id",),
    _cols(
        f"participantId {V}", f"participantName {V}", f"purpose {V}", f"userId {V}",
        f"teamId {V}", f"externalContactId {V}", f"externalOrganizationId {V}",
        f"flaggedReason {V}", f"screenRecording {B}",
    ),  # fmt: skip
    parent=CONVERSATIONS,
    field="participants",
    container="list",
)
PARTICIPANT_ATTRIBUTES = Table(
    "participant_attributes",
    "conversations",
    "participant attributes (job exports only), one row per name",
    ("name",),
    _cols(f"key {V} name", f"value {V} value"),
    parent=PARTICIPANTS,
    field="attributes",
    container="map",
)
SESSIONS = Table(
    "sessions",
    "conversations",
    "each participant's sessions (one per media leg)",
    ("session_id",),
    _cols(
        f"sessionId {V}", f"mediaType {V}", f"direction {V}", f"ani {V}", f"dnis {V}",
        f"sessionDnis {V}", f"addressFrom {V}", f"addressTo {V}", f"remote {V}", f"edgeId {V}",
        f"protocolCallId {V}", f"provider {V}", f"peerId {V}", f"recording {B}",
        f"requestedRoutings {VL}", f"usedRouting {V}", f"messageType {V}",
        f"deliveryStatus {V}", f"outboundCampaignId {V}", f"outboundContactId {V}",
        f"outboundContactListId {V}", f"callbackNumbers {VL}", f"callbackUserName {V}",
        f"callbackScheduledTime {TS}", f"flow {J}", f"mediaEndpointStats {J}",
    ),  # fmt: skip
    parent=PARTICIPANTS,
    field="sessions",
    container="list",
)
SEGMENTS = Table(
    "segments",
    "conversations",
    "each session's segments, `segment_index` their position (0 first)",
    ("segment_index",),
    _cols(
        f"segmentStart {TS}", f"segmentEnd {TS}", f"segmentType {V}", f"disconnectType {V}",
        f"queueId {V}", f"wrapUpCode {V}", f"wrapUpNote {V}", f"wrapUpTags {VL}",
        f"requestedRoutingSkillIds {VL}", f"requestedLanguageId {V}", f"conference {B}",
        f"errorCode {V}", f"sipResponseCodes {J}", f"q850ResponseCodes {J}", f"subject {V}",
        f"groupId {V}", f"audioMuted {B}", f"videoMuted {B}", f"properties {J}",
        f"scoredAgents {J}", f"sourceConversationId {V}", f"sourceSessionId {V}",
        f"destinationConversationId {V}", f"destinationSessionId {V}",
    ),  # fmt: skip
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
    _cols(f"name {V}", f"value {I}", f"emitDate {TS}"),
    parent=SESSIONS,
    field="metrics",
    container="list",
    index="metric_index",
)

USER_DETAILS = Table(
    "user_details",
    "user-details",
    "one line per user and day (not a table itself)",
    ("user_id",),
    _cols(f"userId {V}"),
    listed=False,
)
USER_PRESENCE = Table(
    "user_presence",
    "user-details",
    "agents' presence history; `end_time` is null while it lasts",
    ("start_time",),
    _cols(f"startTime {TS}", f"endTime {TS}", f"systemPresence {V}", f"organizationPresenceId {V}"),
    parent=USER_DETAILS,
    field="primaryPresence",
    container="list",
)
USER_ROUTING_STATUS = Table(
    "user_routing_status",
    "user-details",
    "agents' routing status history (IDLE, INTERACTING, ...); `end_time` is null while it lasts",
    ("start_time",),
    _cols(f"startTime {TS}", f"endTime {TS}", f"routingStatus {V}"),
    parent=USER_DETAILS,
    field="routingStatus",
    container="list",
)


def _snapshot(name: str, summary: str, *columns: str, key: tuple[str, ...] = ("id",)) -> Table:
    dataset = name.replace("_", "-")
    return Table(name, dataset, summary, key, _cols(*columns), snapshot=True, extra=True)


SNAPSHOTS: tuple[Table, ...] = (
    _snapshot("users", "users of every state", f"id {V}", f"name {V}", f"email {V}",
              f"username {V}", f"state {V}", f"title {V}", f"department {V}",
              f"division.id {V}", f"manager.id {V}", f"team.id {V}"),
    _snapshot("queues", "routing queues", f"id {V}", f"name {V}", f"description {V}",
              f"division.id {V}", f"memberCount {I}", f"dateCreated {TS}", f"dateModified {TS}"),
    _snapshot("queue_members", "queue membership: one row per queue and user",
              f"queueId {V}", f"id {V} user_id", f"name {V}", f"ringNumber {I}", f"joined {B}",
              f"memberBy {V}", key=("queue_id", "user_id")),
    _snapshot("wrapup_codes", "wrap-up codes", f"id {V}", f"name {V}", f"division.id {V}",
              f"dateCreated {TS}"),
    _snapshot("divisions", "authorization divisions", f"id {V}", f"name {V}",
              f"description {V}", f"homeDivision {B}"),
    _snapshot("groups", "groups", f"id {V}", f"name {V}", f"description {V}", f"type {V}",
              f"visibility {V}", f"state {V}", f"memberCount {I}"),
    _snapshot("teams", "work teams", f"id {V}", f"name {V}", f"description {V}",
              f"division.id {V}", f"memberCount {I}"),
    _snapshot("skills", "routing skills", f"id {V}", f"name {V}", f"state {V}",
              f"dateModified {TS}"),
    _snapshot("languages", "routing languages", f"id {V}", f"name {V}", f"state {V}",
              f"dateModified {TS}"),
    _snapshot("presence_definitions", "system and org-defined presences", f"id {V}",
              f"systemPresence {V}", f"primary {B}", f"deactivated {B}",
              f"languageLabels {J}"),
    _snapshot("flows", "Architect flows", f"id {V}", f"name {V}", f"type {V}",
              f"description {V}", f"active {B}", f"system {B}", f"deleted {B}",
              f"division.id {V}"),
)  # fmt: skip

ALL: tuple[Table, ...] = (
    CONVERSATIONS, PARTICIPANTS, PARTICIPANT_ATTRIBUTES, SESSIONS, SEGMENTS, METRICS,
    USER_DETAILS, USER_PRESENCE, USER_ROUTING_STATUS, *SNAPSHOTS,
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

"""``auth check``: log in, probe each selected dataset's permission, read the org's analytics
limits and data retention, and say it all as a table (or JSON).

One cheap request per dataset: a windowed dataset's watermark, a listing's one-entity first page
(a per-queue listing: the first queue's); and, where GDPR deletions are applied (``[forget]
enabled``, or a folder ``forget`` has run on), one page of the org's GDPR requests. A denied
dataset is reported with the permission to add; the exit code is 3 when any is denied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.datasets import Dataset
from exporter.engine.kinds import kind_of
from exporter.errors import ApiError, PermissionDenied
from exporter.forget import PERMISSION, REQUESTS_PATH, forgets
from exporter.org import current_org, retention_days

LIMITS = "/api/v2/organizations/limits/namespaces/analytics"


@dataclass(frozen=True, slots=True)
class Probe:
    dataset: str
    kind: str
    permission: str
    verdict: str  # ok, denied, error
    detail: str


@dataclass(frozen=True, slots=True)
class AccessReport:
    region: str
    login_url: str
    api_url: str
    org: str  # the org the credentials reach: an export folder belongs to one
    token_lifetime_s: float
    probes: tuple[Probe, ...]
    limits: dict[str, Any]
    retention_days: int | None
    warnings: tuple[str, ...]

    @property
    def status(self) -> str:
        return "denied" if any(probe.verdict == "denied" for probe in self.probes) else "ok"

    @property
    def exit_code(self) -> int:
        return PermissionDenied.exit_code if self.status == "denied" else 0

    def lines(self) -> list[str]:
        out = [
            f"region:          {self.region}",
            f"login:           ok ({self.login_url}/oauth/token, client credentials)",
            f"api:             {self.api_url}",
            f"org:             {self.org}",
            f"token lifetime:  {self.token_lifetime_s:.0f} s",
            f"data retention:  {_days(self.retention_days)}",
            "",
            f"{'dataset':<24} {'kind':<9} {'permission':<36} {'access':<7} detail",
        ]
        for p in self.probes:
            out.append(
                f"{p.dataset:<24} {p.kind:<9} {p.permission or '(none declared)':<36} "
                f"{p.verdict:<7} {p.detail}"
            )
        if self.limits:
            out += ["", "analytics limits:"]
            out += [f"  {key} = {value}" for key, value in sorted(self.limits.items())]
        out += [f"warning: {warning}" for warning in self.warnings]
        return out

    def as_json(self) -> dict[str, Any]:
        """The report as the command's JSON summary: status, exit code, no error, findings."""
        return {"status": self.status, "exit_code": self.exit_code, "error": None, **asdict(self)}


async def check_access(
    settings: Settings, datasets: tuple[Dataset, ...], *, start: datetime | None = None
) -> AccessReport:
    """Mint a token, probe each dataset, read the limits and the retention."""
    conn = settings.connection
    async with ApiClient(conn, settings.http) as api:
        token = await api.tokens.get()  # AuthError (exit 3) explains a rejected login
        org = await current_org(api, conn)
        probes = tuple([await _probe(api, dataset) for dataset in datasets])
        if forgets(settings):
            probes += (await _probe_forget(api),)
        limits = await _limits(api)
        retention = await retention_days(api)
    warnings = []
    if start is not None and retention is not None:
        oldest = datetime.now(UTC) - timedelta(days=retention)
        if start < oldest:
            warnings.append(
                f"--start {start:%Y-%m-%d} is older than the org's {retention}-day analytics "
                f"retention: windows before {oldest:%Y-%m-%d} can only come back empty."
            )
    return AccessReport(
        region=conn.region or ("sandbox" if conn.sandbox else "custom URL"),
        login_url=conn.login_url,
        api_url=conn.api_url,
        org=org.describe(),
        token_lifetime_s=token.lifetime_s,
        probes=probes,
        limits=limits,
        retention_days=retention,
        warnings=tuple(warnings),
    )


async def _probe(api: ApiClient, dataset: Dataset) -> Probe:
    kind = kind_of(dataset)
    try:
        detail = await kind.reach(api, dataset)
    except PermissionDenied:
        need = dataset.permission or "a role that can read it"
        return Probe(dataset.name, kind.word, dataset.permission, "denied", f"add {need}")
    except ApiError as exc:
        return Probe(dataset.name, kind.word, dataset.permission, "error", str(exc))
    return Probe(dataset.name, kind.word, dataset.permission, "ok", detail)


async def _probe_forget(api: ApiClient) -> Probe:
    """Whether the org's GDPR requests can be read: ``forget`` needs them, and so does every
    export into a folder it has run on (one request of one entry)."""
    params = {"pageSize": "1", "pageNumber": "1"}
    try:
        await api.request("GET", REQUESTS_PATH, params=params, parse=orjson.loads)
    except PermissionDenied:
        return Probe("gdpr-requests", "forget", PERMISSION, "denied", f"add {PERMISSION}")
    except ApiError as exc:
        return Probe("gdpr-requests", "forget", PERMISSION, "error", str(exc))
    return Probe("gdpr-requests", "forget", PERMISSION, "ok", "readable")


async def _limits(api: ApiClient) -> dict[str, Any]:
    """The org's effective analytics limits, key -> value (empty when unreadable)."""
    try:
        data = await api.request("GET", LIMITS, parse=orjson.loads)
    except (ApiError, PermissionDenied):
        return {}
    entities = data.get("entities") if isinstance(data, dict) else None
    if not isinstance(entities, list):
        return {}
    return {str(e.get("key")): e.get("value") for e in entities if isinstance(e, dict)}


def _days(days: int | None) -> str:
    return "unknown (needs analytics:dataRetention:view)" if days is None else f"{days} days"

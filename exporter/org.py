"""What the exporter reads of the org itself: which org a folder belongs to, and its retention.

One export folder, one org: the folder records the Genesys Cloud org its data came from, and a
run whose credentials reach another org refuses before writing anything.

A wrong Secret, the sandbox's demo pair, or a volume copied between environments would
otherwise make one org's complete windows stand for another's (their days skipped, exit 0).
``GET /api/v2/organizations/me`` names the org; it declares no permission, and an OAuth client
belongs to exactly one org in one region (genesys-datasets.md §E).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import orjson

from exporter.client.http import ApiClient
from exporter.config import Connection
from exporter.errors import ApiError, ConfigError, PermissionDenied
from exporter.store.manifest import Manifest, OrgIdentity

ORG_PATH = "/api/v2/organizations/me"
RETENTION_PATH = "/api/v2/analytics/dataretention/settings"
log = logging.getLogger(__name__)


async def current_org(api: ApiClient, connection: Connection) -> OrgIdentity:
    """The org the credentials reach, and the login host they reached it through."""
    try:
        data = await api.request("GET", ORG_PATH, parse=orjson.loads)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise not_an_api(exc.url) from exc
    org_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(org_id, str) or not org_id:
        raise ApiError(f"The API answered {ORG_PATH} without an org id; it is not Genesys Cloud.")
    name = data.get("name")
    host = "sandbox" if connection.sandbox else urlsplit(connection.login_url).hostname
    return OrgIdentity(org_id, name if isinstance(name, str) and name else org_id, host or "?")


def not_an_api(url: str) -> ConfigError:
    """A route every org has answered 404: the API URL is not Genesys Cloud's."""
    return ConfigError(
        f"The API at {url} answered HTTP 404: it is not a Genesys Cloud API. Check the region "
        "(--region or GENESYSCLOUD_REGION) or --api-url."
    )


async def claim_folder(
    api: ApiClient, connection: Connection, manifest: Manifest, *, record: bool = True
) -> None:
    """Refuse (exit 2) a folder of another org; record the org of one that names none yet
    (unless ``record`` is off: ``--plan`` writes nothing)."""
    org = await current_org(api, connection)
    recorded = manifest.org
    if recorded is None:
        if not record:
            return
        manifest.org = org
        await asyncio.to_thread(manifest.save)
        log.info("the output folder %s now belongs to org %s", manifest.out_dir, org.describe())
        return
    if recorded.id != org.id:
        raise ConfigError(
            f"The output folder {manifest.out_dir} holds the data of Genesys Cloud org "
            f"{recorded.describe()}, but these credentials reach org {org.describe()}; nothing "
            f"was written. Use the credentials and region of {recorded.name!r}, or another --out "
            f"for {org.name!r}."
        )


async def retention_days(api: ApiClient) -> int | None:
    """The org's analytics data retention in days; None when it cannot be read (it needs
    analytics:dataRetention:view, which an export does not otherwise need)."""
    try:
        data = await api.request("GET", RETENTION_PATH, parse=orjson.loads)
    except (ApiError, PermissionDenied):
        return None
    days = data.get("retentionDays") if isinstance(data, dict) else None
    return days if isinstance(days, int) and not isinstance(days, bool) else None

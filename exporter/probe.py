"""``auth check``: log in, probe what the token can reach, and say so in a few lines."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from exporter.client.http import ANALYTICS_PERMISSION, ApiClient
from exporter.config import Settings
from exporter.engine import jobs as analytics
from exporter.errors import ApiError, AuthError, PermissionDenied


@dataclass(frozen=True, slots=True)
class AccessReport:
    region: str
    login_url: str
    api_url: str
    token_lifetime_s: float
    reachable: tuple[tuple[str, str], ...]
    exit_code: int

    def lines(self) -> list[str]:
        out = [
            f"region:          {self.region}",
            f"login:           ok ({self.login_url}/oauth/token, client credentials)",
            f"api:             {self.api_url}",
            f"token lifetime:  {self.token_lifetime_s:.0f} s",
        ]
        out += [f"{name + ':':<16} {verdict}" for name, verdict in self.reachable]
        return out


async def check_access(settings: Settings) -> AccessReport:
    """Mint a token and try one cheap request per capability the exporter needs."""
    conn = settings.connection
    async with ApiClient(conn, settings.http) as api:
        token = await api.tokens.get()  # AuthError (exit 3) explains a rejected login
        checks = [
            ("conversations", await _probe_details(api)),
            ("users", await _probe(api, "/api/v2/users?pageSize=1", "directory:user:view")),
        ]
    denied = any(verdict.startswith("denied") for name, verdict in checks[:1])
    region = conn.region or ("sandbox" if conn.sandbox else "custom URL")
    return AccessReport(
        region=region,
        login_url=conn.login_url,
        api_url=conn.api_url,
        token_lifetime_s=token.lifetime_s,
        reachable=tuple(checks),
        exit_code=PermissionDenied.exit_code if denied else 0,
    )


async def _probe_details(api: ApiClient) -> str:
    try:
        watermark = await analytics.data_availability(api)
    except PermissionDenied:
        return f"denied: give the OAuth client a role with {ANALYTICS_PERMISSION}"
    except ApiError as exc:
        return f"error: {exc}"
    return f"ok, details jobs complete up to {watermark.isoformat()}"


async def _probe(api: ApiClient, path: str, permission: str) -> str:
    try:
        await api.request("GET", path, parse=orjson.loads)
    except PermissionDenied:
        return f"denied (needs {permission}; optional)"
    except (ApiError, AuthError) as exc:
        return f"error: {exc}"
    return "ok"

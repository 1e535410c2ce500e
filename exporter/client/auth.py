"""One client-credentials token for the whole process, refreshed once however many ask.

The fast path reads the current token without a lock. When it is missing or about to expire,
callers queue on one lock and re-check: the first mints a token, the rest find it fresh. A 401
invalidates only the token that failed, so 64 requests that meet an expired token cause exactly
one token request. Minting itself is injected (``exporter.client.http`` does the HTTP), so this
module never sees aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# Never refresh earlier than this share of a token's life, whatever the configured margin:
# a 5-minute margin on a 10-second test token would otherwise refresh on every request.
MAX_MARGIN_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and when (on the loop clock) we stop trusting it."""

    value: str = field(repr=False)
    lifetime_s: float
    refresh_at: float
    generation: int

    def __repr__(self) -> str:
        return f"Token(generation={self.generation}, lifetime_s={self.lifetime_s})"


MintToken = Callable[[], Awaitable[tuple[str, float]]]
"""Requests a new token; returns (access_token, expires_in seconds)."""


class TokenProvider:
    """Hands out the shared token, minting a new one only when it is stale or was rejected."""

    def __init__(
        self,
        mint: MintToken,
        *,
        refresh_margin_s: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._mint = mint
        self._margin_s = refresh_margin_s
        self._clock = clock or asyncio.get_running_loop().time
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self._generation = 0

    @property
    def refreshes(self) -> int:
        """How many tokens this process has minted."""
        return self._generation

    @property
    def current(self) -> Token | None:
        """The token in use, if any (for reporting its lifetime)."""
        return self._token

    async def get(self) -> Token:
        """The current token, minting one first when there is none or it is about to expire."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token
        async with self._lock:
            token = self._token  # another caller may have refreshed while we waited
            if token is not None and self._clock() < token.refresh_at:
                return token
            self._token = await self._mint_token()
            return self._token

    def invalidate(self, token: Token) -> None:
        """Forget ``token`` after the API rejected it, unless a newer one already replaced it."""
        if self._token is token:
            self._token = None

    async def _mint_token(self) -> Token:
        value, lifetime_s = await self._mint()
        margin = min(self._margin_s, lifetime_s * MAX_MARGIN_SHARE)
        self._generation += 1
        return Token(
            value=value,
            lifetime_s=lifetime_s,
            refresh_at=self._clock() + lifetime_s - margin,
            generation=self._generation,
        )


def explain_token_rejection(*, status: int, error: str, description: str, login_url: str) -> str:
    """The one paragraph that decodes OAuth's terse 'client authentication failed'."""
    said = f"{error}: {description}" if description else error or f"HTTP {status}"
    if error == "unsupported_grant_type" or error == "unauthorized_client":
        return (
            f"The login service at {login_url} refused the token request ({said}). The OAuth "
            "client is not allowed to use the Client Credentials grant: in Genesys Cloud "
            "(Admin > Integrations > OAuth) create a client whose Grant Type is Client "
            "Credentials and use its id and secret."
        )
    return (
        f"The login service at {login_url} rejected the client credentials ({said}, HTTP "
        f"{status}). Genesys answers this way for several causes; check in this order: "
        "(1) the client id and secret are a matching pair (GENESYSCLOUD_OAUTHCLIENT_ID / "
        "GENESYSCLOUD_OAUTHCLIENT_SECRET or [genesys] in config.toml; a regenerated secret "
        "invalidates the old one); (2) the region: the OAuth client belongs to one org in one "
        "region, and asking another region's login host is the most common cause (set --region "
        "or GENESYSCLOUD_REGION to your org's region, e.g. eu-west-1 for mypurecloud.ie); "
        "(3) the OAuth client's Grant Type is Client Credentials; (4) SAML SSO settings do not "
        "affect this grant, so SSO for people needs no change."
    )

"""The login service and bearer tokens: client-credentials grant, expiry, revocation.

Errors at ``/oauth/token`` use the login service's own shape (genesys-api.md §2.3), not ErrorBody.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from urllib.parse import unquote_plus

from genesys_sandbox.wire import ApiProblem


@dataclass(frozen=True, slots=True)
class LoginRefusal:
    """A refused token request: HTTP status and the login service's error and description."""

    status: int
    error: str
    description: str


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in: int


def client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str] | None:
    """Client id and secret from Basic auth, else from the form body (client_secret_post)."""
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, sep, secret = decoded.partition(":")
        # RFC 6749 §2.3.1: both halves are form-urlencoded before Basic encoding.
        return (unquote_plus(client_id), unquote_plus(secret)) if sep else None
    if "client_id" in form:
        return form["client_id"], form.get("client_secret", "")
    return None


class TokenStore:
    """Issued tokens and their expiry instants on the sandbox clock."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}

    def issue(self, now: float, ttl_s: float) -> TokenGrant:
        token = secrets.token_urlsafe(32)
        self._expiry[token] = now + ttl_s
        # expires_in is whole seconds on the wire; never promise more than the real lifetime.
        return TokenGrant(token, int(ttl_s))

    def check(self, authorization: str | None, now: float) -> str:
        """The bearer token of a valid header; ApiProblem 401 otherwise (the two real codes)."""
        if not authorization or authorization[:7].lower() != "bearer ":
            raise ApiProblem.of(401, "authentication.required")
        token = authorization[7:].strip()
        expiry = self._expiry.get(token)
        if expiry is None or now >= expiry:
            raise ApiProblem.of(401, "bad.credentials")
        return token

    def revoke(self, token: str) -> None:
        self._expiry.pop(token, None)

    def revoke_all(self) -> None:
        self._expiry.clear()


def login(
    form: dict[str, str],
    credentials: tuple[str, str] | None,
    expected: tuple[str, str],
    wrong_secret_status: int,
) -> LoginRefusal | None:
    """Why a client-credentials token request is refused, or None when it is good."""
    grant = form.get("grant_type")
    if grant is None:
        # RFC 6749 §5.2; the real wording for this case is unverified.
        return LoginRefusal(400, "invalid_request", "grant_type is required")
    if grant != "client_credentials":
        return LoginRefusal(400, "unsupported_grant_type", "unsupported grant type")
    if credentials is None or credentials[0] != expected[0]:
        return LoginRefusal(400, "invalid_client", "client not found")
    if not secrets.compare_digest(credentials[1].encode(), expected[1].encode()):
        return LoginRefusal(wrong_secret_status, "invalid_client", "authentication failed")
    return None

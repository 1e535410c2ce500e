"""The exporter's exceptions, chosen by what the caller can do about them.

    ExportError                      every error the exporter raises on purpose
    ├── ConfigError                  fix your flags, config file, environment or URL (exit 2)
    │   └── InputError               an export folder to build tables from is missing or
    │                                does not match its manifest: export again  (exit 2)
    ├── AuthError                    fix credentials, region or OAuth client      (exit 3)
    │   └── PermissionDenied         give the OAuth client a role                 (exit 3)
    ├── RunAgainLater                nothing is wrong but the service's pace      (exit 4)
    │   ├── QuotaExhausted           the server asked for a wait beyond the bound
    │   └── JobStalled (engine.jobs) the analytics jobs service finished no job in time
    ├── Unreachable                  no connection: refused, DNS, TLS, or down    (exit 5)
    ├── ApiError                     the API answered in a way a retry cannot fix (exit 1)
    │   ├── LinkExpired              a pre-signed download link has expired: ask anew
    │   └── RetryableError           worth another attempt after a pause
    │       ├── RateLimited          429; carries ``retry_after`` seconds or None
    │       ├── ServerError          5xx
    │       └── TransportError       connection dropped, timed out, body truncated
    │           └── ConnectFailed    no connection at all (refused, DNS, TLS)
    ├── OutputError                  the output folder cannot be written          (exit 1)
    ├── PushFailed                   the Pushgateway took no metrics: only a warning, the
    │                                run's exit code stands
    ├── LockHeld                     another live run is writing the same folder  (exit 75)
    └── Interrupted                  SIGINT/SIGTERM stopped the run                (exit 130)

Only ``exporter.client.http`` sees aiohttp's exceptions; it maps them onto this tree. Messages are
full sentences that name the thing that went wrong and the fix, and never carry a secret. The
Python API (``exporter.api``) raises the class of the exit code a command ends with, the
command's summary attached (``error_for``).
Exit 75 is sysexits' EX_TEMPFAIL: a cron wrapper can tell "still running" from "failed" (1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ExportError(Exception):
    """Base of every deliberate exporter error; ``exit_code`` is what the CLI returns and
    ``summary_status`` what its JSON summary says. ``summary``: the summary of the command it
    ended, when the Python API raises it."""

    exit_code = 1
    summary_status = "error"
    summary: Any = None


class ConfigError(ExportError):
    """Bad flags, config file, environment or input dates."""

    exit_code = 2
    summary_status = "bad_input"


class InputError(ConfigError):
    """The export folder ``tables`` reads has no manifest, or a file differs from it."""


class AuthError(ExportError):
    """The token request was refused or the token stopped working."""

    exit_code = 3
    summary_status = "auth_failed"


class PermissionDenied(AuthError):
    """The token works but lacks a permission the request needs."""


class RunAgainLater(ExportError):
    """Nothing is wrong but the service's pace: the work is kept, a later run goes on."""

    exit_code = 4
    summary_status = "run_again_later"


class QuotaExhausted(RunAgainLater):
    """A Retry-After longer than the configured bound: stop instead of sleeping for hours."""

    summary_status = "quota_exhausted"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unreachable(ExportError):
    """The service could not be reached at all; retrying later or fixing the URL may help."""

    exit_code = 5
    summary_status = "unreachable"


class ApiError(ExportError):
    """A response no retry can fix; carries what is needed to report it to Genesys, and the
    ErrorBody's own ``message`` and ``messageParams`` (``server_message``, ``message_params``)
    for callers that act on what it names."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str = "",
        code: str = "",
        correlation_id: str = "",
        body_excerpt: str = "",
        server_message: str = "",
        message_params: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.code = code
        self.correlation_id = correlation_id
        self.body_excerpt = body_excerpt
        self.server_message = server_message
        self.message_params = dict(message_params or {})


class LinkExpired(ApiError):
    """A pre-signed download link answered 403 or 410: it has expired; its job gives fresh
    ones."""


class RetryableError(ApiError):
    """A transient failure; ``retry_after`` is the server's requested wait in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimited(RetryableError):
    """HTTP 429: the limiter pauses every request for ``retry_after`` when the server gave one."""


class ServerError(RetryableError):
    """HTTP 5xx."""


class TransportError(RetryableError):
    """The connection failed, timed out, or the body arrived truncated or unreadable."""


class ConnectFailed(TransportError):
    """No connection was made: refused, the name did not resolve, or TLS failed.

    ``retryable`` is False for a certificate the client does not trust: no retry fixes it."""

    def __init__(self, message: str, *, retryable: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retryable = retryable


class OutputError(ExportError):
    """The output folder or a file in it cannot be created or written."""


class PushFailed(ExportError):
    """The Pushgateway could not be read or written. Never an exit code: the export is on
    disk, and a gateway that is down shows on its own (its ``push_time_seconds`` ages)."""


class LockHeld(ExportError):
    """Another live run holds the output folder's lock."""

    exit_code = 75
    summary_status = "locked"


class Interrupted(ExportError):
    """A signal asked the run to stop; the manifest stays consistent."""

    exit_code = 130
    summary_status = "interrupted"


_BY_EXIT_CODE: Mapping[int, type[ExportError]] = {
    ConfigError.exit_code: ConfigError,
    AuthError.exit_code: AuthError,
    RunAgainLater.exit_code: RunAgainLater,
    Unreachable.exit_code: Unreachable,
    LockHeld.exit_code: LockHeld,
    Interrupted.exit_code: Interrupted,
}


def error_for(status: str, exit_code: int, message: str, summary: Any) -> ExportError:
    """The error a command's summary stands for: the class of its exit code (PermissionDenied
    for a denial), its message, the summary attached; what the Python API raises."""
    kind = PermissionDenied if status == "denied" else _BY_EXIT_CODE.get(exit_code, ExportError)
    error = kind(message)
    error.summary = summary
    return error

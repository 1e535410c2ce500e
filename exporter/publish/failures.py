"""The one place where the storage and table libraries' exceptions become ours.

obstore and deltalake (both built on Rust's ``object_store``) report a storage failure as
text; pyiceberg raises its REST exceptions, requests' connection errors, and pyarrow's
``OSError`` for the files it writes. Each is classified by what the user can do about it:

    no credentials, a bucket that does not exist, an unknown catalog   ConfigError  (exit 2)
    credentials refused, access denied                                 AuthError    (exit 3)
    the endpoint or the catalog cannot be reached                      Unreachable  (exit 5)
    anything else that failed a read or a write                        OutputError  (exit 1)

A message names the destination, what was being done and the fix, with the library's reason
cut to an error code or its first line: no request body, no header, never a secret.
``translating`` wraps every call into those libraries; an exception of ours, or a bug of
ours (a TypeError, say), passes through untouched.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from exporter.errors import AuthError, ConfigError, ExportError, OutputError, Unreachable

_LIBRARIES = ("obstore", "deltalake", "pyiceberg", "requests", "urllib3", "botocore", "pyarrow")
# Lower-case fragments of the libraries' messages, checked in this order.
_NO_CREDENTIALS = ("169.254.169.254", "/latest/api/token", "/latest/meta-data",
                   "get_frozen_credentials", "no credentials", "missing credentials")  # fmt: skip
_NO_BUCKET = ("nosuchbucket", "bucket does not exist", "containernotfound")
_DENIED = ("403", "401", "forbidden", "unauthorized", "accessdenied", "access denied",
           "access_denied", "signaturedoesnotmatch", "invalidaccesskeyid", "permission denied",
           "authorizationfailure", "authenticationfailed")  # fmt: skip
_UNREACHABLE = ("error sending request", "connection refused", "dns error", "tcp connect",
                "could not resolve", "network_connection", "failed to establish a new connection",
                "name or service not known", "timed out", "connection reset",
                "max retries exceeded")  # fmt: skip
_DENIED_TYPES = {"PermissionDeniedError", "UnauthenticatedError", "ForbiddenError",
                 "UnauthorizedError", "AuthorizationExpiredError"}  # fmt: skip
_UNREACHABLE_TYPES = {"ConnectionError", "ConnectTimeout", "NewConnectionError"}
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a role)",
    "gs": "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS",
    "az": "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY (or a SAS token or "
    "managed identity)",
}


@contextlib.contextmanager
def translating(where: str, doing: str, *, catalog: str = "") -> Iterator[None]:
    """Raise the library exceptions of the block as ours: about the storage URL ``where``, or
    the pyiceberg catalog ``catalog`` when one is named."""
    try:
        yield
    except ExportError:
        raise
    except Exception as exc:
        if not _from_a_library(exc):
            raise
        ours = catalog_error(exc, catalog, doing) if catalog else storage_error(exc, where, doing)
        raise ours from exc


def storage_error(exc: BaseException, url: str, doing: str) -> ExportError:
    """A failure of the object storage under ``url`` while ``doing`` something."""
    text, reason = _text(exc), _reason(exc)
    credentials = _CREDENTIALS[_family(url)]
    if _has(text, _NO_CREDENTIALS):
        return ConfigError(f"No credentials for {url} were found: set {credentials}.")
    if _has(text, _NO_BUCKET):
        return ConfigError(
            f"The bucket of {url} does not exist at this endpoint ({reason}); create it, or "
            "fix --to (and AWS_ENDPOINT_URL, if set)."
        )
    if _kind(exc) & _DENIED_TYPES or _has(text, _DENIED):
        return AuthError(
            f"{url} refused the credentials while trying to {doing} ({reason}); check "
            f"{credentials}, and that they may list, read, write and delete under that prefix."
        )
    if _kind(exc) & _UNREACHABLE_TYPES or _has(text, _UNREACHABLE):
        return Unreachable(
            f"Cannot reach the object storage of {url}{_at(exc)} ({reason}); check the "
            "endpoint (AWS_ENDPOINT_URL, if set) and the network, then publish again."
        )
    return OutputError(f"Could not {doing} at {url}: {reason}.")


def catalog_error(exc: BaseException, catalog: str, doing: str) -> ExportError:
    """A failure of the Iceberg catalog ``catalog`` (or the storage behind it)."""
    text, reason = _text(exc), _reason(exc)
    variable = f"PYICEBERG_CATALOG__{catalog.upper()}__URI"
    if _has(text, _NO_CREDENTIALS):
        return ConfigError(
            f"No AWS credentials were found to sign the requests to Iceberg catalog {catalog}: "
            f"set {_CREDENTIALS['s3']}."
        )
    if _has(text, _NO_BUCKET) or _kind(exc) & {"NoSuchNamespaceError", "NoSuchTableError"}:
        return ConfigError(f"Iceberg catalog {catalog} could not {doing} ({reason}).")
    if _kind(exc) & _DENIED_TYPES or _has(text, _DENIED):
        return AuthError(
            f"Iceberg catalog {catalog} refused the credentials while trying to {doing} "
            f"({reason}); check its credentials (.pyiceberg.yaml, PYICEBERG_CATALOG__"
            f"{catalog.upper()}__*) and {_CREDENTIALS['s3']}."
        )
    if _kind(exc) & _UNREACHABLE_TYPES or _has(text, _UNREACHABLE):
        return Unreachable(
            f"Cannot reach Iceberg catalog {catalog} or its storage{_at(exc)} ({reason}); "
            f"check its uri ({variable} or .pyiceberg.yaml), its s3.endpoint (or "
            "AWS_ENDPOINT_URL), and the network."
        )
    return OutputError(f"Iceberg catalog {catalog} could not {doing}: {reason}.")


def _from_a_library(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, AttributeError):  # pyiceberg's SigV4 signing with no credentials
        return "get_frozen_credentials" in str(exc)
    return any(cls.__module__.split(".")[0] in _LIBRARIES for cls in type(exc).__mro__)


def _kind(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__} {exc}".lower()


def _has(text: str, fragments: tuple[str, ...]) -> bool:
    """Whether the text holds a fragment; a status code only as a number of its own, never
    inside a longer one or a random name (a prefix such as ``t4013ab`` is no 401)."""
    return any(
        re.search(rf"(?<![0-9a-z]){fragment}(?![0-9a-z])", text)
        if fragment.isdigit()
        else fragment in text
        for fragment in fragments
    )


def _reason(exc: BaseException) -> str:
    """What the service said, short: its status and error code, the HTTP client's error, or
    the first line."""
    text = str(exc)
    code = re.search(r"<Code>(\w+)</Code>", text)
    status = re.search(r"status code: (\d{3}(?: [A-Za-z]+)*)", text)
    if code or status:
        return ", ".join(m.group(1) for m in (status, code) if m)
    client = re.search(r"HTTP error: ([^\n]+)|\[Errno -?\d+\] ([^'\")\n]+)", text)
    if client:
        return (client.group(1) or client.group(2)).strip()
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = re.sub(r"https?://\S+", lambda m: m.group(0).split("?")[0], first)  # no query
    return first if len(first) <= 200 else first[:197] + "..."


def _at(exc: BaseException) -> str:
    """`` at <host>``: the endpoint the failed request went to, when the message names it."""
    text = str(exc)
    found = re.search(r"(https?://[^/\s]+)", text)
    pool = re.search(r"host='([^']+)', port=(\d+)", text)  # requests (pyiceberg's REST)
    if found:
        return f" at {found.group(1)}"
    return f" at {pool.group(1)}:{pool.group(2)}" if pool else ""


def _family(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    return "gs" if scheme == "gs" else "s3" if scheme.startswith("s3") else "az"

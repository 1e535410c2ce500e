"""Genesys Cloud regions: names, domains, and the API and login hosts derived from them."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import urlsplit

from exporter.errors import ConfigError

# The 18 regions of the Python SDK 269 enum, keyed by AWS region name with hyphens (the SDK uses
# underscores, Genesys's CLI a mix of both; resolve_region accepts all of them).
REGIONS: Mapping[str, str] = MappingProxyType(
    {
        "us-east-1": "mypurecloud.com",
        "us-east-2": "use2.us-gov-pure.cloud",
        "us-west-2": "usw2.pure.cloud",
        "ca-central-1": "cac1.pure.cloud",
        "sa-east-1": "sae1.pure.cloud",
        "mx-central-1": "mxc1.pure.cloud",
        "eu-west-1": "mypurecloud.ie",
        "eu-west-2": "euw2.pure.cloud",
        "eu-central-1": "mypurecloud.de",
        "eu-central-2": "euc2.pure.cloud",
        "eusc-de-east-1": "edee1.eusc-pure.cloud",
        "me-central-1": "mec1.pure.cloud",
        "ap-south-1": "aps1.pure.cloud",
        "ap-southeast-1": "apse1.pure.cloud",
        "ap-southeast-2": "mypurecloud.com.au",
        "ap-northeast-1": "mypurecloud.jp",
        "ap-northeast-2": "apne2.pure.cloud",
        "ap-northeast-3": "apne3.pure.cloud",
    }
)
_BY_DOMAIN: Mapping[str, str] = MappingProxyType({d: key for key, d in REGIONS.items()})
_HOST_LABELS = ("api.", "login.")


def resolve_region(name: str, *, what: str = "region") -> str:
    """The canonical key for a region name, a domain, or an api./login. host or URL.

    Accepts ``us-east-1``, ``us_east_1``, ``US-EAST-1``, ``mypurecloud.ie``,
    ``api.mypurecloud.ie`` and ``https://login.mypurecloud.ie/``. ``what`` names where the value
    came from in the error (a flag, an environment variable or a config key).
    """
    text = name.strip().lower()
    key = text.replace("_", "-")
    if key in REGIONS:
        return key
    domain = region_domain_of(text)
    if domain is not None:
        return _BY_DOMAIN[domain]
    raise ConfigError(_unknown_message(name, what))


def region_domain_of(text: str) -> str | None:
    """The region domain named by a domain, host or URL, or None when it is not a Genesys one."""
    host = text.strip().lower()
    if "//" in host:
        host = urlsplit(host).hostname or ""
    host = host.rstrip("/").rstrip(".")
    for label in _HOST_LABELS:
        host = host.removeprefix(label)
    return host if host in _BY_DOMAIN else None


def _unknown_message(name: str, what: str) -> str:
    candidate = name.strip().lower().replace("_", "-")
    close = difflib.get_close_matches(candidate, [*REGIONS, *_BY_DOMAIN], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else "."
    return (
        f"{what} {name!r} is not a Genesys Cloud region{hint} Valid regions: "
        f"{', '.join(REGIONS)} (or their domains, such as mypurecloud.ie)."
    )


def api_url_for(region: str) -> str:
    """``https://api.<domain>`` for a region in any form resolve_region accepts."""
    return f"https://api.{REGIONS[resolve_region(region)]}"


def login_url_for(region: str) -> str:
    """``https://login.<domain>`` (the OAuth host) for a region in any form resolve_region takes."""
    return f"https://login.{REGIONS[resolve_region(region)]}"


def region_for_url(api_url: str) -> str | None:
    """The region whose API host ``api_url`` is (``https://api.<domain>``, no path), else None."""
    parts = urlsplit(api_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or parts.path.strip("/") or not host.startswith("api."):
        return None
    return _BY_DOMAIN.get(host.removeprefix("api."))


def derive_login_url(api_url: str) -> str:
    """The login base URL for an API base URL, as the Python SDK derives it.

    A host whose first label is ``api`` gets ``login`` instead; a host without one (the sandbox,
    a gateway or a proxy on 127.0.0.1) serves the token endpoint at the API URL itself.
    """
    base = api_url.strip().rstrip("/")
    parts = urlsplit(base)
    host = parts.hostname or ""
    if not host.lower().startswith("api."):
        return base
    # Swap the label inside netloc so a port or user-info part stays as it was.
    netloc = parts.netloc
    at = netloc.rfind("@") + 1
    netloc = netloc[:at] + "login." + netloc[at + len("api.") :]
    return parts._replace(netloc=netloc).geturl()

"""Genesys Cloud regions: names, domains and the API and login hosts derived from them."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from types import MappingProxyType

from exporter.errors import ConfigError

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
_BY_DOMAIN = {domain: key for key, domain in REGIONS.items()}


def resolve_region(name: str) -> str:
    """The canonical key for a region name (any case, - or _), a domain, or an api/login host."""
    text = name.strip().lower().removeprefix("https://").rstrip("/")
    key = text.replace("_", "-")
    if key in REGIONS:
        return key
    domain = re.sub(r"^(api|login)\.", "", text)
    if domain in _BY_DOMAIN:
        return _BY_DOMAIN[domain]
    close = difflib.get_close_matches(key, [*REGIONS, *_BY_DOMAIN], n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    raise ConfigError(
        f"Unknown region {name!r}.{hint} Valid regions: {', '.join(REGIONS)} "
        "(or their domains, such as mypurecloud.ie)."
    )


def api_url_for(region: str) -> str:
    return f"https://api.{REGIONS[resolve_region(region)]}"


def login_url_for(region: str) -> str:
    return f"https://login.{REGIONS[resolve_region(region)]}"


def derive_login_url(api_url: str) -> str:
    """``//api.`` becomes ``//login.`` as the SDKs do; other hosts log in at the API URL."""
    base = api_url.rstrip("/")
    return base.replace("//api.", "//login.", 1) if "//api." in base else base

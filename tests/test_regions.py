"""Regions: every form of a region name resolves, and login URLs derive as the Python SDK does."""

from __future__ import annotations

import pytest

from exporter.errors import ConfigError
from exporter.regions import (
    REGIONS,
    api_url_for,
    derive_login_url,
    login_url_for,
    region_for_url,
    resolve_region,
)


def test_all_eighteen_regions_of_the_sdk_are_known() -> None:
    """The table holds the 18 regions of SDK 269, hyphenated, with distinct domains."""
    assert len(REGIONS) == 18 and len(set(REGIONS.values())) == 18
    assert REGIONS["us-east-1"] == "mypurecloud.com"
    assert REGIONS["me-central-1"] == "mec1.pure.cloud"
    assert REGIONS["ap-northeast-3"] == "apne3.pure.cloud"
    assert REGIONS["eu-central-2"] == "euc2.pure.cloud"
    assert REGIONS["eusc-de-east-1"] == "edee1.eusc-pure.cloud"
    assert all("_" not in key and key == key.lower() for key in REGIONS)


@pytest.mark.parametrize(
    "name",
    [
        "eu-west-1",
        "eu_west_1",
        "EU-WEST-1",
        " eu-west-1 ",
        "mypurecloud.ie",
        "MyPureCloud.IE",
        "api.mypurecloud.ie",
        "login.mypurecloud.ie",
        "https://api.mypurecloud.ie",
        "https://login.mypurecloud.ie/",
    ],
)
def test_every_form_of_a_region_resolves_to_its_key(name) -> None:
    """Key, underscores, any case, domain, api./login. host and URL all give the canonical key."""
    assert resolve_region(name) == "eu-west-1"


@pytest.mark.parametrize("key", sorted(REGIONS))
def test_each_region_round_trips_through_its_hosts(key) -> None:
    """Each region's underscore form, domain and both hosts resolve back to it."""
    domain = REGIONS[key]
    assert api_url_for(key) == f"https://api.{domain}"
    assert login_url_for(key) == f"https://login.{domain}"
    for form in (key.replace("-", "_"), domain, api_url_for(key), login_url_for(key)):
        assert resolve_region(form) == key
    assert region_for_url(api_url_for(key)) == key


def test_an_unknown_region_names_the_value_the_closest_and_every_valid_one() -> None:
    """A typo gets one line: the value, the closest match, and the valid names."""
    with pytest.raises(ConfigError) as info:
        resolve_region("eu-wset-1", what="--region")
    message = str(info.value)
    assert message.startswith("--region 'eu-wset-1' is not a Genesys Cloud region; did you mean ")
    assert "did you mean eu-west-1?" in message
    assert all(key in message for key in REGIONS) and "\n" not in message


def test_an_unknown_region_without_a_close_match_still_lists_the_valid_ones() -> None:
    """Nothing close: no guess, but the valid names are still listed."""
    with pytest.raises(ConfigError) as info:
        resolve_region("moon-1")
    message = str(info.value)
    assert "did you mean" not in message
    assert message.startswith("region 'moon-1' is not a Genesys Cloud region.")
    assert "us-east-1" in message and "mypurecloud.ie" in message


def test_a_lookalike_domain_is_not_a_region() -> None:
    """Only the real domains count: a host merely ending in one is refused."""
    with pytest.raises(ConfigError):
        resolve_region("evil-mypurecloud.ie")
    with pytest.raises(ConfigError):
        resolve_region("api.mypurecloud.ie.example.com")


@pytest.mark.parametrize(
    ("api_url", "login_url"),
    [
        ("https://api.mypurecloud.com", "https://login.mypurecloud.com"),
        ("https://api.mypurecloud.com/", "https://login.mypurecloud.com"),
        ("https://API.usw2.pure.cloud", "https://login.usw2.pure.cloud"),
        ("https://api.gateway.example:8443/genesys/", "https://login.gateway.example:8443/genesys"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://gw.example.com/api.v2", "https://gw.example.com/api.v2"),
        ("https://proxy.example.com/api/", "https://proxy.example.com/api"),
        ("https://myapi.example.com", "https://myapi.example.com"),
    ],
)
def test_login_url_derives_like_the_python_sdk(api_url, login_url) -> None:
    """A leading api. label becomes login.; other hosts log in at the API URL; no trailing /."""
    assert derive_login_url(api_url) == login_url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.mypurecloud.com",
        "https://api.mypurecloud.com/v2",
        "https://gw.example.com",
        "https://login.mypurecloud.com",
    ],
)
def test_only_a_real_api_host_implies_a_region(url) -> None:
    """Plain http, a path prefix, another host or the login host imply no region."""
    assert region_for_url(url) is None

"""Settings loading: precedence, regions, the sandbox, secrets, and one-sentence errors."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from exporter.config import (
    SECTIONS,
    Connection,
    HttpSettings,
    JobSettings,
    OutputSettings,
    SandboxOptions,
    Settings,
    load_settings,
)
from exporter.config_rules import RULES
from exporter.errors import ConfigError

SECRET = "zebra-secret-771"
CREDS = {"GENESYSCLOUD_OAUTHCLIENT_ID": "id", "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET}
REAL = {**CREDS, "GENESYSCLOUD_REGION": "us-east-1"}
FLAGS = {"http.concurrency": "--concurrency", "genesys.region": "--region"}
SHIPPED = Path(__file__).parents[1] / "config.toml"


def load(
    tmp_path: Path,
    toml: str | None = None,
    env: dict[str, str] | None = None,
    flag_names: dict[str, str] | None = None,
    **overrides: Any,
) -> tuple[Settings, list[str]]:
    """Load with ``toml`` as config.toml in tmp_path (none when None), private to the owner."""
    if toml is not None:
        (tmp_path / "config.toml").write_text(toml)
        (tmp_path / "config.toml").chmod(0o600)
    return load_settings(
        config_path=None, env=env or {}, overrides=overrides, cwd=tmp_path, flag_names=flag_names
    )


def message(tmp_path: Path, toml: str | None = None, env=None, flag_names=None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, env, flag_names, **kw)
    text = str(info.value)
    assert "\n" not in text and SECRET not in text
    return text


# ---- locations and precedence -------------------------------------------------------------------


def test_defaults_apply_without_a_config_file(tmp_path) -> None:
    """With no config.toml, only the environment and the defaults count."""
    settings, warnings = load(tmp_path, env=REAL)
    assert settings.http == HttpSettings() and settings.jobs == JobSettings()
    assert settings.output == OutputSettings() and settings.sandbox == SandboxOptions()
    assert settings.config_path is None and warnings == []


def test_region_gives_api_and_login_hosts(tmp_path) -> None:
    """A region name or domain resolves to its canonical key and its api./login. hosts."""
    settings, _ = load(tmp_path, env={**CREDS, "GENESYSCLOUD_REGION": "mypurecloud.ie"})
    assert settings.connection.region == "eu-west-1"
    assert settings.connection.api_url == "https://api.mypurecloud.ie"
    assert settings.connection.login_url == "https://login.mypurecloud.ie"
    assert not settings.connection.sandbox


def test_config_toml_in_cwd_is_read_and_an_explicit_path_wins(tmp_path) -> None:
    """./config.toml is the default; --config points elsewhere; a missing one is an error."""
    settings, _ = load(tmp_path, "[http]\nconcurrency = 3\n", env=REAL)
    assert settings.http.concurrency == 3 and settings.config_path == tmp_path / "config.toml"
    other = tmp_path / "other.toml"
    other.write_text("[http]\nconcurrency = 5\n")
    settings, _ = load_settings(config_path=other, env=REAL, overrides={}, cwd=tmp_path)
    assert settings.http.concurrency == 5 and settings.config_path == other
    with pytest.raises(ConfigError, match=r"^Config file nope.toml does not exist; check --config"):
        load_settings(config_path=Path("nope.toml"), env=REAL, overrides={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="is not a file"):
        load_settings(config_path=tmp_path, env=REAL, overrides={}, cwd=tmp_path)


def test_precedence_defaults_file_env_flags(tmp_path) -> None:
    """Flags beat the environment, which beats the file, which beats the defaults."""
    toml = '[genesys]\nregion = "eu-west-1"\nclient_id = "file-id"\n[http]\nconcurrency = 4\n'
    toml += "request_timeout_s = 30\n[jobs]\nwindow = '6h'\n"
    env = {**CREDS, "GENESYSCLOUD_REGION": "eu-central-1"}
    settings, _ = load(tmp_path, toml, env, **{"http.concurrency": "6", "jobs.window": "2h"})
    assert settings.http.concurrency == 6  # flag over file
    assert settings.http.request_timeout_s == 30.0  # file over default
    assert settings.http.connect_timeout_s == 10.0  # default
    assert settings.jobs.window == timedelta(hours=2)
    assert settings.connection.region == "eu-central-1"  # env over file
    assert settings.connection.client_id == "id"  # env over file
    settings, _ = load(tmp_path, toml, env, **{"genesys.region": "ap-northeast-3"})
    assert settings.connection.api_url == "https://api.apne3.pure.cloud"


def test_a_higher_region_replaces_a_lower_api_url_and_login_url(tmp_path) -> None:
    """A region in the environment drops the file's explicit URLs, login_url included."""
    toml = '[genesys]\napi_url = "https://gw.example.com"\nlogin_url = "https://sso.example.com"\n'
    settings, _ = load(tmp_path, toml, REAL)
    assert settings.connection.api_url == "https://api.mypurecloud.com"
    assert settings.connection.login_url == "https://login.mypurecloud.com"


def test_a_higher_api_url_replaces_a_lower_region(tmp_path) -> None:
    """--api-url over a file's region: the URL wins and its login URL is derived from it."""
    toml = '[genesys]\nregion = "eu-west-1"\n'
    settings, _ = load(tmp_path, toml, CREDS, **{"genesys.api_url": "https://api.gw.example/"})
    assert settings.connection.api_url == "https://api.gw.example"
    assert settings.connection.login_url == "https://login.gw.example"
    assert settings.connection.region is None


def test_login_url_follows_the_sdk_rule_unless_given(tmp_path) -> None:
    """Without an api. label the login URL is the API URL; an explicit login URL wins."""
    env = {**CREDS, "GENESYSCLOUD_API_URL": "http://127.0.0.1:9/"}
    settings, _ = load(tmp_path, env=env)
    assert settings.connection.login_url == settings.connection.api_url == "http://127.0.0.1:9"
    settings, _ = load(tmp_path, env={**env, "GENESYSCLOUD_LOGIN_URL": "http://127.0.0.1:10"})
    assert settings.connection.login_url == "http://127.0.0.1:10"
    settings, _ = load(tmp_path, env={**REAL, "GENESYSCLOUD_LOGIN_URL": "https://sso.example"})
    assert settings.connection.login_url == "https://sso.example"


def test_a_real_api_host_implies_its_region(tmp_path) -> None:
    """GENESYSCLOUD_API_URL=https://api.mypurecloud.de is region eu-central-1."""
    env = {**CREDS, "GENESYSCLOUD_API_URL": "https://api.mypurecloud.de"}
    settings, _ = load(tmp_path, env=env)
    assert settings.connection.region == "eu-central-1"
    assert settings.connection.login_url == "https://login.mypurecloud.de"


@pytest.mark.parametrize(
    ("toml", "env", "overrides", "expected"),
    [
        (
            '[genesys]\nregion = "us-east-1"\napi_url = "https://gw.example"\n',
            CREDS,
            {},
            "config.toml [genesys] region and config.toml [genesys] api_url are both set",
        ),
        (
            None,
            {**REAL, "GENESYSCLOUD_API_URL": "https://gw.example"},
            {},
            "GENESYSCLOUD_REGION and GENESYSCLOUD_API_URL are both set",
        ),
        (
            None,
            CREDS,
            {"genesys.region": "us-east-1", "genesys.api_url": "https://gw.example"},
            "--region and genesys.api_url are both set",
        ),
    ],
)
def test_region_and_api_url_at_one_level_contradict(tmp_path, toml, env, overrides, expected):
    """Region and api_url set at the same level: one sentence naming both, whichever level."""
    text = message(tmp_path, toml, env, FLAGS, **overrides)
    assert text.startswith(expected) and "give one of them" in text


def test_empty_environment_variables_count_as_unset(tmp_path) -> None:
    """GENESYSCLOUD_REGION= (empty) does not replace the file's region."""
    settings, _ = load(
        tmp_path, '[genesys]\nregion = "eu-west-1"\n', {**CREDS, "GENESYSCLOUD_REGION": ""}
    )
    assert settings.connection.region == "eu-west-1"


# ---- the sandbox ------------------------------------------------------------------------------


def test_api_url_sandbox_selects_the_bundled_sandbox_with_demo_credentials(tmp_path) -> None:
    """api_url = "sandbox" needs no credentials: the demo pair fills in."""
    settings, warnings = load(tmp_path, '[genesys]\napi_url = "sandbox"\n')
    connection = settings.connection
    assert connection.sandbox and connection.api_url == "sandbox" and connection.region is None
    assert (connection.client_id, connection.client_secret) == ("sandbox-client", "sandbox-secret")
    assert warnings == []


def test_a_region_over_the_shipped_sandbox_needs_real_credentials(tmp_path) -> None:
    """A region over the sandbox config with only the demo pair is refused, not sent to Genesys."""
    toml = SHIPPED.read_text()
    text = message(tmp_path, toml, {"GENESYSCLOUD_REGION": "eu-west-1"})
    assert text.startswith("The OAuth client is the sandbox's demo pair from config.toml")
    assert "GENESYSCLOUD_OAUTHCLIENT_SECRET" in text
    settings, _ = load(tmp_path, toml, {**CREDS, "GENESYSCLOUD_REGION": "eu-west-1"})
    assert settings.connection.client_secret == SECRET and not settings.connection.sandbox


@pytest.mark.parametrize("env", [CREDS, {"GENESYSCLOUD_OAUTHCLIENT_ID": "id"}])
def test_real_credentials_under_the_shipped_sandbox_config_are_refused(tmp_path, env) -> None:
    """The shipped config.toml selects the sandbox; real-looking credentials in the
    environment mean a real org was meant: refused, saying how to choose either."""
    text = message(tmp_path, SHIPPED.read_text(), env)
    assert text.startswith("config.toml [genesys] api_url selects the bundled sandbox")
    assert "GENESYSCLOUD_OAUTHCLIENT_ID names another OAuth client" in text
    assert "GENESYSCLOUD_REGION" in text and "--api-url sandbox" in text


def test_the_sandbox_chosen_where_the_credentials_are_set_is_taken(tmp_path) -> None:
    """Credentials given beside api_url = "sandbox" in one layer choose the sandbox on purpose."""
    toml = '[genesys]\napi_url = "sandbox"\nclient_id = "demo-2"\nclient_secret = "s3cret-2"\n'
    settings, _ = load(tmp_path, toml)
    assert settings.connection.sandbox and settings.connection.client_id == "demo-2"
    env = {**CREDS, "GENESYSCLOUD_API_URL": "sandbox"}
    assert load(tmp_path, SHIPPED.read_text(), env)[0].connection.sandbox


def test_sandbox_from_a_flag_over_a_real_region(tmp_path) -> None:
    """--api-url sandbox beats a region from the environment."""
    settings, _ = load(tmp_path, env=REAL, **{"genesys.api_url": "sandbox"})
    assert settings.connection.sandbox and settings.connection.client_id == "id"


# ---- secrets ------------------------------------------------------------------------------------


def test_secret_never_in_repr_or_str(tmp_path) -> None:
    """The secret is absent from the reprs and strs of Settings and Connection."""
    settings, _ = load(tmp_path, env=REAL)
    assert settings.connection.client_secret == SECRET
    for text in (
        repr(settings),
        str(settings),
        repr(settings.connection),
        str(settings.connection),
    ):
        assert SECRET not in text


def test_secret_is_refused_from_flags(tmp_path) -> None:
    """An override carrying the secret is refused with a sentence naming the env var."""
    text = message(tmp_path, env=REAL, **{"genesys.client_secret": SECRET})
    assert text.startswith("The client secret is never taken from a flag")
    assert "GENESYSCLOUD_OAUTHCLIENT_SECRET" in text and "config.toml" in text


def test_a_mistyped_secret_is_reported_without_its_value(tmp_path) -> None:
    """A non-string client_secret is named, and its value is not echoed."""
    toml = '[genesys]\nregion = "us-east-1"\nclient_id = "i"\nclient_secret = 771771771\n'
    text = message(tmp_path, toml)
    assert text == "config.toml [genesys] client_secret must be a string."
    assert "771771771" not in text


# ---- missing pieces ------------------------------------------------------------------------------


def test_missing_credentials_name_the_env_vars_and_keys(tmp_path) -> None:
    """No id or secret: the message names both env vars and both config keys."""
    for env, missing in (
        ({"GENESYSCLOUD_REGION": "us-east-1"}, "client id and client secret"),
        ({**REAL, "GENESYSCLOUD_OAUTHCLIENT_ID": ""}, "client id"),
        ({**REAL, "GENESYSCLOUD_OAUTHCLIENT_SECRET": ""}, "client secret"),
    ):
        text = message(tmp_path, env=env)
        assert text.startswith(f"No OAuth {missing}: set GENESYSCLOUD_OAUTHCLIENT_ID and ")
        assert "GENESYSCLOUD_OAUTHCLIENT_SECRET" in text and "client_secret under [genesys]" in text


def test_no_region_and_no_api_url_names_both_ways(tmp_path) -> None:
    """Without a location the message names the region and the API URL ways to set one."""
    text = message(tmp_path, env=CREDS)
    assert text.startswith("No Genesys Cloud region: set GENESYSCLOUD_REGION")
    assert "--region" in text and "GENESYSCLOUD_API_URL" in text and "api_url" in text


@pytest.mark.parametrize(
    ("toml", "env", "overrides", "where"),
    [
        ('[genesys]\nregion = "moon-1"\n', CREDS, {}, "config.toml [genesys] region"),
        (None, {**CREDS, "GENESYSCLOUD_REGION": "moon-1"}, {}, "GENESYSCLOUD_REGION"),
        (None, CREDS, {"genesys.region": "moon-1"}, "--region"),
    ],
)
def test_an_unknown_region_names_where_it_came_from(tmp_path, toml, env, overrides, where) -> None:
    """The unknown-region sentence starts with its source and lists the valid regions."""
    text = message(tmp_path, toml, env, FLAGS, **overrides)
    assert text.startswith(f"{where} 'moon-1' is not a Genesys Cloud region")
    assert "us-east-1" in text and "eusc-de-east-1" in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GENESYSCLOUD_API_URL": "ftp://x"}, "GENESYSCLOUD_API_URL 'ftp://x' is not an http(s)"),
        ({"GENESYSCLOUD_API_URL": "api.mypurecloud.com"}, "GENESYSCLOUD_API_URL 'api.mypure"),
        (
            {"GENESYSCLOUD_API_URL": "https://gw.example", "GENESYSCLOUD_LOGIN_URL": "gw"},
            "GENESYSCLOUD_LOGIN_URL 'gw' is not an http(s) base URL",
        ),
    ],
)
def test_bad_urls_name_their_source(tmp_path, env, expected) -> None:
    """A URL that is not http(s) with a host is refused, naming where it came from."""
    assert message(tmp_path, env={**CREDS, **env}).startswith(expected)


# ---- wrong keys, types and values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[http]\nconcurency = 4\n",
            "config.toml: unknown key 'concurency' in [http]; did you mean 'concurrency'?",
        ),
        ("[htp]\n", "config.toml: unknown section [htp]; did you mean [http]?"),
        (
            "[zzz]\n",
            "config.toml: unknown section [zzz]; the sections are [genesys], [http], [jobs], "
            "[output], [export], [tables], [retention], [lookups], [aggregates], [workforce], "
            "[publish], [privacy], [forget], [sandbox].",
        ),
        (
            "[http]\nwindow = '1d'\n",
            "config.toml: unknown key 'window' in [http]; it belongs in [jobs].",
        ),
        (
            "[output]\nqqq = 1\n",
            "config.toml: unknown key 'qqq' in [output]; its keys are out_dir, compression, "
            "checkpoint_s, metrics_file, metrics_push, progress, log_format, lineage_namespace.",
        ),
        (
            'region = "us-east-1"\n',
            "config.toml: 'region' stands outside any section; move it under [genesys].",
        ),
        ("http = 5\n", "config.toml: http must be a section header, [http], not a value."),
    ],
)
def test_unknown_names_suggest_the_closest(tmp_path, toml, expected) -> None:
    """Typos in sections and keys name the closest real one, or list the real ones."""
    assert message(tmp_path, toml, REAL) == expected


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[http]\nconcurrency = 'eight'\n",
            "[http] concurrency must be an integer >= 1, got 'eight'.",
        ),
        ("[http]\nconcurrency = 0\n", "[http] concurrency must be an integer >= 1, got 0."),
        ("[http]\nconcurrency = 2.5\n", "[http] concurrency must be an integer >= 1, got 2.5."),
        ("[http]\nconcurrency = true\n", "[http] concurrency must be an integer >= 1, got True."),
        (
            "[http]\nrequest_timeout_s = 0\n",
            "[http] request_timeout_s must be a number > 0, got 0.",
        ),
        (
            "[http]\nretry_after_max_s = -1\n",
            "[http] retry_after_max_s must be a number >= 0, got -1.",
        ),
        (
            "[http]\nconnect_timeout_s = nan\n",
            "[http] connect_timeout_s must be a number > 0, got nan.",
        ),
        (
            "[jobs]\npage_size = 20000\n",
            "[jobs] page_size must be an integer from 1 to 10000, got 20000.",
        ),
        (
            "[jobs]\nquery_page_size = 101\n",
            "[jobs] query_page_size must be an integer from 1 to 100, got 101.",
        ),
        (
            "[jobs]\nwindow = 'daily'\n",
            "[jobs] window must be a duration: a whole number of w, d, h, m or s",
        ),
        (
            "[jobs]\nwindow = 86400\n",
            "[jobs] window must be a duration: a whole number of w, d, h, m or s",
        ),
        ("[jobs]\nsplit_min = '0m'\n", "[jobs] split_min must be a duration"),
        (
            "[output]\ncompression = 'rar'\n",
            "[output] compression must be one of none, gzip, zstd, got 'rar'.",
        ),
        ("[output]\nout_dir = ''\n", "[output] out_dir must be a folder path, got ''."),
        (
            "[output]\ncheckpoint_s = 'often'\n",
            "[output] checkpoint_s must be a number >= 0, got 'often'.",
        ),
        ("[sandbox]\nstart = 'soon'\n", "[sandbox] start must be a date such as 2026-11-01"),
        (
            "[sandbox]\nrate_per_minute = -5\n",
            "[sandbox] rate_per_minute must be an integer >= 0 (0 = unlimited), got -5.",
        ),
        ("[sandbox]\ndays = 0\n", "[sandbox] days must be an integer >= 1, got 0."),
        ("[genesys]\nclient_id = 5\n", "[genesys] client_id must be a string, got 5."),
    ],
)
def test_wrong_types_and_values_are_one_sentence_naming_the_key(tmp_path, toml, expected) -> None:
    """Each wrong value names the file, section and key, what is accepted, and what it got."""
    assert message(tmp_path, toml, REAL).startswith(f"config.toml {expected}")


def test_cross_field_limits_are_checked(tmp_path) -> None:
    """A backoff cap below its base, or a poll cap below the first poll, is refused."""
    text = message(tmp_path, "[http]\nretry_backoff_base_s = 5\nretry_backoff_max_s = 1\n", REAL)
    assert text.startswith(
        "http.retry_backoff_max_s (1.0) must not be below http.retry_backoff_base_s"
    )
    text = message(tmp_path, "[jobs]\npoll_initial_s = 5\npoll_max_s = 1\n", REAL)
    assert "jobs.poll_max_s" in text


def test_flag_values_name_the_flag_or_the_key(tmp_path) -> None:
    """A bad override names its flag when the caller maps keys to flags (never repeating a
    value typed as a flag), else section.key."""
    text = message(tmp_path, env=REAL, flag_names=FLAGS, **{"http.concurrency": "lots"})
    assert text == "--concurrency must be an integer >= 1."
    text = message(tmp_path, env=REAL, **{"http.concurrency": "lots"})
    assert text == "http.concurrency must be an integer >= 1, got 'lots'."


def test_an_unknown_override_key_is_refused(tmp_path) -> None:
    """An override key that is no setting is a ConfigError with the closest one."""
    text = message(tmp_path, env=REAL, **{"http.concurency": "4"})
    assert text == "Unknown setting 'http.concurency'; did you mean 'http.concurrency'?"


def test_a_bad_value_in_a_lower_layer_is_still_an_error(tmp_path) -> None:
    """A broken config file is reported even when a flag overrides the broken key."""
    text = message(tmp_path, "[http]\nconcurrency = 'eight'\n", REAL, **{"http.concurrency": 4})
    assert text.startswith("config.toml [http] concurrency")


def test_toml_syntax_errors_name_the_file_and_line(tmp_path) -> None:
    """A syntax error is one line with the file, line and column."""
    text = message(tmp_path, "[http]\nconcurrency = \n", REAL)
    assert re.fullmatch(
        r"config\.toml: invalid TOML at line 2, column \d+: .+; fix the syntax\.", text
    )


def test_a_file_that_is_not_utf8_is_named(tmp_path) -> None:
    """Bytes that are not UTF-8 give one sentence, not a traceback."""
    (tmp_path / "config.toml").write_bytes(b"[http]\n# caf\xe9\n")
    assert message(tmp_path, env=REAL).startswith("config.toml is not UTF-8 text")


# ---- coercion ------------------------------------------------------------------------------------


def test_strings_from_flags_and_typed_values_are_both_coerced(tmp_path) -> None:
    """CLI strings and typed values become ints, floats, durations, paths and choices."""
    overrides = {
        "http.concurrency": "12",
        "http.request_timeout_s": 15,
        "http.rate_limit_per_minute": "0",
        "jobs.window": "6h",
        "jobs.split_min": timedelta(minutes=10),
        "output.out_dir": "~/exports",
        "output.compression": "GZIP",
        "output.checkpoint_s": "0.5",
    }
    settings, _ = load(tmp_path, env=REAL, **overrides)
    assert settings.http.concurrency == 12 and settings.http.rate_limit_per_minute == 0
    assert settings.http.request_timeout_s == 15.0
    assert isinstance(settings.http.request_timeout_s, float)
    assert settings.jobs.window == timedelta(hours=6)
    assert settings.jobs.split_min == timedelta(minutes=10)
    assert settings.output.out_dir == Path("~/exports").expanduser()
    assert settings.output.compression == "gzip" and settings.output.checkpoint_s == 0.5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"2026-12-01"', datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T06:00:00+02:00", datetime(2026, 12, 1, 4, tzinfo=UTC)),
        ("2026-12-01T06:00:00", datetime(2026, 12, 1, 6, tzinfo=UTC)),
    ],
)
def test_sandbox_start_takes_date_strings_and_toml_dates(tmp_path, value, expected) -> None:
    """sandbox.start: a quoted date, a bare TOML date or datetime; always aware UTC."""
    settings, _ = load(tmp_path, f"[genesys]\napi_url = 'sandbox'\n[sandbox]\nstart = {value}\n")
    assert settings.sandbox.start == expected


def test_rate_zero_means_unlimited_in_the_sandbox(tmp_path) -> None:
    """sandbox.rate_per_minute = 0 in TOML becomes None (unlimited)."""
    settings, _ = load(tmp_path, "[genesys]\napi_url = 'sandbox'\n[sandbox]\nrate_per_minute = 0\n")
    assert settings.sandbox.rate_per_minute is None


# ---- dataclasses on their own ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: HttpSettings(concurrency=0), "http.concurrency must be an integer >= 1, got 0."),
        (lambda: JobSettings(window=timedelta(0)), "jobs.window must be a duration"),
        (lambda: JobSettings(page_size=0), "jobs.page_size must be an integer from 1 to 10000"),
        (lambda: OutputSettings(compression="rar"), "output.compression must be one of"),
        (lambda: SandboxOptions(start=datetime(2026, 1, 1)), None),
        (lambda: Connection(None, "nope", "https://x", "i", SECRET), "genesys.api_url 'nope'"),
        (lambda: Connection(None, "https://x", "https://x", "i", ""), "Connection needs both"),
        (lambda: Connection("Mars", "https://x", "https://x", "i", SECRET), "Connection region"),
    ],
)
def test_dataclasses_reject_impossible_values(build, expected) -> None:
    """Direct construction is judged by the same rules as loading; naive starts become UTC."""
    if expected is None:
        assert build().start.tzinfo is UTC
        return
    with pytest.raises(ConfigError) as info:
        build()
    assert str(info.value).startswith(expected) and SECRET not in str(info.value)


def test_test_style_settings_stay_valid() -> None:
    """The fast settings the engine tests use (zero pacing, tiny backoff) are accepted."""
    http = HttpSettings(
        rate_limit_per_minute=0, retry_backoff_base_s=0.01, retry_backoff_max_s=0.05
    )
    jobs = JobSettings(poll_initial_s=0.01, poll_max_s=0.05)
    assert http.rate_limit_per_minute == 0 and jobs.poll_max_s == 0.05
    assert OutputSettings(checkpoint_s=0.0).checkpoint_s == 0.0
    assert SandboxOptions(rate_per_minute=None).rate_per_minute is None


def test_rules_cover_every_field_and_nothing_else() -> None:
    """Every dataclass field has a rule, and every rule names a field."""
    assert set(SECTIONS) == set(RULES) - {"genesys"}
    for name, cls in SECTIONS.items():
        assert list(RULES[name]) == [f.name for f in dataclasses.fields(cls)], name
    assert set(RULES["genesys"]) == {f.name for f in dataclasses.fields(Connection)} - {"sandbox"}


# ---- warnings ------------------------------------------------------------------------------------


def test_a_secret_in_a_file_others_can_read_draws_a_chmod_warning(tmp_path) -> None:
    """Group- or world-readable with a real secret: warn with the chmod; private: no warning."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[genesys]\nregion = "us-east-1"\nclient_id = "i"\nclient_secret = "{SECRET}"\n'
    )
    for mode in (0o644, 0o640, 0o604):
        path.chmod(mode)
        _, warnings = load_settings(config_path=None, env={}, overrides={}, cwd=tmp_path)
        assert warnings == [
            "config.toml holds client_secret and is readable by other users; "
            "run: chmod 600 config.toml"
        ]
    path.chmod(0o600)
    assert load_settings(config_path=None, env={}, overrides={}, cwd=tmp_path)[1] == []


def test_no_chmod_warning_without_a_real_secret_in_the_file(tmp_path) -> None:
    """A readable file with no secret, or only the sandbox demo secret, draws no warning."""
    path = tmp_path / "c.toml"
    path.write_text('[genesys]\nregion = "us-east-1"\n')
    path.chmod(0o644)
    assert load_settings(config_path=path, env=CREDS, overrides={})[1] == []
    assert load_settings(config_path=SHIPPED, env={}, overrides={})[1] == []


def test_plain_http_to_another_machine_warns(tmp_path) -> None:
    """http:// to a non-loopback host warns once that the secret travels unencrypted."""
    _, warnings = load(tmp_path, env={**CREDS, "GENESYSCLOUD_API_URL": "http://gw.example:8080"})
    assert len(warnings) == 1 and "unencrypted" in warnings[0] and "gw.example" in warnings[0]
    for url in (
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:2",
        "https://gw.example",
    ):
        _, warnings = load(tmp_path, env={**CREDS, "GENESYSCLOUD_API_URL": url})
        assert warnings == [], url


# ---- the shipped config.toml -------------------------------------------------------------------


def _documented_keys(text: str) -> dict[str, set[str]]:
    """The keys set or shown (commented out) under each section of a TOML text."""
    keys: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        if header := re.fullmatch(r"\[(\w+)\]\s*", line):
            section = header.group(1)
        elif key := re.match(r"#?\s*(\w+) = ", line):
            keys.setdefault(section, set()).add(key.group(1))
    return keys


def test_shipped_config_loads_and_selects_the_sandbox() -> None:
    """config.toml loads without warnings, selects the sandbox, and states the defaults."""
    settings, warnings = load_settings(config_path=SHIPPED, env={}, overrides={})
    assert settings.connection.sandbox and warnings == []
    assert settings.http == HttpSettings() and settings.jobs == JobSettings()
    assert settings.output == OutputSettings() and settings.sandbox == SandboxOptions()


def test_shipped_config_documents_every_setting_and_only_real_ones() -> None:
    """Each field of each section appears in config.toml (set or commented), and nothing else."""
    documented = _documented_keys(SHIPPED.read_text())
    assert set(documented) == set(RULES)
    for section, rules in RULES.items():
        assert documented[section] == set(rules), section


def test_shipped_config_shows_how_to_select_a_real_region() -> None:
    """The commented example region is a real region."""
    found = re.search(r'#\s*region = "([^"]+)"', SHIPPED.read_text())
    assert found
    settings, _ = load_settings(
        config_path=SHIPPED, env={**CREDS, "GENESYSCLOUD_REGION": found.group(1)}, overrides={}
    )
    assert settings.connection.region == found.group(1)

"""Settings loading: precedence, regions, secrets, and one-sentence errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from exporter.config import HttpSettings, JobSettings, OutputSettings, SandboxOptions, load_settings
from exporter.errors import ConfigError

SECRET = "zebra-secret-771"
CREDS = {"GENESYSCLOUD_OAUTHCLIENT_ID": "id", "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET}


def load(tmp_path: Path, toml: str = "", env=None, **overrides):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    path.chmod(0o600)
    return load_settings(config_path=path, env=env or {}, overrides=overrides, cwd=tmp_path)


def test_region_gives_api_and_login_hosts(tmp_path) -> None:
    """A region name or domain resolves to its api. and login. hosts."""
    settings, _ = load(tmp_path, env={**CREDS, "GENESYSCLOUD_REGION": "mypurecloud.ie"})
    assert settings.connection.api_url == "https://api.mypurecloud.ie"
    assert settings.connection.login_url == "https://login.mypurecloud.ie"
    assert settings.connection.region == "eu-west-1"


def test_precedence_file_env_flags(tmp_path) -> None:
    """Flags beat the environment, which beats the file; a region replaces a lower api_url."""
    toml = '[genesys]\napi_url = "https://gw.example.com"\n[http]\nconcurrency = 4\n'
    settings, _ = load(
        tmp_path,
        toml,
        env={**CREDS, "GENESYSCLOUD_REGION": "us-east-1"},
        **{"http.concurrency": "6", "genesys.region": "eu-central-1"},
    )
    assert settings.http.concurrency == 6
    assert settings.connection.api_url == "https://api.mypurecloud.de"


def test_gateway_login_url_defaults_to_the_api_url(tmp_path) -> None:
    """An API URL without an api. label logs in at the same base, like the SDK."""
    settings, _ = load(tmp_path, env={**CREDS, "GENESYSCLOUD_API_URL": "http://127.0.0.1:9"})
    assert settings.connection.login_url == "http://127.0.0.1:9"


def test_secret_never_in_repr_and_never_from_flags(tmp_path) -> None:
    """The secret is absent from reprs, and a flag carrying it is refused."""
    settings, _ = load(tmp_path, env={**CREDS, "GENESYSCLOUD_REGION": "us-east-1"})
    assert SECRET not in repr(settings) and SECRET not in str(settings.connection)
    with pytest.raises(ConfigError, match="GENESYSCLOUD_OAUTHCLIENT_SECRET"):
        load(tmp_path, **{"genesys.client_secret": SECRET})


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ("[http]\nconcurency = 4\n", "did you mean 'concurrency'"),
        ("[htp]\n", "did you mean 'http'"),
        ("[http]\nconcurrency = 'eight'\n", "integer"),
        ("[jobs]\nwindow = 'daily'\n", "duration"),
        ("[output]\ncompression = 'rar'\n", "none, gzip or zstd"),
        ("[http\n", "not valid TOML"),
    ],
)
def test_config_errors_are_one_clear_sentence(tmp_path, toml, match) -> None:
    """Typos, wrong types and syntax errors each give one sentence with the fix."""
    with pytest.raises(ConfigError, match=match) as info:
        load(tmp_path, toml, env={**CREDS, "GENESYSCLOUD_REGION": "us-east-1"})
    assert "\n" not in str(info.value)


def test_missing_pieces_say_where_to_put_them(tmp_path) -> None:
    """No region, and no credentials, each name the env vars and config keys to set."""
    with pytest.raises(ConfigError, match="GENESYSCLOUD_REGION"):
        load(tmp_path, env=CREDS)
    with pytest.raises(ConfigError, match="GENESYSCLOUD_OAUTHCLIENT_ID"):
        load(tmp_path, env={"GENESYSCLOUD_REGION": "us-east-1"})
    with pytest.raises(ConfigError, match="Valid regions"):
        load(tmp_path, env={**CREDS, "GENESYSCLOUD_REGION": "moon-1"})


def test_world_readable_secret_file_warns(tmp_path) -> None:
    """A config file holding the secret and readable by others draws a chmod warning."""
    path = tmp_path / "c.toml"
    path.write_text(
        f'[genesys]\nregion = "us-east-1"\nclient_id = "i"\nclient_secret = "{SECRET}"\n'
    )
    path.chmod(0o644)
    _, warnings = load_settings(config_path=path, env={}, overrides={})
    assert any("chmod 600" in w for w in warnings)
    assert not any(SECRET in w for w in warnings)


def test_shipped_config_documents_every_setting() -> None:
    """config.toml loads, selects the sandbox, and names every setting of every section."""
    path = Path(__file__).parents[1] / "config.toml"
    settings, _ = load_settings(config_path=path, env={}, overrides={})
    assert settings.connection.sandbox
    text = path.read_text()
    for cls in (HttpSettings, JobSettings, OutputSettings, SandboxOptions):
        for field in dataclasses.fields(cls):
            assert f"\n{field.name} = " in text, field.name

"""Settings: frozen, validated dataclasses from defaults < config.toml < environment < flags.

The secret comes from the environment or the config file only, never from a flag. Every error is
one sentence naming where the bad value came from and what to write instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from exporter.errors import ConfigError
from exporter.regions import api_url_for, derive_login_url, login_url_for, resolve_region
from exporter.windows import parse_duration, parse_instant

SANDBOX = "sandbox"
ENV_KEYS = {
    "GENESYSCLOUD_REGION": "genesys.region",
    "GENESYSCLOUD_OAUTHCLIENT_ID": "genesys.client_id",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET": "genesys.client_secret",
    "GENESYSCLOUD_API_URL": "genesys.api_url",
    "GENESYSCLOUD_LOGIN_URL": "genesys.login_url",
}
FLAG_NAMES = {
    "genesys.region": "--region",
    "genesys.api_url": "--api-url",
    "genesys.login_url": "--login-url",
    "genesys.client_id": "--client-id",
    "output.out_dir": "--out",
    "output.compression": "--compression",
    "jobs.window": "--window",
    "http.concurrency": "--concurrency",
}


@dataclass(frozen=True, slots=True)
class Connection:
    """Where to log in and call, and as whom. ``sandbox`` = run the bundled sandbox."""

    region: str | None
    api_url: str
    login_url: str
    client_id: str
    client_secret: str = field(repr=False)
    sandbox: bool = False


@dataclass(frozen=True, slots=True)
class HttpSettings:
    concurrency: int = 8
    request_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    rate_limit_per_minute: int = 300
    retry_max_attempts: int = 8
    retry_max_seconds: float = 300.0
    retry_backoff_base_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    retry_after_max_s: float = 300.0
    token_refresh_margin_s: float = 300.0

    def __post_init__(self) -> None:
        _require(self.concurrency >= 1, "http.concurrency must be at least 1")
        _require(self.retry_max_attempts >= 1, "http.retry_max_attempts must be at least 1")
        _require(self.rate_limit_per_minute >= 0, "http.rate_limit_per_minute must be >= 0")
        _require(self.request_timeout_s > 0, "http.request_timeout_s must be positive")


@dataclass(frozen=True, slots=True)
class JobSettings:
    window: timedelta = timedelta(days=1)
    page_size: int = 1000
    query_page_size: int = 100
    max_concurrent_jobs: int = 8
    poll_initial_s: float = 1.0
    poll_max_s: float = 15.0
    job_timeout_s: float = 1800.0
    split_min: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        _require(1 <= self.page_size <= 10_000, "jobs.page_size must be between 1 and 10000")
        _require(1 <= self.query_page_size <= 100, "jobs.query_page_size must be 1 to 100")
        _require(self.max_concurrent_jobs >= 1, "jobs.max_concurrent_jobs must be at least 1")
        _require(self.window > timedelta(0), "jobs.window must be longer than zero")


@dataclass(frozen=True, slots=True)
class OutputSettings:
    out_dir: Path = Path("export")
    compression: Literal["none", "gzip", "zstd"] = "none"
    checkpoint_s: float = 2.0

    def __post_init__(self) -> None:
        _require(
            self.compression in ("none", "gzip", "zstd"),
            f"output.compression must be none, gzip or zstd, got {self.compression!r}",
        )


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    conversations: int = 10_000
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    days: int = 7
    seed: int = 42
    latency_ms: float = 0.0
    rate_per_minute: int | None = 300
    token_ttl_s: float = 86400.0
    job_delay_s: float = 0.5


@dataclass(frozen=True, slots=True)
class Settings:
    connection: Connection
    http: HttpSettings
    jobs: JobSettings
    output: OutputSettings
    sandbox: SandboxOptions
    config_path: Path | None = None


SECTIONS: dict[str, type] = {
    "http": HttpSettings,
    "jobs": JobSettings,
    "output": OutputSettings,
    "sandbox": SandboxOptions,
}
GENESYS_KEYS = ("region", "api_url", "login_url", "client_id", "client_secret")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message + ".")


def load_settings(
    *,
    config_path: Path | None,
    env: Mapping[str, str],
    overrides: Mapping[str, object],
    cwd: Path | None = None,
) -> tuple[Settings, list[str]]:
    """Merge the layers into validated Settings; returns (settings, warnings)."""
    if "genesys.client_secret" in overrides:
        raise ConfigError(
            "The client secret is never taken from a flag (shell history, ps); "
            "set GENESYSCLOUD_OAUTHCLIENT_SECRET or client_secret in config.toml."
        )
    path = _config_path(config_path, cwd or Path.cwd())
    file_values = _read_toml(path) if path else {}
    env_values = {ENV_KEYS[k]: v for k, v in env.items() if k in ENV_KEYS and v}
    layers = [
        (f"{path.name if path else 'config'}", file_values),
        ("environment", env_values),
        ("flags", dict(overrides)),
    ]
    warnings: list[str] = []
    connection = _connection(layers, warnings)
    sections = {name: _section(name, cls, layers) for name, cls in SECTIONS.items()}
    if path and file_values.get("genesys.client_secret") and path.stat().st_mode & 0o044:
        warnings.append(
            f"{path.name} holds client_secret and is readable by other users; run: chmod 600 {path}"
        )
    settings = Settings(connection=connection, config_path=path, **sections)
    return settings, warnings


def _config_path(given: Path | None, cwd: Path) -> Path | None:
    if given is not None:
        if not given.is_file():
            raise ConfigError(f"Config file {given} does not exist; check --config.")
        return given
    default = cwd / "config.toml"
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, object]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from None
    flat: dict[str, object] = {}
    known = {"genesys": GENESYS_KEYS, **{n: _fields(c) for n, c in SECTIONS.items()}}
    for section, values in data.items():
        if section not in known or not isinstance(values, dict):
            raise ConfigError(
                f"{path.name}: unknown section [{section}]{_hint(section, known)}; "
                f"sections are {', '.join(f'[{s}]' for s in known)}."
            )
        for key, value in values.items():
            if key not in known[section]:
                raise ConfigError(
                    f"{path.name}: unknown key {key!r} in [{section}]{_hint(key, known[section])}."
                )
            flat[f"{section}.{key}"] = value
    return flat


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _hint(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _where(layer: str, key: str) -> str:
    if layer == "flags":
        return FLAG_NAMES.get(key, key)
    if layer == "environment":
        return next(env for env, k in ENV_KEYS.items() if k == key)
    section, name = key.split(".")
    return f"{layer} [{section}] {name}"


def _connection(layers: list[tuple[str, dict[str, object]]], warnings: list[str]) -> Connection:
    values: dict[str, str] = {}
    for layer, data in layers:
        got = {k.split(".")[1]: str(v) for k, v in data.items() if k.startswith("genesys.") and v}
        if "region" in got and "api_url" in got:
            raise ConfigError(f"Both a region and an api_url are set in the {layer}; set one.")
        if "region" in got or "api_url" in got:  # a higher layer's location replaces lower ones
            for key in ("region", "api_url", "login_url"):
                values.pop(key, None)
        values.update(got)
    return _resolve_connection(values, warnings)


def _resolve_connection(values: dict[str, str], warnings: list[str]) -> Connection:
    region, api_url = values.get("region"), values.get("api_url", "").rstrip("/")
    if api_url == SANDBOX:
        return Connection(
            None,
            SANDBOX,
            SANDBOX,
            values.get("client_id", "sandbox-client"),
            values.get("client_secret", "sandbox-secret"),
            sandbox=True,
        )
    if region:
        region = resolve_region(region)
        api_url = api_url_for(region)
    if not api_url:
        raise ConfigError(
            "No region: set GENESYSCLOUD_REGION (e.g. us-east-1), --region, or "
            "region (or api_url) under [genesys] in config.toml."
        )
    login_url = values.get("login_url", "").rstrip("/") or (
        login_url_for(region) if region else derive_login_url(api_url)
    )
    for name, url in (("api_url", api_url), ("login_url", login_url)):
        _check_url(name, url, warnings)
    client_id, secret = values.get("client_id", ""), values.get("client_secret", "")
    if not client_id or not secret:
        missing = "client id" if not client_id else "client secret"
        raise ConfigError(
            f"No OAuth {missing}: set GENESYSCLOUD_OAUTHCLIENT_ID and "
            "GENESYSCLOUD_OAUTHCLIENT_SECRET, or client_id and client_secret under "
            "[genesys] in config.toml (chmod 600 it)."
        )
    return Connection(region, api_url, login_url, client_id, secret)


def _check_url(name: str, url: str, warnings: list[str]) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"{name} {url!r} is not an http(s) URL; write e.g. https://api.mypurecloud.com."
        )
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        warnings.append(f"{name} {url} is plain http: the secret and data travel unencrypted.")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _section(name: str, cls: type, layers: list[tuple[str, dict[str, object]]]) -> Any:
    kwargs: dict[str, Any] = {}
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    for layer, data in layers:
        for key, raw in data.items():
            section, field_name = key.split(".")
            if section == name:
                kwargs[field_name] = _coerce(raw, str(types[field_name]), _where(layer, key))
    return cls(**kwargs)


def _coerce(raw: object, kind: str, where: str) -> Any:
    converters: dict[str, Callable[[object, str], Any]] = {
        "int": _as_int,
        "float": _as_float,
        "timedelta": _as_duration,
        "Path": _as_path,
        "datetime": _as_date,
        "int | None": _as_rate,
        "Literal['none', 'gzip', 'zstd']": _as_str,
    }
    return converters.get(kind, _as_str)(raw, where)


def _as_int(raw: object, where: str) -> int:
    try:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        return int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{where} must be an integer, got {raw!r}.") from None


def _as_float(raw: object, where: str) -> float:
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{where} must be a number, got {raw!r}.") from None
    if value < 0:
        raise ConfigError(f"{where} must not be negative, got {raw!r}.")
    return value


def _as_rate(raw: object, where: str) -> int | None:
    value = _as_int(raw, where)
    return None if value == 0 else value


def _as_duration(raw: object, where: str) -> timedelta:
    return parse_duration(str(raw), what=where)


def _as_path(raw: object, where: str) -> Path:
    text = str(raw).strip()
    if not text:
        raise ConfigError(f"{where} must be a folder path, got an empty string.")
    return Path(text).expanduser()


def _as_date(raw: object, where: str) -> datetime:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    return parse_instant(str(raw), what=where)


def _as_str(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{where} must be a string, got {raw!r}.")
    return raw

"""Settings: frozen, validated dataclasses from defaults < config.toml < environment < flags.

One table of rules (``config_rules.RULES``) says what each setting accepts; the loader and
every dataclass's ``__post_init__`` both judge values by it. Errors are one sentence naming where
the value came from (``config.toml [http] concurrency``, ``GENESYSCLOUD_REGION``,
``--concurrency``) and what to write instead. The client secret comes from the environment or
the config file only, never from a flag, and no message or repr ever shows it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from exporter.config_rules import (
    RULES,
    TEXT,
    check_url,
    coerce,
    hint,
    is_loopback,
    require_order,
    stray_key_message,
    unknown_key_message,
    unknown_section_message,
    validate_fields,
)
from exporter.errors import ConfigError
from exporter.privacy import KEY_ENV, Policy, parse_rule, read_key
from exporter.regions import (
    REGIONS,
    derive_login_url,
    login_url_for,
    region_domain_of,
    region_for_url,
    resolve_region,
)

SANDBOX = "sandbox"  # api_url = "sandbox": the CLI starts the bundled sandbox and fills in its URL
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # the demo pair of the shipped config.toml
SECRET_KEY = "genesys.client_secret"
ENV_KEYS: Mapping[str, str] = {
    "GENESYSCLOUD_REGION": "genesys.region",
    "GENESYSCLOUD_OAUTHCLIENT_ID": "genesys.client_id",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET_KEY,
    "GENESYSCLOUD_API_URL": "genesys.api_url",
    "GENESYSCLOUD_LOGIN_URL": "genesys.login_url",
}
# The Pushgateway's basic auth (--metrics-push), from the environment only, never a setting.
PUSH_USERNAME, PUSH_PASSWORD = "GENESYS_EXPORT_PUSH_USERNAME", "GENESYS_EXPORT_PUSH_PASSWORD"


@dataclass(frozen=True, slots=True)
class Connection:
    """Where to log in and call, and as whom. ``sandbox``: the bundled sandbox serves both URLs."""

    region: str | None
    api_url: str
    login_url: str
    client_id: str
    client_secret: str = field(repr=False)
    sandbox: bool = False

    def __post_init__(self) -> None:
        if self.region is not None and self.region not in REGIONS:
            raise ConfigError(f"Connection region {self.region!r} is not a canonical region key.")
        if not self.sandbox:
            check_url("genesys.api_url", self.api_url)
            check_url("genesys.login_url", self.login_url)
        if not self.client_id or not self.client_secret:
            raise ConfigError("Connection needs both a client id and a client secret.")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The shared pool, timeouts, pacing and retry policy of every request."""

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
        validate_fields(self, "http")
        require_order(self, "http", "retry_backoff_base_s", "retry_backoff_max_s")


@dataclass(frozen=True, slots=True)
class JobSettings:
    """Windows, analytics jobs, their polling and paging, and splitting of failing windows."""

    window: timedelta = timedelta(days=1)
    page_size: int = 1000
    query_page_size: int = 100
    max_concurrent_jobs: int = 8
    poll_initial_s: float = 1.0
    poll_max_s: float = 15.0
    job_timeout_s: float = 1800.0
    split_min: timedelta = timedelta(hours=1)
    max_job_span: timedelta = timedelta(days=7)
    max_jobs_per_window: int = 5
    open_horizon: timedelta = timedelta(days=14)
    open_refresh_ids: int = 100

    def __post_init__(self) -> None:
        validate_fields(self, "jobs")
        require_order(self, "jobs", "poll_initial_s", "poll_max_s")


@dataclass(frozen=True, slots=True)
class LookupSettings:
    """Datasets read one record at a time by the ids another names (evaluations, surveys).

    ``edited_within``: how long after its window a record may still change (an evaluation is
    re-reviewed, a survey completed); such windows are read again once every ``every``. How
    long the service really allows edits is UNVERIFIED (genesys-datasets.md §F): 30 days is a
    guess that covers a monthly calibration cycle."""

    edited_within: timedelta = timedelta(days=30)
    every: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        validate_fields(self, "lookups")


@dataclass(frozen=True, slots=True)
class AggregateSettings:
    """The request of the ``conversation-aggregates`` jobs: the buckets (``granularity`` in
    ``time_zone``), the dimensions each result is a group of (``group_by``), the ``metrics``,
    and ``page_size`` (results per page, asked in the job's body). The defaults are what the
    performance views (queue, media type, direction, half-hour buckets) are built from."""

    granularity: str = "PT30M"
    time_zone: str = "UTC"
    group_by: tuple[str, ...] = ("queueId", "mediaType", "direction")
    metrics: tuple[str, ...] = (
        "nOffered", "tAnswered", "tAbandon", "tAcd", "tTalk", "tHandle", "tAcw", "tHeld",
        "tHeldComplete", "nTransferred", "nOverSla", "tWait", "nConnected",
    )  # fmt: skip
    page_size: int = 100

    def __post_init__(self) -> None:
        validate_fields(self, "aggregates")

    def body(self) -> dict[str, Any]:
        """What these settings add to a job's body (a query's, less ``pageSize``)."""
        return {"granularity": self.granularity, "timeZone": self.time_zone,
                "groupBy": list(self.group_by), "metrics": list(self.metrics),
                "pageSize": self.page_size}  # fmt: skip


@dataclass(frozen=True, slots=True)
class WorkforceSettings:
    """Workforce management searches (schedules) and bulk jobs (adherence): how they are
    followed.

    A search may answer Processing with an operationId; the service announces completion on a
    notification topic, and polling is not documented (genesys-datasets.md §G). So the same
    search is asked again (after 1 s, the waits doubling to ``search_poll_s``) until it
    answers, for ``search_timeout_s`` at most [UNVERIFIED: that asking again finds the
    operation's result]; an adherence job's
    status is asked as often, as long. A download link that has expired (403) is replaced by
    asking again (the search, or the job for fresh links), ``link_refreshes`` times at most."""

    search_poll_s: float = 5.0
    search_timeout_s: float = 600.0
    link_refreshes: int = 5

    def __post_init__(self) -> None:
        validate_fields(self, "workforce")


@dataclass(frozen=True, slots=True)
class OutputSettings:
    """Where and how window files are written, and how a run reports itself: metrics, logs
    and lineage."""

    out_dir: Path = Path("export")
    compression: Literal["none", "gzip", "zstd"] = "none"
    checkpoint_s: float = 2.0
    metrics_file: Path | None = None
    metrics_push: str | None = None  # a Pushgateway's URL
    progress: bool = True  # a bar on a terminal, log lines otherwise (--no-progress: none)
    log_format: Literal["text", "json"] = "text"
    lineage_namespace: str = "genesys-export"  # the OpenLineage job namespace

    def __post_init__(self) -> None:
        validate_fields(self, "output")


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """What an export covers: the datasets (``export.datasets``, --datasets), and the range:
    ``start`` (--start: with --since-last, and for ``run``, where a new folder begins), ``end``
    (--end; None: now) and ``lookback`` (--lookback)."""

    datasets: str = "conversations"
    start: datetime | None = None
    end: datetime | None = None
    lookback: timedelta | None = None

    def __post_init__(self) -> None:
        validate_fields(self, "export")


@dataclass(frozen=True, slots=True)
class TablesSettings:
    """How ``tables`` (and ``run``) build DuckDB and Parquet: ``threads`` 0 means the cores
    available, as many as ``memory_limit`` allows."""

    layout: Literal["flat", "hive"] = "flat"
    memory_limit: str = "512MB"
    threads: int = 0

    def __post_init__(self) -> None:
        validate_fields(self, "tables")


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long ``run`` keeps windows (``keep``; None: forever), as ``prune --older-than``, and
    how many of each snapshot dataset's newest snapshot days a prune keeps whatever their age
    (``keep_snapshots``)."""

    keep: timedelta | None = None
    keep_snapshots: int = 7

    def __post_init__(self) -> None:
        validate_fields(self, "retention")


@dataclass(frozen=True, slots=True)
class PublishSettings:
    """Where ``publish`` (and ``run``, when ``format`` is set) puts the tables: ``format`` None
    means publishing is not configured; ``to`` is the object storage URL (Parquet, Delta),
    ``catalog`` the pyiceberg catalog's name and ``namespace`` its namespace (Iceberg);
    ``keep_history`` leaves the lake's versions from before a forget (README, Forgetting)."""

    format: Literal["parquet", "delta", "iceberg"] | None = None
    to: str = ""
    catalog: str = ""
    namespace: str = "genesys"
    keep_history: bool = False

    def __post_init__(self) -> None:
        validate_fields(self, "publish")

    @property
    def configured(self) -> bool:
        return self.format is not None


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    """What happens to personal data before it reaches disk (README, Privacy): the ``profile``
    (--privacy), the ``key_file`` holding the pseudonyms' key (else GENESYS_EXPORT_PRIVACY_KEY;
    never a flag) and the user's ``rules``, each ``"dataset:path = action"``, checked here."""

    profile: Literal["none", "standard", "strict"] = "none"
    key_file: Path | None = None
    rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_fields(self, "privacy")
        for text in self.rules:
            parse_rule(text, "config.toml [privacy] rules")

    def read_key(self, env_key: str) -> str:
        """The key: ``env_key`` (GENESYS_EXPORT_PRIVACY_KEY's), else the key file's, read now
        ("" when neither)."""
        return read_key({KEY_ENV: env_key}, self.key_file)

    def policy(self, env_key: str) -> Policy:
        """The policy of a run; a profile that pseudonymises without a key is refused."""
        rules = [parse_rule(text, "config.toml [privacy] rules") for text in self.rules]
        return Policy(self.profile, rules, self.read_key(env_key))


@dataclass(frozen=True, slots=True)
class ForgetSettings:
    """Whether ``run`` applies the org's completed GDPR deletions each time (``enabled``;
    ``forget`` does it on demand). A folder ``forget`` has run on applies them to every export
    whatever this says (README, Forgetting)."""

    enabled: bool = False

    def __post_init__(self) -> None:
        validate_fields(self, "forget")


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """The demo data set and pace of the bundled sandbox (used only when api_url = "sandbox")."""

    conversations: int = 10_000
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    days: int = 7
    seed: int = 42
    latency_ms: float = 0.0
    rate_per_minute: int | None = 300  # None = unlimited (0 in config.toml)
    token_ttl_s: float = 86400.0
    job_delay_s: float = 0.5

    def __post_init__(self) -> None:
        validate_fields(self, "sandbox")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs; build variants with ``dataclasses.replace``."""

    connection: Connection
    http: HttpSettings
    jobs: JobSettings
    output: OutputSettings
    sandbox: SandboxOptions
    export: ExportSettings = ExportSettings()
    tables: TablesSettings = TablesSettings()
    retention: RetentionSettings = RetentionSettings()
    lookups: LookupSettings = LookupSettings()
    aggregates: AggregateSettings = AggregateSettings()
    workforce: WorkforceSettings = WorkforceSettings()
    publish: PublishSettings = PublishSettings()
    privacy: PrivacySettings = PrivacySettings()
    forget: ForgetSettings = ForgetSettings()
    config_path: Path | None = None
    privacy_key: str = field(default="", repr=False, compare=False)  # GENESYS_EXPORT_PRIVACY_KEY

    def privacy_policy(self) -> Policy:
        """The run's privacy policy (its key read now)."""
        return self.privacy.policy(self.privacy_key)

    def request_options(self, section: str) -> Mapping[str, Any]:
        """What config section ``section`` adds to the job and query bodies of a family that
        names it (``JobsApi.options``); {} for ""."""
        return {"aggregates": self.aggregates.body}.get(section, dict)()


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """What the commands that only read and write the export folder need (tables, prune,
    publish): no connection, so no Genesys credentials are asked for."""

    output: OutputSettings
    jobs: JobSettings  # prune: the window and the open-records horizon bound what it may remove
    export: ExportSettings
    tables: TablesSettings
    retention: RetentionSettings
    publish: PublishSettings = PublishSettings()
    config_path: Path | None = None


# The options the CLI's flags and the Python API's keywords set, by their name (the flag's,
# with underscores), and the config key each one sets: a flag is a config key given last.
OPTIONS: Mapping[str, str] = {
    "region": "genesys.region",
    "api_url": "genesys.api_url",
    "login_url": "genesys.login_url",
    "client_id": "genesys.client_id",
    "out": "output.out_dir",
    "compression": "output.compression",
    "metrics_file": "output.metrics_file",
    "metrics_push": "output.metrics_push",
    "log_format": "output.log_format",
    "window": "jobs.window",
    "concurrency": "http.concurrency",
    "datasets": "export.datasets",
    "start": "export.start",
    "end": "export.end",
    "lookback": "export.lookback",
    "layout": "tables.layout",
    "memory_limit": "tables.memory_limit",
    "threads": "tables.threads",
    "older_than": "retention.keep",
    "format": "publish.format",
    "to": "publish.to",
    "catalog": "publish.catalog",
    "namespace": "publish.namespace",
    "keep_history": "publish.keep_history",
    "privacy": "privacy.profile",
    "forget": "forget.enabled",
}
OPTION_FLAGS: Mapping[str, str] = {
    key: "--" + name.replace("_", "-") for name, key in OPTIONS.items()
}


def option_overrides(options: Mapping[str, object]) -> dict[str, object]:
    """Options by name (``out``, ``start``, ...) as overrides keyed by their config keys; a
    name that is no option is refused with the closest one."""
    unknown = sorted(set(options) - OPTIONS.keys())
    if unknown:
        raise ConfigError(f"Unknown option {unknown[0]!r}{hint(unknown[0], OPTIONS)}")
    return {OPTIONS[name]: value for name, value in options.items()}


SECTIONS: Mapping[str, type] = {
    "http": HttpSettings,
    "jobs": JobSettings,
    "output": OutputSettings,
    "export": ExportSettings,
    "tables": TablesSettings,
    "retention": RetentionSettings,
    "lookups": LookupSettings,
    "aggregates": AggregateSettings,
    "workforce": WorkforceSettings,
    "publish": PublishSettings,
    "privacy": PrivacySettings,
    "forget": ForgetSettings,
    "sandbox": SandboxOptions,
}
LOCAL_SECTIONS = ("output", "jobs", "export", "tables", "retention", "publish")


# ---- loading the layers ------------------------------------------------------------------------

# "section.key" -> (raw value, where it came from: "config.toml [http] concurrency", "--region")
Layer = dict[str, tuple[object, str]]


def load_settings(
    *,
    config_path: Path | None,
    env: Mapping[str, str],
    overrides: Mapping[str, object],
    cwd: Path | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> tuple[Settings, list[str]]:
    """Merge defaults < config file < environment < overrides into validated Settings.

    ``config_path`` None means ``./config.toml`` in ``cwd`` when present, else defaults only.
    ``overrides`` are keyed ``"section.key"`` (strings from the CLI or typed values);
    ``flag_names`` maps those keys to the flags that set them, for error messages. Returns the
    settings and warnings for the caller to show (this module never prints).
    """
    path, layers, warnings = _layers(config_path, env, overrides, cwd, flag_names)
    connection = _connection(layers, warnings)
    sections = {name: _section(name, cls, layers) for name, cls in SECTIONS.items()}
    key = env.get(KEY_ENV, "").strip()
    return Settings(connection=connection, config_path=path, privacy_key=key, **sections), warnings


def load_local_settings(
    *,
    config_path: Path | None,
    env: Mapping[str, str],
    overrides: Mapping[str, object],
    cwd: Path | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> tuple[LocalSettings, list[str]]:
    """``load_settings`` for the commands that never reach the API: the [genesys] section is
    not read, so they need no credentials (the rest of the file is checked as always)."""
    path, layers, warnings = _layers(config_path, env, overrides, cwd, flag_names)
    sections = {name: _section(name, SECTIONS[name], layers) for name in LOCAL_SECTIONS}
    return LocalSettings(config_path=path, **sections), warnings


def _layers(
    config_path: Path | None,
    env: Mapping[str, str],
    overrides: Mapping[str, object],
    cwd: Path | None,
    flag_names: Mapping[str, str] | None,
) -> tuple[Path | None, list[Layer], list[str]]:
    """The config file found, the layers (file, environment, overrides) and its warnings."""
    if SECRET_KEY in overrides:
        raise ConfigError(
            "The client secret is never taken from a flag (it would show in shell history and "
            "ps); set GENESYSCLOUD_OAUTHCLIENT_SECRET, or client_secret under [genesys] in "
            "config.toml."
        )
    path, shown = _find_config(config_path, cwd or Path.cwd())
    file_layer = _file_layer(path, shown) if path else {}
    layers = [file_layer, _env_layer(env), _override_layer(overrides, flag_names or {})]
    warnings = _permission_warning(path, shown, file_layer) if path else []
    return path, layers, warnings


def fallback_output(
    *, config_path: Path | None, flags: Mapping[str, object], cwd: Path
) -> OutputSettings:
    """[output] for a run whose settings did not load (no credentials, a typo in another key),
    so that it still reports itself: each key from ``flags`` (keyed by [output] key), else the
    config file if it reads that far, else its default. A value that does not pass is left at
    its default."""
    table: Mapping[str, object] = {}
    with contextlib.suppress(ConfigError):
        path, shown = _find_config(config_path, cwd)
        found = _read_toml(path, shown).get("output") if path else None
        table = found if isinstance(found, dict) else {}
    values = {}
    for key, rule in RULES["output"].items():
        raw = flags[key] if flags.get(key) is not None else table.get(key)
        with contextlib.suppress(ConfigError):
            values[key] = coerce(rule, raw, key) if raw is not None else None
    return OutputSettings(**{k: v for k, v in values.items() if v is not None})


def _find_config(given: Path | None, cwd: Path) -> tuple[Path | None, str]:
    """The config file to read and how to name it in messages."""
    if given is None:
        default = cwd / "config.toml"
        return (default, "config.toml") if default.is_file() else (None, "")
    path = cwd / given  # an absolute ``given`` stays as it is
    if not path.exists():
        raise ConfigError(f"Config file {given} does not exist; check --config.")
    if not path.is_file():
        raise ConfigError(f"Config file {given} is not a file; give --config a TOML file.")
    return path, str(given)


def _read_toml(path: Path, shown: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        found = re.fullmatch(r"(.*) \(at (.*)\)", " ".join(str(exc).split()))
        reason, at = found.groups() if found else (str(exc), "some line")
        raise ConfigError(f"{shown}: invalid TOML at {at}: {reason}; fix the syntax.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{shown} is not UTF-8 text (byte {exc.start}); save it as UTF-8."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {shown}: {exc.strerror}; check its permissions.") from None


def _file_layer(path: Path, shown: str) -> Layer:
    layer: Layer = {}
    for section, table in _read_toml(path, shown).items():
        if not isinstance(table, dict):
            raise ConfigError(stray_key_message(shown, section))
        if section not in RULES:
            raise ConfigError(unknown_section_message(shown, section))
        for key, raw in table.items():
            if key not in RULES[section]:
                raise ConfigError(unknown_key_message(shown, section, key))
            layer[f"{section}.{key}"] = (raw, f"{shown} [{section}] {key}")
    return layer


def _env_layer(env: Mapping[str, str]) -> Layer:
    # An empty variable counts as unset, as CI systems and `VAR= cmd` produce them.
    return {key: (env[name], name) for name, key in ENV_KEYS.items() if env.get(name, "").strip()}


def _override_layer(overrides: Mapping[str, object], flag_names: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    for key, raw in overrides.items():
        section, _, name = key.partition(".")
        if name not in RULES.get(section, {}):
            every = [f"{s}.{k}" for s, keys in RULES.items() for k in keys]
            raise ConfigError(f"Unknown setting {key!r}{hint(key, every)}")
        if raw is not None:
            layer[key] = (raw, flag_names.get(key, key))
    return layer


def _section(name: str, cls: type, layers: list[Layer]) -> Any:
    """One settings section; every layer's values are judged, the highest layer's kept."""
    kwargs: dict[str, Any] = {}
    for layer in layers:
        for key, (raw, where) in layer.items():
            section, _, field_name = key.partition(".")
            if section == name:
                # A value typed as a flag is not repeated (a usage error names flags only).
                hide = where.startswith("--")
                kwargs[field_name] = coerce(RULES[name][field_name], raw, where, secret=hide)
    return cls(**kwargs)


# ---- the connection ------------------------------------------------------------------------------


def _connection(layers: list[Layer], warnings: list[str]) -> Connection:
    """Merge [genesys]: a location (region or api_url) at a higher layer replaces lower ones."""
    chosen: dict[str, _Chosen] = {}
    for rank, layer in enumerate(layers):
        got: dict[str, _Chosen] = {}
        for key, (raw, where) in layer.items():
            if key.startswith("genesys."):
                value = coerce(TEXT, raw, where, secret=key == SECRET_KEY)
                if value:
                    got[key.removeprefix("genesys.")] = _Chosen(value, where, rank)
        if "region" in got and "api_url" in got:
            raise ConfigError(
                f"{got['region'].where} and {got['api_url'].where} are both set; give one of "
                "them: a region implies its API and login hosts, api_url is for gateways and "
                "proxies."
            )
        if "region" in got or "api_url" in got:
            for key in ("region", "api_url", "login_url"):
                chosen.pop(key, None)
        chosen.update(got)
    return _build_connection(chosen, warnings)


@dataclass(frozen=True, slots=True)
class _Chosen:
    """One [genesys] value, where it came from, and its layer (higher wins)."""

    value: str
    where: str
    rank: int


def _build_connection(chosen: Mapping[str, _Chosen], warnings: list[str]) -> Connection:
    value = {key: c.value for key, c in chosen.items()}
    where = {key: c.where for key, c in chosen.items()}
    if value.get("api_url", "").lower() == SANDBOX:
        _check_sandbox_choice(chosen)
        client_id = value.get("client_id", SANDBOX_CLIENT_ID)
        secret = value.get("client_secret", SANDBOX_CLIENT_SECRET)
        return Connection(None, SANDBOX, SANDBOX, client_id, secret, sandbox=True)
    region, api_url = _location(value, where)
    login_url = value.get("login_url", "").rstrip("/")
    if login_url:
        check_url(where["login_url"], login_url)
    else:
        login_url = login_url_for(region) if region else derive_login_url(api_url)
    _check_credentials(value, genesys=region_domain_of(api_url) is not None)
    warnings.extend(_plain_http_warnings(api_url, login_url))
    return Connection(region, api_url, login_url, value["client_id"], value["client_secret"])


def _check_sandbox_choice(chosen: Mapping[str, _Chosen]) -> None:
    """The sandbox is never chosen silently: credentials that are not the demo pair, set at a
    higher layer than the choice of the sandbox (the shipped config.toml under real
    credentials in the environment), mean the user meant a real org."""
    sandbox = chosen["api_url"]
    demo = {"client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET}
    real = [
        chosen[key]
        for key in demo
        if key in chosen and chosen[key].value != demo[key] and chosen[key].rank > sandbox.rank
    ]
    if real:
        raise ConfigError(
            f"{sandbox.where} selects the bundled sandbox (demo data), but {real[0].where} "
            "names another OAuth client: to export from Genesys Cloud set the region "
            '(GENESYSCLOUD_REGION, --region, or region in place of api_url = "sandbox" in '
            "config.toml); to use the sandbox with these credentials, say so with --api-url "
            "sandbox."
        )


def _location(value: Mapping[str, str], where: Mapping[str, str]) -> tuple[str | None, str]:
    """(region, api_url) from a region name or an explicit API URL."""
    if "region" in value:
        region = resolve_region(value["region"], what=where["region"])
        return region, f"https://api.{REGIONS[region]}"
    if "api_url" in value:
        api_url = value["api_url"].rstrip("/")
        check_url(where["api_url"], api_url)
        return region_for_url(api_url), api_url
    raise ConfigError(
        "No Genesys Cloud region: set GENESYSCLOUD_REGION (e.g. us-east-1), --region, or region "
        "under [genesys] in config.toml; for a gateway or proxy set the API URL instead "
        "(GENESYSCLOUD_API_URL, --api-url or api_url)."
    )


def _check_credentials(value: Mapping[str, str], *, genesys: bool) -> None:
    missing = [
        name for name in ("client id", "client secret") if not value.get(name.replace(" ", "_"))
    ]
    if missing:
        raise ConfigError(
            f"No OAuth {' and '.join(missing)}: set GENESYSCLOUD_OAUTHCLIENT_ID and "
            "GENESYSCLOUD_OAUTHCLIENT_SECRET in the environment, or client_id and client_secret "
            "under [genesys] in config.toml (then chmod 600 it)."
        )
    demo = (
        value["client_id"] == SANDBOX_CLIENT_ID or value["client_secret"] == SANDBOX_CLIENT_SECRET
    )
    if demo and genesys:  # the shipped config's demo pair would only earn "authentication failed"
        raise ConfigError(
            "The OAuth client is the sandbox's demo pair from config.toml, but the connection is "
            "Genesys Cloud; set GENESYSCLOUD_OAUTHCLIENT_ID and GENESYSCLOUD_OAUTHCLIENT_SECRET, "
            "or client_id and client_secret under [genesys] in config.toml."
        )


def _plain_http_warnings(api_url: str, login_url: str) -> list[str]:
    """Plain http is fine on loopback (the sandbox); anywhere else it exposes the secret."""
    exposed = {
        url: name
        for name, url in (("login_url", login_url), ("api_url", api_url))
        if urlsplit(url).scheme == "http" and not is_loopback(urlsplit(url).hostname or "")
    }
    return [
        f"{name} {url} is plain http to another machine: the client secret, the access token "
        "and the data travel unencrypted; use https."
        for url, name in exposed.items()
    ]


def _permission_warning(path: Path, shown: str, file_layer: Layer) -> list[str]:
    secret = file_layer.get(SECRET_KEY, ("", ""))[0]
    if not secret or secret == SANDBOX_CLIENT_SECRET or os.name == "nt":
        return []  # the demo secret guards nothing; Windows has no group/other mode bits
    try:
        readable = path.stat().st_mode & 0o044
    except OSError:
        return []
    if not readable:
        return []
    return [
        f"{shown} holds client_secret and is readable by other users; "
        f"run: chmod 600 {shlex.quote(shown)}"
    ]

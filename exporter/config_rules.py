"""What each setting accepts, and how a raw value becomes one.

A raw value is whatever a layer holds: a TOML value, a string from the environment or a flag,
or a typed value passed in code. ``coerce`` turns it into the setting's type within its bounds,
or raises one ConfigError sentence naming where the value came from; it never echoes a secret.
The names of sections and keys live here too, so typos get the closest real name.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from exporter.datasets import select
from exporter.errors import ConfigError
from exporter.windows import DURATION_FORMS, as_utc, parse_duration, parse_instant


@dataclass(frozen=True, slots=True)
class Rule:
    """What one setting accepts: ``kind`` plus bounds (inclusive ``low``/``high``, or ``above``)."""

    kind: Literal[
        "int",
        "number",
        "duration",
        "choice",
        "path",
        "file",
        "instant",
        "rate",
        "text",
        "name",
        "url",
        "store_url",
        "datasets",
        "bool",
        "names",
        "period",
        "rules",
    ]
    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # "" (or None) means unset: the setting's default is None

    def describe(self) -> str:
        """The accepted values in words, to follow "must be"."""
        if self.kind == "int" and self.high is not None:
            return f"an integer from {self.low:g} to {self.high:g}"
        bound = f" > {self.above:g}" if self.above is not None else ""
        bound = f" >= {self.low:g}" if self.low is not None else bound
        text = {
            "int": f"an integer{bound}",
            "number": f"a number{bound}",
            "duration": f"a duration: {DURATION_FORMS}",
            "choice": f"one of {', '.join(self.choices)}",
            "path": "a folder path",
            "file": 'a file path ("" for none)',
            "datasets": (
                "comma-separated dataset names (genesys-export datasets lists them), "
                "dimensions or all"
            ),
            "instant": (
                "a date such as 2026-11-01 (YYYY-MM-DD) or an ISO datetime such as "
                "2026-11-01T00:00:00Z"
            ),
            "rate": "an integer >= 0 (0 = unlimited)",
            "text": "a string",
            "name": "a non-empty string",
            "url": (
                "an http(s) URL such as http://pushgateway:9091 with no user or password in it "
                "(those come from the environment only)"
            ),
            "bool": "true or false",
            "names": (
                'a list of names such as ["queueId", "mediaType"] (or one comma-separated string)'
            ),
            "rules": 'a list of "dataset:path = action" strings',
            "period": "an ISO-8601 period that divides a day: PT1M to PT12H, or P1D",
            "store_url": (
                "an object storage URL: s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or "
                'az://CONTAINER/PREFIX ("" for none)'
            ),
        }[self.kind]
        return f'{text} ("" for none)' if self.optional else text


_INT1, _POS, _NONNEG = Rule("int", low=1), Rule("number", above=0), Rule("number", low=0)
TEXT, _SPAN = Rule("text"), Rule("duration")
GENESYS_KEYS = ("region", "api_url", "login_url", "client_id", "client_secret")
RULES: Mapping[str, Mapping[str, Rule]] = {
    "genesys": dict.fromkeys(GENESYS_KEYS, TEXT),
    "http": {
        "concurrency": _INT1,
        "request_timeout_s": _POS,
        "connect_timeout_s": _POS,
        "rate_limit_per_minute": Rule("int", low=0),  # 0: no pacing until the server announces one
        "retry_max_attempts": _INT1,
        "retry_max_seconds": _POS,
        "retry_backoff_base_s": _NONNEG,
        "retry_backoff_max_s": _NONNEG,
        "retry_after_max_s": _NONNEG,
        "token_refresh_margin_s": _NONNEG,
    },
    "jobs": {
        "window": _SPAN,
        "page_size": Rule("int", low=1, high=10_000),  # the jobs API's largest page
        "query_page_size": Rule("int", low=1, high=100),  # the sync query's largest page
        "max_concurrent_jobs": _INT1,
        "poll_initial_s": _POS,
        "poll_max_s": _POS,
        "job_timeout_s": _POS,
        "split_min": _SPAN,
        "max_job_span": _SPAN,
        "max_jobs_per_window": _INT1,
        "open_horizon": _SPAN,
        # [UNVERIFIED] how many predicates a filter may hold: a setting, 100 by default.
        "open_refresh_ids": Rule("int", low=1, high=1000),
    },
    "output": {
        "out_dir": Rule("path"),
        "compression": Rule("choice", choices=("none", "gzip", "zstd")),
        "checkpoint_s": _NONNEG,
        "metrics_file": Rule("file"),
        "metrics_push": Rule("url", optional=True),
        "progress": Rule("bool"),
        "log_format": Rule("choice", choices=("text", "json")),
        "lineage_namespace": Rule("name"),
    },
    "export": {
        "datasets": Rule("datasets"),
        "start": Rule("instant", optional=True),
        "end": Rule("instant", optional=True),
        "lookback": Rule("duration", optional=True),
    },
    "tables": {
        "layout": Rule("choice", choices=("flat", "hive")),
        "memory_limit": TEXT,  # a size such as 512MB, judged by the tables build
        "threads": Rule("int", low=0),  # 0: the cores available, as memory allows
    },
    "retention": {
        "keep": Rule("duration", optional=True),
        "keep_snapshots": _INT1,  # the newest snapshot is what the tables read: never 0
    },
    "lookups": {
        # [UNVERIFIED] how long the service lets an evaluation be edited: a setting.
        "edited_within": _SPAN,
        "every": _SPAN,
    },
    "aggregates": {
        # What Genesys's performance views are built from; the defaults are theirs [INF].
        "granularity": Rule("period"),
        "time_zone": Rule("name"),
        "group_by": Rule("names"),
        "metrics": Rule("names"),
        # [UNVERIFIED] the largest page the aggregates jobs accept: a setting. A result is a
        # group with every bucket of the job, so pages are kept small.
        "page_size": Rule("int", low=1, high=1000),
    },
    "workforce": {
        # [UNVERIFIED] how an asynchronous schedule search is followed: asked again.
        "search_poll_s": _NONNEG,
        "search_timeout_s": _POS,
        "link_refreshes": _INT1,
    },
    "publish": {
        "format": Rule("choice", choices=("parquet", "delta", "iceberg"), optional=True),
        "to": Rule("store_url"),  # "" with format set: refused by the publish (Iceberg needs none)
        "catalog": TEXT,  # a pyiceberg catalog's name (.pyiceberg.yaml, PYICEBERG_CATALOG__*)
        "namespace": TEXT,
        "keep_history": Rule("bool"),
    },
    "privacy": {
        "profile": Rule("choice", choices=("none", "standard", "strict")),
        "key_file": Rule("file"),
        "rules": Rule("rules"),
    },
    "forget": {
        "enabled": Rule("bool"),
    },
    "sandbox": {
        "conversations": Rule("int", low=0),
        "start": Rule("instant"),
        "days": _INT1,
        "seed": Rule("int"),
        "latency_ms": _NONNEG,
        "rate_per_minute": Rule("rate"),
        "token_ttl_s": _POS,
        "job_delay_s": _NONNEG,
    },
}


# ---- judging one value ------------------------------------------------------------------------


def coerce(rule: Rule, raw: object, where: str, *, secret: bool = False) -> Any:
    """``raw`` (a TOML value, a string from the environment or a flag, or a typed value) as the
    setting's type within its bounds; else one ConfigError sentence that never echoes a secret."""
    if rule.optional and (raw is None or (isinstance(raw, str) and not raw.strip())):
        return None
    try:
        value = _CONVERT[rule.kind](raw, rule)
        ok = _in_bounds(rule, value)
    except (ValueError, TypeError, OverflowError, ConfigError):
        ok = False
    if not ok:
        hide = secret or rule.kind in ("url", "store_url")  # a URL may carry a password
        got = "" if hide else f", got {raw!r}"
        raise ConfigError(f"{where} must be {rule.describe()}{got}.")
    return value


def _as_int(raw: object, _rule: Rule) -> int:
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise ValueError(raw)
    return int(raw) if isinstance(raw, int | float) else int(str(raw).strip())


def _as_number(raw: object, _rule: Rule) -> float:
    if isinstance(raw, bool):
        raise ValueError(raw)
    value = float(raw) if isinstance(raw, int | float) else float(str(raw).strip())
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _as_duration(raw: object, _rule: Rule) -> timedelta:
    if isinstance(raw, timedelta):
        return raw
    if not isinstance(raw, str):  # a bare 86400 could mean seconds or days: ask for a unit
        raise TypeError(raw)
    return parse_duration(raw, what="")


def _as_instant(raw: object, _rule: Rule) -> datetime:
    if isinstance(raw, datetime):  # TOML datetimes arrive parsed; a local one is taken as UTC
        return as_utc(raw)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day, tzinfo=UTC)
    if not isinstance(raw, str):
        raise TypeError(raw)
    return parse_instant(raw, what="")


def _as_rate(raw: object, rule: Rule) -> int | None:
    value = _as_int(raw, rule) if raw is not None else 0
    if value < 0:
        raise ValueError(raw)
    return value or None


def _as_path(raw: object, _rule: Rule) -> Path:
    if not isinstance(raw, str | os.PathLike) or not str(raw).strip():
        raise ValueError(raw)
    return Path(str(raw).strip()).expanduser()


def _as_file(raw: object, _rule: Rule) -> Path | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return _as_path(raw, _rule)


def _as_datasets(raw: object, _rule: Rule) -> str:
    """The selection, checked and written out name by name (``dimensions`` expanded)."""
    if not isinstance(raw, str):
        raise TypeError(raw)
    return ",".join(d.name for d in select(raw))


def _as_bool(raw: object, _rule: Rule) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str) else None
    if text not in ("true", "false", "yes", "no", "1", "0"):
        raise ValueError(raw)
    return text in ("true", "yes", "1")


def _as_choice(raw: object, rule: Rule) -> str:
    if not isinstance(raw, str) or raw.strip().lower() not in rule.choices:
        raise ValueError(raw)
    return raw.strip().lower()


# The schemes obstore and deltalake both open, with credentials from the environment.
STORE_SCHEMES = ("s3", "s3a", "gs", "az", "azure", "abfs", "abfss")


def _as_store_url(raw: object, _rule: Rule) -> str:
    """An object storage URL with a bucket (``s3://bucket/prefix``), or "" for none."""
    text = _as_text(raw, _rule)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme.lower() not in STORE_SCHEMES or not parts.netloc or parts.query:
        raise ValueError(raw)
    return text.rstrip("/")


def _as_text(raw: object, _rule: Rule) -> str:
    if not isinstance(raw, str):
        raise TypeError(raw)
    return raw.strip()


def _as_name(raw: object, rule: Rule) -> str:
    text = _as_text(raw, rule)
    if not text:
        raise ValueError(raw)
    return text


def _as_url(raw: object, _rule: Rule) -> str:
    if not isinstance(raw, str):
        raise TypeError(raw)
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        raise ValueError("an http(s) URL without credentials")
    return raw.strip().rstrip("/")


def _as_names(raw: object, _rule: Rule) -> tuple[str, ...]:
    """A TOML list of names, or one comma-separated string; at least one, none blank."""
    parts = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(parts, list | tuple):
        raise TypeError(raw)
    names = tuple(str(part).strip() for part in parts if isinstance(part, str))
    if not names or len(names) != len(parts) or not all(names):
        raise ValueError(raw)
    return names


def _as_rules(raw: object, _rule: Rule) -> tuple[str, ...]:
    """A TOML list of strings, each checked by the privacy module when the settings are built
    (an empty list: no rules)."""
    if not isinstance(raw, list | tuple) or not all(isinstance(part, str) for part in raw):
        raise TypeError(raw)
    return tuple(part.strip() for part in raw)


_DAY_S = 86_400


def _as_period(raw: object, _rule: Rule) -> str:
    """``PT<n>M``, ``PT<n>H`` or ``P1D``, whose buckets tile a UTC day (so each lies in one
    window)."""
    text = _as_text(raw, _rule).upper()
    units = {"M": 60, "H": 3600}
    if text == "P1D":
        return text
    if not text.startswith("PT") or len(text) < 4 or text[-1] not in units:
        raise ValueError(raw)
    seconds = int(text[2:-1]) * units[text[-1]]
    if seconds < 60 or _DAY_S % seconds or seconds > _DAY_S // 2:
        raise ValueError(raw)
    return text


_CONVERT: Mapping[str, Any] = {
    "int": _as_int,
    "number": _as_number,
    "duration": _as_duration,
    "instant": _as_instant,
    "rate": _as_rate,
    "path": _as_path,
    "file": _as_file,
    "datasets": _as_datasets,
    "choice": _as_choice,
    "text": _as_text,
    "name": _as_name,
    "url": _as_url,
    "bool": _as_bool,
    "store_url": _as_store_url,
    "names": _as_names,
    "period": _as_period,
    "rules": _as_rules,
}


def _in_bounds(rule: Rule, value: Any) -> bool:
    if value is None or rule.kind not in ("int", "number", "duration"):
        return True
    number = value.total_seconds() if isinstance(value, timedelta) else value
    low = 1 if rule.kind == "duration" else rule.low  # windows and splits of at least a second
    return (
        (low is None or number >= low)
        and (rule.high is None or number <= rule.high)
        and (rule.above is None or number > rule.above)
    )


def validate_fields(obj: Any, section: str) -> None:
    """__post_init__: judge every field by its rule and store it in its canonical type."""
    for name, rule in RULES[section].items():
        value = coerce(rule, getattr(obj, name), f"{section}.{name}")
        object.__setattr__(obj, name, value)


def require_order(obj: Any, section: str, low: str, high: str) -> None:
    if getattr(obj, high) < getattr(obj, low):
        raise ConfigError(
            f"{section}.{high} ({getattr(obj, high)}) must not be below {section}.{low} "
            f"({getattr(obj, low)}); raise {high} or lower {low}."
        )


def check_url(where: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"{where} {url!r} is not an http(s) base URL; write e.g. https://api.mypurecloud.com, "
            "or set a region instead."
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (plain http to it never crosses a network)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- messages ------------------------------------------------------------------------------------


def hint(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else "."


def unknown_section_message(shown: str, section: str) -> str:
    close = difflib.get_close_matches(section, list(RULES), n=1)
    if close:
        return f"{shown}: unknown section [{section}]; did you mean [{close[0]}]?"
    every = ", ".join(f"[{name}]" for name in RULES)
    return f"{shown}: unknown section [{section}]; the sections are {every}."


def unknown_key_message(shown: str, section: str, key: str) -> str:
    home = next((name for name, keys in RULES.items() if key in keys), None)
    if home:
        return f"{shown}: unknown key {key!r} in [{section}]; it belongs in [{home}]."
    close = difflib.get_close_matches(key, list(RULES[section]), n=1)
    if close:
        return f"{shown}: unknown key {key!r} in [{section}]; did you mean {close[0]!r}?"
    return f"{shown}: unknown key {key!r} in [{section}]; its keys are {', '.join(RULES[section])}."


def stray_key_message(shown: str, key: str) -> str:
    if key in RULES:
        return f"{shown}: {key} must be a section header, [{key}], not a value."
    home = next((name for name, keys in RULES.items() if key in keys), None)
    where = f"[{home}]" if home else "its section"
    return f"{shown}: {key!r} stands outside any section; move it under {where}."

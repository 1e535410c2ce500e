"""The bundled sandbox behind ``api_url = "sandbox"``: started for the length of a command.

The shipped ``config.toml`` selects it, so a first command works with no org; it says plainly,
once, that the data are the sandbox's. The sandbox is its own package and is imported only
here, only when selected.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator

from exporter.config import Settings
from exporter.errors import ConfigError

log = logging.getLogger("exporter")


@contextlib.contextmanager
def serving_sandbox(settings: Settings) -> Iterator[Settings]:
    """With api_url = "sandbox", run the bundled sandbox for the duration of the block and
    yield the settings pointing at it; other settings are yielded as they are."""
    if not settings.connection.sandbox:
        yield settings
        return
    from genesys_sandbox import DatasetSpec, SandboxSettings, run_sandbox_in_thread

    opts = settings.sandbox
    try:
        dataset = DatasetSpec(
            conversations=opts.conversations, start=opts.start, days=opts.days, seed=opts.seed
        )
    except ValueError as exc:  # the sandbox speaks plain ValueErrors; [sandbox] is ours to name
        raise ConfigError(f"config.toml [sandbox]: {exc}") from None
    sandbox_settings = SandboxSettings(
        dataset=dataset,
        client_id=settings.connection.client_id,
        client_secret=settings.connection.client_secret,
        latency_ms=opts.latency_ms,
        rate_per_minute=opts.rate_per_minute,
        token_ttl_s=opts.token_ttl_s,
        job_delay_s=opts.job_delay_s,
    )
    with run_sandbox_in_thread(sandbox_settings) as sandbox:
        log.warning(
            "using the bundled SANDBOX at %s: demo data (%d conversations from %s, %d days), "
            "not a real org. Set a region and credentials in config.toml to export from "
            "Genesys Cloud.", sandbox.url, opts.conversations, f"{opts.start:%Y-%m-%d}",
            opts.days,
        )  # fmt: skip
        connection = dataclasses.replace(
            settings.connection, api_url=sandbox.url, login_url=sandbox.url
        )
        yield dataclasses.replace(settings, connection=connection)

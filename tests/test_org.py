"""One export folder, one org: a run reaching another org refuses before writing anything."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.errors import ConfigError
from exporter.plan import ExportRequest
from exporter.preview import plan_only
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.manifest import Manifest
from genesys_sandbox import Sandbox
from tests.support import START, days, exporter_settings, put_window_file, sandbox_settings

RANGE = ExportRequest(start=START, end=START + days(3))


def folder_bytes(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


async def test_the_folder_records_its_org_and_refuses_another(sandbox, tmp_path: Path) -> None:
    """The first run records the org (id, name, login host); a run whose credentials reach
    another org exits 2 naming both, sends no job and leaves every byte of the folder as it
    was, instead of skipping the first org's complete days."""
    settings = exporter_settings(sandbox, tmp_path)
    first = await export(settings, RANGE, progress=NoProgress())
    assert first.status == "ok", first.error
    org = Manifest.load(tmp_path).org
    assert org is not None and (org.id, org.name) == (sandbox.settings.org_id, "Sandbox Org")
    assert org.login_host == "127.0.0.1"
    before = folder_bytes(tmp_path)

    sandbox.update(org_id="0b7a4c1d-1111-4000-8000-000000000002", org_name="Acme Staging")
    sandbox.reset_stats()
    other = await export(settings, RANGE, progress=NoProgress())
    assert (other.status, other.exit_code) == ("bad_input", 2)
    assert "'Sandbox Org'" in (other.error or "") and "'Acme Staging'" in (other.error or "")
    assert "nothing was written" in (other.error or "")
    assert sandbox.stats().jobs_created == 0
    assert folder_bytes(tmp_path) == before


async def test_a_folder_written_before_orgs_were_recorded_is_adopted(sandbox, tmp_path) -> None:
    """A manifest with no org (an older version's) takes the org of the next run."""
    put_window_file(tmp_path, "conversations", "2026-10-01", [b'{"conversationId":"x"}'])
    assert Manifest.load(tmp_path).org is None
    summary = await export(exporter_settings(sandbox, tmp_path), RANGE, progress=NoProgress())
    assert summary.status == "ok", summary.error
    org = Manifest.load(tmp_path).org
    assert org is not None and org.id == sandbox.settings.org_id


async def test_plan_refuses_another_orgs_folder_and_records_nothing(sandbox, tmp_path) -> None:
    """--plan checks the org as a run would, but writes no org into a folder."""
    settings = exporter_settings(sandbox, tmp_path)
    put_window_file(tmp_path, "conversations", "2026-10-01", [b'{"conversationId":"x"}'])
    await plan_only(settings, RANGE)
    assert Manifest.load(tmp_path).org is None
    await export(settings, RANGE, progress=NoProgress())
    sandbox.update(org_id="another-org")
    with pytest.raises(ConfigError, match="another-org"):
        await plan_only(settings, RANGE)


async def test_a_start_older_than_the_retention_begins_at_the_retention(tmp_path, caplog) -> None:
    """A --start older than the org's analytics retention exports from the retention's edge
    with a warning, instead of recording empty windows complete as if they held nothing."""
    async with Sandbox(sandbox_settings(retention_days=90)) as sb:
        request = ExportRequest(start=START - days(200), end=START + days(3))
        summary = await export(exporter_settings(sb, tmp_path), request, progress=NoProgress())
    assert summary.status == "ok", summary.error
    oldest = datetime.now(UTC) - days(90)
    first = Manifest.load(tmp_path).records("conversations")[0]
    assert first.name == f"{oldest:%Y-%m-%d}"
    assert "older than the org's 90-day analytics retention" in caplog.text

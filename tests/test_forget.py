"""``forget``: the org's completed GDPR deletions erased from an export of the sandbox's data (its
requests name real customers of its conversations), through the CLI, the files, the manifest,
the tables and a second export; a kill at each step of the rewrite converges."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from exporter.client.http import ApiClient
from exporter.forget import fetch_requests, forget_in_folder
from exporter.gdpr import GdprRequest
from exporter.privacy import Policy
from exporter.store.forgotten import LEDGER_NAME, PART, ForgetLedger
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest
from genesys_sandbox.server import run_sandbox_in_thread
from tests.support import (
    assert_one_clear_line,
    cli,
    cli_env,
    counted,
    exporter_settings,
    last_json,
    strong,
    tables_sandbox_settings,
    write_config,
)

DATASETS = "conversations,evaluations,surveys"
KEY = "forget-test-key-0123456789abcdef"


class Folders:
    """One sandbox, and an export of it (tables built) that each test copies before changing."""

    def __init__(self, sb: Any, root: Path) -> None:
        self.sb, self.root = sb, root
        self.base = root / "base"

    def copy(self, tmp_path: Path, name: str = "out") -> Path:
        out = tmp_path / name
        shutil.copytree(self.base, out)
        return out

    def command(self, name: str, out: Path, *args: str) -> list[str]:
        return [sys.executable, "-m", "exporter", name, "--out", str(out), *args]

    def run(self, *command: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
        extra = {} if key is None else {"GENESYS_EXPORT_PRIVACY_KEY": key}
        return subprocess.run(list(command), env=cli_env(self.sb, **extra), capture_output=True,
                              text=True, timeout=300)  # fmt: skip

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else orjson.dumps(body)
        asked = urllib.request.Request(self.sb.url + path, data=data, method=method)
        with urllib.request.urlopen(asked, timeout=10) as answer:
            return orjson.loads(answer.read())

    def truth(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.control("GET", "/sandbox/gdpr/ground-truth")["requests"]
        return found


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Folders]:
    root = tmp_path_factory.mktemp("forget")
    with run_sandbox_in_thread(tables_sandbox_settings()) as sb:
        done = Folders(sb, root)
        exported = done.run(*cli(sb, root, done.base, "--datasets", DATASETS))
        assert exported.returncode == 0, exported.stderr
        built = done.run(*done.command("tables", done.base))
        assert built.returncode == 0, built.stderr
        yield done


def values(subject: dict[str, Any]) -> list[str]:
    """Every value of a subject: its name too (which other customers may share)."""
    name = [subject["name"].lower()] if subject.get("name") else []
    return name + strong(subject)


Records = dict[tuple[str, str, int], bytes]


def records(out: Path) -> Records:
    """Every record of every listed file by (dataset, its id, which occurrence)."""
    manifest = Manifest.load(out)
    found: Records = {}
    for dataset in manifest.datasets():
        seen: Counter[str] = Counter()
        for r in manifest.records(dataset):
            for line in read_records(out / r.file) if r.file else ():
                record = orjson.loads(line)
                key = str(record.get("conversationId") or record.get("id"))
                found[(dataset, key, seen[key])] = line
                seen[key] += 1
    return found


def assert_forgotten(
    out: Path, deletions: list[dict[str, Any]], before: Records, *, others_kept: bool = True
) -> None:
    """No number or address of a deletion's subject is left anywhere; a record that held one
    holds none of the subject's values, its name included; no record was lost or doubled;
    ``others_kept``: every other record is as it was (the subject's namesakes too)."""
    after = records(out)
    assert after.keys() == before.keys()
    text = b"\n".join(after.values()).decode().lower()
    assert [v for r in deletions for v in strong(r["subject"]) if v in text] == []
    for key, line in before.items():
        held = [
            r for r in deletions if any(v in line.decode().lower() for v in strong(r["subject"]))
        ]
        now = after[key].decode().lower()
        if held:
            assert [v for r in held for v in values(r["subject"]) if v in now] == [], key
        elif others_kept:
            assert after[key] == line, key


def folder_text(out: Path) -> str:
    """Every record of every file the manifest lists, lower-cased."""
    manifest = Manifest.load(out)
    lines = [line for dataset in manifest.datasets() for r in manifest.records(dataset)
             if r.file for line in read_records(out / r.file)]  # fmt: skip
    return b"\n".join(lines).decode().lower()


def tables_text(out: Path) -> str:
    """Every row of every table of genesys.duckdb, and every Parquet file, lower-cased."""
    rows: list[str] = []
    with duckdb.connect(str(out / "genesys.duckdb"), read_only=True) as con:
        tables = [name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()]  # fmt: skip
        for table in tables:
            rows += [str(row) for row in con.execute(f'SELECT * FROM "{table}"').fetchall()]
        for path in sorted((out / "tables").rglob("*.parquet")):
            rows += [str(row) for row in con.execute(
                "SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]  # fmt: skip
    return "\n".join(rows).lower()


def assert_manifest_true(out: Path) -> None:
    manifest = Manifest.load(out)
    for dataset in manifest.datasets():
        for r in manifest.records(dataset):
            if r.file and r.sha256:
                data = (out / r.file).read_bytes()
                assert (len(data), hashlib.sha256(data).hexdigest()) == (r.bytes, r.sha256), r.file
    assert not list(out.rglob(f"*.{PART}*")), "a staged copy was left behind"
    # What was read by ids from a rewritten file still names that file: not read again.
    for dataset in ("evaluations", "surveys"):
        for r in manifest.records(dataset):
            source = manifest.get("conversations", r.name)
            if r.derived_from is not None and source is not None:
                assert r.derived_from == source.sha256, (dataset, r.name)


def test_forget_erases_every_completed_deletion_from_files_and_tables(
    folders: Folders, tmp_path: Path
) -> None:
    out = folders.copy(tmp_path)
    truth = folders.truth()
    deletions = counted(truth)
    assert len(deletions) >= 2 and len(truth) > len(deletions)
    forgotten = [value for r in deletions for value in strong(r["subject"])]
    kept = [value for r in truth if r not in deletions for value in values(r["subject"])]
    before, before_text = records(out), folder_text(out)
    for value in forgotten + kept:  # the sandbox's subjects are customers of the export
        assert value in before_text, value

    result = folders.run(*folders.command("forget", out))
    assert result.returncode == 0, result.stderr
    summary = last_json(result)
    assert (summary["applied"], summary["deletions"]) == (len(deletions), len(deletions))
    assert summary["records"] >= len(deletions) and summary["files"] >= 1
    assert_forgotten(out, deletions, before)
    after = folder_text(out)
    assert all(value in after for value in kept)  # not completed, or not a deletion
    assert_manifest_true(out)
    ledger = (out / LEDGER_NAME).read_text().lower()
    assert all(r["id"] in ledger for r in deletions)
    assert [value for value in forgotten if value in ledger] == []

    built = folders.run(*folders.command("tables", out))
    assert built.returncode == 0, built.stderr
    # Built from nothing into a new file: no erased value left in the old one's free pages.
    manifest = Manifest.load(out)
    windows = [r for d in manifest.datasets() for r in manifest.records(d) if r.file]
    assert len(last_json(built)["built"]) == len(windows)
    table_text = tables_text(out)
    assert [value for value in forgotten if value in table_text] == []
    rebuilt = folders.run(*folders.command("tables", out))
    assert last_json(rebuilt)["status"] == "up-to-date", rebuilt.stderr

    digests = {p: p.read_bytes() for p in out.rglob("*.jsonl")}
    again = folders.run(*folders.command("forget", out))
    assert again.returncode == 0, again.stderr
    assert (last_json(again)["applied"], last_json(again)["files"]) == (0, 0)
    assert {p: p.read_bytes() for p in out.rglob("*.jsonl")} == digests


def test_a_day_exported_again_keeps_its_subjects_forgotten(
    folders: Folders, tmp_path: Path
) -> None:
    out = folders.copy(tmp_path)
    before = records(out)
    assert folders.run(*folders.command("forget", out)).returncode == 0
    config = write_config(tmp_path)
    again = folders.run(sys.executable, "-m", "exporter", "export", "--config", str(config),
                        "--out", str(out), "--datasets", DATASETS, "--start", "2026-11-01",
                        "--end", "2026-11-04", "--force", "--no-progress")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert last_json(again)["records"] > 0  # the days were fetched again
    assert_forgotten(out, counted(folders.truth()), before, others_kept=False)
    assert_manifest_true(out)


def test_a_deletion_completed_later_is_applied_by_the_next_forget(
    folders: Folders, tmp_path: Path
) -> None:
    out = folders.copy(tmp_path)
    before = records(out)
    assert folders.run(*folders.command("forget", out)).returncode == 0
    truth = folders.truth()
    initiated = next(
        r for r in truth if r["requestType"] == "GDPR_DELETE" and r not in counted(truth)
    )
    folders.control("PATCH", f"/sandbox/gdpr/requests/{initiated['id']}", {"status": "COMPLETED"})
    try:
        result = folders.run(*folders.command("forget", out))
        assert result.returncode == 0, result.stderr
        assert last_json(result)["applied"] == 1
        assert_forgotten(out, [initiated], before, others_kept=False)
        assert initiated["id"] in ForgetLedger.load(out).requests
    finally:
        folders.control("PATCH", f"/sandbox/gdpr/requests/{initiated['id']}",
                        {"status": initiated["status"]})  # fmt: skip


class Killed(BaseException):
    """Stands for a SIGKILL at one step: nothing after it runs."""


@pytest.mark.parametrize("at", ["file-staged", "intent-saved", "file-swapped", "manifest-saved",
                                "ledger-saved"])  # fmt: skip
def test_a_forget_killed_at_any_step_is_finished_by_the_next_command(
    folders: Folders, tmp_path: Path, at: str
) -> None:
    out = folders.copy(tmp_path)
    deletions = counted(folders.truth())
    before = records(out)
    requests = asyncio.run(_requests(folders, out))
    manifest = Manifest.load(out)

    def step(name: str, detail: str) -> None:
        if name == at:
            raise Killed(detail)

    with pytest.raises(Killed):
        forget_in_folder(manifest, requests, Policy("none", [], ""), step=step)
    # The tables build finishes what the kill left (it writes the folder too).
    built = folders.run(*folders.command("tables", out))
    assert built.returncode == 0, built.stderr
    finished = forget_in_folder(Manifest.load(out), requests, Policy("none", [], ""))
    assert finished.applied == (
        []
        if at in ("intent-saved", "file-swapped", "manifest-saved", "ledger-saved")
        else [r["id"] for r in deletions]
    )
    assert set(ForgetLedger.load(out).requests) == {r["id"] for r in deletions}
    assert_forgotten(out, deletions, before)
    assert_manifest_true(out)


async def _requests(folders: Folders, out: Path) -> list[GdprRequest]:
    settings = exporter_settings(folders.sb, out)
    async with ApiClient(settings.connection, settings.http) as api:
        return await fetch_requests(api)


def test_a_pseudonymised_folder_is_forgotten_with_its_key(folders: Folders, tmp_path: Path) -> None:
    out = tmp_path / "strict"
    exported = folders.run(*cli(folders.sb, tmp_path, out, "--datasets", "conversations",
                                "--privacy", "strict"), key=KEY)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    policy = Policy("strict", [], KEY)
    deletions = counted(folders.truth())
    pseudonyms = [policy.pseudonym(f"tel:+{v}") for r in deletions
                  for v in strong(r["subject"]) if v.isdigit()]  # fmt: skip
    assert pseudonyms and any(p in folder_text(out) for p in pseudonyms)

    no_key = folders.run(*folders.command("forget", out))
    assert_one_clear_line(no_key, 2, "GENESYS_EXPORT_PRIVACY_KEY")
    other = folders.run(*folders.command("forget", out), key="another-key-fedcba9876543210")
    assert_one_clear_line(other, 2, "key")
    result = folders.run(*folders.command("forget", out), key=KEY)
    assert result.returncode == 0, result.stderr
    after = folder_text(out)
    assert [p for p in pseudonyms if p in after] == []
    assert_manifest_true(out)


def test_run_forgets_each_time_when_asked(folders: Folders, tmp_path: Path) -> None:
    out = folders.copy(tmp_path)
    config = write_config(tmp_path)
    result = folders.run(sys.executable, "-m", "exporter", "run", "--config", str(config),
                         "--out", str(out), "--datasets", DATASETS, "--start", "2026-11-01",
                         "--no-progress", "--forget")  # fmt: skip
    assert result.returncode == 0, result.stderr
    steps = last_json(result)["steps"]
    assert steps["forget"]["status"] == "ok"
    assert steps["forget"]["applied"] == len(counted(folders.truth()))
    assert steps["tables"]["status"] == "built"
    forgotten = [v for r in counted(folders.truth()) for v in strong(r["subject"])]
    assert [value for value in forgotten if value in tables_text(out)] == []


def test_bad_folders_and_missing_permission_are_one_line_each(
    folders: Folders, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_clear_line(folders.run(*folders.command("forget", empty)), 2, "manifest.json")
    assert not list(empty.iterdir())
    out = folders.copy(tmp_path)
    folders.control("PATCH", "/sandbox/settings", {"denied_permissions": ["gdpr:request:view"]})
    try:
        denied = folders.run(*folders.command("forget", out))
    finally:
        folders.control("PATCH", "/sandbox/settings", {"denied_permissions": []})
    assert_one_clear_line(denied, 3, "gdpr:request:view")
    assert not (out / LEDGER_NAME).exists()


def test_auth_check_probes_the_gdpr_requests_where_deletions_are_applied(
    folders: Folders, tmp_path: Path
) -> None:
    config = tmp_path / "forget.toml"
    config.write_text("[forget]\nenabled = true\n")
    command = [sys.executable, "-m", "exporter", "auth", "check", "--json", "--config"]
    readable = folders.run(*command, str(config))
    assert readable.returncode == 0, readable.stderr
    probes = {p["dataset"]: p for p in last_json(readable)["probes"]}
    assert probes["gdpr-requests"]["verdict"] == "ok"
    folders.control("PATCH", "/sandbox/settings", {"denied_permissions": ["gdpr:request:view"]})
    try:
        denied = folders.run(*command, str(config))
    finally:
        folders.control("PATCH", "/sandbox/settings", {"denied_permissions": []})
    assert denied.returncode == 3, denied.stderr
    probes = {p["dataset"]: p for p in last_json(denied)["probes"]}
    assert probes["gdpr-requests"]["detail"] == "add gdpr:request:view"
    (tmp_path / "empty.toml").write_text("")
    plain = folders.run(*command, str(tmp_path / "empty.toml"))
    assert "gdpr-requests" not in {p["dataset"] for p in last_json(plain)["probes"]}


def test_a_ledger_edited_by_hand_into_nonsense_is_one_line(
    folders: Folders, tmp_path: Path
) -> None:
    out = folders.copy(tmp_path)
    (out / LEDGER_NAME).write_text('{"version": 1, "requests": {"r1": {"applied": 3}}}')
    result = folders.run(*folders.command("forget", out))
    assert_one_clear_line(result, 1, str(out / LEDGER_NAME), "cannot be read")
    assert (out / LEDGER_NAME).read_text().startswith('{"version": 1, "requests"')

"""``genesys-export forget``: carry the org's completed GDPR deletions into an export folder.

Genesys deletes a subject's data in the platform; the copies already exported are ours to
clean (genesys-datasets.md §I). ``forget`` reads the org's GDPR requests
(``GET /api/v2/gdpr/requests``, permission ``gdpr:request:view``), takes the completed
deletions its ledger (``store.forgotten``) does not list yet, and erases each subject's values
(``exporter.gdpr``) from every file the manifest lists, any dataset, any window: a file that
held one is written again whole and atomically, and the manifest gets its new size and sha256.
A window still being exported whose partial file holds one is restarted (its partial file
deleted, the window marked failed, so the next export fetches it again, erased). The tables
take the new files at their next build, as any changed window, and a publish the changed days.

The ledger then lists each request applied (id, when, records and files changed), never a
value of its subject. Once a folder has a ledger, every export into it asks Genesys for the
completed deletions again and erases their subjects from each record before it is written, so
a day exported again never brings a forgotten subject back.

A forget is kill-safe at any instant (``store.forgotten``); a stop (SIGTERM, SIGINT) before its
files are swapped leaves the folder as it was; after, the swap finishes first (it is short).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.engine.listing import PageSize, pages
from exporter.errors import ConfigError, InputError, OutputError
from exporter.gdpr import Eraser, GdprRequest, parse_request
from exporter.org import claim_folder
from exporter.privacy import Policy, check_folder, parse_rule
from exporter.store.forgotten import (
    LEDGER_NAME,
    Applied,
    ForgetLedger,
    Rewrite,
    now_text,
    part_path,
    recover,
)
from exporter.store.jsonl import (
    SUFFIXES,
    Compression,
    JsonlFile,
    file_sha256,
    in_pages,
    read_records,
)
from exporter.store.manifest import MANIFEST_NAME, Manifest, WindowRecord
from exporter.tables.stop import Stop

log = logging.getLogger(__name__)
REQUESTS_PATH = "/api/v2/gdpr/requests"
PERMISSION = "gdpr:request:view"
PRIORITY = 2.0  # as snapshot pages: after the job pages of an export running beside it
PAGE_SIZE = 100  # [UNVERIFIED] the listing's largest page; a refusal naming less lowers it
_WITH_FILE = ("complete", "provisional")


async def fetch_requests(api: ApiClient) -> list[GdprRequest]:
    """Every GDPR request of the org, by pageNumber."""
    found: list[GdprRequest] = []
    size = PageSize(PAGE_SIZE)
    async for page, _ in pages(api, REQUESTS_PATH, {}, size=size, numbered=True,
                               priority=PRIORITY):  # fmt: skip
        found += [parse_request(orjson.loads(bytes(raw))) for raw in page.entities]
    return found


async def forget(settings: Settings, *, stop: Stop | None = None) -> ForgetSummary:
    """One forget on ``settings.output.out_dir``; the caller holds the folder's lock. The
    folder's org and privacy policy are checked before anything is read or written: a
    pseudonymised folder needs its key, to recognise the pseudonyms of a subject's values."""
    out = settings.output.out_dir
    require_folder(out)
    manifest = await asyncio.to_thread(Manifest.load, out)
    policy = folder_policy(settings, manifest)
    async with ApiClient(settings.connection, settings.http) as api:
        await claim_folder(api, settings.connection, manifest, record=False)
        requests = await fetch_requests(api)
    return await asyncio.to_thread(forget_in_folder, manifest, requests, policy, stop=stop)


def folder_policy(settings: Settings, manifest: Manifest) -> Policy:
    """The privacy policy the folder's files were written with (its manifest's profile and
    rules) under the key the settings give: a pseudonymising profile needs its own key, to
    recognise the pseudonyms of a subject's values; a missing or other key is refused."""
    recorded = manifest.privacy
    if recorded is None:
        return Policy("none", [], "")
    where = f"the manifest of {manifest.out_dir}"
    rules = [parse_rule(str(text), where) for text in recorded.get("rules") or []]
    key = settings.privacy.read_key(settings.privacy_key)
    policy = Policy(str(recorded.get("profile")), rules, key)
    check_folder(recorded, policy, manifest.out_dir)
    return policy


def forgets(settings: Settings) -> bool:
    """Whether runs with these settings read the org's GDPR requests: ``[forget] enabled``, or
    a folder that has a forget ledger."""
    return settings.forget.enabled or (settings.output.out_dir / LEDGER_NAME).exists()


def require_folder(out: Path) -> None:
    """InputError unless ``out`` holds a manifest (a mistyped --out is never swept)."""
    if not (out / MANIFEST_NAME).is_file():
        raise InputError(
            f"{out} holds no {MANIFEST_NAME}: it is not an export folder, so nothing in it is "
            "forgotten; give the folder you exported to (--out, or out_dir under [output])."
        )


async def export_eraser(api: ApiClient, settings: Settings, manifest: Manifest) -> Eraser | None:
    """What an export erases from each record before it is written: nothing, unless the folder
    has a forget ledger (or ``[forget] enabled``); an interrupted forget is finished first."""
    ledger = await asyncio.to_thread(ForgetLedger.load, manifest.out_dir)
    if ledger.pending:
        await asyncio.to_thread(recover, manifest, ledger)
    if not forgets(settings):
        return None
    eraser = exporting_eraser(await fetch_requests(api), ledger)
    return eraser if eraser.active else None


def exporting_eraser(requests: Sequence[GdprRequest], ledger: ForgetLedger) -> Eraser:
    """What an export into a folder with a ledger erases: every completed deletion the org
    has. A request the ledger applied that the org no longer serves is refused (exit 2): its
    subject can no longer be recognised, and a day exported again would bring it back."""
    served = {request.id for request in requests if request.counted}
    gone = sorted(set(ledger.requests) - served)
    if gone:
        raise ConfigError(
            f"The GDPR deletion {gone[0]} (one of {len(gone)}) was applied to "
            f"{ledger.out_dir} but Genesys no longer lists it as completed, so an export "
            "cannot recognise its subject and nothing was written; export this folder only "
            "with credentials of the org that made it, or move forgotten.json aside knowingly."
        )
    return Eraser(requests)


@dataclass(slots=True)
class ForgetSummary:
    """What one forget did; ``as_json`` is the CLI's last line."""

    deletions: int = 0  # completed deletions the org has
    applied_before: int = 0  # of them, those the ledger already listed
    applied: list[str] = field(default_factory=list)  # request ids applied now
    records: int = 0  # records changed
    files: int = 0  # files written again
    restarted: int = 0  # windows being exported, restarted
    recovered: int = 0  # files an interrupted forget left, finished
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "exit_code": 0,
            "deletions": self.deletions,
            "applied_before": self.applied_before,
            "applied": len(self.applied),
            "records": self.records,
            "files": self.files,
            "windows_restarted": self.restarted,
            "recovered": self.recovered,
            "seconds": round(self.seconds, 3),
        }


def forget_in_folder(
    manifest: Manifest,
    requests: Sequence[GdprRequest],
    policy: Policy,
    *,
    stop: Stop | None = None,
    step: Callable[[str, str], None] | None = None,
) -> ForgetSummary:
    """Apply the completed deletions the folder's ledger lacks (blocking; the caller holds the
    folder's lock and has checked the org and the privacy policy). ``step`` is told of each
    step as it is done (tests that stop there)."""
    began = time.monotonic()
    stop = stop or Stop()
    step = step or _quiet
    ledger = ForgetLedger.load(manifest.out_dir)
    summary = ForgetSummary(recovered=recover(manifest, ledger, step))
    counted = [request for request in requests if request.counted]
    new = [request for request in counted if request.id not in ledger.requests]
    summary.deletions, summary.applied_before = len(counted), len(counted) - len(new)
    if new:
        _apply(manifest, ledger, new, policy, stop, step, summary)
    elif not ledger.path.exists():
        ledger.save()  # from now on, exports apply the org's deletions
    summary.seconds = time.monotonic() - began
    return summary


def _apply(
    manifest: Manifest,
    ledger: ForgetLedger,
    new: Sequence[GdprRequest],
    policy: Policy,
    stop: Stop,
    step: Callable[[str, str], None],
    summary: ForgetSummary,
) -> None:
    eraser = Eraser(new, pseudonym=policy.pseudonym if policy.fingerprint else None)
    by_token = {request.token: request.id for request in new}
    records = dict.fromkeys(by_token.values(), 0)
    files = dict.fromkeys(by_token.values(), 0)
    rewrites: list[Rewrite] = []
    restarts: list[tuple[str, WindowRecord]] = []
    try:
        for dataset in manifest.datasets():
            for window in manifest.records(dataset):
                stop.check()
                if window.status in _WITH_FILE and window.file and window.sha256:
                    erased = _erase_file(manifest.out_dir, dataset, window, eraser)
                    if erased is not None:
                        rewrite, tokens = erased
                        rewrites.append(rewrite)
                        step("file-staged", rewrite.file)
                        for token, count in tokens.items():
                            records[by_token[token]] += count
                            files[by_token[token]] += 1
                elif _restart(manifest.out_dir, dataset, window, eraser):
                    restarts.append((dataset, window))
    except BaseException:
        for rewrite in rewrites:
            part_path(manifest.out_dir / rewrite.file).unlink(missing_ok=True)
        raise
    when = now_text()
    ledger.pending = {key: Applied(when, records[key], files[key]) for key in records}
    ledger.rewrites = rewrites
    ledger.save()  # the intent: from here a kill is finished by ``recover``
    step("intent-saved", str(ledger.path))
    for dataset, window in restarts:
        manifest.put(dataset, _restarted(window))
    recover(manifest, ledger, step)  # steps 3 to 5, as after a kill
    summary.applied = list(records)
    summary.records = sum(records.values())
    summary.files = len(rewrites)
    summary.restarted = len(restarts)
    for request_id in records:
        log.info("GDPR deletion %s applied: %d records in %d files", request_id,
                 records[request_id], files[request_id])  # fmt: skip


def _quiet(name: str, detail: str) -> None:
    pass


def _erase_file(
    out: Path, dataset: str, window: WindowRecord, eraser: Eraser
) -> tuple[Rewrite, dict[str, int]] | None:
    """Write the erased copy of a window's file beside it (``part_path``), when the file holds
    a subject's value: the rewrite and, per request token, the records it changed."""
    assert window.file is not None and window.sha256 is not None
    path = out / window.file
    if not any(eraser.may_hold(line) for line in _lines(path)):
        return None
    if file_sha256(path) != window.sha256:
        raise InputError(
            f"{path} is not the file the manifest describes (its sha256 differs), so forget "
            "will not write it again; export its window again (or restore it), then forget."
        )
    tokens: dict[str, int] = {}
    copy = JsonlFile(part_path(path), cast(Compression, window.compression), part="writing")
    copy.create()
    try:
        for page in in_pages(_erased(path, eraser, tokens)):
            copy.append(page)
        digest = copy.commit()
    except BaseException:
        copy.discard()
        raise
    if not tokens:  # the check's match was no value of a subject
        part_path(path).unlink(missing_ok=True)
        return None
    rewrite = Rewrite(dataset, window.name, window.file, window.sha256, digest.sha256,
                      digest.bytes)  # fmt: skip
    return rewrite, tokens


def _erased(path: Path, eraser: Eraser, tokens: dict[str, int]) -> Iterator[bytes]:
    for line in _lines(path):
        erased, found = eraser.erase(line)
        for token in found:  # each request whose subject the record held
            tokens[token] = tokens.get(token, 0) + 1
        yield erased


def _restart(out: Path, dataset: str, window: WindowRecord, eraser: Eraser) -> bool:
    """Whether a window being exported keeps a subject's value in its partial file; if so the
    partial file is deleted now (the next export fetches the window again, erased)."""
    if window.status != "in-progress":
        return False
    final = out / dataset / (window.name + SUFFIXES[cast(Compression, window.compression)])
    part = JsonlFile(final, cast(Compression, window.compression)).part_path
    if not part.exists():
        return False
    try:
        holds = any(eraser.may_hold(line) for line in read_records(part))
    except (OutputError, OSError):
        holds = True  # unreadable past its checkpoint: restarted, as an export would
    if holds:
        part.unlink(missing_ok=True)
    return holds


def _restarted(window: WindowRecord) -> WindowRecord:
    return dataclasses.replace(
        window, status="failed", job_id=None, cursor=None, job_interval=None, part_offset=0,
        part_records=0, job_expires=None,
        error="its partial file held a value of a GDPR deletion: exported again",
    )  # fmt: skip


def _lines(path: Path) -> Iterator[bytes]:
    try:
        yield from read_records(path)
    except FileNotFoundError as exc:
        raise InputError(
            f"{path}, which the manifest lists, is missing; export its window again (or "
            "restore the file), then forget."
        ) from exc


def describe(summary: ForgetSummary) -> str:
    """One line for people."""
    if not summary.applied:
        return (f"forget: {summary.deletions} completed GDPR deletions, every one already "
                "applied to this folder")  # fmt: skip
    return (
        f"forget: {len(summary.applied)} new GDPR deletions applied ({summary.records} records "
        f"in {summary.files} files; {summary.restarted} windows being exported restarted)"
    )

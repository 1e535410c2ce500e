"""Quality data end to end against the sandbox: each evaluations and surveys window holds, once,
exactly the records its conversations window names, as the API answers them; re-reviews are
read again while recent and never after; a lost permission, a deleted evaluation, reads failing
past their retries and a kill or stop mid-read all still end exact (the fault suite,
tests/test_faults.py, runs on these reads too); and the tables join answers to their forms'
questions.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from exporter.datasets import select
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest
from exporter.summary import Summary
from exporter.tables import TablesRequest, build_tables
from genesys_sandbox import FaultRule, Sandbox, run_sandbox_in_thread
from genesys_sandbox.clock import ManualClock
from tests.support import START, cli, cli_env, days, exporter_settings, sandbox_settings, stop_after

QUALITY = "conversations,quality"
ROUTES = ("quality.evaluation", "quality.survey")


def lines_of(out: Path, dataset: str) -> dict[str, list[dict[str, Any]]]:
    """Window name -> its file's records, each window checked against its manifest entry."""
    found = {}
    for record in Manifest.load(out).records(dataset):
        assert record.status in ("complete", "provisional") and record.file, record
        path = out / record.file
        assert path.stat().st_size == record.bytes
        found[record.name] = [orjson.loads(line) for line in read_records(path)]
        assert len(found[record.name]) == record.records
    return found


async def run(sb: Any, out: Path, datasets: str = QUALITY, **sections: Any) -> Summary:
    settings = exporter_settings(sb, out, **sections)
    request = ExportRequest(START, START + days(3), datasets=select(datasets))
    return await export(settings, request, progress=NoProgress())


def assert_exact(sb: Any, out: Path, at: float | None = None) -> None:
    """Each window's evaluations and surveys are, once each, those its conversations carry,
    and each body is what the API answers (evaluations: at ``at``, the version read)."""
    evaluations, surveys = lines_of(out, "evaluations"), lines_of(out, "surveys")
    assert evaluations.keys() == surveys.keys() == {f"{START + days(d):%Y-%m-%d}" for d in range(3)}
    for window in evaluations:
        start = datetime.fromisoformat(window).replace(tzinfo=START.tzinfo)
        truth = sb.quality_truth(start, start + days(1), at)
        ids = Counter(e["id"] for e in evaluations[window])
        assert ids == Counter(truth.evaluations.keys()), window
        assert {e["id"]: e["version"] for e in evaluations[window]} == truth.evaluations
        assert Counter(s["id"] for s in surveys[window]) == Counter(truth.surveys), window
        for body in evaluations[window]:
            assert body == sb.evaluation(body["id"], at=at)
        for body in surveys[window]:
            assert body == sb.survey(body["id"])


async def test_each_window_holds_exactly_the_evaluations_and_surveys_its_conversations_name(
    tmp_path: Path,
) -> None:
    """Conversations, evaluations, surveys and forms in one run: each quality window equals
    the sandbox's, every form an evaluation or survey names is in the forms snapshot, and a
    second run reads nothing again (its sources did not change and it was read just now)."""
    async with Sandbox(sandbox_settings()) as sb:
        summary = await run(sb, tmp_path)
        assert summary.status == "ok", summary
        assert summary.datasets["evaluations"]["records"] > 50
        assert summary.datasets["surveys"]["records"] > 20
        assert_exact(sb, tmp_path)
        forms = {f["id"] for f in _snapshot(tmp_path, "evaluation-forms")}
        named = {e["evaluationForm"]["id"] for w in lines_of(tmp_path, "evaluations").values()
                 for e in w}  # fmt: skip
        assert named <= forms
        survey_forms = {f["id"] for f in _snapshot(tmp_path, "survey-forms")}
        assert {s["surveyForm"]["id"] for w in lines_of(tmp_path, "surveys").values()
                for s in w} <= survey_forms  # fmt: skip
        before = sb.stats().count("quality.evaluation")
        again = await run(sb, tmp_path, "evaluations,surveys")
        assert again.status == "ok" and again.skipped == 6, again
        assert sb.stats().count("quality.evaluation") == before


def _snapshot(out: Path, dataset: str) -> list[dict[str, Any]]:
    (lines,) = lines_of(out, dataset).values()
    return lines


def age(out: Path, dataset: str, by: timedelta) -> None:
    """Make the dataset's windows look read ``by`` earlier, as an earlier run leaves them."""
    manifest = Manifest.load(out)
    for record in manifest.records(dataset):
        read = datetime.fromisoformat(record.updated) - by
        manifest.put(dataset, dataclasses.replace(record, updated=read.isoformat()))
    manifest.save()


async def test_re_reviews_are_read_again_while_recent_and_never_after(tmp_path: Path) -> None:
    """Evaluations re-reviewed on the sandbox clock: read again once ``every`` has passed,
    while within ``edited_within``, the windows hold the newest versions; past it, no window
    is read again (the files keep the versions read before)."""
    clock = ManualClock()
    async with Sandbox(sandbox_settings(evaluation_edits_per_hour=0.02), clock=clock) as sb:
        await run(sb, tmp_path)
        first = sb.now()
        clock.advance(timedelta(days=2).total_seconds())
        assert sb.quality_truth(START, START + days(3)).evaluations != (
            sb.quality_truth(START, START + days(3), first).evaluations
        )  # some evaluation has a newer version now
        age(tmp_path, "evaluations", timedelta(days=2))
        recent = {"lookups": {"edited_within": timedelta(days=3650), "every": timedelta(days=1)}}
        summary = await run(sb, tmp_path, "evaluations", **recent)
        assert summary.status == "ok" and summary.windows == 3, summary
        assert_exact(sb, tmp_path)
        evaluations = lines_of(tmp_path, "evaluations")
        read = sb.stats().count("quality.evaluation")
        clock.advance(timedelta(days=2).total_seconds())
        age(tmp_path, "evaluations", timedelta(days=2))
        past = {"lookups": {"edited_within": timedelta(days=1), "every": timedelta(days=1)}}
        later = await run(sb, tmp_path, "evaluations", **past)
        assert later.status == "ok" and later.windows == 0 and later.skipped == 3, later
        assert sb.stats().count("quality.evaluation") == read
        assert lines_of(tmp_path, "evaluations") == evaluations


async def test_a_conversations_window_exported_again_is_read_again(tmp_path: Path) -> None:
    """--force exports one conversations day again (a new file): its evaluations and surveys
    windows follow it; the other days' are left alone."""
    async with Sandbox(sandbox_settings()) as sb:
        await run(sb, tmp_path)
        before = {r.name: r.run_id for r in Manifest.load(tmp_path).records("evaluations")}
        settings = exporter_settings(sb, tmp_path)
        request = ExportRequest(START + days(1), START + days(2), force=True,
                                datasets=select(QUALITY))  # fmt: skip
        summary = await export(settings, request, progress=NoProgress())
        assert summary.status == "ok", summary
        after = {r.name: r.run_id for r in Manifest.load(tmp_path).records("evaluations")}
        changed = {name for name in after if after[name] != before[name]}
        # The day exported again always changes file (its records' order is the job's).
        assert changed <= {f"{START + days(1):%Y-%m-%d}"}
        assert_exact(sb, tmp_path)


async def test_a_lost_permission_fails_only_its_dataset(tmp_path: Path) -> None:
    """Without quality:evaluation:view (nor assign or release, which also read one),
    evaluations fail in one line naming it, exit 3; the surveys and conversations complete."""
    reading = tuple(f"quality:evaluation:{verb}" for verb in ("view", "assign", "release"))
    settings = sandbox_settings(denied_permissions=reading)
    async with Sandbox(settings) as sb:
        summary = await run(sb, tmp_path)
    assert (summary.status, summary.exit_code) == ("denied", 3)
    (line,) = summary.denied
    assert line.startswith("evaluations: ") and "quality:evaluation:view" in line
    assert Manifest.load(tmp_path).records("evaluations") == []
    assert len(lines_of(tmp_path, "surveys")) == 3


async def test_a_read_failing_past_its_retries_fails_its_window_and_the_next_run_reads_it(
    tmp_path: Path,
) -> None:
    """Evaluations answering 500 on every try: their windows fail (exit 1, one line each),
    nothing is written for them; once the service recovers the next run reads them exactly."""
    async with Sandbox(sandbox_settings()) as sb:
        sb.add_fault(FaultRule(kind="status", status=500, routes=("quality.evaluation",)))
        http = {"http": {"retry_max_attempts": 2}}
        summary = await run(sb, tmp_path, **http)
        assert (summary.status, summary.exit_code) == ("failed", 1)
        assert sorted(line.split(":")[0] for line in summary.failed_windows) == [
            f"evaluations {START + days(d):%Y-%m-%d}" for d in range(3)
        ]
        assert {r.status for r in Manifest.load(tmp_path).records("evaluations")} == {"failed"}
        sb.clear_faults()
        again = await run(sb, tmp_path, "evaluations")
        assert again.status == "ok", again
        assert_exact(sb, tmp_path)


async def test_an_evaluation_deleted_before_it_is_read_is_left_out(tmp_path: Path) -> None:
    """An evaluation the API answers 404 for (deleted after the conversation named it) is
    not in its window; the rest are."""
    async with Sandbox(sandbox_settings()) as sb:
        sb.add_fault(FaultRule(kind="status", status=404, routes=("quality.evaluation",),
                               count=1))  # fmt: skip
        summary = await run(sb, tmp_path)
        assert summary.status == "ok", summary
        named = sum(len(sb.quality_truth(START + days(d), START + days(d + 1)).evaluations)
                    for d in range(3))  # fmt: skip
        assert summary.datasets["evaluations"]["records"] == named - 1


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_or_stopped_mid_read_the_rerun_is_exact(tmp_path: Path, sig: signal.Signals) -> None:
    """Killed or stopped while evaluations are being read, the rerun reads what was not
    committed: every window exact, nothing half-written under a final name."""
    with run_sandbox_in_thread(sandbox_settings(latency_ms=5)) as sb:
        out = tmp_path / "out"
        command = cli(sb, tmp_path, out, "--datasets", QUALITY)
        stop_after(sb, command, "quality.evaluation", 40, sig)
        recorded = {r.file for r in Manifest.load(out).records("evaluations") if r.file}
        assert len(recorded) < 3
        again = subprocess.run(command, env=cli_env(sb), capture_output=True, timeout=120)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        assert_exact(sb, out)
        assert not list(out.rglob("*.part"))


async def test_the_tables_join_each_answer_to_its_forms_question(tmp_path: Path) -> None:
    """After a build: a row per evaluation and survey, answers under them, and every answer's
    question and option found in the form version the evaluation names."""
    async with Sandbox(sandbox_settings()) as sb:
        assert (await run(sb, tmp_path)).status == "ok"
    build_tables(TablesRequest(out_dir=tmp_path))
    con = duckdb.connect(str(tmp_path / "genesys.duckdb"), read_only=True)
    evaluations = sum(len(w) for w in lines_of(tmp_path, "evaluations").values())
    assert con.execute("SELECT count(*) FROM evaluations").fetchone() == (evaluations,)
    (answers,) = con.execute("SELECT count(*) FROM evaluation_answers").fetchone() or (0,)
    assert answers > evaluations
    (unmatched,) = con.execute("""
        SELECT count(*) FROM evaluation_answers a JOIN evaluations e USING (evaluation_id)
        LEFT JOIN evaluation_form_questions q
          ON q.form_id = e.form_id AND q.question_id = a.question_id
        LEFT JOIN evaluation_form_answer_options o
          ON o.form_id = e.form_id AND o.question_id = a.question_id
         AND o.answer_option_id = a.answer_id
        WHERE q.question_id IS NULL OR (a.answer_id IS NOT NULL AND o.answer_option_id IS NULL)
    """).fetchone() or (0,)
    assert unmatched == 0
    surveys = sum(len(w) for w in lines_of(tmp_path, "surveys").values())
    assert con.execute("SELECT count(*) FROM surveys").fetchone() == (surveys,)
    (nps,) = con.execute(
        "SELECT count(*) FROM survey_answers WHERE nps_score IS NOT NULL"
    ).fetchone() or (0,)
    assert nps > 0

"""The README's Tables section is true: its table list is the one the declarations generate,
its flags exist, and each example query runs on a built database and gives the answer
computed from the raw JSON without DuckDB."""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from exporter.datasets import select
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.tables import TablesRequest, build_tables, table_list
from genesys_sandbox import Sandbox
from tests.support import (
    START,
    days,
    exporter_settings,
    raw_lines,
    tables_sandbox_settings,
)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SECTION = README.split("\n## Tables\n", 1)[1].split("\n## ", 1)[0]
QUERIES = re.findall(r"```sql\n(.*?)```", SECTION, re.DOTALL)


def test_the_readme_table_list_is_the_generated_one() -> None:
    """Between the markers the README holds exactly what ``table_list()`` generates (to
    update it, paste the output of ``python -c 'from exporter.tables import table_list;
    print(table_list())'``)."""
    listed = SECTION.split("<!-- tables:start -->\n", 1)[1].split("<!-- tables:end -->", 1)[0]
    assert listed == table_list()


async def _export(out: Path) -> None:
    async with Sandbox(tables_sandbox_settings()) as sb:
        settings = exporter_settings(sb, out)
        request = ExportRequest(START, START + days(3), datasets=select("all"))
        assert (await export(settings, request, progress=NoProgress())).status == "ok"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of every dataset the sandbox serves, user details included, built."""
    out = tmp_path_factory.mktemp("export")
    asyncio.run(_export(out))
    build_tables(TablesRequest(out, threads=2))
    return out


def run(out: Path, query: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def names(out: Path, dataset: str) -> dict[str, str]:
    return {line["id"]: line["name"] for line in raw_lines(out, dataset)}


def sessions(out: Path):  # type: ignore[no-untyped-def]
    for c in raw_lines(out, "conversations"):
        for p in c["participants"]:
            for s in p["sessions"]:
                yield c, s


def test_there_are_six_example_queries() -> None:
    """AHT per queue per day, abandoned calls by hour, On Queue against interacting,
    evaluation scores per agent and question, what the reconciliation finds, and adherence
    per agent and day."""
    assert len(QUERIES) == 6


def test_average_handle_time_per_queue_per_day(built) -> None:
    """The first query: tHandle per (day, queue name), count and mean, as the raw JSON has
    them (the queue of a session is its first segment naming one)."""
    out = built
    queues = names(out, "queues")
    handled: dict[tuple[str, str], list[int]] = defaultdict(list)
    for c, s in sessions(out):
        queue = next((g["queueId"] for g in s["segments"] if "queueId" in g), None)
        for m in s.get("metrics", []):
            if m["name"] == "tHandle" and queue is not None:
                handled[(c["conversationStart"][:10], queues[queue])].append(m["value"])
    got = {(str(day), name): (n, aht) for day, name, n, aht in run(out, QUERIES[0])}
    expected = {key: (len(v), round(sum(v) / len(v) / 1000, 1)) for key, v in handled.items()}
    assert got.keys() == expected.keys() and len(got) > 10
    for key, (n, aht) in expected.items():
        assert got[key][0] == n and got[key][1] == pytest.approx(aht, abs=0.051), key


def test_abandoned_calls_by_hour(built) -> None:
    """The second query: voice sessions with tAbandon, by the conversation's UTC hour."""
    out = built
    expected: Counter[str] = Counter()
    for c, s in sessions(out):
        if s["mediaType"] == "voice":
            hits = sum(m["name"] == "tAbandon" for m in s.get("metrics", []))
            expected[c["conversationStart"][:13]] += hits
    expected = +expected
    got = {hour.strftime("%Y-%m-%dT%H"): n for hour, n in run(out, QUERIES[1])}  # type: ignore[attr-defined]
    assert got == dict(expected) and sum(got.values()) > 0


def test_agents_on_queue_against_interacting(built) -> None:
    """The third query: each agent's ON_QUEUE seconds and INTERACTING seconds from user
    details (statuses still going on left out), with their names."""
    users = names(built, "users")
    seconds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in raw_lines(built, "user-details"):
        for kind, field, value, slot in (
            ("primaryPresence", "systemPresence", "ON_QUEUE", 0),
            ("routingStatus", "routingStatus", "INTERACTING", 1),
        ):
            for status in line[kind]:
                if status[field] == value and "endTime" in status:
                    # date_diff('second') counts second boundaries crossed
                    start, end = (_epoch_s(status[k]) for k in ("startTime", "endTime"))
                    seconds[line["userId"]][slot] += end - start
    got = {
        name: (on_queue, interacting) for name, on_queue, interacting, _ in run(built, QUERIES[2])
    }
    expected = {users[u]: (on, busy) for u, (on, busy) in seconds.items() if on}
    assert len(got) > 100 and got == expected


def _epoch_s(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() // 1)


def test_evaluation_scores_per_agent_and_question(built) -> None:
    """The fourth query: each answer not marked N/A, by agent name, form version name and
    question text (found in the version the evaluation names), counted and averaged."""
    users = names(built, "users")
    forms = {f["id"]: f for f in raw_lines(built, "evaluation-forms")}
    scores: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for evaluation in raw_lines(built, "evaluations"):
        form = forms[evaluation["evaluationForm"]["id"]]
        text = {q["id"]: q["text"] for g in form["questionGroups"] for q in g["questions"]}
        agent = users[evaluation["agent"]["id"]]
        for group in evaluation.get("answers", {}).get("questionGroupScores", []):
            for answer in group["questionScores"]:
                if not answer["markedNA"]:
                    key = (agent, form["name"], text[answer["questionId"]])
                    scores[key].append(answer["score"])
    got = {(who, name, q): (n, avg) for who, name, q, n, avg in run(built, QUERIES[3])}
    assert got.keys() == scores.keys() and len(got) > 20
    for key, values in scores.items():
        assert got[key][0] == len(values)
        assert got[key][1] == pytest.approx(sum(values) / len(values), abs=0.051), key


def test_the_reconciliation_query_finds_nothing_on_sandbox_data(built) -> None:
    """The fifth query: no row differs, while the view compares the days whose conversations
    and the day before's were exported (the second and third: the first has no day before),
    the provisional third day included."""
    assert run(built, QUERIES[4]) == []
    compared = run(
        built, "SELECT strftime(bucket_start AT TIME ZONE 'UTC', '%Y-%m-%d') AS day, count(*) "
        "FROM conversation_aggregates_reconciliation GROUP BY day ORDER BY day",
    )  # fmt: skip
    assert [day for day, _ in compared] == ["2026-11-02", "2026-11-03"]
    assert all(n > 100 for _, n in compared)


def test_adherence_per_agent_and_day_with_names(built) -> None:
    """The sixth query: each agent's unit-local day with the unit's and the agent's names,
    scheduled seconds, adherence and exception count, as the raw lines have them."""
    users, units = names(built, "users"), names(built, "management-units")
    expected = Counter()
    for line in raw_lines(built, "adherence"):
        metrics = line["metrics"]
        scheduled, adherent = metrics["scheduleLengthSeconds"], metrics["adherenceScheduleSeconds"]
        who = (units[line["managementUnitId"]], users[line["userId"]])
        expected[(line["date"], *who, scheduled, round(100.0 * adherent / scheduled, 1),
                  metrics["exceptionCount"])] += 1  # fmt: skip
    got = Counter((str(day), unit, user, s, float(pct), n)
                  for day, unit, user, s, pct, n in run(built, QUERIES[5]))  # fmt: skip
    assert got == expected and len(got) > 100

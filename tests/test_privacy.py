"""Privacy profiles: a strict or standard export of the sandbox's data against a ``none`` export
of the same data, through the CLI (real sandbox over loopback), files, tables and logs."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from exporter.privacy import KNOWN_PATHS, Policy, UserRule, fingerprint, profile_table
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest
from genesys_sandbox.server import run_sandbox_in_thread
from tests.support import assert_one_clear_line, cli, cli_env, tables_sandbox_settings

KEY = "privacy-test-key-0123456789abcdef"
OTHER_KEY = "another-privacy-key-fedcba9876543210"
QUALITY = "conversations,evaluations,surveys"
# The module's fixture makes six exports and two builds, each a process of its own: on a
# loaded 2-core machine that alone has taken longer than the suite's 120 s a test.
pytestmark = pytest.mark.timeout(600)


class Exports:
    """Every export of one sandbox the tests compare, and the stderr of each."""

    def __init__(self, sb: Any, root: Path) -> None:
        self.sb, self.root = sb, root
        self.stderr: dict[str, str] = {}

    def run(self, name: str, *args: str, key: str | None = None, datasets: str = QUALITY,
            config: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        extra = {} if key is None else {"GENESYS_EXPORT_PRIVACY_KEY": key}
        command = cli(self.sb, self.root, self.root / name, "--datasets", datasets, *args)
        if config is not None:
            command += ["--config", str(config)]
        result = subprocess.run(command, env=cli_env(self.sb, **extra), capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        self.stderr[name] = result.stderr
        return result

    def out(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exports]:
    root = tmp_path_factory.mktemp("privacy")
    with run_sandbox_in_thread(tables_sandbox_settings()) as sb:
        done = Exports(sb, root)
        for name, args, key in (
            ("none", (), None),
            ("strict", ("--privacy", "strict"), KEY),
            ("standard", ("--privacy", "standard"), KEY),
        ):
            result = done.run(name, *args, key=key)
            assert result.returncode == 0, result.stderr
        for name, key in (("strict-again", KEY), ("strict-other-key", OTHER_KEY)):
            result = done.run(name, "--privacy", "strict", key=key, datasets="conversations")
            assert result.returncode == 0, result.stderr
        for name in ("none", "strict"):
            command = [sys.executable, "-m", "exporter", "tables", "--out", str(root / name)]
            built = subprocess.run(command, capture_output=True, text=True, timeout=300)
            assert built.returncode == 0, built.stderr
            done.stderr[name] += built.stderr
        yield done


def lines(out: Path, dataset: str) -> list[dict[str, Any]]:
    records = Manifest.load(out).records(dataset)
    return [orjson.loads(line) for r in records if r.file for line in read_records(out / r.file)]


def at(record: Any, path: str) -> Iterator[Any]:
    """The values at a dotted path, lists entered element by element."""
    name, _, rest = path.partition(".")
    for node in record if isinstance(record, list) else [record]:
        if isinstance(node, dict) and name in node:
            yield from (at(node[name], rest) if rest else [node[name]])


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)


def customer_values(out: Path) -> set[str]:
    """Every value at a field strict declares, in the ``none`` export, that appears nowhere
    else in its records."""
    table = profile_table("strict")
    personal: set[str] = set()
    for dataset, paths in table.items():
        for record in lines(out, dataset):
            for path, action in paths.items():
                if action != "keep":
                    for value in at(record, path):
                        personal.update(strings(value))
    # The records with every declared field dropped: a value still in them is not only a
    # customer's (a flag "true" in an attribute, a flow's name as a transfer target).
    drop_all = [UserRule(d, path, "drop") for d, paths in table.items() for path in paths]
    policy = Policy("strict", drop_all, KEY)
    rest = []
    for dataset in table:
        protect = policy.for_dataset(dataset)
        assert protect is not None
        rest += [protect(orjson.dumps(record)) for record in lines(out, dataset)]
    elsewhere = b"\n".join(rest)
    return {value for value in personal if len(value) >= 4 and value.encode() not in elsewhere}


def every_table_text(out: Path) -> tuple[str, dict[str, int]]:
    """All rows of every table of the build as text, and each table's row count."""
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    try:
        names = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables")
                 .fetchall()]  # fmt: skip
        texts, counts = [], {}
        for name in names:
            rows = con.execute(f'SELECT * FROM "{name}"').fetchall()
            counts[name] = len(rows)
            texts.append(repr(rows))
        return "\n".join(texts), counts
    finally:
        con.close()


def all_bytes(out: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())


def pseudonym(value: str, key: str = KEY) -> str:
    return "hmac:" + hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def test_strict_leaves_no_customer_value_in_files_tables_or_logs(exports: Exports) -> None:
    values = customer_values(exports.out("none"))
    assert len(values) > 500  # names, numbers, addresses, attributes, notes, survey answers
    strict = exports.out("strict")
    files = b"\n".join(p.read_bytes() for p in strict.rglob("*.jsonl"))
    tables, _ = every_table_text(strict)
    logs = exports.stderr["strict"]
    leaked = [v for v in values if v.encode() in files or v in tables or v in logs]
    assert leaked == []
    none_files = b"\n".join(p.read_bytes() for p in exports.out("none").rglob("*.jsonl"))
    assert sum(v.encode() in none_files for v in values) == len(values)  # the check can fail


def test_strict_keeps_every_id_and_every_count(exports: Exports) -> None:
    none, strict = exports.out("none"), exports.out("strict")
    for dataset in QUALITY.split(","):
        before = {(r.name, r.records, r.status) for r in Manifest.load(none).records(dataset)}
        after = {(r.name, r.records, r.status) for r in Manifest.load(strict).records(dataset)}
        assert before == after, dataset
    for path in ("conversationId", "participants.participantId", "participants.userId",
                 "participants.sessions.sessionId", "participants.sessions.segments.queueId",
                 "participants.sessions.flow.flowId"):  # fmt: skip
        ids = [sorted(str(v) for r in lines(out, "conversations") for v in at(r, path))
               for out in (none, strict)]  # fmt: skip
        assert ids[0] == ids[1] and ids[0], path
    counts = every_table_text(none)[1]
    assert counts["participant_attributes"] > 0  # strict drops attributes: that table is empty
    assert every_table_text(strict)[1] == {**counts, "participant_attributes": 0}


def test_strict_drops_names_and_free_text_and_pseudonymises_numbers_and_addresses(
    exports: Exports,
) -> None:
    none = lines(exports.out("none"), "conversations")
    strict = lines(exports.out("strict"), "conversations")
    for path in ("participants.participantName", "participants.attributes",
                 "participants.sessions.callbackUserName",
                 "participants.sessions.segments.wrapUpNote"):  # fmt: skip
        assert any(True for r in none for _ in at(r, path)), path  # the sandbox sends it
        assert not any(True for r in strict for _ in at(r, path)), path
    evaluations = lines(exports.out("strict"), "evaluations")
    assert evaluations and not any(True for e in evaluations for _ in at(e, "answers.comments"))
    by_id = {r["conversationId"]: r for r in strict}
    for record in none:
        ours = by_id[record["conversationId"]]
        for path in ("participants.sessions.ani", "participants.sessions.addressFrom",
                     "participants.sessions.callbackNumbers"):  # fmt: skip
            sent = [pseudonym(v) for value in at(record, path) for v in strings(value)]
            assert [v for value in at(ours, path) for v in strings(value)] == sent


def test_standard_does_what_the_readme_says(exports: Exports) -> None:
    none = {r["conversationId"]: r for r in lines(exports.out("none"), "conversations")}
    standard = lines(exports.out("standard"), "conversations")
    assert len(standard) == len(none)
    names = attributes = 0
    for record in standard:
        sent = none[record["conversationId"]]
        for ours, theirs in zip(record["participants"], sent["participants"], strict=True):
            if "participantName" in theirs:
                assert ours["participantName"] == pseudonym(theirs["participantName"])
                names += 1
            if "attributes" in theirs:  # the keys stay, each value a pseudonym
                assert ours["attributes"] == {
                    k: pseudonym(v) for k, v in theirs["attributes"].items()
                }
                attributes += 1
        assert not any(True for _ in at(record, "participants.sessions.segments.wrapUpNote"))
    assert names and attributes
    assert [e.get("answers", {}).get("comments") for e in lines(exports.out("none"), "evaluations")
            ] == [e.get("answers", {}).get("comments")
                  for e in lines(exports.out("standard"), "evaluations")]  # fmt: skip
    surveys = lines(exports.out("standard"), "surveys")
    assert surveys and not any(True for s in surveys for _ in at(
        s, "answers.questionGroupScores.questionScores.freeTextAnswer"))  # fmt: skip


def test_pseudonyms_are_stable_across_runs_and_fields_and_differ_by_key(exports: Exports) -> None:
    first = sorted(lines(exports.out("strict"), "conversations"), key=lambda r: r["conversationId"])
    again = sorted(lines(exports.out("strict-again"), "conversations"),
                   key=lambda r: r["conversationId"])  # fmt: skip
    other = sorted(lines(exports.out("strict-other-key"), "conversations"),
                   key=lambda r: r["conversationId"])  # fmt: skip
    assert first == again
    anis = [[v for r in run for v in at(r, "participants.sessions.ani")] for run in (first, other)]
    assert len(anis[0]) == len(anis[1]) > 100
    assert all(a != b for a, b in zip(*anis, strict=True))
    # The customer's number is in the customer's session and the agent's: one pseudonym.
    calls = [r for r in first if any(p.get("purpose") == "agent" and
             any("ani" in s for s in p["sessions"]) for p in r["participants"])]  # fmt: skip
    assert calls
    for record in calls:
        by_purpose = {p["purpose"]: {s.get("ani") for s in p["sessions"]}
                      for p in record["participants"]}  # fmt: skip
        if "customer" in by_purpose:
            assert by_purpose["customer"] <= by_purpose["agent"] | {None}


def test_the_key_is_never_written_and_the_manifest_records_its_fingerprint(
    exports: Exports,
) -> None:
    for name in ("strict", "standard", "strict-again"):
        assert KEY.encode() not in all_bytes(exports.out(name))
        assert KEY not in exports.stderr[name]
    manifest = orjson.loads((exports.out("strict") / "manifest.json").read_bytes())
    assert manifest["version"] == 6
    assert manifest["privacy"] == {"profile": "strict", "rules": [], "key": fingerprint(KEY)}
    plain = orjson.loads((exports.out("none") / "manifest.json").read_bytes())
    assert "privacy" not in plain and plain["version"] < 6


def test_a_missing_key_a_wrong_key_a_switch_and_a_key_flag_are_each_one_line(
    exports: Exports,
) -> None:
    assert_one_clear_line(exports.run("fresh", "--privacy", "strict", datasets="conversations"),
                          2, "GENESYS_EXPORT_PRIVACY_KEY", "no key")  # fmt: skip
    assert not (exports.out("fresh") / "conversations").exists()
    before = all_bytes(exports.out("strict"))
    wrong = exports.run("strict", "--privacy", "strict", key=OTHER_KEY,
                        datasets="conversations")  # fmt: skip
    assert_one_clear_line(wrong, 2, fingerprint(KEY), fingerprint(OTHER_KEY), "--out")
    switch = exports.run("strict", datasets="conversations")
    assert_one_clear_line(switch, 2, "profile strict", "profile none")
    into_plain = exports.run("none", "--privacy", "standard", key=KEY, datasets="conversations")
    assert_one_clear_line(into_plain, 2, "profile none", "profile standard")
    assert all_bytes(exports.out("strict")) == before
    flag = exports.run("flag", "--privacy", "strict", f"--privacy-key={KEY}")
    assert_one_clear_line(flag, 2, "never taken from a flag")
    assert KEY not in flag.stderr + flag.stdout


def test_user_rules_change_an_action_and_a_bad_rule_is_refused(
    exports: Exports, tmp_path: Path
) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(
        "[jobs]\npoll_initial_s = 0.05\npoll_max_s = 0.1\n[output]\ncheckpoint_s = 0.0\n"
        '[privacy]\nprofile = "strict"\n'
        'rules = ["conversations:participants.participantName = keep",'
        ' "conversations:participants.sessions.ani = drop"]\n'
    )
    result = exports.run("rules", key=KEY, datasets="conversations", config=config)
    assert result.returncode == 0, result.stderr
    ours = {r["conversationId"]: r for r in lines(exports.out("rules"), "conversations")}
    sent = lines(exports.out("none"), "conversations")
    assert [list(at(r, "participants.participantName")) for r in sent] == [
        list(at(ours[r["conversationId"]], "participants.participantName")) for r in sent
    ]
    assert not any(True for r in ours.values() for _ in at(r, "participants.sessions.ani"))
    assert orjson.loads((exports.out("rules") / "manifest.json").read_bytes())["privacy"][
        "rules"] == ["conversations:participants.participantName = keep",
                     "conversations:participants.sessions.ani = drop"]  # fmt: skip
    config.write_text(
        '[privacy]\nprofile = "strict"\nrules = ["conversations:participants.ssn = drop"]\n'
    )
    bad = exports.run("bad-rule", key=KEY, datasets="conversations", config=config)
    assert_one_clear_line(bad, 2, "participants.ssn", "[privacy] rules")


def test_aggregates_grouped_by_a_personal_dimension_are_refused(
    exports: Exports, tmp_path: Path
) -> None:
    config = tmp_path / "aggregates.toml"
    config.write_text('[aggregates]\ngroup_by = ["queueId", "ani"]\n')
    result = exports.run("aggregates", "--privacy", "strict", key=KEY,
                         datasets="conversation-aggregates", config=config)  # fmt: skip
    assert_one_clear_line(result, 2, "group_by", "ani")


def test_every_declared_field_of_a_full_record_is_covered() -> None:
    """A record holding every field strict declares (some the sandbox never sends): each
    comes out dropped or as a pseudonym, the ids as they were."""
    record: dict[str, Any] = {"conversationId": "c1", "externalTag": "tag-1", "participants": [
        {"participantId": "p1", "userId": "u1", "participantName": "Jane Roe",
         "externalContactId": "ec-1", "externalOrganizationId": "eo-1",
         "attributes": {"note": "call me"},
         "sessions": [{"sessionId": "s1", "ani": "tel:+13175550123", "dnis": "tel:+1800",
                       "sessionDnis": "tel:+1800", "outboundCallerId": "tel:+1900",
                       "callbackNumbers": ["tel:+13175550123"], "addressFrom": "a@x.example",
                       "addressTo": "b@x.example", "addressOther": "c@x.example",
                       "addressSelf": "sip:d@x.example", "destinationAddresses": ["e@x.example"],
                       "cc": ["f@x.example"], "bcc": ["g@x.example"],
                       "screenShareAddressSelf": "h", "videoAddressSelf": "i",
                       "journeyCustomerId": "jc-1", "remoteNameDisplayable": "Jane R",
                       "callbackUserName": "Jane", "remote": "Jane Roe",
                       "flow": {"flowId": "f1", "entryReason": "tel:+1800",
                                "transferTargetAddress": "tel:+1700",
                                "transferTargetName": "Bob"},
                       "segments": [{"queueId": "q1", "wrapUpNote": "angry", "subject": "Re: x"}]}],
         }]}  # fmt: skip
    declared = KNOWN_PATHS["conversations"]
    assert all(any(True for _ in at(record, path)) for path in declared)
    protect = Policy("strict", [], KEY).for_dataset("conversations")
    assert protect is not None
    out = orjson.loads(protect(orjson.dumps(record)))
    for path in declared:
        for value in at(out, path):
            assert all(s.startswith("hmac:") for s in strings(value)), path
    sent = set(strings(record)) - {"c1", "p1", "u1", "s1", "f1", "q1"}
    assert not sent & set(strings(out))
    assert [list(at(out, p)) for p in ("conversationId", "participants.userId",
            "participants.sessions.segments.queueId")] == [["c1"], ["u1"], ["q1"]]  # fmt: skip
    untouched = Policy("strict", [UserRule("conversations", "externalTag", "keep")], KEY)
    kept = untouched.for_dataset("conversations")
    assert kept is not None and orjson.loads(kept(orjson.dumps(record)))["externalTag"] == "tag-1"
    assert Policy("none", [], "").for_dataset("conversations") is None


def test_a_key_file_gives_the_keys_pseudonyms_and_an_unreadable_one_is_refused(
    exports: Exports, tmp_path: Path
) -> None:
    key_file = tmp_path / "privacy.key"
    key_file.write_text(KEY + "\n")
    config = tmp_path / "key-file.toml"
    config.write_text(
        "[jobs]\npoll_initial_s = 0.05\npoll_max_s = 0.1\n[output]\ncheckpoint_s = 0.0\n"
        f'[privacy]\nprofile = "strict"\nkey_file = "{key_file}"\n'
    )
    result = exports.run("key-file", datasets="conversations", config=config)
    assert result.returncode == 0, result.stderr
    by_file = sorted(lines(exports.out("key-file"), "conversations"),
                     key=lambda r: r["conversationId"])  # fmt: skip
    by_env = sorted(lines(exports.out("strict-again"), "conversations"),
                    key=lambda r: r["conversationId"])  # fmt: skip
    assert by_file == by_env
    assert KEY.encode() not in all_bytes(exports.out("key-file")) and KEY not in result.stderr
    key_file.unlink()
    missing = exports.run("key-file-gone", datasets="conversations", config=config)
    assert_one_clear_line(missing, 2, "key_file", str(key_file))

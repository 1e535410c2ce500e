"""Privacy profiles: what happens to the personal data in each record before it reaches disk.

A profile is a declared table, per dataset, of field paths and an action: ``drop`` (the field
is removed), ``pseudonymise`` (each string or number in it becomes a keyed pseudonym) or
``keep``. A path is dotted field names from the record's top (``participants.sessions.ani``);
a list met on the way is entered element by element, and a path the record lacks is passed
over. Ids (``conversationId``, ``userId``, ``queueId`` ...) are in no table, so joins work.

A pseudonym is ``"hmac:"`` and the first 32 hex digits (128 bits) of HMAC-SHA256 of the value's
text under the secret key: the same value under the same key gives the same pseudonym in every
run, dataset and table (repeat callers can still be counted); another key gives others; without
the key a phone number cannot be found by trying every number, as a plain hash allows.

The key comes from ``GENESYS_EXPORT_PRIVACY_KEY`` or ``[privacy] key_file``, never from a
flag; it is never logged or written. The manifest records the profile, the user rules and the
key's fingerprint (the HMAC of a fixed label: it names the key without revealing it).

The work is done where a record is appended to a window's file (``Protected``): ``none`` adds
no code at all on that path; the other profiles parse only a record that holds one of the
profile's field names (a bytes check first), and write it again with orjson.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from exporter.errors import ConfigError

if TYPE_CHECKING:
    from exporter.store.jsonl import Buffer, FileDigest
    from exporter.store.sink import Sink

Action = Literal["drop", "pseudonymise", "keep"]
ACTIONS: tuple[Action, ...] = ("drop", "pseudonymise", "keep")
PROFILES = ("none", "standard", "strict")
KEY_ENV = "GENESYS_EXPORT_PRIVACY_KEY"
PSEUDONYM_PREFIX = "hmac:"
_FINGERPRINT_LABEL = b"genesys-export privacy key fingerprint v1"
MIN_KEY_CHARS = 16
_REMEMBERED = 65_536  # pseudonyms kept at once (a few MB)

_P: Action = "pseudonymise"
_D: Action = "drop"
_K: Action = "keep"
_SESSION = "participants.sessions."
# Conversation fields that carry a customer's (or any outside party's) data, checked against the
# SDK models AnalyticsConversation, AnalyticsParticipant, AnalyticsSession, AnalyticsFlow and
# AnalyticsConversationSegment (genesys-datasets.md §J, and the fields it does not list).
# Each: (path, action in standard, action in strict).
_CONVERSATIONS: tuple[tuple[str, Action, Action], ...] = (
    ("externalTag", _P, _P),
    ("participants.participantName", _P, _D),
    ("participants.externalContactId", _P, _P),
    ("participants.externalOrganizationId", _P, _P),
    ("participants.attributes", _P, _D),
    *(
        (_SESSION + name, _P, _P)
        for name in (
            "ani",
            "dnis",
            "sessionDnis",
            "outboundCallerId",
            "callbackNumbers",
            "addressFrom",
            "addressTo",
            "addressOther",
            "addressSelf",
            "destinationAddresses",
            "cc",
            "bcc",
            "screenShareAddressSelf",
            "videoAddressSelf",
            "journeyCustomerId",
        )
    ),
    (_SESSION + "remoteNameDisplayable", _P, _D),
    (_SESSION + "callbackUserName", _P, _D),
    (_SESSION + "remote", _P, _D),
    (_SESSION + "flow.entryReason", _P, _P),
    (_SESSION + "flow.transferTargetAddress", _P, _P),
    (_SESSION + "flow.transferTargetName", _P, _D),
    (_SESSION + "segments.wrapUpNote", _D, _D),
    (_SESSION + "segments.subject", _D, _D),
)
# Surveys: the customer's own words. Evaluations: the evaluator's and the agent's comments
# (about the agent, so kept by standard; strict keeps no free text).
_SURVEYS: tuple[tuple[str, Action, Action], ...] = (
    ("answers.questionGroupScores.questionScores.freeTextAnswer", _D, _D),
)
_EVALUATIONS: tuple[tuple[str, Action, Action], ...] = (
    ("answers.comments", _K, _D),
    ("answers.agentComments", _K, _D),
    ("answers.questionGroupScores.comments", _K, _D),
    ("answers.questionGroupScores.questionScores.comments", _K, _D),
)
_DECLARED = {"conversations": _CONVERSATIONS, "surveys": _SURVEYS, "evaluations": _EVALUATIONS}


def profile_table(profile: str) -> dict[str, dict[str, Action]]:
    """A profile's declared rules: dataset -> path -> action (``none``: empty)."""
    if profile == "none":
        return {}
    strict = profile == "strict"
    return {
        name: {path: in_strict if strict else in_standard for path, in_standard, in_strict in rows}
        for name, rows in _DECLARED.items()
    }


# Every path a user rule may name: the declared ones, and the conversation fields of the SDK
# models that hold no personal data but may still be dropped (ids stay: they are the joins).
KNOWN_PATHS: Mapping[str, frozenset[str]] = {
    name: frozenset(row[0] for row in rows) for name, rows in _DECLARED.items()
}
# Dimensions an aggregate may be grouped by that are personal data: refused with a profile,
# since a group is an aggregate line's key and must stay what the API sent.
PERSONAL_DIMENSIONS = frozenset(path.rsplit(".", 1)[-1] for path in KNOWN_PATHS["conversations"])


@dataclass(frozen=True, slots=True)
class UserRule:
    dataset: str
    path: str
    action: Action

    def text(self) -> str:
        return f"{self.dataset}:{self.path} = {self.action}"


def parse_rule(text: str, where: str) -> UserRule:
    """``"dataset:path = action"``, e.g. ``"conversations:participants.sessions.ani = drop"``;
    the path must be one the dataset's table knows (``KNOWN_PATHS``)."""
    target, equals, action = (part.strip() for part in text.partition("="))
    dataset, colon, path = (part.strip() for part in target.partition(":"))
    example = '"conversations:participants.sessions.ani = drop"'
    if not equals or not colon or not dataset or not path:
        raise ConfigError(
            f'{where}: the rule {text!r} is not "dataset:path = action", e.g. {example}.'
        )
    if dataset not in KNOWN_PATHS:
        raise ConfigError(
            f"{where}: the rule {text!r} names {dataset!r}; rules are for "
            f"{', '.join(sorted(KNOWN_PATHS))}."
        )
    if path not in KNOWN_PATHS[dataset]:
        raise ConfigError(
            f"{where}: the rule {text!r} names {path!r}, no personal-data field of {dataset} "
            f"(README, Privacy, lists them)."
        )
    if action not in ACTIONS:
        raise ConfigError(
            f"{where}: the rule {text!r} asks for {action!r}; the actions are {', '.join(ACTIONS)}."
        )
    return UserRule(dataset, path, ACTIONS[ACTIONS.index(action)])


def read_key(env: Mapping[str, str], key_file: Path | None) -> str:
    """The secret key: the environment first, then the key file ("" when neither)."""
    key = env.get(KEY_ENV, "").strip()
    if key or key_file is None:
        return key
    try:
        return key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"config.toml [privacy] key_file: cannot read {key_file} ({exc.strerror}); fix the "
            f"path or set {KEY_ENV}."
        ) from exc


def fingerprint(key: str) -> str:
    """What the manifest records of the key: the HMAC of a fixed label under it."""
    digest = hmac.new(key.encode(), _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()
    return "hmac-sha256:" + digest[:16]


# A compiled table: field name -> an action, or the table below that field.
_Tree = dict[str, "Action | _Tree"]


class Policy:
    """A profile with the user's rules, compiled per dataset, and the key."""

    def __init__(self, profile: str, rules: Sequence[UserRule], key: str) -> None:
        self.profile = profile
        self.rules = tuple(rules)
        table = profile_table(profile)
        for rule in rules:
            table.setdefault(rule.dataset, {})[rule.path] = rule.action
        self._trees = {name: _compile(paths) for name, paths in table.items()}
        self._trees = {name: tree for name, tree in self._trees.items() if tree}
        pseudonymises = any(action == _P for paths in table.values() for action in paths.values())
        if pseudonymises and not key:
            raise ConfigError(
                f"The privacy profile {profile!r} pseudonymises, and no key was given: set "
                f"{KEY_ENV} or [privacy] key_file (a file holding at least {MIN_KEY_CHARS} "
                "characters); nothing was written."
            )
        if key and len(key) < MIN_KEY_CHARS:
            raise ConfigError(
                f"The privacy key is shorter than {MIN_KEY_CHARS} characters; use a long random "
                "one (e.g. openssl rand -hex 32); nothing was written."
            )
        self._key = key.encode()
        self._seen: dict[str, str] = {}
        self.fingerprint = fingerprint(key) if key and pseudonymises else None

    @property
    def active(self) -> bool:
        """Whether any record of any dataset is changed."""
        return bool(self._trees)

    def record(self) -> dict[str, Any] | None:
        """What the manifest keeps of the policy (None: nothing is changed, as profile none)."""
        if not self.active:
            return None
        return {"profile": self.profile, "rules": [rule.text() for rule in self.rules],
                "key": self.fingerprint}  # fmt: skip

    def for_dataset(self, dataset: str) -> Callable[[bytes], bytes] | None:
        """The transformation of one record of ``dataset``, or None when it is left as sent."""
        tree = self._trees.get(dataset)
        if tree is None:
            return None
        names = [f'"{name}":'.encode() for name in _leaves(tree)]

        def protect(record: bytes) -> bytes:
            if not any(name in record for name in names):
                return record
            data = orjson.loads(record)
            if isinstance(data, dict):
                _apply(data, tree, self.pseudonym)
            return orjson.dumps(data)

        return protect

    def pseudonym(self, value: str) -> str:
        """The value's pseudonym; the values seen last are remembered (a customer's number is
        in several sessions of a record, the org's own numbers in most records)."""
        found = self._seen.get(value)
        if found is None:
            digest = hmac.digest(self._key, value.encode(), "sha256")
            found = PSEUDONYM_PREFIX + digest[:16].hex()
            if len(self._seen) >= _REMEMBERED:
                self._seen.clear()
            self._seen[value] = found
        return found


def _compile(paths: Mapping[str, Action]) -> _Tree:
    tree: _Tree = {}
    for path, action in paths.items():
        if action == "keep":
            continue
        node = tree
        *parents, last = path.split(".")
        for name in parents:
            child = node.setdefault(name, {})
            assert isinstance(child, dict)
            node = child
        node[last] = action
    return _prune(tree)


def _prune(tree: _Tree) -> _Tree:
    """Branches left empty by ``keep`` rules removed."""
    kept: _Tree = {}
    for name, sub in tree.items():
        if isinstance(sub, dict):
            sub = _prune(sub)
            if not sub:
                continue
        kept[name] = sub
    return kept


def _leaves(tree: _Tree) -> Iterator[str]:
    for name, sub in tree.items():
        if isinstance(sub, dict):
            yield from _leaves(sub)
        else:
            yield name


def _apply(node: dict[str, Any], tree: _Tree, pseudonym: Callable[[str], str]) -> None:
    """``tree``'s actions on ``node``, in place (the hot loop: no generators, no recursion
    into a branch the node lacks)."""
    for name in tree.keys() & node.keys():
        sub, value = tree[name], node[name]
        if type(sub) is dict:
            if type(value) is list:
                for item in value:
                    if type(item) is dict:
                        _apply(item, sub, pseudonym)
            elif type(value) is dict:
                _apply(value, sub, pseudonym)
        elif sub == "drop":
            del node[name]
        else:
            node[name] = _pseudonymised(value, pseudonym)


def _pseudonymised(value: Any, pseudonym: Callable[[str], str]) -> Any:
    """Every string and number in ``value`` replaced, its shape (object, list) kept."""
    if isinstance(value, str):
        return pseudonym(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return pseudonym(str(value))
    if isinstance(value, list):
        return [_pseudonymised(item, pseudonym) for item in value]
    if isinstance(value, dict):
        return {key: _pseudonymised(item, pseudonym) for key, item in value.items()}
    return value


def check_folder(recorded: Mapping[str, Any] | None, policy: Policy, out_dir: Path) -> None:
    """Refuse (exit 2) a run whose policy is not the one the folder's files were written with
    (no record: profile none)."""
    wanted = policy.record()
    if recorded == wanted:
        return
    had = _describe(recorded)
    now = _describe(wanted)
    raise ConfigError(
        f"The output folder {out_dir} was exported with privacy {had}, this run asks for {now}; "
        "a folder never mixes the two and nothing was written. Run with the folder's profile, "
        "rules and key, or export into a new --out."
    )


def _describe(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "profile none"
    rules = record.get("rules") or []
    text = f"profile {record.get('profile')}"
    text += f" with rules {rules}" if rules else ""
    key = record.get("key")
    return text + (f" and key {key}" if key else "")


class Protected:
    """A sink whose appended records pass through a policy first (``commit_instead`` is
    given lines read back from this sink, already protected, so it passes them on)."""

    def __init__(self, inner: Sink, protect: Callable[[bytes], bytes]) -> None:
        self._inner = inner
        self._protect = protect
        self.part_path = inner.part_path

    @property
    def records(self) -> int:
        return self._inner.records

    @property
    def bytes_written(self) -> int:
        return self._inner.bytes_written

    def create(self) -> None:
        self._inner.create()

    def resume(self, offset: int, records: int) -> None:
        self._inner.resume(offset, records)

    def append(self, records: Sequence[Buffer]) -> None:
        protect = self._protect
        self._inner.append([protect(bytes(record)) for record in records])

    def written(self) -> Iterator[bytes]:
        return self._inner.written()

    def sync(self) -> tuple[int, int]:
        return self._inner.sync()

    def commit(self) -> FileDigest:
        return self._inner.commit()

    def commit_instead(self, pages: Iterable[Sequence[Buffer]]) -> FileDigest:
        return self._inner.commit_instead(pages)

    def close(self) -> None:
        self._inner.close()

    def discard(self) -> None:
        self._inner.discard()

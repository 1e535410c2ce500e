"""Usage errors that name flags, never values.

argparse's messages repeat what was typed: "unrecognized arguments: --clientsecret S3CRET",
"invalid choice: 'S3CRET'", "ambiguous option: --cl=S3CRET could match ...". A value can be the
client secret typed where it does not belong, and the message goes to a terminal and a log. So
every usage error becomes a ``ConfigError`` (exit 2) whose message keeps the flag names (the
text before ``=``) and argparse's reason, and drops the values; a flag close to
``--client-secret`` gets the message that says where the secret goes instead.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from exporter.errors import ConfigError

SECRET_REFUSAL = (
    "the client secret is never taken from a flag (it would show in shell history and ps); set "
    "GENESYSCLOUD_OAUTHCLIENT_SECRET, or client_secret under [genesys] in config.toml"
)
# argparse's reasons after "argument X: " that carry no value, kept as they are.
_VALUE_FREE = re.compile(r"expected .*argument|not allowed with argument ")


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors raise ConfigError, naming flags and never a value."""

    _typed: tuple[str, ...] = ()

    def parse_known_args(  # type: ignore[override]  # argparse's stub overloads it
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse, refusing what no parser knows here: each (sub)command names its own extras."""
        self._typed = tuple(sys.argv[1:] if args is None else args)
        parsed, extras = super().parse_known_args(self._typed, namespace)
        if extras:
            raise ConfigError(self._with_help(_unrecognized(extras)))
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        unknown = [f for f in _flags(self._typed) if f not in self._option_string_actions]
        if any(_means_secret(flag) for flag in unknown):
            message = SECRET_REFUSAL  # whatever else went wrong, this is the mistake to fix
        else:
            message = _redact(message, self._typed)
        raise ConfigError(self._with_help(message))

    def _with_help(self, message: str) -> str:
        return f"{message} (see {self.prog} --help)"


class RefuseSecret(argparse.Action):
    """``--client-secret`` (and ``--privacy-key``, with its own ``refusal``): exists only to be
    refused, with a message that never repeats the value."""

    def __init__(
        self, option_strings: Sequence[str], dest: str, refusal: str = SECRET_REFUSAL, **kwargs: Any
    ) -> None:
        super().__init__(option_strings, dest, nargs="?", default=None, **kwargs)
        self.refusal = refusal

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        raise ConfigError(f"{self.refusal} (see {parser.prog} --help)")


def _unrecognized(extras: Sequence[str]) -> str:
    flags = _flags(extras)
    if any(_means_secret(flag) for flag in flags):
        return SECRET_REFUSAL
    values = len(extras) - len(flags)
    shown = ", ".join(flags) + (" and " if flags and values else "")
    if values:
        shown += f"{values} value{'s' if values > 1 else ''} (not shown)"
    return f"unrecognized arguments: {shown}"


def _flags(typed: Sequence[str]) -> list[str]:
    """The flags among what was typed, each without the value after its ``=``."""
    return [arg.split("=", 1)[0] for arg in typed if arg.startswith("-") and len(arg) > 1]


def _means_secret(flag: str) -> bool:
    """Whether ``flag`` is meant to be ``--client-secret``: ``--clientsecret``, ``--secret``,
    ``--client_secret``, ``--client-secert``..."""
    name = flag.lstrip("-").lower().replace("-", "").replace("_", "")
    return "secret" in name or difflib.SequenceMatcher(None, name, "clientsecret").ratio() >= 0.8


def _redact(message: str, typed: Sequence[str]) -> str:
    """argparse's ``message`` with every value typed dropped, its reason and flags kept."""
    if found := re.fullmatch(r"argument (.+?): (.*)", message, re.DOTALL):
        return f"argument {found[1]}: {_reason(found[2], typed)}"
    if found := re.fullmatch(r"ambiguous option: (.*) could match (.*)", message, re.DOTALL):
        return f"ambiguous option: {found[1].split('=', 1)[0]} could match {found[2]}"
    return message if _shows_none(message, typed) else "the arguments could not be read"


def _reason(reason: str, typed: Sequence[str]) -> str:
    if found := re.fullmatch(r"invalid choice: .* (\(choose from .*\))", reason, re.DOTALL):
        return f"invalid choice {found[1]}"  # the last "(choose from": a value may hold one
    if found := re.fullmatch(r"invalid (\S+) value: .*", reason, re.DOTALL):
        return f"invalid {found[1]} value"
    if reason.startswith("ignored explicit argument"):
        return "takes no value"
    if _VALUE_FREE.match(reason) or _shows_none(reason, typed):
        return reason
    return "invalid value"


def _shows_none(text: str, typed: Sequence[str]) -> bool:
    """Whether ``text`` holds none of the values typed (flags' names may show)."""
    values = [arg.partition("=")[2] if arg.startswith("-") else arg for arg in typed]
    return not any(value in text for value in values if value)

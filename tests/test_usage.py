"""Usage errors: one line naming the flags, never a value typed with them, and a JSON summary."""

from __future__ import annotations

import pytest

from tests.support import assert_one_clear_line, last_json, run_cli

SECRET = "S3CRET-zebra-4242-do-not-leak"
COMMANDS = [["export"], ["tables"], ["auth", "check"], ["datasets"]]
SECRET_FORMS = [
    ["--client-secret", SECRET],
    ["--clientsecret", SECRET],
    [f"--client-secret={SECRET}"],
    [f"--clientsecret={SECRET}"],
]


def assert_bad_usage(result, *needles: str) -> None:
    """Exit 2 in one line holding the needles, the secret nowhere, and the summary last."""
    assert_one_clear_line(result, 2, *needles)
    assert SECRET not in result.stdout + result.stderr
    summary = last_json(result)
    assert (summary["status"], summary["exit_code"]) == ("bad_input", 2)
    assert summary["error"] and SECRET not in summary["error"]


@pytest.mark.parametrize("form", SECRET_FORMS, ids=["flag", "close-flag", "flag=", "close-flag="])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_secret_given_as_a_flag_is_refused_and_never_echoed(command, form) -> None:
    """Every command refuses --client-secret and its near misses with the fix, never the value."""
    result = run_cli(*command, *form)
    assert_bad_usage(result, "never taken from a flag", "GENESYSCLOUD_OAUTHCLIENT_SECRET")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        pytest.param(["tables", "--layout", SECRET], ["--layout", "flat"], id="invalid-choice"),
        pytest.param(["tables", "--threads", SECRET], ["--threads", "int"], id="invalid-int"),
        pytest.param(["export", f"--cl={SECRET}"], ["ambiguous", "--cl "], id="ambiguous"),
        pytest.param(["export", f"--force={SECRET}"], ["--force"], id="flag-takes-no-value"),
        pytest.param(["export", "--start", "2026-11-01", SECRET], ["unrecognized"], id="stray"),
        pytest.param(["auth", "check", f"--bogus={SECRET}"], ["--bogus"], id="unknown-flag="),
        pytest.param(["datasets", "--bogus", SECRET], ["--bogus"], id="unknown-flag"),
        pytest.param([SECRET], ["invalid choice", "export"], id="unknown-command"),
        pytest.param(["sandbox", "--start", SECRET], ["--start"], id="type-check"),
        pytest.param(["--client-secret", SECRET, "export"], ["never taken"], id="before-command"),
        pytest.param(
            ["sandbox", "--client-secret", SECRET, "--port", SECRET],
            ["--port", "int"],
            id="sandbox-own-secret-flag",
        ),
    ],
)
def test_usage_errors_name_the_flag_never_the_value(args, needles) -> None:
    """Whatever argparse would say, the line names the flag, never what was typed with it."""
    assert_bad_usage(run_cli(*args), *needles)


def test_a_usage_error_points_at_the_commands_help() -> None:
    """An unknown flag names itself and the help of the command it was given to."""
    result = run_cli("export", "--bogus")
    assert_bad_usage(result, "unrecognized arguments: --bogus", "genesys-export export --help")

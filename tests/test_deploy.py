"""The deployment files name only what exists: commands and flags of the CLI, config keys, the
credentials' variables, the image's user and volume, and the stop time the README promises.

``deploy/kubernetes`` (a CronJob, a PVC, a Secret template and the pod's config.toml, tied
together by kustomization.yaml) and ``deploy/systemd`` (a service, a timer, an environment file
template and a config.toml) are read as Kubernetes and systemd read them.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from exporter import __version__
from exporter.cli import EXIT_CODES, build_parser
from exporter.config import ENV_KEYS, Settings, load_settings
from exporter.errors import AuthError, ConfigError, LockHeld, QuotaExhausted

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
SYSTEMD = ROOT / "deploy" / "systemd"
CREDENTIALS = {
    name
    for name, key in ENV_KEYS.items()
    if key in ("genesys.region", "genesys.client_id", "genesys.client_secret")
}
Units = dict[str, list[tuple[str, str]]]


# ---- reading the files ---------------------------------------------------------------------------


def kubernetes_objects() -> dict[str, dict[str, Any]]:
    """Every object in deploy/kubernetes, by kind (one of each)."""
    objects = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in objects, f"two {document['kind']} objects"
            objects[document["kind"]] = document
    return objects


def read_unit(path: Path) -> Units:
    """A systemd unit file: each section's (key, value) lines in order, repeated keys kept."""
    sections: Units = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            sections[section] = []
            continue
        key, _, value = line.partition("=")
        sections[section].append((key.strip(), value.strip()))
    return sections


def unit_value(unit: Units, section: str, key: str) -> str:
    """The one value of ``key``; a key given twice would silently mean its last value."""
    values = [value for k, value in unit[section] if k == key]
    assert len(values) == 1, f"[{section}] {key}: {values}"
    return values[0]


def env_file_names(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {line.partition("=")[0] for line in lines if line and not line.startswith("#")}


def load(config: Path) -> Settings:
    """The config file as a run loads it, with the credentials a Secret would give."""
    env = dict.fromkeys(CREDENTIALS, "x") | {"GENESYSCLOUD_REGION": "eu-west-1"}
    settings, warnings = load_settings(config_path=config, env=env, overrides={})
    assert warnings == []
    return settings


def readme_promise(setting: str) -> int:
    """The number the README gives ``setting`` (``name: 120`` or ``name=120``)."""
    found = re.findall(rf"{setting}[:=] ?(\d+)", (ROOT / "README.md").read_text())
    assert found, f"the README says nothing of {setting}"
    return max(int(number) for number in found)


def dockerfile_user() -> tuple[int, int]:
    found = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert found, "the Dockerfile's USER is not a numeric uid:gid"
    return int(found.group(1)), int(found.group(2))


def memory_bytes(text: str) -> int:
    """A Kubernetes quantity (768Mi), a systemd size (768M) or DuckDB's (512MB), in bytes."""
    found = re.fullmatch(r"(\d+)(Mi|Gi|M|G|MB|GB)", text)
    assert found, text
    units = {"Mi": 2**20, "Gi": 2**30, "M": 2**20, "G": 2**30, "MB": 10**6, "GB": 10**9}
    return int(found.group(1)) * units[found.group(2)]


# ---- the CLI's commands and flags ----------------------------------------------------------------


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def flags(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """Each flag of ``parser``, and whether it takes a value (a switch takes none)."""
    return {flag: action.nargs != 0 for action in parser._actions for flag in action.option_strings}


def command_flags(name: str) -> dict[str, bool]:
    """The flags ``genesys-export NAME`` takes. ``run`` runs export and then tables, with the
    flags of the steps it runs (issue #21): a checkout without ``run`` checks its flags
    against theirs, one with it against its own."""
    found = commands(build_parser())
    if name in found:
        return flags(found[name])
    assert name == "run", f"genesys-export has no command {name!r}"
    return flags(found["export"]) | flags(found["tables"])


def check_command_line(args: list[str]) -> dict[str, str | None]:
    """Every flag in ``args`` (a command, then its flags) exists on that command; returns the
    flags and their values (None for a switch)."""
    command, *rest = args
    known = command_flags(command)
    values: dict[str, str | None] = {}
    words = iter(rest)
    for word in words:
        assert word in known, f"genesys-export {command} has no flag {word!r}"
        values[word] = next(words) if known[word] else None
    return values


# ---- Kubernetes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    return kubernetes_objects()


@pytest.fixture(scope="module")
def pod(k8s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = k8s["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod["containers"]
    found: dict[str, Any] = only
    return found


def mounts(pod: dict[str, Any], container: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(mount path, volume) for each of the container's mounts."""
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in container["volumeMounts"]:
        yield mount["mountPath"], volumes[mount["name"]]


def test_the_cronjob_runs_a_command_and_flags_the_cli_has(container: dict[str, Any]) -> None:
    """The container's args are a genesys-export command and flags that command takes."""
    assert container["args"][0] == "run"
    check_command_line(container["args"])


def test_the_pod_reads_the_configmap_and_writes_out_dir_on_the_claim(
    k8s: dict[str, dict[str, Any]], pod: dict[str, Any], container: dict[str, Any]
) -> None:
    """--config is the ConfigMap's config.toml as mounted; out_dir is the PVC's mount; the
    metrics file is on a writable volume; the config loads as a run loads it."""
    config = PurePosixPath(str(check_command_line(container["args"])["--config"]))
    (generator,) = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())[
        "configMapGenerator"
    ]
    assert generator["files"] == [config.name]
    by_path = dict(mounts(pod, container))
    assert by_path[str(config.parent)]["configMap"]["name"] == generator["name"]

    settings = load(KUBERNETES / config.name)
    claim = by_path[str(settings.output.out_dir)]["persistentVolumeClaim"]["claimName"]
    assert claim == k8s["PersistentVolumeClaim"]["metadata"]["name"]
    assert settings.output.metrics_file is not None
    writable = [path for path, volume in by_path.items() if "configMap" not in volume]
    assert any(PurePosixPath(path) in settings.output.metrics_file.parents for path in writable)
    assert settings.output.progress is False
    assert settings.export.start is not None and settings.retention.keep is not None


def test_the_pod_runs_as_the_image_user_locked_down(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    """Non-root as the Dockerfile's USER, read-only root, no privileges, RuntimeDefault
    seccomp; every path it writes is a volume."""
    pod_security = pod["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    uid, gid = dockerfile_user()
    assert (pod_security["runAsUser"], pod_security["runAsGroup"]) == (uid, gid)
    assert pod_security["fsGroup"] == gid
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    written = {path for path, volume in mounts(pod, container) if "configMap" not in volume}
    assert written == {"/data", "/tmp"}
    assert re.search(r'^VOLUME \["/data"\]$', (ROOT / "Dockerfile").read_text(), re.MULTILINE)


def test_the_secret_holds_exactly_the_three_credential_variables_and_no_values(
    k8s: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    """The Secret's keys are the region and OAuth client variables the exporter reads, empty;
    the container takes them all as its environment; kustomize never applies the template."""
    secret = k8s["Secret"]
    assert set(secret["stringData"]) == CREDENTIALS
    assert set(secret["stringData"].values()) == {""}
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert "secret.yaml" not in kustomization["resources"]
    assert {*kustomization["resources"], "secret.yaml", "kustomization.yaml"} == {
        path.name for path in KUBERNETES.glob("*.yaml")
    }


def test_the_cronjob_never_overlaps_and_gives_the_stop_its_time(
    k8s: dict[str, dict[str, Any]], pod: dict[str, Any], container: dict[str, Any]
) -> None:
    """Forbid, a starting deadline, bounded history, and at least the README's grace period."""
    spec = k8s["CronJob"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy needs it
    promised = readme_promise("terminationGracePeriodSeconds")
    assert pod["terminationGracePeriodSeconds"] >= promised


def test_the_job_retries_only_what_a_retry_can_fix(
    k8s: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    """Config, auth, wait-longer and lock-held exits fail the Job at once; they are exit codes
    the CLI documents."""
    job = k8s["CronJob"]["spec"]["jobTemplate"]["spec"]
    (fail,) = [rule for rule in job["podFailurePolicy"]["rules"] if rule["action"] == "FailJob"]
    codes = fail["onExitCodes"]
    assert codes["containerName"] == container["name"]
    expected = {ConfigError.exit_code, AuthError.exit_code, QuotaExhausted.exit_code}
    assert set(codes["values"]) == expected | {LockHeld.exit_code}
    documented = {int(code) for code in re.findall(r"(?:: |; )(\d+) ", EXIT_CODES)}
    assert set(codes["values"]) <= documented
    assert job["backoffLimit"] >= 1


def test_the_pod_limits_fit_the_tables_memory_bound_and_threads(
    container: dict[str, Any],
) -> None:
    """The memory limit is above [tables] memory_limit (the larger step's peak RSS) and the
    CPU limit covers the build's threads."""
    settings = load(KUBERNETES / "config.toml")
    resources = container["resources"]
    limit = memory_bytes(resources["limits"]["memory"])
    assert limit > memory_bytes(settings.tables.memory_limit)
    assert (
        memory_bytes(resources["requests"]["memory"]) == limit
    )  # never OOM-killed for a neighbour
    assert int(resources["limits"]["cpu"]) >= settings.tables.threads > 0


def test_kustomize_names_the_image_the_cronjob_uses(container: dict[str, Any]) -> None:
    """kustomization.yaml's images entry rewrites the CronJob's image, tagged this version."""
    (image,) = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["images"]
    assert image["name"] == container["image"]
    assert image["newTag"] == __version__


# ---- systemd -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> Units:
    return read_unit(SYSTEMD / "genesys-export.service")


def test_systemd_units_have_no_end_of_line_comments() -> None:
    """systemd takes a # after a value as part of the value: comments have their own lines."""
    for name in ("genesys-export.service", "genesys-export.timer"):
        for section in read_unit(SYSTEMD / name).values():
            assert [(k, v) for k, v in section if "#" in v or ";" in v] == []


def test_the_service_runs_a_command_and_flags_the_cli_has(service: Units) -> None:
    """ExecStart is the venv's genesys-export with a command and flags it takes, and the
    config file it names loads, writing only where ReadWritePaths allows."""
    program, *args = shlex.split(unit_value(service, "Service", "ExecStart"))
    assert PurePosixPath(program).name == "genesys-export"
    assert args[0] == "run"
    config = PurePosixPath(str(check_command_line(args)["--config"]))
    settings = load(SYSTEMD / config.name)
    writable = {
        PurePosixPath(path.removeprefix("-"))
        for key, value in service["Service"]
        if key == "ReadWritePaths"
        for path in value.split()
    }
    assert PurePosixPath(settings.output.out_dir) in writable
    assert settings.output.metrics_file is not None
    assert PurePosixPath(settings.output.metrics_file).parent in writable
    assert memory_bytes(unit_value(service, "Service", "MemoryMax")) > memory_bytes(
        settings.tables.memory_limit
    )


def test_the_service_is_a_hardened_oneshot_that_stops_politely(service: Units) -> None:
    """oneshot, exit 75 (another run holds the folder) counted a success, the README's stop
    time, a dedicated user and a read-only system."""
    assert unit_value(service, "Service", "Type") == "oneshot"
    assert unit_value(service, "Service", "SuccessExitStatus") == str(LockHeld.exit_code)
    stop = int(unit_value(service, "Service", "TimeoutStopSec"))
    assert stop >= readme_promise("TimeoutStopSec")
    assert unit_value(service, "Service", "User") != "root"
    assert unit_value(service, "Service", "ProtectSystem") == "strict"
    assert unit_value(service, "Service", "NoNewPrivileges") == "yes"
    assert unit_value(service, "Service", "PrivateTmp") == "yes"


def test_the_environment_file_names_exactly_the_three_credential_variables(
    service: Units,
) -> None:
    """The template of the EnvironmentFile holds the region and OAuth client variables."""
    path = PurePosixPath(unit_value(service, "Service", "EnvironmentFile"))
    assert env_file_names(SYSTEMD / f"{path.name}.example") == CREDENTIALS


def test_the_timer_starts_the_service_hourly_and_catches_up() -> None:
    """OnCalendar=hourly, Persistent (a missed run runs at boot), spread across machines."""
    timer = read_unit(SYSTEMD / "genesys-export.timer")
    assert unit_value(timer, "Timer", "OnCalendar") == "hourly"
    assert unit_value(timer, "Timer", "Persistent") == "true"
    assert unit_value(timer, "Timer", "RandomizedDelaySec")
    assert unit_value(timer, "Install", "WantedBy") == "timers.target"


# ---- the image -----------------------------------------------------------------------------------


def test_the_dockerfile_labels_this_version() -> None:
    """The Dockerfile's default VERSION is exporter.__version__ (two places, kept equal here)."""
    found = re.search(r"^ARG VERSION=(\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert found and found.group(1) == __version__


def test_the_build_context_leaves_out_config_toml() -> None:
    """.dockerignore admits only what pip install . reads, so no config.toml reaches a build."""
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert admitted == {"pyproject.toml", "README.md", "LICENSE", "exporter", "genesys_sandbox"}

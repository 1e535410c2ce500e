"""The image: the Dockerfile built with podman, then its programs run as a container runs them.

``podman run`` needs cgroups these machines do not give, so the tests create a container (never
started), mount its root filesystem and run the image's entrypoint there with chroot: as the
image's user, with its environment and working directory, writing to its /data. No registry but
the package registries is reachable, so the base is Debian's python3 made by debootstrap, built
once per machine and kept under a tag derived from its recipe; the image and the container each
test run makes are removed afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from exporter import __version__
from tests import seaweedfs as weed

ROOT = Path(__file__).resolve().parents[1]
# The base's recipe; its hash names the cached image, so a changed recipe builds a new base.
DEBOOTSTRAP = (
    "--variant=minbase",
    "--include=python3,python3-venv,python3-pip,ca-certificates",
    "bookworm",
)
MIRROR = "http://deb.debian.org/debian"
BASE = (
    "localhost/genesys-export-test-base:"
    + hashlib.sha256(" ".join((*DEBOOTSTRAP, MIRROR)).encode()).hexdigest()[:12]
)
# Inside a build, pip reaches the registry only with this machine's certificates and pip
# configuration (mounted when present): the build's environment, not the Dockerfile's business.
BUILD_MOUNTS = ("/etc/ssl/certs", "/etc/pip.conf")
USER = "10001:10001"
# Measured over the base: 548 MB, of which the lakehouse extra is 434 (pyarrow, deltalake,
# pyiceberg with botocore); 114 MB built with EXTRAS= (duckdb's library alone is 66 MB).
MAX_ADDED_MB = 650

needs_podman = pytest.mark.skipif(
    shutil.which("podman") is None or shutil.which("debootstrap") is None,
    reason="the image test needs podman and debootstrap: apt-get install podman debootstrap",
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the image test needs root (debootstrap, podman mount, chroot)"
)
pytestmark = [needs_podman, needs_root, pytest.mark.slow, pytest.mark.timeout(900)]


def podman(*args: str, stdin: Any = None) -> str:
    """podman's stdout; a failure shows its stderr."""
    done = subprocess.run(["podman", *args], stdin=stdin, capture_output=True, text=True)
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout.strip()


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """One test run at a time makes the base (several worktrees share this machine)."""
    with open(Path(tempfile.gettempdir()) / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_base() -> str:
    """The cached debootstrap base, made (about a minute) only if this machine has none."""
    with machine_lock("genesys-export-test-base.lock"):
        exists = subprocess.run(["podman", "image", "exists", BASE], capture_output=True)
        if exists.returncode != 0:
            with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
                rootfs = Path(tmp) / "rootfs"
                subprocess.run(
                    ["debootstrap", *DEBOOTSTRAP, str(rootfs), MIRROR],
                    check=True,
                    capture_output=True,
                )
                for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
                    shutil.rmtree(rootfs / cache, ignore_errors=True)
                tar_command = ["tar", "-C", str(rootfs), "-c", "."]
                with subprocess.Popen(tar_command, stdout=subprocess.PIPE) as tar:
                    podman("import", "-", BASE, stdin=tar.stdout)
                assert tar.returncode == 0
    return BASE


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The Dockerfile built on the base; removed afterwards."""
    base = ensure_base()
    tag = f"localhost/genesys-export-test:{uuid.uuid4().hex[:12]}"
    mounts = [f"--volume={p}:{p}:ro" for p in BUILD_MOUNTS if os.path.exists(p)]
    podman(
        "build",
        "--isolation=chroot",
        "--ulimit=nofile=1024:1024",
        "--ulimit=nproc=1024:1024",
        "--layers=false",  # no intermediate images left behind
        f"--build-arg=BASE={base}",
        *mounts,
        f"--tag={tag}",
        str(ROOT),
    )
    try:
        yield tag
    finally:
        podman("rmi", "--force", tag)


@pytest.fixture(scope="module")
def config(image: str) -> dict[str, Any]:
    """The image's run configuration (Entrypoint, Cmd, User, Env, Volumes, Labels...)."""
    found: dict[str, Any] = orjson.loads(podman("image", "inspect", image))[0]["Config"]
    return found


@dataclass(frozen=True, slots=True)
class Container:
    """A created container's root filesystem, and how the image says to run a program in it."""

    root: Path
    config: dict[str, Any]

    def run(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The entrypoint with ``args``, as the image's user, environment (with ``env``
        added, as a pod's spec adds it) and directory."""
        added = [f"{name}={value}" for name, value in (env or {}).items()]
        command = [
            *("chroot", f"--userspec={self.config['User']}", str(self.root)),
            *("/usr/bin/env", "-i", "-C", self.config["WorkingDir"], *self.config["Env"], *added),
            *self.config["Entrypoint"],
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def container(image: str, config: dict[str, Any]) -> Iterator[Container]:
    """A container of the image, never started, its writable root mounted; removed after."""
    cid = podman("create", image)
    try:
        yield Container(Path(podman("mount", cid)), config)
    finally:
        podman("umount", cid)
        podman("rm", "--force", cid)


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON summary, the last line of stdout."""
    assert done.stdout, done.stderr
    last: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return last


def test_the_image_runs_genesys_export_run_as_a_numeric_non_root_user_on_data(
    config: dict[str, Any],
) -> None:
    """ENTRYPOINT genesys-export, CMD run, USER 10001:10001, VOLUME /data, labelled."""
    assert config["Entrypoint"] == ["genesys-export"]
    assert config["Cmd"] == ["run"]
    assert config["User"] == USER
    assert list(config["Volumes"]) == ["/data"]
    assert config["WorkingDir"] == "/etc/genesys-export"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "MIT"


def test_version_runs_inside_the_image(container: Container) -> None:
    """genesys-export --version prints this checkout's version."""
    done = container.run("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"genesys-export {__version__}"


def test_a_sandbox_export_and_its_tables_run_inside_as_the_image_user(
    container: Container,
) -> None:
    """The image's user writes a sandbox export to /data, then builds its tables there."""
    out = container.root / "data" / "sandbox"
    exported = container.run(
        *("export", "--api-url", "sandbox", "--start", "2026-11-01", "--end", "2026-11-02"),
        *("--out", "/data/sandbox", "--no-progress"),
    )
    assert exported.returncode == 0, exported.stderr
    assert summary(exported)["records"] > 0
    day = out / "conversations" / "2026-11-01.jsonl"
    assert day.stat().st_size > 0
    assert (day.stat().st_uid, day.stat().st_gid) == (10001, 10001)
    assert (out / "manifest.json").is_file()

    built = container.run("tables", "--out", "/data/sandbox")
    assert built.returncode == 0, built.stderr
    assert summary(built)["conversations"] == summary(exported)["records"]
    assert (out / "genesys.duckdb").is_file()


def test_run_inside_the_image_exports_builds_and_publishes(
    container: Container, seaweedfs: weed.SeaweedFS
) -> None:
    """The image's default command does the whole pipeline: a sandbox run with a Parquet
    destination exports, builds and publishes to a real S3 server (the lakehouse extra is
    in the image), its credentials from the environment as a pod gets them."""
    prefix = f"image-{uuid.uuid4().hex[:8]}"
    done = container.run(
        *("run", "--api-url", "sandbox", "--start", "2026-11-01", "--end", "2026-11-02"),
        *("--out", "/data/run", "--no-progress", "--datasets", "conversations"),
        *("--format", "parquet", "--to", f"s3://{weed.BUCKET}/{prefix}"),
        env=seaweedfs.env(),
    )
    assert done.returncode == 0, done.stderr
    steps = summary(done)["steps"]
    assert steps["tables"]["status"] == "built"
    published = steps["publish"]
    assert published["status"] == "published"
    assert published["rows"] == sum(steps["tables"]["rows"].values())


def test_the_image_holds_no_config_toml_and_never_falls_back_to_the_sandbox(
    container: Container,
) -> None:
    """No config.toml anywhere in the image; with none mounted, an export asks for a region."""
    found = [
        Path(folder, "config.toml")
        for folder, _, files in os.walk(container.root)
        if "config.toml" in files
    ]
    assert found == []
    done = container.run("export", "--start", "2026-11-01", "--end", "2026-11-02")
    assert done.returncode == 2
    assert "No Genesys Cloud region" in summary(done)["error"]


def test_the_image_adds_only_the_venv_to_its_base(image: str, container: Container) -> None:
    """No build tree, pip cache or pip in the image, and under MAX_ADDED_MB over its base."""
    root = container.root
    assert not (root / "src").exists()
    assert not (root / "root" / ".cache").exists()
    assert not list((root / "opt" / "genesys-export" / "bin").glob("pip*"))
    sizes = [int(podman("image", "inspect", "--format={{.Size}}", name)) for name in (image, BASE)]
    added_mb = (sizes[0] - sizes[1]) / 1e6
    assert added_mb < MAX_ADDED_MB, f"the image adds {added_mb:.0f} MB to its base"

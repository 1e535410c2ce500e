"""The output folder's lock: one live run at a time, stale locks taken over by exactly one run."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from exporter.errors import LockHeld, OutputError
from exporter.lock import GUARD_NAME, LOCK_NAME, RunLock

THREADS = 8


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process that keeps running for the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def write_lock(folder: Path, *, pid: int, host: str | None = None, **extra: object) -> Path:
    path = folder / LOCK_NAME
    info = {"pid": pid, "host": host or socket.gethostname(), "run_id": "old", **extra}
    path.write_bytes(orjson.dumps({"started": "2026-11-01T00:00:00+00:00", **info}))
    return path


def test_acquire_writes_the_owner_and_release_removes_it(tmp_path) -> None:
    """The lock holds pid, host and run id while held, and is gone after the with block."""
    with RunLock(tmp_path, "run-1"):
        held = orjson.loads((tmp_path / LOCK_NAME).read_bytes())
        assert held["pid"] == os.getpid() and held["run_id"] == "run-1"
        assert held["host"] == socket.gethostname() and held["started"]
    assert [p.name for p in tmp_path.iterdir()] == [GUARD_NAME]  # the permanent guard only


def test_a_live_lock_is_refused_with_its_pid(tmp_path, live_process) -> None:
    """A lock whose process runs raises LockHeld naming pid, host and the fix."""
    path = write_lock(tmp_path, pid=live_process.pid)
    with pytest.raises(LockHeld, match=f"pid {live_process.pid} on ") as caught:
        RunLock(tmp_path, "run-2").acquire()
    assert "wait for it" in str(caught.value) and "--out" in str(caught.value)
    assert orjson.loads(path.read_bytes())["run_id"] == "old"  # untouched


def test_contention_between_two_runs_in_one_folder(tmp_path) -> None:
    """While one RunLock is held, a second one is refused; after release it succeeds."""
    first = RunLock(tmp_path, "first")
    first.acquire()
    with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
        RunLock(tmp_path, "second").acquire()
    first.release()
    with RunLock(tmp_path, "second"):
        assert orjson.loads((tmp_path / LOCK_NAME).read_bytes())["run_id"] == "second"


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, dead_pid, caplog) -> None:
    """A lock left by a dead process is replaced, logged, and reported in took_over."""
    write_lock(tmp_path, pid=dead_pid)
    lock = RunLock(tmp_path, "new")
    with caplog.at_level(logging.WARNING, logger="exporter"):
        lock.acquire()
    assert lock.took_over is not None and lock.took_over.pid == dead_pid
    assert f"pid {dead_pid}" in caplog.text and "stale" in caplog.text
    assert lock.warning is not None and f"pid {dead_pid}" in lock.warning
    assert orjson.loads((tmp_path / LOCK_NAME).read_bytes())["run_id"] == "new"
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_garbled_lock_is_taken_over(tmp_path) -> None:
    """Unreadable content (a run killed while writing its lock) counts as stale."""
    path = tmp_path / LOCK_NAME
    path.write_bytes(b"{half")
    with RunLock(tmp_path, "new") as lock:
        assert lock.took_over is None and "unreadable" in (lock.warning or "")
        assert orjson.loads(path.read_bytes())["run_id"] == "new"


def test_a_lock_from_another_host_is_refused(tmp_path, dead_pid) -> None:
    """Another host's lock cannot be checked from here: refuse, and say when to delete it."""
    write_lock(tmp_path, pid=dead_pid, host="elsewhere.example")
    with pytest.raises(LockHeld, match=r"host elsewhere\.example.*delete"):
        RunLock(tmp_path, "new").acquire()


@pytest.mark.skipif(not Path("/proc/sys/kernel/random/boot_id").exists(), reason="Linux only")
def test_a_lock_from_before_a_reboot_is_stale(tmp_path, live_process) -> None:
    """A pid recorded under another boot id is stale even if that pid now runs something."""
    write_lock(tmp_path, pid=live_process.pid, boot_id="an-earlier-boot")
    with RunLock(tmp_path, "new") as lock:
        assert lock.took_over is not None and lock.took_over.pid == live_process.pid


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path, dead_pid) -> None:
    """If the lock was replaced while held, release() does not delete the new owner's lock."""
    lock = RunLock(tmp_path, "mine")
    lock.acquire()
    path = write_lock(tmp_path, pid=dead_pid, run_id="theirs")
    lock.release()
    assert orjson.loads(path.read_bytes())["run_id"] == "theirs"


def test_the_lock_is_released_when_the_block_raises(tmp_path) -> None:
    """Leaving the with block by an exception removes the lock."""
    with pytest.raises(RuntimeError), RunLock(tmp_path, "run"):
        raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_an_unusable_folder_is_an_output_error_not_lock_held(tmp_path) -> None:
    """A lock that cannot be created (folder is a file) raises OutputError, not LockHeld."""
    (tmp_path / "out").write_bytes(b"")
    with pytest.raises(OutputError, match="create the lock") as caught:
        RunLock(tmp_path / "out", "run").acquire()
    assert not isinstance(caught.value, LockHeld)


@pytest.mark.parametrize("round_", range(50))
def test_racing_takers_of_a_stale_lock_leave_one_winner(tmp_path, dead_pid, round_) -> None:
    """Eight threads released together on one stale lock: exactly one holds it afterwards."""
    write_lock(tmp_path, pid=dead_pid)
    start = threading.Barrier(THREADS)
    winners: list[str] = []
    refused: list[str] = []

    def take(run_id: str) -> None:
        start.wait()
        try:
            RunLock(tmp_path, run_id).acquire()
            winners.append(run_id)
        except LockHeld:
            refused.append(run_id)

    threads = [threading.Thread(target=take, args=(f"t{i}",)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(refused) == THREADS - 1
    assert orjson.loads((tmp_path / LOCK_NAME).read_bytes())["run_id"] == winners[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, GUARD_NAME]


HOLDER = """
import sys, time
from pathlib import Path
from exporter.lock import RunLock
RunLock(Path(sys.argv[1]), "child").acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_run_killed_with_sigkill_leaves_a_lock_the_next_run_takes(tmp_path) -> None:
    """A live child's lock refuses us with its pid; once it is SIGKILLed, we take it over."""
    command = [sys.executable, "-c", HOLDER, str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == b"held\n"
            with pytest.raises(LockHeld, match=f"pid {child.pid} "):
                RunLock(tmp_path, "parent").acquire()
        finally:
            child.kill()
    with RunLock(tmp_path, "parent") as lock:
        assert lock.took_over is not None and lock.took_over.pid == child.pid

"""The output folder's lock: an OS lock held for the run's life; a free one is always taken."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from exporter.errors import LockHeld, OutputError
from exporter.store.lock import LOCK_NAME, RunLock
from tests.support import start_time

THREADS = 8
HOLDER = """
import sys, time
from pathlib import Path
from exporter.store.lock import RunLock
RunLock(Path(sys.argv[1]), "child").acquire()
print("held", flush=True)
time.sleep(60)
"""


def write_lock(
    folder: Path, *, pid: int, host: str | None = None, pid_start: int | None = None
) -> Path:
    """A lock file as a run that died would leave it: content, but no OS lock."""
    path = folder / LOCK_NAME
    info = {"pid": pid, "host": host or socket.gethostname(), "run_id": "old"}
    if pid_start is not None:
        info["pid_start"] = pid_start
    path.write_bytes(orjson.dumps({"started": "2026-11-01T00:00:00+00:00", **info}))
    return path


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another live run, in another process, holding the folder's lock."""
    command = [sys.executable, "-c", HOLDER, str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stdout.readline() == b"held\n"
        yield child
        child.kill()


@pytest.fixture
def zombie_pid() -> Iterator[int]:
    """The pid of a child that has exited but was not reaped: a zombie."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to see a zombie")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 10
    while stat.read_text().split(") ")[1][0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    yield child.pid
    child.wait()


def test_acquire_writes_the_owner_and_release_removes_the_file(tmp_path) -> None:
    """The lock file names pid, host and run id while held and is gone afterwards."""
    with RunLock(tmp_path, "run-1") as lock:
        held = orjson.loads((tmp_path / LOCK_NAME).read_bytes())
        assert held["pid"] == os.getpid() and held["run_id"] == "run-1"
        assert held["host"] == socket.gethostname() and held["started"]
        assert lock.warning is None
    assert list(tmp_path.iterdir()) == []


def test_a_live_run_in_another_process_is_refused_with_exit_75(tmp_path, holder) -> None:
    """A lock whose holder runs raises LockHeld (exit 75) naming it, and leaves it alone."""
    with pytest.raises(LockHeld, match=f"pid {holder.pid} on ") as caught:
        RunLock(tmp_path, "second").acquire()
    assert caught.value.exit_code == 75
    assert "Wait for it" in str(caught.value) and "--out" in str(caught.value)
    assert orjson.loads((tmp_path / LOCK_NAME).read_bytes())["run_id"] == "child"


def test_a_run_killed_with_sigkill_leaves_a_lock_the_next_run_takes(tmp_path, holder) -> None:
    """Once the holder dies (SIGKILL: no cleanup at all) its lock file is taken over."""
    holder.kill()
    holder.wait()
    with RunLock(tmp_path, "next") as lock:
        assert lock.warning is not None and f"pid {holder.pid}" in lock.warning


def test_two_runs_in_one_process_exclude_each_other(tmp_path) -> None:
    """While one RunLock is held a second is refused, even in the same process."""
    first = RunLock(tmp_path, "first")
    first.acquire()
    with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
        RunLock(tmp_path, "second").acquire()
    first.release()
    with RunLock(tmp_path, "second"):
        assert orjson.loads((tmp_path / LOCK_NAME).read_bytes())["run_id"] == "second"


@pytest.mark.parametrize(
    "who",
    ["own-pid", "dead-pid", "zombie", "another-host", "pid-1"],
)
def test_a_lock_file_nobody_holds_is_taken_over_whatever_it_names(
    tmp_path, who, zombie_pid, caplog
) -> None:
    """A container restarted with its old pid, a dead pid, a zombie, another host's run or
    any live unrelated process (pid 1): the OS lock is free, so the lock is taken, with one
    warning line naming what it replaced."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid, host = {
        "own-pid": (os.getpid(), None),
        "dead-pid": (dead.pid, None),
        "zombie": (zombie_pid, None),
        "another-host": (os.getpid(), "node-7.cluster.example"),
        "pid-1": (1, None),
    }[who]
    write_lock(tmp_path, pid=pid, host=host)
    with caplog.at_level(logging.WARNING, logger="exporter"), RunLock(tmp_path, "new") as lock:
        assert orjson.loads((tmp_path / LOCK_NAME).read_bytes())["run_id"] == "new"
    assert lock.warning is not None and f"pid {pid} on {host or socket.gethostname()}" in (
        lock.warning
    )
    assert [r.message for r in caplog.records] == [lock.warning]


def test_a_garbled_lock_file_is_taken_over(tmp_path) -> None:
    """Unreadable content (a run killed while writing it) is taken over too."""
    (tmp_path / LOCK_NAME).write_bytes(b"{half")
    with RunLock(tmp_path, "new") as lock:
        assert "unreadable" in (lock.warning or "")


def test_the_lock_is_released_when_the_block_raises(tmp_path) -> None:
    """Leaving the with block by an exception removes the lock."""
    with pytest.raises(RuntimeError), RunLock(tmp_path, "run"):
        raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()
    RunLock(tmp_path, "after").acquire()


def test_an_unusable_folder_is_an_output_error_not_lock_held(tmp_path) -> None:
    """A lock that cannot be created (the folder is a file) raises OutputError."""
    (tmp_path / "out").write_bytes(b"")
    with pytest.raises(OutputError, match="create the lock"):
        RunLock(tmp_path / "out", "run").acquire()


@pytest.mark.parametrize("round_", range(20))
def test_racing_takers_of_a_left_lock_leave_one_winner(tmp_path, round_) -> None:
    """Eight threads released together on one left-over lock: exactly one holds it."""
    write_lock(tmp_path, pid=os.getpid())
    start = threading.Barrier(THREADS)
    winners: list[RunLock] = []
    refused: list[str] = []

    def take(run_id: str) -> None:
        start.wait()
        lock = RunLock(tmp_path, run_id)
        try:
            lock.acquire()
            winners.append(lock)
        except LockHeld:
            refused.append(run_id)

    threads = [threading.Thread(target=take, args=(f"t{i}",)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(refused) == THREADS - 1
    assert orjson.loads((tmp_path / LOCK_NAME).read_bytes())["run_id"] == winners[0].info.run_id
    winners[0].release()


def test_runs_that_start_while_others_release_never_hold_it_together(tmp_path) -> None:
    """Threads acquiring and releasing in a loop: never two holders at once, although each
    release unlinks the file another thread may just have opened."""
    holders: list[str] = []
    overlaps: list[list[str]] = []
    guard = threading.Lock()

    def churn(run_id: str) -> None:
        for _ in range(200):
            lock = RunLock(tmp_path, run_id)
            try:
                lock.acquire()
            except LockHeld:
                continue
            with guard:
                holders.append(run_id)
                if len(holders) > 1:
                    overlaps.append(list(holders))
            with guard:
                holders.remove(run_id)
            lock.release()

    threads = [threading.Thread(target=churn, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


@pytest.fixture
def live_run() -> Iterator[subprocess.Popen[bytes]]:
    """A live process on this host, standing in for a run whose lock the filesystem ignored."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to read a process's start time")
    with subprocess.Popen(["sleep", "60"]) as child:
        yield child
        child.kill()


def test_a_lock_file_naming_a_live_run_whose_os_lock_is_free_is_refused(tmp_path, live_run):
    """A live run's file with no OS lock held (NFS without locking) is refused with exit 75."""
    path = write_lock(tmp_path, pid=live_run.pid, pid_start=start_time(live_run.pid))
    before = path.read_bytes()
    with pytest.raises(LockHeld, match=f"pid {live_run.pid} on ") as caught:
        RunLock(tmp_path, "second").acquire()
    assert caught.value.exit_code == 75
    assert "locks do not work" in str(caught.value) and "--out" in str(caught.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("who", ["dead-pid", "reused-pid"])
def test_a_lock_file_naming_a_dead_or_reused_pid_is_taken_over(tmp_path, live_run, who) -> None:
    """A recorded pid that is gone, or alive but started at another time, is taken over."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid, start = {
        "dead-pid": (dead.pid, start_time(live_run.pid)),
        "reused-pid": (live_run.pid, start_time(live_run.pid) - 1),
    }[who]
    write_lock(tmp_path, pid=pid, pid_start=start)
    with RunLock(tmp_path, "new") as lock:
        held = orjson.loads((tmp_path / LOCK_NAME).read_bytes())
        assert held["run_id"] == "new" and held["pid_start"] == start_time(os.getpid())
    assert lock.warning is not None and f"pid {pid} on" in lock.warning

"""One run per output folder, held by the kernel: an OS lock on the lock file for the run's life.

A run opens ``<out>/.genesys-export.lock``, takes an exclusive, non-blocking OS lock on it
(``flock``; ``msvcrt.locking`` on Windows) and keeps it until the run ends. The kernel drops the
lock when the process dies, however it dies, so what decides is the lock, never the pid in the
file: a restarted container that gets the old pid again in a fresh pid namespace, a zombie, an
unrelated process with that pid, or a pod rescheduled onto another node change nothing. A lock
file whose OS lock is free was left by a run that died; it is taken over with one warning.

The file's content (pid, process start time, host, run id, start) names the holder in messages,
and decides one thing: whether the OS lock really holds. Where ``flock`` is a no-op (NFS mounted
without locking) a live run's lock is free to take, so after taking it a run checks the content
it replaces: a process on this host that is alive and started when the file says (Linux: field
22 of ``/proc/<pid>/stat``; other POSIX systems: the pid is alive) is refused (LockHeld). A dead
pid, a zombie or a pid reused by another process is taken over as above.

``release`` unlinks the file while still holding the lock, and ``acquire`` checks after locking
that the path still names the file it locked: a run that opened the file just before another
released it never ends up holding a lock on a file nobody else can see.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import orjson

from exporter.errors import LockHeld
from exporter.store.jsonl import output_error

LOCK_NAME = ".genesys-export.lock"
# Opening, locking and finding the file unlinked by a releasing run can repeat only while runs
# keep starting and ending around us; a few rounds is plenty.
ATTEMPTS = 20
_OWNER_BYTES = 4096

log = logging.getLogger(__name__)

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)  # msvcrt locks bytes from the current position
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            # flock, not fcntl locks: it belongs to the open file, so two runs in one process
            # (or two threads) exclude each other too; Linux NFS clients map it onto NFS locks.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds (or held) a lock; decides only whether an OS lock that was free holds anyway.

    ``pid_start``: when the process started, in clock ticks since boot (``/proc/<pid>/stat``
    field 22); None where there is no ``/proc``, and in files of versions that did not record
    it."""

    pid: int
    host: str
    run_id: str
    started: str
    pid_start: int | None = None

    @classmethod
    def parse(cls, raw: bytes) -> LockInfo | None:
        """The holder named by a lock file's content, or None if it names none."""
        try:
            info = cls(**orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError):
            return None
        return info if isinstance(info.pid, int) and isinstance(info.host, str) else None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, run {self.run_id}, started {self.started}"


class RunLock:
    """The output folder's lock. ``acquire`` raises LockHeld while another live run holds it."""

    def __init__(self, out_dir: Path, run_id: str) -> None:
        self.path = out_dir / LOCK_NAME
        self.info = LockInfo(
            pid=os.getpid(),
            host=socket.gethostname(),
            run_id=run_id,
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            pid_start=_process_start(os.getpid()),
        )
        self.warning: str | None = None  # a takeover, in one sentence
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Hold the lock for this run, taking over a lock file left by a run that died."""
        try:
            for _ in range(ATTEMPTS):
                if self._try_acquire():
                    return
        except OSError as exc:
            raise output_error(exc, self.path, "create the lock") from exc
        raise LockHeld(
            f"The lock {self.path} kept being replaced while this run tried to take it: other "
            "runs keep starting on this folder. Run one export per output folder at a time."
        )

    def release(self) -> None:
        """Remove the lock file and drop the OS lock; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if sys.platform != "win32":  # Windows cannot unlink an open file: below, after close
                self.path.unlink(missing_ok=True)
            _unlock(fd)
        except OSError as exc:
            log.warning("could not remove the lock %s: %s", self.path, exc.strerror)
        finally:
            os.close(fd)
        if sys.platform == "win32":
            with contextlib.suppress(OSError):  # another run may hold it already
                self.path.unlink(missing_ok=True)

    def _try_acquire(self) -> bool:
        """One round: True when held, False when the file was unlinked under us; raises
        LockHeld when a live run holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not _try_lock(fd):
                raise LockHeld(_held_message(self.path, LockInfo.parse(_read(fd))))
            if not _names(self.path, fd):
                os.close(fd)
                return False
            left = _read(fd)
            owner = LockInfo.parse(left)
            if owner is not None and self._still_running(owner):
                raise LockHeld(_unheld_message(self.path, owner))
            os.ftruncate(fd, 0)
            os.pwrite(fd, orjson.dumps(asdict(self.info)), 0)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        self._fd = fd
        if left.strip():
            self._warn_takeover(owner)
        return True

    def _still_running(self, owner: LockInfo) -> bool:
        """Whether the run a free lock's file names is alive: the OS lock did not hold it."""
        if sys.platform == "win32" or owner.host != self.info.host or owner.pid <= 0:
            return False  # Windows locks are enforced; another host's pids mean nothing here
        if self.info.pid_start is None:  # no /proc: the pid alone
            return _pid_alive(owner.pid)
        return owner.pid_start is not None and _process_start(owner.pid) == owner.pid_start

    def _warn_takeover(self, owner: LockInfo | None) -> None:
        who = f"by {owner.describe()}" if owner else "with unreadable content"
        self.warning = (
            f"Took over the lock {self.path} left {who}: no live process holds it (that run "
            "ended without removing it); its unfinished windows resume from their checkpoints."
        )
        log.warning("%s", self.warning)


def _process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None: no /proc here, or no such
    process, or a zombie (it has ended; only its exit status waits to be collected)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and ")"
    return None if fields[0] in ("Z", "X", "x") else int(fields[19])  # fields 3 (state), 22


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # POSIX only: signal 0 checks the pid and delivers nothing
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _read(fd: int) -> bytes:
    return os.pread(fd, _OWNER_BYTES, 0)


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the open file ``fd`` (and was not unlinked or replaced)."""
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _unheld_message(path: Path, owner: LockInfo) -> str:
    return (
        f"Another export ({owner.describe()}) is running on this output folder, yet its lock "
        f"{path} was free: this filesystem's locks do not work (NFS mounted without locking?). "
        "Wait for that run to finish, and put --out on a filesystem whose locks work (a local "
        "disk, or NFS mounted with locking)."
    )


def _held_message(path: Path, owner: LockInfo | None) -> str:
    who = f" ({owner.describe()})" if owner else ""
    return (
        f"Another export{who} is running on this output folder: it holds the lock {path}. "
        "Wait for it to finish, or choose another --out."
    )

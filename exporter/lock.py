"""One run per output folder: a lock file naming its owner, and a safe takeover of stale ones.

The lock ``<out>/.genesys-export.lock`` is JSON {pid, host, run_id, started, boot_id}, created
with O_CREAT|O_EXCL. A lock whose process is gone (same host, and a dead pid or an earlier boot)
or whose content is unreadable is stale and is replaced.

Checking a lock and replacing it must be one step, or two runs that both judged the same lock
stale can each delete the other's fresh lock (file names and even inode numbers get reused). So
every create, check and takeover happens while holding an OS lock on a second, permanent file,
``.genesys-export.lock.guard``. The kernel drops that OS lock when its process dies, so the
guard itself can never go stale; it is held for a few file operations only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import orjson

from exporter.errors import LockHeld
from exporter.output import output_error

LOCK_NAME = ".genesys-export.lock"
GUARD_NAME = LOCK_NAME + ".guard"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")  # Linux; elsewhere pids alone decide

log = logging.getLogger("exporter")

if sys.platform == "win32":
    import msvcrt

    def _os_lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for ~10 s, then raises OSError

    def _os_unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _os_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)  # per open file: threads of one process exclude too

    def _os_unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def _guarded(path: Path) -> Iterator[None]:
    """Hold the OS lock on ``path`` (created if missing, never deleted) for the block."""
    with open(path, "a+b") as file:  # "a": create without truncating, whoever holds it
        _os_lock(file.fileno())
        try:
            yield
        finally:
            _os_unlock(file.fileno())


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds a lock; ``boot_id`` tells a pid reused after a reboot from the original."""

    pid: int
    host: str
    run_id: str
    started: str
    boot_id: str | None = None

    @classmethod
    def parse(cls, raw: bytes) -> LockInfo | None:
        """The lock's owner, or None if the content is not a lock we wrote."""
        try:
            info = cls(**orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError):
            return None
        ok = isinstance(info.pid, int) and isinstance(info.host, str) and info.pid > 0
        return info if ok else None


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # os.kill(pid, 0) would send CTRL_C there; err on the side of refusing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


class RunLock:
    """The output folder's lock. ``acquire`` raises LockHeld while another live run holds it."""

    def __init__(self, out_dir: Path, run_id: str) -> None:
        self.path = out_dir / LOCK_NAME
        self.info = LockInfo(
            pid=os.getpid(),
            host=socket.gethostname(),
            run_id=run_id,
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            boot_id=_boot_id(),
        )
        self.took_over: LockInfo | None = None  # the stale owner replaced, if it was readable
        self.warning: str | None = None  # a takeover, in a sentence for the run's summary
        self._held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, taking over a stale one (logged as a warning)."""
        try:
            with _guarded(self.path.with_name(GUARD_NAME)):
                if not self._create():
                    self._take_over_if_stale()
        except OSError as exc:
            raise output_error(exc, self.path, "create the lock") from exc
        self._held = True

    def release(self) -> None:
        """Remove the lock if it is still ours; someone else's lock is left alone."""
        if not self._held:
            return
        self._held = False
        try:
            with _guarded(self.path.with_name(GUARD_NAME)):
                if LockInfo.parse(self.path.read_bytes()) == self.info:
                    self.path.unlink()
                    return
            log.warning("lock %s is no longer ours; leaving it in place", self.path)
        except FileNotFoundError:
            log.warning("lock %s was removed by someone else during the run", self.path)
        except OSError as exc:
            log.warning("could not remove the lock %s: %s", self.path, exc.strerror)

    # -- under the guard ----------------------------------------------------------------

    def _create(self) -> bool:
        """Create the lock with our content; False if one exists."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        try:
            with open(fd, "wb") as file:
                file.write(orjson.dumps(asdict(self.info)))
        except OSError:
            self.path.unlink(missing_ok=True)  # a full disk must not leave an empty lock
            raise
        return True

    def _take_over_if_stale(self) -> None:
        """Raise LockHeld if the lock's owner may be running; otherwise replace the lock."""
        try:
            owner = LockInfo.parse(self.path.read_bytes())
        except FileNotFoundError:
            owner = None  # deleted by hand just now: nothing to refuse
        self._refuse_if_live(owner)
        self.path.unlink(missing_ok=True)
        if not self._create():  # cannot happen while we hold the guard, unless it is bypassed
            raise LockHeld(f"The lock {self.path} reappeared while being replaced; try again.")
        self.took_over = owner
        if owner is None:
            self.warning = f"Took over the lock {self.path}, whose content was unreadable."
        else:
            self.warning = (
                f"Took over the stale lock {self.path} left by pid {owner.pid} on {owner.host} "
                f"(started {owner.started}), which is no longer running."
            )
        log.warning("%s", self.warning)

    def _refuse_if_live(self, owner: LockInfo | None) -> None:
        if owner is None:
            return  # written under the guard, so never half-written by a live run: a crash
        if owner.host != self.info.host:
            raise LockHeld(
                f"The output folder is locked by pid {owner.pid} on host {owner.host} (started "
                f"{owner.started}); if no export is running there, delete {self.path}, or "
                "choose another --out."
            )
        rebooted = None not in (owner.boot_id, self.info.boot_id) and (
            owner.boot_id != self.info.boot_id
        )
        if not rebooted and _pid_alive(owner.pid):
            raise LockHeld(
                f"Another export (pid {owner.pid} on {owner.host}, started {owner.started}) is "
                f"writing to this output folder; wait for it to finish or choose another --out."
            )

"""The Parquet set readers see: one folder per build, and ``tables`` a link switched in one rename.

``<out>/tables`` is a symbolic link to ``.tables/<version>``. A build makes the next version
in a folder no reader sees (``Draft``): it hard-links each file it did not rebuild from the
current version (the same blocks, no copy), writes the others, and fsyncs. Then it switches
the link: a new link under a temporary name, renamed over ``tables``. One rename, so whoever
opens ``tables/<table>/...`` gets the old set or the new one, never some tables' files from
each. A build killed before the switch leaves its draft; one killed after leaves the version
it replaced; the next build deletes both (``remove_stale``).

A real ``tables`` folder, from before versions, becomes a version at the first switch: it is
renamed into ``.tables``, then the link takes its place. Between those two renames ``tables``
is missing; a build killed there leaves no link, and the next build writes every file from
the database, which holds every row.

Hard links and symbolic links are all this needs of the file system. Every Linux one the tool
is run on has them (ext4, XFS, Btrfs, overlayfs, NFS, EFS); on one without them the build
stops with an OutputError saying so, rather than falling back to a copy nobody tests.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path

from exporter.errors import OutputError
from exporter.store.jsonl import fsync_dir

LINK = "tables"
VERSIONS = ".tables"
_SWITCH = ".tables.switch"  # the new link, before it is renamed over ``tables``
# What link() and symlink() answer on a file system that has no such thing.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


class Draft:
    """The next version of the set, in a folder no reader sees until ``publish``."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.root = out_dir / VERSIONS / uuid.uuid4().hex[:16]
        self.root.mkdir(parents=True)
        self.published = False

    def path(self, relative: Path) -> Path:
        """Where a file of this version goes; its folder is made."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def link_current(self, relative: Path) -> bool:
        """Hard-link the current version's file into this one; False if it has none."""
        try:
            os.link(self.out_dir / LINK / relative, self.path(relative))
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            if exc.errno in _NO_LINKS:
                raise _no_links(exc, "hard") from exc
            raise
        return True

    def seal(self) -> None:
        """fsync every folder of the version: once the link names it, a crash cannot lose
        any of its entries."""
        for folder, _, _ in os.walk(self.root):
            fsync_dir(Path(folder))
        fsync_dir(self.root.parent)

    def publish(self) -> None:
        """Switch ``tables`` to this version, in one rename."""
        link = self.out_dir / LINK
        if link.is_dir() and not link.is_symlink():  # from before versions: one of them now
            os.rename(link, self.out_dir / VERSIONS / uuid.uuid4().hex[:16])
        switch = self.out_dir / _SWITCH
        switch.unlink(missing_ok=True)
        try:
            os.symlink(self.root.relative_to(self.out_dir), switch)  # relative: the folder moves
        except OSError as exc:
            if exc.errno in _NO_LINKS:
                raise _no_links(exc, "symbolic") from exc
            raise
        os.replace(switch, link)
        fsync_dir(self.out_dir)
        self.published = True

    def discard(self) -> None:
        """Delete the draft of a build that failed or stopped; a published version stays."""
        if not self.published:
            shutil.rmtree(self.root, ignore_errors=True)


def remove_stale(out_dir: Path) -> None:
    """Delete every version ``tables`` does not link to (drafts of killed builds, versions
    replaced by a build killed before it deleted them) and a killed switch's new link."""
    (out_dir / _SWITCH).unlink(missing_ok=True)
    versions = out_dir / VERSIONS
    if not versions.is_dir():
        return
    link = out_dir / LINK
    current = Path(os.readlink(link)).name if link.is_symlink() else None
    for version in versions.iterdir():
        if version.name != current:
            shutil.rmtree(version, ignore_errors=True)


def _no_links(exc: OSError, kind: str) -> OutputError:
    return OutputError(
        f"Could not make a {kind} link in {exc.filename2 or exc.filename} "
        f"({exc.strerror}): the Parquet set needs a file system with hard and symbolic links "
        "(ext4, XFS, Btrfs, NFS); put the export folder on one."
    )

"""Write one window's records to a hidden part file and make it visible only when complete.

Every ``append`` call (one API page) becomes an independent gzip member or zstd frame, so the
part file is a valid compressed stream at every checkpoint: a later run truncates it to the last
checkpoint and keeps appending. The engine calls these blocking methods in one worker thread for
the whole export (zlib, zstd and hashlib release the GIL), so the event loop never stalls on a
5 MB page, and one thread hop per page does the join, compression, write and hash together. One
thread for every file also means every page's join is freed and reused in one malloc arena,
where worker threads each kept pages of their own (15 MB more peak RSS, measured).

Written bytes leave the page cache once they are on disk (``posix_fadvise(DONTNEED)``): an export
writes gigabytes nobody reads back soon, and left cached they would push the host's useful cache
out and count against a container's memory limit. It also makes writes cheaper: the kernel
refills the cache from pages it just freed. On this project's VMs a never-used page costs a
hypervisor fault on first write, and fresh pages made writing 1.5 GB cost 5.9 CPU s instead of
0.7 (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol

import zstandard

from exporter.errors import OutputError

if TYPE_CHECKING:
    import msgspec

    Buffer = bytes | msgspec.Raw  # a record's exact bytes, or msgspec's view of them

Compression = Literal["none", "gzip", "zstd"]
SUFFIXES: dict[Compression, str] = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
_READ_CHUNK = 1 << 20
# Ask the kernel to write back, and drop, the cached pages of a part file every this many bytes:
# about every job page. The smaller the pool of pages cycled, the cheaper each write; measured
# on 300,000 records: 1.3 system CPU s at 4 MB, 1.5 at 8 MB, 1.9 at 32 MB, 2.3 at 128 MB.
_RELEASE_CACHE_BYTES = 4 << 20
LINES_PER_WRITE = 1000  # a file written again goes to disk this many lines at a time
MERGE_PART = "merge.part"  # a window's merged lines on their way to the final file
_CAN_RELEASE_CACHE = hasattr(os, "posix_fadvise")  # Linux and most Unixes; not macOS or Windows


class PartFileLost(OutputError):
    """A resumed window's part file is gone or shorter than its checkpoint: refetch the window."""


@dataclass(frozen=True, slots=True)
class FileDigest:
    """A committed window file: record count, and the size and sha256 of the bytes on disk."""

    path: Path
    records: int
    bytes: int
    sha256: str


def output_error(exc: OSError, path: Path, doing: str) -> OutputError:
    """One sentence naming the path, what failed and the fix, for any OSError."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free disk space (or raise the quota/file-size limit) or choose another --out"
    elif code in (errno.EACCES, errno.EPERM):
        fix = "fix the folder's permissions or choose another --out"
    elif code == errno.EROFS:
        fix = "the file system is read-only; choose another --out"
    elif code in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        fix = "a part of that path is a file where a folder is needed; choose another --out"
    else:
        fix = "check the disk and the folder, or choose another --out"
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"Could not {doing} {path}: {reason}; {fix}.")


def _compressor(compression: Compression) -> Callable[[bytes], bytes]:
    """A function turning one page into one self-contained member/frame (or itself)."""
    if compression == "gzip":
        # wbits=31: a complete gzip member with mtime 0, so equal input gives equal bytes.
        return lambda data: zlib.compress(data, GZIP_LEVEL, wbits=31)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compress
    if compression == "none":
        return lambda data: data
    raise ValueError(f"unknown compression {compression!r}")


def fsync_dir(folder: Path) -> None:
    """Persist a rename in ``folder``; file systems that cannot fsync a folder are let be."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # e.g. Windows: a folder cannot be opened; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (OSError as open raises it)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def in_pages(lines: Iterable[bytes], size: int = LINES_PER_WRITE) -> Iterator[list[bytes]]:
    """``lines`` in lists of ``size``: what a file written again appends at a time."""
    page: list[bytes] = []
    for line in lines:
        page.append(line)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def write_atomically(path: Path, data: bytes, doing: str) -> None:
    """Replace ``path`` with ``data`` whole or not at all: a temporary file of a unique name
    (a stray one from a killed run is never reused half-written), fsync, rename, fsync of the
    folder. ``doing`` names the write in the OutputError a failure raises."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "wb") as file:  # open(), not mkstemp: the user's umask applies
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise output_error(exc, path, doing) from exc


class JsonlFile:
    """The records of one window, appended to ``.<name>.part`` and renamed into place at commit.

    The JSONL sink. Its methods block: the engine runs every file and manifest operation of
    an export, one call at a time, in one worker thread, so a call is never interleaved with
    another and a cancelled await never leaves half of one done (the thread finishes it).
    """

    def __init__(self, final_path: Path, compression: Compression, *, part: str = "part") -> None:
        self.final_path = final_path
        self.compression: Compression = compression
        self.part_path = final_path.with_name(f".{final_path.name}.{part}")
        self._compress = _compressor(compression)
        self._file: BinaryIO | None = None
        self._sha = hashlib.sha256()
        self._records = 0
        self._bytes = 0
        self._failed = False
        self._cache_from = 0  # the next release starts here: earlier bytes were released
        self._cache_kicked = 0  # writeback was started for the bytes before this offset

    @property
    def records(self) -> int:
        return self._records

    @property
    def bytes_written(self) -> int:
        return self._bytes

    def create(self) -> None:
        """Create (or truncate) the part file."""
        self._close_quietly()
        with self._guard("create the partial file"):
            self.part_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.part_path, "wb")  # noqa: SIM115  # held until commit/discard
        self._reset(0, 0)

    def resume(self, offset: int, records: int) -> None:
        """Reopen the part file at a checkpoint (``offset`` bytes holding ``records``) to
        continue it; offset 0 keeps nothing, so it simply starts afresh."""
        if not offset:
            if records:
                raise ValueError("a resume with records needs a non-zero byte offset")
            self.create()
            return
        try:
            size = self.part_path.stat().st_size
        except FileNotFoundError:
            size = -1
        if size < offset:
            raise PartFileLost(
                f"The partial file {self.part_path} is missing or shorter than its checkpoint "
                f"({offset} bytes); the window will be fetched again."
            )
        self._close_quietly()
        with self._guard("reopen the partial file"):
            self._file = open(self.part_path, "r+b")  # noqa: SIM115  # held until commit/discard
            self._file.truncate(offset)  # drop bytes written after the checkpoint
            self._reset(offset, records)
            while chunk := self._file.read(_READ_CHUNK):
                self._sha.update(chunk)
            self._file.seek(offset)

    def append(self, records: Sequence[Buffer]) -> None:
        """Append ``records`` (one compact JSON document each) as JSONL, one member/frame."""
        if records:
            self._append(b"\n".join([*records, b""]), len(records))

    def written(self) -> Iterator[bytes]:
        """The records appended so far, read back from the part file; PartFileLost when it
        does not read back as whole records (damaged after its checkpoint was written)."""
        if self._file is not None:
            with self._guard("flush"):
                self._file.flush()
        return _whole(self.part_path)

    def sync(self) -> tuple[int, int]:
        """Make everything written so far durable; return the (offset, records) to resume at."""
        file = self._writable()
        with self._guard("flush"):
            file.flush()
            os.fsync(file.fileno())
        self._release_cache(file, synced=True)
        return self._bytes, self._records

    def commit(self) -> FileDigest:
        """Fsync, rename onto the final path atomically, fsync the folder; return the digest."""
        if self._bytes == 0 and self.compression != "none":
            self._append(b"", 0)  # an empty member/frame: `zcat`/`zstdcat` accept the file
        self.sync()
        file = self._writable()
        with self._guard("move the finished file into place as", self.final_path):
            file.close()
            self._file = None
            os.replace(self.part_path, self.final_path)
        try:
            fsync_dir(self.final_path.parent)
        except OSError as exc:
            # Not known to be durable, so not complete: no final file may outlive the error.
            self.final_path.unlink(missing_ok=True)
            raise output_error(exc, self.final_path.parent, "sync the folder") from exc
        return FileDigest(self.final_path, self._records, self._bytes, self._sha.hexdigest())

    def commit_instead(self, pages: Iterable[Sequence[Buffer]]) -> FileDigest:
        """Commit the records of ``pages`` in place of what was appended (a window whose lines
        are merged at the end, or rewritten with refreshed records), then delete the part
        file; ``pages`` may be a generator, so a whole day never needs to be in memory.

        They go through a part file of their own: the appended part stays exactly as its
        checkpoint describes until the final file is in place, so a kill at any moment leaves
        a state the next run resumes from (it truncates a leftover merge part on ``create``)."""
        merged = JsonlFile(self.final_path, self.compression, part=MERGE_PART)
        merged.create()
        try:
            for records in pages:
                merged.append(records)
            digest = merged.commit()
        except BaseException:
            merged.discard()
            raise
        self.discard()
        return digest

    def close(self) -> None:
        """Close the part file but keep it, so a later run can resume from its checkpoint."""
        self._close_quietly()

    def discard(self) -> None:
        """Close and delete the part file (and a merge part a killed commit left); safe to
        call in any state, including after errors."""
        self._close_quietly()
        with self._guard("remove the partial file"):
            self.part_path.unlink(missing_ok=True)
            self.part_path.with_name(f".{self.final_path.name}.{MERGE_PART}").unlink(
                missing_ok=True
            )

    # -- internals -------------------------------------------------------------------------

    def _guard(self, doing: str, path: Path | None = None) -> _Guard:
        return _Guard(self, doing, path or self.part_path)

    def _reset(self, offset: int, records: int) -> None:
        self._sha = hashlib.sha256()
        self._bytes, self._records, self._failed = offset, records, False
        self._cache_from = self._cache_kicked = 0

    def _append(self, lines: bytes, records: int) -> None:
        file = self._writable()
        data = self._compress(lines)
        with self._guard("write"):
            file.write(data)
        self._sha.update(data)
        self._bytes += len(data)
        self._records += records
        if self._bytes - self._cache_kicked >= _RELEASE_CACHE_BYTES:
            self._release_cache(file)

    def _release_cache(self, file: BinaryIO, *, synced: bool = False) -> None:
        """Drop the part file's cached pages that are on disk, and start writing back the rest.

        DONTNEED drops clean pages and starts writeback of dirty ones, which stay cached; so each
        call covers the bytes kicked by the call before it, by now written, and kicks the new
        ones. After an fsync every page is clean and the whole file goes. Advice only: errors
        (a file system that ignores it) change nothing.
        """
        if not _CAN_RELEASE_CACHE:
            return
        start = 0 if synced else self._cache_from
        with contextlib.suppress(OSError):
            os.posix_fadvise(file.fileno(), start, 0, os.POSIX_FADV_DONTNEED)
        self._cache_from = self._bytes if synced else self._cache_kicked
        self._cache_kicked = self._bytes

    def _writable(self) -> BinaryIO:
        if self._failed:
            raise OutputError(f"The partial file {self.part_path} failed earlier; discard it.")
        if self._file is None:
            raise RuntimeError(f"{self.part_path} is not open")
        return self._file

    def _close_quietly(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            # close re-raises a failed flush; the data is being thrown away anyway
            with contextlib.suppress(OSError):
                file.close()


class _Guard:
    """Turn an OSError into an OutputError and mark the window file failed and closed."""

    __slots__ = ("doing", "owner", "path")

    def __init__(self, owner: JsonlFile, doing: str, path: Path) -> None:
        self.owner, self.doing, self.path = owner, doing, path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, OSError):
            self.owner._failed = True
            self.owner._close_quietly()
            raise output_error(exc, self.path, self.doing) from exc


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


def _decoders(path: Path) -> Callable[[], _Decoder] | None:
    name = path.name.removesuffix(".part")  # a part file reads like the file it will become
    if name.endswith(SUFFIXES["gzip"]):
        return lambda: zlib.decompressobj(wbits=31)
    if name.endswith(SUFFIXES["zstd"]):
        return lambda: zstandard.ZstdDecompressor().decompressobj()
    if name.endswith(SUFFIXES["none"]):
        return None
    raise ValueError(f"{path} is not a .jsonl, .jsonl.gz or .jsonl.zst file")


def _plain_chunks(path: Path) -> Iterator[bytes]:
    """The file's decompressed bytes, strictly: a truncated member or frame is an error."""
    new_decoder = _decoders(path)
    with open(path, "rb") as file:
        decoder = None
        while chunk := file.read(_READ_CHUNK):
            if new_decoder is None:
                yield chunk
                continue
            while chunk:  # one member/frame per decoder; the rest of the chunk starts the next
                decoder = decoder or new_decoder()
                yield decoder.decompress(chunk)
                chunk, decoder = (decoder.unused_data, None) if decoder.eof else (b"", decoder)
    if decoder is not None:
        raise OutputError(f"{path} ends inside a compressed member; the file is truncated.")


def _whole(part: Path) -> Iterator[bytes]:
    """``read_records`` of a part file, its damage reported as PartFileLost (refetch)."""
    try:
        yield from read_records(part)
    except OutputError as exc:
        raise PartFileLost(
            f"The partial file {part} does not read back as whole records ({exc}); the "
            "window will be fetched again."
        ) from exc


def read_records(path: Path) -> Iterator[bytes]:
    """Yield each record (one JSON line, without its newline) of a window file.

    Reads every gzip member or zstd frame in turn (part files too); raises OutputError if the
    file is truncated or corrupt.
    """
    rest = b""
    try:
        for chunk in _plain_chunks(path):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
    except (zlib.error, zstandard.ZstdError) as exc:
        raise OutputError(f"{path} is not a valid compressed file: {exc}.") from exc
    if rest:
        raise OutputError(f"{path} ends in the middle of a record; the file is truncated.")

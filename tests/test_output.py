"""Window files on a real disk: hidden until committed, resumable at checkpoints, clear errors."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import orjson
import pytest
import zstandard

from exporter.engine.writer import FilesThread
from exporter.errors import OutputError
from exporter.store.jsonl import SUFFIXES, JsonlFile, PartFileLost, read_records

COMPRESSIONS = ["none", "gzip", "zstd"]
REPO = Path(__file__).resolve().parents[1]


def page(first: int, count: int) -> list[bytes]:
    """``count`` JSON records numbered from ``first``: what is written and what is read back."""
    return [
        orjson.dumps({"conversationId": f"c-{n:06d}", "n": n}) for n in range(first, first + count)
    ]


def window(tmp_path: Path, compression: str) -> JsonlFile:
    return JsonlFile(tmp_path / "conversations" / f"2026-11-01{SUFFIXES[compression]}", compression)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_part_file_is_invisible_until_commit(tmp_path, compression) -> None:
    """Before commit only the hidden part file exists; after it, only the final file."""
    wf = window(tmp_path, compression)
    wf.create()
    wf.append(page(0, 10))
    wf.sync()
    assert wf.part_path.name == f".{wf.final_path.name}.part" and wf.part_path.exists()
    assert not wf.final_path.exists()
    wf.commit()
    assert wf.final_path.exists() and not wf.part_path.exists()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_committed_file_holds_exactly_the_written_lines(tmp_path, compression) -> None:
    """Several pages read back as exactly their lines, and the digest matches the file."""
    wf = window(tmp_path, compression)
    wf.create()
    expected: list[bytes] = []
    for first in range(0, 3000, 1000):
        lines = page(first, 1000)
        wf.append(lines)
        expected += lines
    digest = wf.commit()
    on_disk = digest.path.read_bytes()
    assert list(read_records(digest.path)) == expected
    assert digest.records == 3000 == wf.records
    assert digest.bytes == len(on_disk) == wf.bytes_written
    assert digest.sha256 == hashlib.sha256(on_disk).hexdigest()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_resume_truncates_past_the_checkpoint_and_continues(tmp_path, compression) -> None:
    """Bytes after the checkpoint (a page, then garbage) vanish; the resumed file is exact."""
    first = window(tmp_path, compression)
    first.create()
    lines_a = page(0, 500)
    first.append(lines_a)
    offset, records = first.sync()
    first.append(page(500, 500))  # written after the checkpoint: must be dropped
    first.close()
    kept = first.part_path.read_bytes()
    first.part_path.write_bytes(kept + b"\x1f\x8b\x08\x00half a member")  # killed mid-write

    second = window(tmp_path, compression)
    second.resume(offset, records)
    lines_c = page(1000, 300)
    second.append(lines_c)
    digest = second.commit()
    assert list(read_records(digest.path)) == lines_a + lines_c
    assert digest.records == 800
    assert digest.sha256 == hashlib.sha256(digest.path.read_bytes()).hexdigest()


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_standard_tools_read_every_member(tmp_path, compression) -> None:
    """The stdlib gzip reader and zstd's multi-frame reader see the same lines as read_records."""
    wf = window(tmp_path, compression)
    wf.create()
    for first in (0, 10, 20):
        wf.append(page(first, 10))
    digest = wf.commit()
    raw = digest.path.read_bytes()
    if compression == "gzip":
        plain = gzip.decompress(raw)
    else:
        plain = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read()
    assert plain.splitlines() == page(0, 30)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_an_empty_window_is_a_valid_empty_file(tmp_path, compression) -> None:
    """A window with no records commits a file that decompresses to nothing."""
    wf = window(tmp_path, compression)
    wf.create()
    digest = wf.commit()
    assert digest.records == 0 and list(read_records(digest.path)) == []
    if compression == "gzip":
        assert gzip.decompress(digest.path.read_bytes()) == b""
    assert digest.bytes == digest.path.stat().st_size


def test_resume_without_the_part_file_asks_for_a_refetch(tmp_path) -> None:
    """A missing or shortened part file raises PartFileLost, an OutputError."""
    wf = window(tmp_path, "gzip")
    with pytest.raises(PartFileLost, match="fetched again"):
        wf.resume(100, 5)
    wf.part_path.parent.mkdir(parents=True)
    wf.part_path.write_bytes(b"x" * 99)
    with pytest.raises(PartFileLost):
        wf.resume(100, 5)
    assert issubclass(PartFileLost, OutputError)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_commit_of_merged_lines_that_dies_leaves_the_checkpoint_resumable(
    tmp_path, compression
) -> None:
    """Merged lines (user details) go through a part file of their own: a commit that dies
    while writing them leaves the appended part byte for byte as checkpointed, so the next
    run resumes it; a commit that completes leaves only the final file."""
    first = window(tmp_path, compression)
    first.create()
    first.append(page(0, 300))
    offset, records = first.sync()
    before = first.part_path.read_bytes()
    with pytest.raises(TypeError):
        first.commit_instead([page(0, 100), [b"{}", None]])  # type: ignore[list-item]  # dies mid-write
    first.close()
    assert first.part_path.read_bytes() == before and not first.final_path.exists()

    second = window(tmp_path, compression)
    second.resume(offset, records)
    assert list(second.written()) == page(0, 300)
    digest = second.commit_instead([page(0, 300)[::-1]])
    assert list(read_records(digest.path)) == page(0, 300)[::-1]
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [digest.path.name]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_part_file_damaged_before_its_checkpoint_asks_for_a_refetch(
    tmp_path, compression
) -> None:
    """A part file that no longer reads back as whole records up to its checkpoint (damaged
    after it was written) raises PartFileLost, so its window is fetched again, never a
    fatal error that stops every later run."""
    first = window(tmp_path, compression)
    first.create()
    first.append(page(0, 300))
    offset, records = first.sync()
    first.close()
    data = first.part_path.read_bytes()
    first.part_path.write_bytes(data[: offset // 2] + b"\x00garbage" * (offset // 8))

    second = window(tmp_path, compression)
    second.resume(offset, records)
    with pytest.raises(PartFileLost, match="fetched again"):
        list(second.written())
    second.discard()


def test_a_parent_that_is_a_file_is_an_output_error(tmp_path) -> None:
    """Writing under a regular file fails with a sentence naming the path; nothing final."""
    (tmp_path / "conversations").write_bytes(b"not a folder")
    wf = window(tmp_path, "none")
    with pytest.raises(OutputError, match="choose another --out") as caught:
        wf.create()
    assert "conversations" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert not wf.final_path.exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_an_unwritable_folder_is_an_output_error(tmp_path) -> None:
    """A folder without write permission gives an OutputError telling to fix permissions."""
    folder = tmp_path / "conversations"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permissions"):
            window(tmp_path, "gzip").create()
    finally:
        folder.chmod(0o700)


FULL_DISK = textwrap.dedent(
    """
    import os, resource, signal, sys
    from pathlib import Path
    import orjson
    from exporter.errors import OutputError
    from exporter.store.jsonl import JsonlFile

    def main(final, compression):
        wf = JsonlFile(Path(final), compression)
        wf.create()
        wf.append([b'{"n":0}'])
        offset, records = wf.sync()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
        noise = [b'{"x":"' + os.urandom(200).hex().encode() + b'"}' for _ in range(200)]
        result = {"offset": offset, "records": records}
        try:
            for _ in range(10):
                wf.append(noise)
        except OutputError as exc:
            result["write"] = str(exc)
        try:
            wf.commit()
        except OutputError as exc:
            result["commit"] = str(exc)
        wf.close()
        sys.stdout.write(orjson.dumps(result).decode())

    main(sys.argv[1], sys.argv[2])
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_full_disk_is_a_clear_error_and_resumable(tmp_path, compression) -> None:
    """EFBIG (a file-size limit standing in for a full disk) is an OutputError; nothing final,
    and a later run resumes from the last checkpoint."""
    wf = window(tmp_path, compression)
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(wf.final_path), compression],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    result = orjson.loads(proc.stdout)
    assert str(wf.part_path) in result["write"] and "free disk space" in result["write"]
    assert "commit" in result  # a failed window refuses to become final
    assert not wf.final_path.exists()

    wf.resume(result["offset"], result["records"])
    wf.append(page(1, 2))
    digest = wf.commit()
    assert [orjson.loads(line)["n"] for line in read_records(digest.path)] == [0, 1, 2]


def test_umask_decides_file_and_folder_modes(tmp_path) -> None:
    """Files and folders get 0o666/0o777 minus the umask, like any other tool's output."""
    for umask, file_mode, dir_mode in ((0o027, 0o640, 0o750), (0o002, 0o664, 0o775)):
        old = os.umask(umask)
        try:
            wf = JsonlFile(tmp_path / f"u{umask:o}" / "w.jsonl.zst", "zstd")
            wf.create()
            wf.append(page(0, 3))
            digest = wf.commit()
        finally:
            os.umask(old)
        assert stat.S_IMODE(digest.path.stat().st_mode) == file_mode
        assert stat.S_IMODE(digest.path.parent.stat().st_mode) == dir_mode


def test_discard_leaves_nothing_behind(tmp_path) -> None:
    """discard() removes the part file, creates no final file, and may be repeated."""
    wf = window(tmp_path, "gzip")
    wf.create()
    wf.append(page(0, 5))
    wf.discard()
    wf.discard()
    assert list((tmp_path / "conversations").iterdir()) == []


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_read_records_refuses_a_truncated_file(tmp_path, compression) -> None:
    """Cutting the last bytes off a file makes read_records raise instead of yielding less."""
    wf = window(tmp_path, compression)
    wf.create()
    wf.append(page(0, 100))
    digest = wf.commit()
    raw = digest.path.read_bytes()
    digest.path.write_bytes(raw[:-3])
    with pytest.raises(OutputError, match=r"truncated|not a valid"):
        list(read_records(digest.path))


def resident_fraction(path: Path) -> float:
    """The share of ``path``'s pages in the page cache, asked of the kernel with mincore(2)."""
    import ctypes
    import mmap

    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]  # fmt: skip
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    with open(path, "rb") as file:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, file.fileno(), 0)
        assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            vector = ctypes.create_string_buffer(pages)
            assert libc.mincore(address, size, vector) == 0, os.strerror(ctypes.get_errno())
        finally:
            libc.munmap(address, size)
    return sum(byte & 1 for byte in vector.raw) / pages


def drops_cached_pages(folder: Path) -> bool:
    """Whether this file system lets written pages go on DONTNEED (tmpfs, for one, cannot)."""
    probe = folder / "probe"
    with open(probe, "wb") as file:
        file.write(b"x" * (1 << 20))
        file.flush()
        os.fsync(file.fileno())
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    dropped = resident_fraction(probe) < 0.5
    probe.unlink()
    return dropped


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here")
def test_written_pages_leave_the_page_cache_once_on_disk(tmp_path) -> None:
    """A checkpointed part file and a committed file are no longer held in the page cache."""
    if not drops_cached_pages(tmp_path):
        pytest.skip("this file system keeps written pages cached whatever it is told")
    wf = window(tmp_path, "none")
    wf.create()
    records = [b'{"x":"' + b"y" * 4000 + b'"}'] * 1000  # ~4 MB a page, as the API's pages
    wf.append(records)
    assert resident_fraction(wf.part_path) > 0.5  # under the release step: cached, and seen
    for _ in range(2):
        wf.append(records)
    wf.sync()
    assert resident_fraction(wf.part_path) < 0.05
    wf.append(records)
    digest = wf.commit()
    assert resident_fraction(digest.path) < 0.05
    assert digest.records == 4000 and sum(1 for _ in read_records(digest.path)) == 4000


async def test_the_files_thread_keeps_the_event_loop_running(tmp_path) -> None:
    """While a large gzip page is compressed in the files thread, other tasks run."""
    files, wf = FilesThread(), window(tmp_path, "gzip")
    await files.call(wf.create)
    writing = asyncio.create_task(files.call(wf.append, page(0, 150_000)))
    ticks = 0
    while not writing.done():
        await asyncio.sleep(0)
        ticks += 1
    await writing
    files.close()
    wf.discard()
    assert ticks > 10


async def test_a_cancelled_call_still_runs_whole_before_close_returns(tmp_path) -> None:
    """Cancelling the await on a files-thread call never stops the call half-way: once the
    thread is closed, the operation is done and the file agrees with its counters."""
    files, wf = FilesThread(), window(tmp_path, "zstd")
    await files.call(wf.create)
    started = threading.Event()

    def slow_page() -> None:
        started.set()
        time.sleep(0.05)
        wf.append(page(0, 20_000))

    call = asyncio.create_task(files.call(slow_page))
    await asyncio.to_thread(started.wait)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    files.close()
    digest = wf.commit()
    assert digest.records == 20_000 == len(list(read_records(digest.path)))

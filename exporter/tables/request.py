"""What a build is asked to do, and the bounds it may use: memory and threads.

Kept apart from the build, which imports DuckDB: ``run`` makes its request before it exports,
and an export's process never loads DuckDB (about 25 MB of memory).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from exporter.errors import ConfigError
from exporter.tables.parquet import Layout, check_layout

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?I?B)$", re.IGNORECASE)
_UNIT = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
         "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip
# What the build process holds outside DuckDB's buffer pool, measured at peak RSS
# (benchmarks/README.md#tables): ~85 MB before DuckDB allocates anything (the interpreter and
# the library), ~15 MB more per thread, and up to ~160 MB in all at 2 threads on 650 MB day
# files. The pool gets the rest of --memory-limit.
_PROCESS_BYTES = 160 * 10**6
_THREAD_BYTES = 16 * 10**6
# The pool a day's stage needs grows with the threads reading it: 128 MB a thread built
# 200,000 conversations at 1, 2 and 4 threads, while 213 MiB at 2 threads and 427 MiB at 4
# ran out of memory.
_POOL_PER_THREAD = 128 * 10**6


def parse_size(text: str) -> int | None:
    """``512MB`` (DuckDB's units: KB = 1000, KiB = 1024) in bytes; None if it is no size."""
    match = _SIZE.match(text.strip())
    if match is None or match.group(2).upper() not in _UNIT:
        return None
    return int(float(match.group(1)) * _UNIT[match.group(2).upper()])


@dataclass(frozen=True, slots=True)
class Limits:
    """One build's bounds: the whole process's memory (its peak RSS), and DuckDB's threads."""

    memory_bytes: int = 512 * 10**6
    threads: int = 2

    @classmethod
    def fitting(cls, memory_bytes: int) -> Limits:
        """As many threads as there are cores for this process, and the memory allows."""
        if hasattr(os, "sched_getaffinity"):  # the cores this process may run on
            cores = len(os.sched_getaffinity(0))
        else:
            cores = os.cpu_count() or 1
        fit = (memory_bytes - _PROCESS_BYTES) // (_THREAD_BYTES + _POOL_PER_THREAD)
        return cls(memory_bytes, max(1, min(cores, fit)))

    @property
    def pool_bytes(self) -> int:
        """DuckDB's memory limit: what the process may hold, less what it holds outside."""
        return self.memory_bytes - _PROCESS_BYTES - _THREAD_BYTES * self.threads

    @property
    def minimum_bytes(self) -> int:
        return _PROCESS_BYTES + (_THREAD_BYTES + _POOL_PER_THREAD) * self.threads


@dataclass(frozen=True, slots=True)
class TablesRequest:
    """What ``genesys-export tables`` was asked to do."""

    out_dir: Path
    layout: Layout = "flat"
    memory_limit: str = "512MB"  # the process's bound; DuckDB spills to disk beyond its share
    threads: int | None = None  # None: the cores available, as many as the memory allows
    full: bool = False  # ignore what was built: build every window again

    def __post_init__(self) -> None:
        check_layout(self.layout)
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads {self.threads} must be at least 1.")
        limits = self.limits  # checked here, before the build takes the folder's lock
        if limits.memory_bytes < limits.minimum_bytes:
            fewer = ", or fewer --threads" if limits.threads > 1 else ""
            raise ConfigError(
                f"--memory-limit {self.memory_limit} is below what a build needs at "
                f"{limits.threads} thread{'s' if limits.threads > 1 else ''} "
                f"({limits.minimum_bytes // 10**6}MB); give more{fewer}."
            )

    @property
    def limits(self) -> Limits:
        size = parse_size(self.memory_limit)
        if size is None:
            raise ConfigError(
                f"--memory-limit {self.memory_limit!r} is not a size; give one such as 512MB "
                "or 2GB."
            )
        return Limits.fitting(size) if self.threads is None else Limits(size, self.threads)

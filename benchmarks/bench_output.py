"""How fast a window file takes job pages: join, compression, sha256, write, commit.

Builds sandbox records in memory (not timed), then writes them as 5 MB pages (1,000 records)
through ``exporter.output.JsonlFile`` for each compression, and prints MB/s of JSONL taken
and the compression ratio. Runs in one process; the output goes to a temporary folder.

    python -m benchmarks.bench_output --pages 50
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from exporter.store.jsonl import SUFFIXES, Compression, JsonlFile
from genesys_sandbox import DatasetSpec
from genesys_sandbox.data import Dataset

PAGE_RECORDS = 1000


def write_rate(
    pages: list[list[bytes]], compression: Compression, folder: Path
) -> tuple[float, float]:
    """(MB/s of JSONL taken, compression ratio) for ``pages`` written to one window file."""
    file = JsonlFile(folder / f"window{SUFFIXES[compression]}", compression)
    file.create()
    began = time.perf_counter()
    for page in pages:
        file.append(page)
    digest = file.commit()
    elapsed = time.perf_counter() - began
    jsonl = sum(len(record) + 1 for page in pages for record in page)
    return jsonl / elapsed / 1e6, jsonl / digest.bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args()
    spec = DatasetSpec(
        conversations=args.pages * PAGE_RECORDS, start=datetime(2026, 11, 1, tzinfo=UTC), days=7
    )
    data = Dataset.build(spec)
    records = [data.job_record(i) for i in range(len(data))]
    pages = [records[i : i + PAGE_RECORDS] for i in range(0, len(records), PAGE_RECORDS)]
    for compression in ("none", "zstd", "gzip"):
        with tempfile.TemporaryDirectory(prefix="bench-output-") as folder:
            rate, ratio = write_rate(pages, compression, Path(folder))
        print(f"{compression:5s} {rate:6.0f} MB/s, {ratio:4.1f}x smaller")


if __name__ == "__main__":
    main()

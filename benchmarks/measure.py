"""A small, fresh parent process that runs one command and records its CPU time and peak RSS.

    python -m benchmarks.measure RESULT.json -- COMMAND ...

Why a wrapper: on Linux a child's ``ru_maxrss`` starts from the memory of the process it was
forked from (exec keeps the old address space's high-water mark), so a child started directly by
the benchmark harness, which holds a million ids after checking an export, would inherit that
figure. Started from this small process, the command's peak RSS is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main() -> int:
    result_path, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        print("usage: python -m benchmarks.measure RESULT.json -- COMMAND ...", file=sys.stderr)
        return 2
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = code = os.waitstatus_to_exitcode(status)
    result = {
        "exit_code": code,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "user_s": round(usage.ru_utime, 3),
        "system_s": round(usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
    }
    with open(result_path, "w", encoding="utf-8") as file:
        json.dump(result, file)
    return code if code >= 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run the genesys-export CLI on uvloop, for an A/B against the default asyncio loop.

    python -m benchmarks.with_uvloop export --start 2026-11-01 --end 2026-11-08 ...

Needs ``pip install uvloop`` (not a dependency of the exporter). Installs uvloop's event loop
policy, so the CLI's ``asyncio.run`` gets a uvloop loop; nothing else changes.
"""

from __future__ import annotations

import sys

import uvloop

from exporter.cli import main

if __name__ == "__main__":
    uvloop.install()
    sys.exit(main(sys.argv[1:]))

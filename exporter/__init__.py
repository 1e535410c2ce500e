"""genesys-exporter: bulk export of Genesys Cloud data over OAuth client credentials."""

from __future__ import annotations

__version__ = "0.1.0"

"""The bundled sandbox: an aiohttp.web emulation of the Genesys Cloud endpoints the exporter uses
(OAuth client credentials, conversation details jobs and query, users), with settable latency,
rate limits, job timing and fault injection, and counters of what it saw."""

from __future__ import annotations

from exporter.sandbox.clock import ManualClock
from exporter.sandbox.data import Dataset, DatasetSpec
from exporter.sandbox.server import Sandbox, ThreadedSandbox, run_sandbox_in_thread
from exporter.sandbox.settings import FaultRule, SandboxSettings, fault_mix
from exporter.sandbox.stats import SandboxStats

__all__ = [
    "Dataset",
    "DatasetSpec",
    "FaultRule",
    "ManualClock",
    "Sandbox",
    "SandboxSettings",
    "SandboxStats",
    "ThreadedSandbox",
    "fault_mix",
    "run_sandbox_in_thread",
]

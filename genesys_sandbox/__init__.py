"""The bundled sandbox: an aiohttp.web emulation of the Genesys Cloud endpoints the exporter uses
(OAuth client credentials, conversation details jobs and query, the entity listings the
conversations refer to, their evaluations, surveys and forms), with settable latency, rate
limits, permissions, drift, job timing and fault injection, and counters of what it saw."""

from __future__ import annotations

from genesys_sandbox.clock import ManualClock
from genesys_sandbox.data import Dataset, DatasetSpec
from genesys_sandbox.server import (
    ListingTruth,
    QualityTruth,
    Sandbox,
    ThreadedSandbox,
    run_sandbox_in_thread,
)
from genesys_sandbox.settings import FaultRule, SandboxSettings, fault_mix
from genesys_sandbox.stats import SandboxStats

__all__ = [
    "Dataset",
    "DatasetSpec",
    "FaultRule",
    "ListingTruth",
    "ManualClock",
    "QualityTruth",
    "Sandbox",
    "SandboxSettings",
    "SandboxStats",
    "ThreadedSandbox",
    "fault_mix",
    "run_sandbox_in_thread",
]

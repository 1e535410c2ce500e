"""What the middleware learned about the request being served, for its handler to read."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from genesys_sandbox.settings import FaultRule


@dataclass(slots=True)
class Call:
    """One request's facts: its caller, the in-handler fault it drew, whether it was dropped."""

    token: str = ""  # the caller's valid bearer token
    fault: FaultRule | None = None  # an in-handler fault (job-failed, empty-listing, ...)
    dropped: bool = False  # no status line was ever sent

    def faulted(self, kind: str) -> FaultRule | None:
        """The in-handler fault of this request if it is of ``kind``."""
        return self.fault if self.fault is not None and self.fault.kind == kind else None


# Each request is served in its own task, so a context variable is per request.
CALL: ContextVar[Call] = ContextVar("sandbox_call")

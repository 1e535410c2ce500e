"""OpenLineage run events: START when a command begins, then one COMPLETE, FAIL or ABORT.

The events go where the openlineage-python client's own configuration says: ``openlineage.yml``
(at ``OPENLINEAGE_CONFIG``, in the working directory or in ``~/.openlineage``),
``OPENLINEAGE__TRANSPORT__*`` variables, or ``OPENLINEAGE_URL``. With none of them nothing is
sent, nothing said, and the client is not even imported (it costs half a second);
``OPENLINEAGE_DISABLED=true`` turns it off too. A transport that fails costs one warning and
no later event of the run; it never changes an exit code.

What a run says (the ``Summary`` or ``BuildSummary`` mapping lives here):

- job: namespace ``output.lineage_namespace``, name the command (``export``, ``tables``), a
  ``jobType`` facet (BATCH);
- run: a UUIDv7 from the client; a ``processing_engine`` facet (genesys-export and its
  version); on the end, ``tags`` with the exporter's own run id (the manifest's), the status and
  the exit code, and on FAIL an ``errorMessage`` facet;
- outputs: each dataset folder (namespace ``file``, name its absolute path, as the naming spec
  names local files), with ``outputStatistics`` on the end: the records, bytes and files the
  run committed; for ``tables``, each table's Parquet folder with its rows after the build,
  and as inputs the dataset folders it read.

The end is COMPLETE for exit 0, ABORT for a run stopped by a signal (130), FAIL otherwise, a
run the lock refused (75) included: its START was sent before the lock was asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter import __version__
from exporter.config import OutputSettings
from exporter.errors import ExportError, Interrupted
from exporter.summary import Summary

if TYPE_CHECKING:  # the client is imported only when it is configured
    from openlineage.client import OpenLineageClient

    from exporter.tables import BuildSummary

log = logging.getLogger(__name__)
PRODUCER = f"urn:genesys-exporter:{__version__}"
FILES = "file"  # the naming spec's namespace of local files, named by their absolute path
ENGINE = "genesys-export"
CLOSE_TIMEOUT_S = 10.0  # a transport that queues (async HTTP) gets this long to send the end


@dataclass(frozen=True, slots=True)
class Written:
    """A dataset a run wrote: its folder, and the rows, bytes and files it committed (None:
    not counted)."""

    path: Path
    rows: int | None = None
    bytes: int | None = None
    files: int | None = None


def configured(env: Mapping[str, str], cwd: Path, home: Path) -> bool:
    """Whether the openlineage-python client has a configuration of its own, in the places it
    reads, and is not turned off."""
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OPENLINEAGE_URL") or any(name.startswith("OPENLINEAGE__") for name in env):
        return True
    files = (env.get("OPENLINEAGE_CONFIG"), cwd / "openlineage.yml",
             home / ".openlineage" / "openlineage.yml")  # fmt: skip
    return any(path and Path(path).is_file() for path in files)


class LineageRun:
    """One run's events about the export folder ``out_dir``: START, then one end. Without a
    client, nothing."""

    def __init__(
        self, client: OpenLineageClient | None, namespace: str, job: str, out_dir: Path
    ) -> None:
        self._client = client
        self._namespace, self._job = namespace, job
        self._out = _absolute(out_dir)
        self._run_id = ""
        if client is not None:
            from openlineage.client.uuid import generate_new_uuid

            self._run_id = str(generate_new_uuid())

    def start(self, datasets: Iterable[str]) -> LineageRun:
        """Send START, naming the datasets the run is to write."""
        self._emit("START", [Written(self._out / name) for name in datasets], (), {})
        return self

    def finish_export(self, summary: Summary) -> None:
        """Send the end of an export, with what it committed of each dataset."""
        outputs = [
            Written(self._out / name, f["records"], f["bytes"], f["files"])
            for name, f in summary.datasets.items()
        ]
        reasons = [*summary.denied, *summary.failed_windows]
        error = summary.error or "; ".join(reasons) or summary.status
        tags = {"run_id": summary.run_id, "status": summary.status}
        self.finish(summary.exit_code, outputs, error=error, tags=tags)

    def finish_tables(self, result: BuildSummary | ExportError) -> None:
        """Send the end of a tables build: each table with its rows, read from the dataset
        folders it built; or the error that ended it."""
        if isinstance(result, ExportError):
            status = {"status": result.summary_status}
            self.finish(result.exit_code, (), error=str(result), tags=status)
            return
        tables = [Written(self._out / "tables" / t, rows) for t, rows in result.rows.items()]
        read = sorted({entry.split("/")[0] for entry in (*result.built, *result.removed)})
        inputs = [Written(self._out / name) for name in read]
        self.finish(0, tables, inputs=inputs, tags={"status": result.status})

    def finish(
        self,
        exit_code: int,
        outputs: Sequence[Written],
        *,
        inputs: Sequence[Written] = (),
        error: str | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> None:
        """Send the end: COMPLETE for exit 0, ABORT for a signal's 130, else FAIL with
        ``error``; then let the client flush."""
        state = _state(exit_code)
        facets: dict[str, Any] = {"tags": {**(tags or {}), "exit_code": str(exit_code)}}
        if state == "FAIL":
            facets["error"] = error or f"exit {exit_code}"
        self._emit(state, outputs, inputs, facets)
        if self._client is not None:
            self._quietly(lambda client: client.close(timeout=CLOSE_TIMEOUT_S))

    def _emit(
        self, state: str, outputs: Sequence[Written], inputs: Sequence[Written],
        facets: Mapping[str, Any],
    ) -> None:  # fmt: skip
        if self._client is not None:
            event = _event(state, self._run_id, (self._namespace, self._job), outputs, inputs,
                           facets)  # fmt: skip
            self._quietly(lambda client: client.emit(event))

    def _quietly(self, send: Callable[[OpenLineageClient], object]) -> None:
        """Run ``send(client)``; a failure is one warning, and the run sends nothing more."""
        assert self._client is not None
        try:
            send(self._client)
        except Exception as exc:  # the client's transports raise anything (HTTP, files, Kafka)
            log.warning("%s", _unsent(exc))
            self._client = None


def begin(job: str, output: OutputSettings, *, datasets: Iterable[str] = ()) -> LineageRun:
    """Start ``job``'s run over ``output.out_dir``: if the client is configured, send START
    naming the ``datasets`` it is to write; else a run that sends nothing."""
    run = LineageRun(None, output.lineage_namespace, job, output.out_dir)
    if not configured(os.environ, Path.cwd(), Path.home()):
        return run
    try:
        from openlineage.client import OpenLineageClient

        client = OpenLineageClient()
    except Exception as exc:  # a configuration the client cannot use: its own error
        log.warning("%s", _unsent(exc))
        return run
    return LineageRun(client, output.lineage_namespace, job, output.out_dir).start(datasets)


def _state(exit_code: int) -> str:
    if exit_code == 0:
        return "COMPLETE"
    return "ABORT" if exit_code == Interrupted.exit_code else "FAIL"


def _event(
    state: str,
    run_id: str,
    job: tuple[str, str],
    outputs: Sequence[Written],
    inputs: Sequence[Written],
    facets: Mapping[str, Any],
) -> Any:
    """The client's RunEvent for this moment of the run."""
    from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState

    return RunEvent(
        eventType=RunState(state),
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=run_id, facets=_run_facets(facets)),
        job=Job(namespace=job[0], name=job[1], facets=_job_facets()),
        inputs=[InputDataset(namespace=FILES, name=str(i.path)) for i in inputs],
        outputs=[_output(o) for o in outputs],
        producer=PRODUCER,
    )


def _run_facets(given: Mapping[str, Any]) -> dict[str, Any]:
    from openlineage.client.facet_v2 import error_message_run, processing_engine_run, tags_run

    facets: dict[str, Any] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=__version__, name=ENGINE, producer=PRODUCER
        )
    }
    if "tags" in given:
        fields = [tags_run.TagsRunFacetFields(key=k, value=v, source=ENGINE)
                  for k, v in given["tags"].items() if v is not None]  # fmt: skip
        facets["tags"] = tags_run.TagsRunFacet(tags=fields, producer=PRODUCER)
    if "error" in given:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=given["error"], programmingLanguage="python", producer=PRODUCER
        )
    return facets


def _job_facets() -> dict[str, Any]:
    from openlineage.client.facet_v2 import job_type_job

    kind = job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="GENESYS_EXPORT", jobType="JOB", producer=PRODUCER
    )
    return {"jobType": kind}


def _output(written: Written) -> Any:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset as statistics

    facets: dict[str, Any] = {}
    if written.rows is not None:
        facets["outputStatistics"] = statistics.OutputStatisticsOutputDatasetFacet(
            rowCount=written.rows, size=written.bytes, fileCount=written.files, producer=PRODUCER
        )
    return OutputDataset(namespace=FILES, name=str(written.path), outputFacets=facets)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _unsent(exc: Exception) -> str:
    """The one warning of a run whose events stop: what the client said, and the fix."""
    said = " ".join(str(exc).split())[:300] or type(exc).__name__
    return (
        f"OpenLineage events are not sent for this run ({said}); check the openlineage-python "
        "client's configuration (openlineage.yml, OPENLINEAGE_URL, OPENLINEAGE__TRANSPORT__*)."
    )

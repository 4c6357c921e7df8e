"""OpenLineage run events of reads and writes, through the openlineage-python client's transports.

Off by default; set per environment in ``lakeio.yaml`` (``lineage:``, see
:class:`~lakeio.config.LineageSettings`) with ``transport: console``, ``file`` (one JSON event per
line, appended) or ``http`` (a lineage server such as Marquez). It needs the ``lineage`` extra
(``pip install 'lakeio[lineage]'``).

Each read, count, write or merge that ends emits one ``COMPLETE`` (or ``FAIL``) run event:

* the job: ``namespace`` of the settings, name ``job`` of the settings, else ``$LAKEIO_JOB`` (the
  pipeline step), else ``<dataset>.<operation>``;
* the dataset, as an input of a read and an output of a write, named from its location as the
  OpenLineage naming spec does (``file`` + the absolute path; ``s3://bucket`` + the key prefix), with
  the ``schema`` facet (the contract's columns, else the data's), ``version`` (the Delta version),
  ``dataQualityMetrics`` and ``dataQualityAssertions`` from the validation report, and, for an output,
  ``outputStatistics`` (rows, bytes, files written);
* on a failure, the run's ``errorMessage`` facet.

An event that cannot be sent is logged on ``lakeio.lineage`` at WARNING: lineage never fails an I/O.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import TYPE_CHECKING, Any

from lakeio.errors import EngineUnavailableError

if TYPE_CHECKING:
    from lakeio.config import LineageSettings
    from lakeio.metrics import IORecord
    from lakeio.requests import ResolvedDataset
    from lakeio.storage import Location
    from lakeio.validation.report import ValidationReport

logger = logging.getLogger("lakeio.lineage")
INPUT_OPERATIONS = ("read", "count", "validate")


def dataset_identity(location: Location) -> tuple[str, str]:
    """(namespace, name) of a dataset's location, as the OpenLineage naming spec names files.

    Example:
        >>> from lakeio.storage import Location
        >>> dataset_identity(Location("s3", "lake/flights"))
        ('s3://lake', 'flights')
        >>> dataset_identity(Location("file", "/data/flights"))
        ('file', '/data/flights')
    """
    if location.scheme == "s3":
        bucket, _, key = location.path.partition("/")
        return f"s3://{bucket}", key or "/"
    return "file", location.path


class Lineage:
    """Builds and sends the run events of one environment's I/O."""

    def __init__(self, settings: LineageSettings, env: str):
        self.settings, self.env = settings, env
        self._client: Any = None

    def client(self) -> Any:
        """The OpenLineage client with the configured transport (made on first use).

        Raises:
            EngineUnavailableError: openlineage-python is not installed.
        """
        if self._client is None:
            try:
                from openlineage.client import OpenLineageClient
            except ImportError as error:
                raise EngineUnavailableError("lineage needs openlineage-python: pip install 'lakeio[lineage]'") \
                    from error
            self._client = OpenLineageClient(transport=self._transport())
        return self._client

    def _transport(self) -> Any:
        settings = self.settings
        if settings.transport == "console":
            from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport

            return ConsoleTransport(ConsoleConfig())
        if settings.transport == "file":
            from openlineage.client.transport.file import FileConfig, FileTransport

            assert settings.path is not None  # the settings require it
            return FileTransport(FileConfig(log_file_path=settings.path, append=True))
        from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider
        from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG

        assert settings.url is not None  # the settings require it
        auth = ApiKeyTokenProvider({"apiKey": settings.api_key.get_secret_value()}) if settings.api_key \
            else TokenProvider({})
        retry = {**DEFAULT_RETRY_CONFIG, "total": settings.retries, "read": settings.retries,
                 "connect": settings.retries}
        return HttpTransport(HttpConfig(url=settings.url, endpoint=settings.endpoint, timeout=settings.timeout,
                                        auth=auth, retry=retry))

    def emit(self, target: ResolvedDataset, record: IORecord, error: BaseException | None,
             schema: list[tuple[str, str]] | None) -> None:
        """Sends the run event of one I/O; a failure to send is logged, never raised."""
        try:
            event = self.event(target, record, error, schema)
            self.client().emit(event)
        except Exception as failure:  # lineage is an observer: it never fails the I/O
            logger.warning("lineage: cannot emit the %s event of dataset %r [%s]: %s: %s", record.operation,
                           target.name, self.env, type(failure).__name__, failure)

    def event(self, target: ResolvedDataset, record: IORecord, error: BaseException | None,
              schema: list[tuple[str, str]] | None) -> Any:
        """The OpenLineage ``RunEvent`` of one I/O."""
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job, output_statistics_output_dataset
        from openlineage.client.uuid import generate_new_uuid

        from lakeio import __version__

        namespace, name = dataset_identity(target.location)
        facets = self._dataset_facets(record, schema, record.report)
        job = self.settings.job or os.environ.get("LAKEIO_JOB") or f"{target.name}.{record.operation}"
        job_facets: dict[str, Any] = {"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="LAKEIO",
                                                                jobType=record.operation.upper())}
        run_facets: dict[str, Any] = {}
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"{type(error).__name__}: {error}", programmingLanguage="PYTHON")
        inputs, outputs = [], []
        if record.operation in INPUT_OPERATIONS:
            inputs.append(InputDataset(namespace=namespace, name=name, facets=facets))
        else:
            statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=record.rows, size=record.bytes, fileCount=record.files_written)
            outputs.append(OutputDataset(namespace=namespace, name=name, facets=facets,
                                         outputFacets={"outputStatistics": statistics}))
        return RunEvent(
            eventType=RunState.FAIL if error is not None else RunState.COMPLETE,
            eventTime=dt.datetime.now(dt.UTC).isoformat(),
            run=Run(runId=str(generate_new_uuid()), facets=run_facets),
            job=Job(namespace=self.settings.namespace, name=job, facets=job_facets),
            inputs=inputs, outputs=outputs, producer=f"urn:lakeio:{__version__}")

    def _dataset_facets(self, record: IORecord, schema: list[tuple[str, str]] | None,
                        report: ValidationReport | None) -> dict[str, Any]:
        from openlineage.client.facet_v2 import (
            data_quality_assertions_dataset,
            data_quality_metrics_dataset,
            dataset_version_dataset,
            schema_dataset,
        )

        facets: dict[str, Any] = {}
        if schema:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
                schema_dataset.SchemaDatasetFacetFields(name=column, type=kind) for column, kind in schema])
        if record.version is not None:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(record.version))
        if report is None:
            return facets
        columns: dict[str, dict[str, Any]] = {}
        for metric in report.metrics:
            field = {"count": "count", "distinct_count": "distinctCount", "min": "min", "max": "max"}.get(metric.metric)
            numeric = isinstance(metric.value, (int, float)) and not isinstance(metric.value, bool)
            if metric.column is not None and field is not None and numeric:
                columns.setdefault(metric.column, {})[field] = metric.value
        facets["dataQualityMetrics"] = data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
            rowCount=report.rows, columnMetrics={
                column: data_quality_metrics_dataset.ColumnMetrics(**values) for column, values in columns.items()})
        facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[data_quality_assertions_dataset.Assertion(
                assertion=result.check, success=result.passed, column=result.column, severity=result.severity,
                description=result.message) for result in report.results])
        return facets

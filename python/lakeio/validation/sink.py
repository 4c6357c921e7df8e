"""Where metric records go, and the history checks against earlier runs read back.

One record per metric of a validation run: ``run_id``, ``time``, ``dataset``, ``env``,
``operation``, ``backend``, ``version`` (the Delta table version the run read or committed, else
null), ``partition`` (the call's URI placeholders as ``name=value/...``, else null), ``passed``,
``filtered``, ``column``, ``metric``, ``label``, ``value`` (a number, else null) and ``text`` (the
value as JSON text, for min and max of dates and strings).

The sink is set per environment in ``lakeio.yaml`` (``metrics_sink``, see
:class:`~lakeio.config.MetricsSinkSettings`):

* ``logging`` (the default) sends each record to the ``lakeio.metrics`` logger at INFO, the record
  riding on the log record as ``record.lakeio``; it keeps no history;
* a local path or an ``s3://`` URI (``format: jsonl``) gets one JSON-lines file per run at
  ``<location>/dataset=<name>/<UTC time>-<run id>.jsonl``;
* ``format: delta`` appends each run's records to one Delta table at the URI (partitioned by
  ``dataset``), which the catalog also serves as a dataset (``lake.read("lakeio_metrics")``).

A sink that cannot be written never stops the data: the error is logged on ``lakeio.metrics`` at
ERROR and noted on the I/O record (``extra["metrics_sink_error"]``), unless ``on_error: raise``.
lakeio never configures logging: the application decides where logged records go.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeio.config import MetricsSinkSettings
from lakeio.errors import StorageError
from lakeio.storage import Storage, resolve_location
from lakeio.validation.report import ValidationReport
from lakeio.validation.semantics import History

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeio.metrics import IORecord

logger = logging.getLogger("lakeio.metrics")
LOGGING = "logging"


def record_schema() -> pa.Schema:
    """The Arrow schema of a metric record (the columns of a Delta sink)."""
    import pyarrow as pa

    return pa.schema([("run_id", pa.string()), ("time", pa.timestamp("us", tz="UTC")), ("dataset", pa.string()),
                      ("env", pa.string()), ("operation", pa.string()), ("backend", pa.string()),
                      ("version", pa.int64()), ("partition", pa.string()), ("passed", pa.bool_()),
                      ("filtered", pa.bool_()), ("column", pa.string()), ("metric", pa.string()),
                      ("label", pa.string()), ("value", pa.float64()), ("text", pa.string())])


class MetricsSink:
    """Sends a validation run's metrics to logging, JSON-lines files or a Delta table, and reads
    the earlier runs' values back for history checks.

    Example:
        >>> from lakeio.config import S3Settings
        >>> sink = MetricsSink("logging", Storage(S3Settings()), Path("."))
        >>> sink.target, sink.keeps_history
        ('logging', False)
    """

    def __init__(self, settings: MetricsSinkSettings | str, storage: Storage, base_dir: Path):
        self.settings = settings if isinstance(settings, MetricsSinkSettings) else MetricsSinkSettings(uri=settings)
        self.target = self.settings.uri
        self._storage = storage
        self._location = None if self.target == LOGGING else resolve_location(self.target, base_dir)

    @property
    def keeps_history(self) -> bool:
        """True when earlier runs can be read back (a JSON-lines location or a Delta table)."""
        return self._location is not None

    def records(self, report: ValidationReport, *, version: int | None = None,
                partition: str | None = None) -> list[dict]:
        """One plain-JSON record per metric of the report."""
        at = dt.datetime.now(dt.UTC).isoformat()
        return [{"run_id": report.run_id, "time": at, "dataset": report.dataset, "env": report.env,
                 "operation": report.operation, "backend": report.backend, "version": version,
                 "partition": partition, "passed": report.passed, "filtered": report.filtered,
                 "column": m.column, "metric": m.metric, "label": m.label, "value": _number(m.value),
                 "text": json.dumps(m.value, default=str)} for m in report.metrics]

    def emit(self, report: ValidationReport, record: IORecord | None = None, *, version: int | None = None,
             partition: str | None = None) -> None:
        """Writes the report's metrics. A failure is logged and noted on ``record`` (the I/O goes
        on), or raised with ``on_error: raise``.

        Raises:
            StorageError: the sink cannot be written and ``on_error`` is ``raise``.
        """
        records = self.records(report, version=version, partition=partition)
        if self._location is None:
            for one in records:
                logger.info(json.dumps(one, default=str), extra={"lakeio": one})
            return
        try:
            if self.settings.format == "delta":
                self._append_delta(records)
            else:
                self._write_jsonl(report, records)
        except Exception as error:  # any failure of the sink: the data must not depend on it
            message = f"metrics sink {self._where()}: cannot record run {report.run_id} of dataset " \
                      f"{report.dataset!r}: {type(error).__name__}: {error}"
            if self.settings.on_error == "raise":
                raise StorageError(message) from error
            logger.error(message, extra={"lakeio": {"run_id": report.run_id, "dataset": report.dataset,
                                                    "env": report.env, "metrics_sink_error": message}})
            if record is not None:
                record.extra["metrics_sink_error"] = message

    def history(self, dataset: str, env: str, operation: str) -> History | None:
        """Earlier runs' metrics of ``dataset`` like this one's (same environment and operation;
        passed, not filtered), for history checks: ``history(column, metric, runs)`` gives the
        last ``runs`` values, oldest first, or None when the history cannot be read (logged at
        ERROR). The history is read once, on first use. None when no history is kept (``logging``).

        Raises:
            StorageError: (on use) the history cannot be read and ``on_error`` is ``raise``.
        """
        if self._location is None:
            return None
        loaded: list[list[dict]] = []
        unreadable: list[bool] = []

        def values(column: str | None, metric: str, runs: int) -> list[float] | None:
            if not loaded:
                try:
                    loaded.append(self.runs(dataset, env, operation))
                except StorageError as error:  # like a sink that cannot be written: the data goes on
                    if self.settings.on_error == "raise":
                        raise
                    logger.error("%s; its history checks pass without it", error,
                                 extra={"lakeio": {"dataset": dataset, "env": env, "metrics_sink_error": str(error)}})
                    loaded.append([])
                    unreadable.append(True)
            if unreadable:
                return None
            chosen = [r for r in loaded[0] if r["column"] == column and r["metric"] == metric and r["label"] is None
                      and r["value"] is not None]
            return [float(r["value"]) for r in chosen[-runs:]]

        return values

    def runs(self, dataset: str, env: str, operation: str) -> list[dict]:
        """The metric records of earlier runs of ``dataset`` in ``env`` on ``operation`` that
        history checks compare with (passed, not filtered), oldest first; [] without a history.

        Raises:
            StorageError: the history exists but cannot be read.
        """
        if self._location is None:
            return []
        try:
            rows = self._read_delta(dataset) if self.settings.format == "delta" else self._read_jsonl(dataset)
        except Exception as error:
            raise StorageError(f"metrics sink {self._where()}: cannot read the history of dataset "
                               f"{dataset!r}: {type(error).__name__}: {error}") from error
        rows = [r for r in rows if r["env"] == env and r["operation"] == operation and r["passed"]
                and not r["filtered"]]
        return sorted(rows, key=lambda r: str(r["time"]))

    # -- the formats --------------------------------------------------------------------------------

    def _where(self) -> str:
        assert self._location is not None
        return self._location.uri

    def _write_jsonl(self, report: ValidationReport, records: list[dict]) -> None:
        assert self._location is not None
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        folder = f"{self._location.path}/dataset={report.dataset}"
        text = "".join(json.dumps(one, default=str) + "\n" for one in records)
        filesystem = self._storage.filesystem(self._location)
        filesystem.create_dir(folder, recursive=True)
        with filesystem.open_output_stream(f"{folder}/{stamp}-{report.run_id}.jsonl") as stream:
            stream.write(text.encode("utf-8"))

    def _read_jsonl(self, dataset: str) -> list[dict]:
        from pyarrow import fs

        assert self._location is not None
        filesystem = self._storage.filesystem(self._location)
        folder = f"{self._location.path}/dataset={dataset}"
        if filesystem.get_file_info(folder).type == fs.FileType.NotFound:
            return []
        rows: list[dict] = []
        for info in filesystem.get_file_info(fs.FileSelector(folder)):
            if info.path.endswith(".jsonl"):
                with filesystem.open_input_stream(info.path) as stream:
                    rows.extend(json.loads(line) for line in stream.read().decode("utf-8").splitlines() if line)
        return [{"passed": True, "filtered": False, "value": None, **row} for row in rows]

    def _append_delta(self, records: list[dict]) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake

        assert self._location is not None
        rows = [{**one, "time": dt.datetime.fromisoformat(one["time"])} for one in records]
        table = pa.Table.from_pylist(rows, schema=record_schema())
        write_deltalake(self._location.uri, table, mode="append", partition_by=["dataset"],
                        storage_options=self._storage.delta_options(self._location))

    def _read_delta(self, dataset: str) -> list[dict]:
        import pyarrow.dataset as ds
        from deltalake import DeltaTable

        assert self._location is not None
        options = self._storage.delta_options(self._location)
        if not DeltaTable.is_deltatable(self._location.uri, storage_options=options):
            return []
        data = DeltaTable(self._location.uri, storage_options=options).to_pyarrow_dataset()
        return data.to_table(filter=ds.field("dataset") == dataset).to_pylist()


def _number(value: Any) -> float | None:
    """A metric value as a number for the history, or None (dates, strings, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number

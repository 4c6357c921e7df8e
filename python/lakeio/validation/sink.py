"""Where metric records go: one JSON record per metric (dataset, env, column, metric, value, run id).

The sink is set per environment in ``lakeio.yaml`` (``metrics_sink``): ``logging`` (the default)
sends each record to the ``lakeio.metrics`` logger at INFO, the record riding on the log record as
``record.lakeio``; a local path or an ``s3://`` URI gets one JSON-lines file per validation run at
``<location>/dataset=<name>/<UTC time>-<run id>.jsonl``, written through the environment's storage.
lakeio never configures logging: the application decides where logged records go.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from lakeio.errors import StorageError
from lakeio.storage import Storage, resolve_location
from lakeio.validation.report import ValidationReport

logger = logging.getLogger("lakeio.metrics")
LOGGING = "logging"


class MetricsSink:
    """Sends a validation run's metrics to logging or to a JSON-lines location.

    Example:
        >>> from lakeio.config import S3Settings
        >>> sink = MetricsSink("logging", Storage(S3Settings()), Path("."))
        >>> sink.target
        'logging'
    """

    def __init__(self, target: str, storage: Storage, base_dir: Path):
        self.target = target
        self._storage = storage
        self._location = None if target == LOGGING else resolve_location(target, base_dir)

    def records(self, report: ValidationReport) -> list[dict]:
        """One plain-JSON record per metric of the report."""
        at = dt.datetime.now(dt.UTC).isoformat()
        return [{"run_id": report.run_id, "dataset": report.dataset, "env": report.env,
                 "operation": report.operation, "column": m.column, "metric": m.metric, "label": m.label,
                 "value": m.value, "filtered": report.filtered, "time": at} for m in report.metrics]

    def emit(self, report: ValidationReport) -> None:
        records = self.records(report)
        if self._location is None:
            for record in records:
                logger.info(json.dumps(record, default=str), extra={"lakeio": record})
            return
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        folder = f"{self._location.path}/dataset={report.dataset}"
        path = f"{folder}/{stamp}-{report.run_id}.jsonl"
        text = "".join(json.dumps(record, default=str) + "\n" for record in records)
        filesystem = self._storage.filesystem(self._location)
        try:
            filesystem.create_dir(folder, recursive=True)
            with filesystem.open_output_stream(path) as stream:
                stream.write(text.encode("utf-8"))
        except OSError as error:
            where = path if self._location.scheme == "file" else f"s3://{path}"
            raise StorageError(f"metrics sink: cannot write {where}: {error}") from error

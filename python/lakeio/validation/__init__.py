"""Validation contracts: loaded with the catalog, run on reads and writes by either backend.

The catalog binds each dataset that names a contract (``schema:`` in its resource) to a
:class:`ContractBinding`; reads and writes call it. A run checks the schema first (types, missing
and extra columns, allowed casts), then computes every measure the contract needs in one pass
(:mod:`~lakeio.validation.arrow_backend` or :mod:`~lakeio.spark.validation`), turns them
into verdicts and metrics (:mod:`~lakeio.validation.semantics`), sends the metrics to the sink,
logs warnings, and raises :class:`~lakeio.errors.DataQualityError` if any error-level check failed.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeio.errors import ConfigError, DataQualityError
from lakeio.validation.contract import Contract, LogicalType, load_contract
from lakeio.validation.report import CheckResult, MetricValue, SkippedCheck, ValidationReport
from lakeio.validation.semantics import check_schema, evaluate, plan
from lakeio.validation.sink import MetricsSink

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeio.config import Resource
    from lakeio.engines import Engine
    from lakeio.metrics import IORecord
    from lakeio.requests import ScanPlan, WriteRequest

__all__ = ["CheckResult", "Contract", "ContractBinding", "LogicalType", "MetricValue", "MetricsSink", "SkippedCheck",
           "ValidationReport", "load_contracts"]

logger = logging.getLogger("lakeio.validation")


def load_contracts(resources: Mapping[str, Resource], origins: Mapping[str, Path]) -> dict[str, Contract]:
    """Loads the contract each resource names (its ``schema:``, relative to the resource file).

    Raises:
        ConfigError: every problem of every contract file, each with file, column and key.
    """
    problems: list[str] = []
    contracts: dict[str, Contract] = {}
    loaded: dict[Path, Contract | None] = {}
    for name in sorted(resources):
        relative = resources[name].contract
        if relative is None:
            continue
        path = (origins[name].parent / relative).resolve()
        if not path.is_file():
            problems.append(f"{origins[name]}: {name}.schema: no contract file {path}")
            continue
        if path not in loaded:
            loaded[path] = load_contract(path, problems)
        contract = loaded[path]
        if contract is not None:
            contracts[name] = contract
    if problems:
        raise ConfigError("invalid contract:\n  " + "\n  ".join(problems))
    return contracts


@dataclass(frozen=True)
class ContractBinding:
    """A dataset's contract in one environment, with the sink its metrics go to.

    Example:
        >>> import lakeio
        >>> lake = lakeio.Catalog.load("conf", env="sample")
        >>> report = lake.validate("flights")
        >>> report.passed, round(report.metric("dep_delay", "mean"), 2)
        (True, 8.6)
    """

    dataset: str
    env: str
    contract: Contract
    sink: MetricsSink

    # -- the hooks of reads and writes ------------------------------------------------------------

    def check_read(self, plan: ScanPlan, data: Any, record: IORecord | None = None) -> Any:
        """Validates what a read materialised (an Arrow table or a Spark DataFrame); returns it, cast
        where the contract allows. Column-subset reads check the columns read; filtered reads skip
        the checks about the whole dataset.

        Raises:
            DataQualityError: an error-level check failed.
        """
        from lakeio.engines import is_spark_dataframe

        partial, filtered = plan.columns is not None, plan.predicate is not None
        if is_spark_dataframe(data):
            report, data = self.run_spark(data, "read", partial=partial, filtered=filtered)
        else:
            report, data = self.run_arrow(data, "read", partial=partial, filtered=filtered)
        self.conclude(report, record, partition=plan.target.partition, version=plan.version)
        return data

    def check_write(self, request: WriteRequest, engine: str,
                    record: IORecord | None = None) -> WriteRequest:
        """Validates the data of a write before anything is written; returns the request with the
        data to write (cast where the contract allows). A RecordBatchReader is spilled to a temporary
        Arrow file as it is validated, so it is read once and never held in memory. The metrics of
        data that passes are recorded once the write committed (:meth:`committed`), with its version.

        Raises:
            DataQualityError: an error-level check failed; nothing was written.
        """
        from lakeio.engines import is_spark_dataframe, to_arrow_data

        if is_spark_dataframe(request.data):  # on Spark, whichever engine writes it: never through the driver
            report, data = self.run_spark(request.data, "write")
        else:
            report, data = self.run_arrow(to_arrow_data(request.data), "write", spill=True)
        self.conclude(report, record, partition=request.target.partition, deferred=record is not None)
        return replace(request, data=data)

    def committed(self, record: IORecord, partition: str | None) -> None:
        """Records the metrics of a write :meth:`check_write` passed, now that it committed
        (``record.version``: the Delta version it made)."""
        if record.report is not None:
            self.sink.emit(record.report, record, version=record.version, partition=partition)

    def validate(self, data: Any, engine: Engine, stored: ScanPlan) -> ValidationReport:
        """Runs the contract on ``data``, or, when it is None, on the stored dataset (``stored``, read
        by ``engine``: one aggregate job on an engine that runs on Spark, else streamed batch by
        batch). Failures are returned in the report, not raised."""
        from lakeio.engines import SparkCapable, is_spark_dataframe, to_arrow_data

        if data is None and isinstance(engine, SparkCapable):
            report, _ = self.run_spark(engine.read_dataframe(stored), "validate")
        elif data is None:
            schema, batches = engine.read_batches(stored, stored.record("validate", engine.name, ""))
            report, _ = self.run_arrow(batches, "validate", schema=schema)
        elif is_spark_dataframe(data):
            report, _ = self.run_spark(data, "validate")
        else:
            report, _ = self.run_arrow(to_arrow_data(data), "validate")
        self.conclude(report, raise_errors=False, partition=stored.target.partition, version=stored.version)
        return report

    def conclude(self, report: ValidationReport, record: IORecord | None = None, *, raise_errors: bool = True,
                 partition: str | None = None, version: int | None = None, deferred: bool = False) -> None:
        """Emits the metrics (unless ``deferred`` and passed: a write's wait for its commit), logs
        warnings, puts the report on the I/O record, raises on errors."""
        if record is not None:
            record.extra["validation"] = report.summary()
            record.report = report
        if not (deferred and report.passed):
            self.sink.emit(report, record, version=version, partition=partition)
        for warning in report.warnings:
            logger.warning("dataset %r [%s] %s: %s [%s]: %s", report.dataset, report.env, report.operation,
                           warning.check, warning.column or "table", warning.message)
        if raise_errors and not report.passed:
            raise DataQualityError(report)

    # -- the two backends ---------------------------------------------------------------------------

    def run_arrow(self, data: Any, operation: str, *, partial: bool = False, filtered: bool = False,
                  spill: bool = False, schema: pa.Schema | None = None) -> tuple[ValidationReport, Any]:
        """Runs the contract on an Arrow Table, a RecordBatchReader or (with ``schema``) an iterable
        of record batches. Returns the report and the data, cast where the contract allows (a
        reader's batches come back from the spill file when ``spill`` is set)."""
        import pyarrow as pa

        from lakeio.validation import arrow_backend

        started = time.perf_counter()
        schema = schema if schema is not None else data.schema
        outcome = check_schema(self.contract, arrow_backend.logical_schema(schema), partial=partial)
        chosen = plan(self.contract, outcome, filtered=filtered)
        out_schema = pa.schema([field.with_type(arrow_backend.arrow_type(outcome.casts[field.name]))
                                if field.name in outcome.casts else field for field in schema])
        if isinstance(data, pa.Table):
            kept: list = []
            measured = arrow_backend.measure(data.to_batches(), chosen, outcome.casts,
                                             kept.append if outcome.casts else None)
            output = pa.Table.from_batches(kept, schema=out_schema) if outcome.casts else data
        elif spill and isinstance(data, pa.RecordBatchReader):
            measured, output = self._spilled(data, chosen, outcome.casts, out_schema)
        else:
            measured, output = arrow_backend.measure(data, chosen, outcome.casts), None
        report = self._report(operation, "arrow", chosen, outcome, measured, filtered, started)
        return report, output

    def _spilled(self, reader, chosen, casts, out_schema):
        import pyarrow as pa

        from lakeio.validation import arrow_backend

        spill = tempfile.TemporaryFile(prefix="lakeio-validated-", suffix=".arrow")
        writer = pa.ipc.new_stream(pa.PythonFile(spill, mode="w"), out_schema)
        measured = arrow_backend.measure(reader, chosen, casts, writer.write_batch)
        writer.close()
        spill.seek(0)
        return measured, pa.ipc.open_stream(pa.PythonFile(spill, mode="r"))

    def run_spark(self, frame, operation: str, *, partial: bool = False,
                  filtered: bool = False) -> tuple[ValidationReport, Any]:
        """Runs the contract on a Spark DataFrame (one aggregate job, plus one for label counts).
        Returns the report and the frame, cast where the contract allows (lazily)."""
        from lakeio.spark import validation as spark_backend

        started = time.perf_counter()
        outcome = check_schema(self.contract, spark_backend.logical_schema(frame), partial=partial)
        chosen = plan(self.contract, outcome, filtered=filtered)
        measured = spark_backend.measure(frame, chosen, outcome.casts)
        report = self._report(operation, "spark", chosen, outcome, measured, filtered, started)
        return report, spark_backend.cast_frame(frame, outcome.casts)

    def _report(self, operation, backend, chosen, outcome, measured, filtered, started) -> ValidationReport:
        from lakeio.validation.semantics import Rows

        history = self.sink.history(self.dataset, self.env, operation) if not filtered else None
        results, metrics = evaluate(chosen, measured, outcome, history)
        return ValidationReport(
            dataset=self.dataset, env=self.env, operation=operation, backend=backend, run_id=uuid.uuid4().hex[:16],
            contract=self.contract.path, rows=measured[Rows()], seconds=round(time.perf_counter() - started, 4),
            filtered=filtered, results=tuple(results), metrics=tuple(metrics), skipped=chosen.skipped)


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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeio.errors import ConfigError, DataQualityError
from lakeio.validation.contract import Contract, LogicalType, load_contract
from lakeio.validation.report import CheckResult, MetricValue, SkippedCheck, ValidationReport
from lakeio.validation.semantics import check_schema, evaluate
from lakeio.validation.semantics import plan as semantics_plan
from lakeio.validation.sink import MetricsSink

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeio.config import Resource
    from lakeio.engines import Engine
    from lakeio.metrics import IORecord
    from lakeio.predicate import Predicate
    from lakeio.requests import MergeRequest, ScanPlan, WriteRequest
    from lakeio.validation.after import TableAfter

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
            if contract.quarantined and resources[name].quarantine is None:
                problems.append(f"{origins[name]}: {name}: its contract {path} quarantines rows (on_fail: quarantine); "
                                "give the resource a 'quarantine:' dataset for them")
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

    def check_write(self, request: WriteRequest, reader: Engine, record: IORecord | None = None, *,
                    quarantined: int = 0) -> WriteRequest:
        """Validates the data of a write before anything is written; returns the request with the
        data to write (cast where the contract allows). Row checks judge the incoming rows; table
        checks the table as it will be after the write, its current rows read by ``reader`` (only
        the columns they need; :mod:`~lakeio.validation.after`). A RecordBatchReader is spilled to
        a temporary Arrow file as it is validated, so it is read once and never held in memory. The
        metrics of data that passes are recorded once the write committed (:meth:`committed`), with
        its version.

        ``quarantined``: the rows of the write already split off to its quarantine dataset (the
        report says how many).

        Raises:
            DataQualityError: an error-level check failed; nothing was written.
        """
        from lakeio.engines import is_spark_dataframe, to_arrow_data
        from lakeio.validation.after import TableAfter

        after = TableAfter.of(request, reader)
        if is_spark_dataframe(request.data):  # on Spark, whichever engine writes it: never through the driver
            report, data = self.run_spark(request.data, "write", after=after)
        else:
            report, data = self.run_arrow(to_arrow_data(request.data), "write", spill=True, after=after)
        self.conclude(replace(report, quarantined=quarantined), record, partition=request.target.partition,
                      deferred=record is not None)
        return replace(request, data=data)

    def committed(self, record: IORecord, partition: str | None) -> None:
        """Records the metrics of a write :meth:`check_write` passed, now that it committed
        (``record.version``: the Delta version it made)."""
        if record.report is not None:
            self.sink.emit(record.report, record, version=record.version, partition=partition)

    def check_merge(self, request: MergeRequest, reader: Engine, record: IORecord | None = None) -> MergeRequest:
        """Validates the data of a merge before it runs: row checks judge the source rows it may
        write (all but those ``delete_when`` marks), table checks the table after the merge.

        Raises:
            DataQualityError: an error-level check failed; nothing was merged.
        """
        from lakeio.engines import is_spark_dataframe, to_arrow_data
        from lakeio.validation.after import TableAfter

        after = TableAfter.of(request, reader)
        data = request.data
        if is_spark_dataframe(data):
            from lakeio.spark.engine import is_not_true, to_column

            offered = data if request.delete_when is None else data.where(is_not_true(to_column(request.delete_when)))
            report, _ = self.run_spark(offered, "merge", after=after, source=data)
        else:
            data = to_arrow_data(data)
            data = data.read_all() if hasattr(data, "read_all") else data
            offered = data if request.delete_when is None else data.filter(after.offered_mask(data))
            report, _ = self.run_arrow(offered, "merge", after=after, source=data)
        self.conclude(report, record, partition=request.target.partition)
        return replace(request, data=self.cast(data))

    def split(self, data: Any, column: str, run_id: str, keep: Predicate | None = None,
              as_text: bool = False) -> tuple[Any, Any, int]:
        """Splits a write's or merge's data (pandas, Arrow or Spark) on the checks that quarantine:
        returns the rows passing them all (and those ``keep`` is true for: a merge's deletes, which
        write no values), the others with ``column`` (the names of the checks each failed: a list,
        or with ``as_text`` its JSON text) and ``lakeio_run_id``, and how many those are (one Spark
        job to count them, none on Arrow)."""
        from lakeio.config import QUARANTINE_RUN_COLUMN
        from lakeio.engines import is_spark_dataframe, to_arrow_data

        checks = tuple((name, check) for name, check in self.contract.quarantined)
        if is_spark_dataframe(data):
            from lakeio.spark import validation as spark_backend
            from lakeio.spark.engine import to_column

            types = {c.name: c.type for c in self.contract.columns.values()}
            return spark_backend.split(data, checks, types, column, (QUARANTINE_RUN_COLUMN, run_id),
                                       None if keep is None else to_column(keep), as_text)
        import pyarrow as pa
        import pyarrow.compute as pc

        from lakeio.validation import arrow_backend
        from lakeio.validation.after import true_for

        table = to_arrow_data(data)
        table = table.read_all() if hasattr(table, "read_all") else table
        failed = arrow_backend.failed_checks(table, checks)
        quarantined = pc.and_(pc.greater(pc.list_value_length(failed), 0), pc.invert(true_for(table, keep)))
        failing = table.append_column(column, failed).filter(quarantined)
        failing = failing.append_column(QUARANTINE_RUN_COLUMN, pa.array([run_id] * failing.num_rows, pa.string()))
        if as_text:
            from lakeio.engines import text

            failing = text.json_lists(failing, [column])
        return table.filter(pc.invert(quarantined)), failing, failing.num_rows

    def cast(self, data: Any) -> Any:
        """``data`` (an Arrow table or a Spark DataFrame) with the casts the contract allows."""
        from lakeio.engines import is_spark_dataframe

        if is_spark_dataframe(data):
            from lakeio.spark import validation as spark_backend

            outcome = check_schema(self.contract, spark_backend.logical_schema(data), partial=False)
            return spark_backend.cast_frame(data, outcome.casts)
        from lakeio.validation import arrow_backend

        outcome = check_schema(self.contract, arrow_backend.logical_schema(data.schema), partial=False)
        return arrow_backend.cast_table(data, outcome.casts) if outcome.casts else data

    def check_batches(self, plan: ScanPlan, schema: pa.Schema, batches: Iterable[pa.RecordBatch],
                      record: IORecord | None = None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Validates a streamed read as it passes (cast where the contract allows). The verdict
        comes when the stream ends: an error-level failure raises from the reader's last step, so
        a consumer writing the stream elsewhere fails before it commits.

        Raises:
            DataQualityError: (from the iterator, at its end) an error-level check failed.
        """
        from lakeio.validation import arrow_backend

        started = time.perf_counter()
        partial, filtered = plan.columns is not None, plan.predicate is not None
        outcome = check_schema(self.contract, arrow_backend.logical_schema(schema), partial=partial)
        chosen = semantics_plan(self.contract, outcome, filtered=filtered)
        measurer = arrow_backend.Measurer(chosen, outcome.casts)

        def checked() -> Iterator[pa.RecordBatch]:
            for batch in batches:
                yield measurer.add(batch)
            report = self._report("read", "arrow", chosen, outcome, measurer.result(), filtered, started)
            self.conclude(report, record, partition=plan.target.partition, version=plan.version)

        return _cast_schema(schema, outcome.casts), checked()

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
                  spill: bool = False, schema: pa.Schema | None = None, after: TableAfter | None = None,
                  source: Any = None) -> tuple[ValidationReport, Any]:
        """Runs the contract on an Arrow Table, a RecordBatchReader or (with ``schema``) an iterable
        of record batches. Returns the report and the data, cast where the contract allows (a
        reader's batches come back from the spill file when ``spill`` is set). With ``after`` (a
        write), table checks judge the table after the write of this data (or of ``source``, the
        whole of a merge's data, when ``data`` is the part of it judged row by row)."""
        import pyarrow as pa

        from lakeio.validation import arrow_backend

        started = time.perf_counter()
        schema = schema if schema is not None else data.schema
        outcome = check_schema(self.contract, arrow_backend.logical_schema(schema), partial=partial)
        chosen = semantics_plan(self.contract, outcome, filtered=filtered, write=after is not None)
        out_schema = _cast_schema(schema, outcome.casts)
        kept_columns = () if after is None or not chosen.table_measures else after.columns(chosen.table_columns)
        kept: list = []
        sinks: list[Callable[[pa.RecordBatch], None]] = []
        if kept_columns and source is None:
            sinks.append(lambda batch: kept.append(batch.select(list(kept_columns))))
        spill_file = writer = None
        if isinstance(data, pa.Table) and outcome.casts:
            cast_batches: list = []
            sinks.append(cast_batches.append)
        elif spill and isinstance(data, pa.RecordBatchReader):
            spill_file = tempfile.TemporaryFile(prefix="lakeio-validated-", suffix=".arrow")
            writer = pa.ipc.new_stream(pa.PythonFile(spill_file, mode="w"), out_schema)
            sinks.append(writer.write_batch)
        batches = data.to_batches() if isinstance(data, pa.Table) else data

        def passed_on(batch: pa.RecordBatch) -> None:
            for sink in sinks:
                sink(batch)

        measured = arrow_backend.measure(batches, chosen, outcome.casts, passed_on if sinks else None)
        output: Any = None
        if isinstance(data, pa.Table):
            output = pa.Table.from_batches(cast_batches, schema=out_schema) if outcome.casts else data
        elif writer is not None and spill_file is not None:
            writer.close()
            spill_file.seek(0)
            output = pa.ipc.open_stream(pa.PythonFile(spill_file, mode="r"))
        table = None
        if kept_columns and after is not None:
            incoming = source.select(list(kept_columns)) if source is not None else \
                pa.Table.from_batches(kept) if kept else \
                pa.schema([out_schema.field(c) for c in kept_columns]).empty_table()
            table = arrow_backend.measure(after.arrow_batches(incoming, chosen.table_columns), chosen.of_table(), {})
        report = self._report(operation, "arrow", chosen, outcome, measured, filtered, started, table)
        return report, output

    def run_spark(self, frame, operation: str, *, partial: bool = False, filtered: bool = False,
                  after: TableAfter | None = None, source: Any = None,
                  deequ: bool | None = None) -> tuple[ValidationReport, Any]:
        """Runs the contract on a Spark DataFrame: by one Deequ ``VerificationSuite`` run when the
        session has Deequ (or ``deequ`` says so; each result then carries Deequ's own word), else by
        lakeio's one-job backend (one aggregate job, plus one for label counts); with ``after`` and
        table checks, one more job over the table after the write. Returns the report (its
        ``backend`` says which ran) and the frame, cast where the contract allows (lazily)."""
        from lakeio.spark import deequ as deequ_backend
        from lakeio.spark import validation as spark_backend

        started = time.perf_counter()
        outcome = check_schema(self.contract, spark_backend.logical_schema(frame), partial=partial)
        chosen = semantics_plan(self.contract, outcome, filtered=filtered, write=after is not None)
        use_deequ = deequ_backend.available(frame.sparkSession) if deequ is None else deequ
        measured, said = deequ_backend.measure(frame, chosen, outcome.casts) if use_deequ else \
            (spark_backend.measure(frame, chosen, outcome.casts), {})
        cast = spark_backend.cast_frame(frame, outcome.casts)
        table = None
        if after is not None and chosen.table_measures:
            incoming = spark_backend.cast_frame(source, outcome.casts) if source is not None else cast
            table = spark_backend.measure(after.spark_frame(incoming, chosen.table_columns), chosen.of_table(), {})
        report = self._report(operation, "deequ" if use_deequ else "spark", chosen, outcome, measured, filtered,
                              started, table, said)
        return report, cast

    def _report(self, operation, backend, chosen, outcome, measured, filtered, started, table=None,
                deequ=None) -> ValidationReport:
        from lakeio.validation.semantics import Rows

        history = self.sink.history(self.dataset, self.env, operation) if not filtered else None
        results, metrics = evaluate(chosen, measured, outcome, table, history=history, deequ=deequ)
        return ValidationReport(
            dataset=self.dataset, env=self.env, operation=operation, backend=backend, run_id=uuid.uuid4().hex[:16],
            contract=self.contract.path, rows=measured[Rows()], seconds=round(time.perf_counter() - started, 4),
            filtered=filtered, results=tuple(results), metrics=tuple(metrics), skipped=chosen.skipped)



def _cast_schema(schema: pa.Schema, casts: Mapping[str, LogicalType]) -> pa.Schema:
    """``schema`` with the cast columns of the contract's types."""
    import pyarrow as pa

    from lakeio.validation import arrow_backend

    return pa.schema([field.with_type(arrow_backend.arrow_type(casts[field.name])) if field.name in casts else field
                      for field in schema])

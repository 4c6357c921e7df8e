"""The Spark engine: a classic session with Delta and s3a, reads and writes through Spark."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import math
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from lakeio import files, partitions
from lakeio.config import EnvironmentSettings
from lakeio.engines import find_own_commit, in_microseconds, is_spark_dataframe, refuse_durations, text, to_arrow_data
from lakeio.engines.arrow import ArrowEngine
from lakeio.errors import InvalidArgumentError, LakeioError, SchemaMismatchError, StorageError
from lakeio.metrics import IORecord
from lakeio.predicate import And, Compare, In, IsNull, Not, Predicate, TimeKind, conjuncts_where, quote_name, to_sql, typed
from lakeio.requests import TRANSACTION_VERSION, MergeRequest, WriteRequest
from lakeio.spark import compat, handoff, jvm, pruning
from lakeio.spark.errors import SPARK_PATH, translated
from lakeio.spark.session import check_delta_commits, spark_session
from lakeio.storage import Location, Storage

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

    from lakeio.engines.arrow import Scan
    from lakeio.requests import ScanPlan

_ROWS_PER_BATCH = 65_536


def spark_engine(settings: EnvironmentSettings, storage: Storage) -> SparkEngine:
    """The engine registered as ``spark``: on Spark Connect
    (:class:`~lakeio.spark.connect.SparkConnectEngine`) when the environment names a server
    (``spark.remote``) or this process runs Spark Connect (a Connect session was made, or
    ``SPARK_REMOTE`` is set); else on a classic session. Making it starts no session."""
    import os

    from pyspark.sql.utils import is_remote

    if settings.spark.remote is not None or is_remote() or "SPARK_REMOTE" in os.environ:
        from lakeio.spark.connect import SparkConnectEngine

        return SparkConnectEngine(settings, storage)
    return SparkEngine(settings, storage)


class SparkEngine:
    """Reads and writes through Spark; satisfies :class:`lakeio.engines.Engine` and
    :class:`lakeio.engines.SparkCapable`. A plain scan's result asked for in this process
    (``to_arrow``, ``to_pandas``, ``to_batches``) is read from its files by the Arrow engine,
    never collected through the driver (see :mod:`lakeio.spark.handoff`)."""

    name = "spark"

    def __init__(self, settings: EnvironmentSettings, storage: Storage):
        self.settings, self.storage = settings, storage
        self._arrow = ArrowEngine(settings, storage)  # the hand-off: plain scans read by Arrow

    def exists(self, location: Location, format: str) -> bool:
        return self._arrow.exists(location, format)

    def open_scan(self, plan: ScanPlan) -> Scan:
        """The plan's files, opened by the hand-off's Arrow engine (reads reuse it while current)."""
        return self._arrow.open_scan(plan)

    def session(self) -> SparkSession:
        """The SparkSession this engine runs on (see :func:`lakeio.spark.session.spark_session`)."""
        return spark_session(self.settings, self.storage)

    def _door(self) -> pruning.HelperDoor:
        """How this engine reaches lakeio's helper: py4j."""
        return jvm

    # -- reads --------------------------------------------------------------------------------

    def read_dataframe(self, plan: ScanPlan, record: IORecord | None = None) -> DataFrame:
        """The plan as a lazy Spark DataFrame; a read of a partitioned Parquet table reads only the
        partitions the helper selects (see :mod:`lakeio.pruning`), and says how many on ``record``."""
        frame = self._read(plan, record)[0]
        if plan.json_lists:  # text columns of JSON arrays (a CSV quarantine's checks), as the Arrow results read them
            from pyspark.sql import functions as F

            frame = frame.withColumns({column: F.from_json(F.col(quote_name(column)), "array<string>")
                                       for column in plan.json_lists if column in frame.columns})
        return frame

    def _read(self, plan: ScanPlan, record: IORecord | None = None,
              selection: pruning.PartitionSelection | None = None,
              check_text: bool = True) -> tuple[DataFrame, pa.Schema | None]:
        """The plan as a lazy Spark DataFrame and, for CSV and JSON, the Arrow schema of its
        columns: the Arrow engine's, which this engine's Arrow results take too. ``selection``: the
        helper's partitions, when they are selected already. ``check_text``: CSV and JSON files
        are checked to be UTF-8 first (:meth:`_check_utf8`; not for a schema, which reads no rows)."""
        import pyarrow as pa
        from pyspark.sql import functions as F

        spark = self.session()
        schema = None
        with self._corrupt_files_named(plan), translated(plan.describe()):
            if pruning.applies(plan):
                frame = pruning.read(spark, plan, selection or self._selection(plan, record), self._door())
            elif plan.format in text.TEXT_FORMATS:
                schema = self._arrow.text_schema(plan)
                scan = self._arrow.open_scan(plan) if plan.partition_by else None
                if scan is not None:  # Spark reads the folders' names itself
                    pruning.refuse_misread_folders(plan, scan.dataset.files)
                frame = files.read_consistently(self.storage, plan, lambda: _read_text(spark, plan, schema))
                if check_text:
                    self._check_utf8(spark, plan, scan)
            elif plan.format == "delta":
                frame = spark.read.format(plan.format).options(**_read_options(plan)).load(plan.location.spark_path)
            else:  # Spark lists the files here
                frame = files.read_consistently(self.storage, plan, lambda: spark.read.format(plan.format).options(
                    **_read_options(plan)).load(plan.location.spark_path))
            plan.check_columns(frame.columns)  # on Spark Connect, the read is analysed only here
            if plan.format == "parquet":  # Spark takes one file's schema for all: the others must fit it
                self._check_files(plan, frame)
        if plan.predicate is not None:
            frame = frame.where(to_column(typed(plan.predicate, time_kinds(frame))))
        if plan.columns is not None:
            frame = frame.select(*[F.col(quote_name(c)) for c in plan.columns])
            schema = None if schema is None else pa.schema([schema.field(c) for c in plan.columns])
        return frame, schema

    def _check_utf8(self, spark: SparkSession, plan: ScanPlan, scan: Scan | None) -> None:
        """Refuses a read of CSV or JSON files with one that is not UTF-8 text, with the Arrow
        engine's error naming the file, line and byte. Spark's CSV reader puts U+FFFD for such bytes
        silently; its text source keeps a line's bytes as they are, so one Spark job over the lines
        finds the first bad file, wherever its bad byte is (lakeio's schema reads only each file's
        first block); only that file is then read here, in blocks, for the line. A read filtered on
        partitions checks only the folders of the files ``scan`` (the Arrow engine's) keeps, as the
        Arrow engine decodes only those."""
        import urllib.parse

        from pyspark.sql import functions as F

        paths = [plan.location.spark_path]
        if scan is not None and conjuncts_where(plan.predicate, lambda column, _: column in plan.partition_by):
            folders = sorted({posixpath.dirname(fragment.path) for fragment in scan.kept})
            if not folders:
                return
            paths = [replace(plan.location, path=folder).spark_literal for folder in folders]
        lines = spark.read.format("text").load(paths)
        with translated(plan.describe()):
            bad = lines.where(~compat.is_valid_utf8(F.col("value"))).select(F.col("_metadata.file_path")).limit(1) \
                .collect()
        if bad:
            path = urllib.parse.unquote(re.sub(SPARK_PATH, "", bad[0][0]))
            raise text.not_utf8_error(plan, path, self.storage.filesystem(plan.location)) or SchemaMismatchError(
                f"{plan.describe()}: file {path} is not UTF-8 text; {plan.format} files must be UTF-8")

    @contextlib.contextmanager
    def _corrupt_files_named(self, plan: ScanPlan) -> Iterator[None]:
        """A Parquet read that fails before its files are checked (Spark's schema inference met an
        unreadable footer, and says only that a job failed) fails with the Arrow engine's error
        naming the file, when opening the files there finds one."""
        try:
            yield
        except StorageError as error:
            if plan.format != "parquet":
                raise
            try:
                self._arrow.open_scan(plan)
            except LakeioError as named:
                if isinstance(named, SchemaMismatchError) or any(
                        words in str(named) for words in ("Could not read schema from", "not a readable Parquet")):
                    raise named from error
            raise

    def _check_files(self, plan: ScanPlan, frame: DataFrame) -> None:
        """Refuses the Parquet files Spark listed for ``frame`` unless they read together
        (:func:`lakeio.files.check_parquet_files`; their footers are read here, in threads)."""
        import urllib.parse

        from lakeio.engines.arrow import native_parquet_fragments

        paths = [urllib.parse.unquote(re.sub(SPARK_PATH, "", path)) for path in frame.inputFiles()]
        fragments = native_parquet_fragments([(path, None, None) for path in paths],
                                             self.storage.filesystem(plan.location))
        files.check_parquet_files(plan.describe(), fragments, plan.partition_by)

    def _selection(self, plan: ScanPlan, record: IORecord | None) -> pruning.PartitionSelection:
        """The partitions (and their files) the helper selects for a pruned read, counted on ``record``."""
        selection = files.read_consistently(
            self.storage, plan, lambda: pruning.select_partitions(self.session(), plan, files=True, door=self._door()))
        if record is not None:
            record.partitions_listed, record.partitions_total = len(selection.paths), selection.total
        return selection

    def _direct_scan(self, plan: ScanPlan, record: IORecord,
                     planned: Scan | None) -> tuple[Scan | None, pruning.PartitionSelection | None]:
        """The Arrow scan that reads a plain scan straight from its files (None when Spark reads
        it), and the helper's selection of a partitioned Parquet table's partitions (else None).

        A partitioned Parquet table's files are those of the selection; other tables' are those of
        ``planned`` (opened to choose the engine) while it is current. A filter Arrow cannot type
        the way Spark does (a date column against a string) is left to Spark.
        """
        selection = self._selection(plan, record) if pruning.applies(plan) else None
        if not handoff.is_plain_scan(plan) or (selection is not None and not selection.listed):
            return None, selection
        try:
            if selection is None:
                return self._arrow.current_scan(plan, planned), None
            dataset, sizes = handoff.selected_files_dataset(plan, selection, self.storage.filesystem(plan.location))
            return self._arrow.scan(plan, dataset, sizes=sizes), selection
        except InvalidArgumentError:
            return None, selection

    def read_arrow(self, plan: ScanPlan, record: IORecord, scan: Scan | None = None) -> pa.Table:
        """The plan's rows in this process; ``scan``: the plan's files as opened for choosing the
        engine, reused for a plain scan while current."""
        direct, selection = self._direct_scan(plan, record, scan)
        if direct is not None:
            handoff.check_fits_in_memory(plan, handoff.estimated_memory(direct, plan.columns))
            record.extra["path"] = "arrow: pruned files read directly"
            return handoff.as_spark_types(self._arrow.read_scan(plan, record, direct))
        frame, schema = self._read(plan, record, selection)
        with translated(plan.describe(), read=(plan, schema), read_on_arrow=self._read_on_arrow(plan)):
            table = self._collect(plan, frame, record)
        return table if schema is None else handoff.conformed(table, schema)

    def _collect(self, plan: ScanPlan, frame: DataFrame, record: IORecord) -> pa.Table:
        """A Spark-computed read as Arrow: written by Spark to the scratch folder, read by Arrow."""
        record.extra["path"] = "spark: parquet hand-off"
        return handoff.spark_frame_to_arrow(frame, self.scratch(), self.storage)

    def read_batches(self, plan: ScanPlan, record: IORecord,
                     scan: Scan | None = None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The plan's schema, and its rows streamed: from the files by Arrow for a plain scan
        (of ``scan`` while current), else from Spark partition by partition."""
        from pyspark.sql.pandas.types import to_arrow_schema

        direct, selection = self._direct_scan(plan, record, scan)
        if direct is not None:
            schema, batches = self._arrow.scan_batches(plan, record, direct)
            wanted = handoff.spark_arrow_schema(schema)
            return wanted, (batch if wanted.equals(schema) else batch.cast(wanted, safe=False) for batch in batches)
        frame, text_schema = self._read(plan, record, selection)
        schema = text_schema or to_arrow_schema(frame.schema)
        batches = self._stream(plan, frame, schema, record)

        def translated_batches() -> Iterator[pa.RecordBatch]:
            with translated(plan.describe(), read=(plan, text_schema), read_on_arrow=self._read_on_arrow(plan)):
                yield from batches

        return schema, translated_batches()

    def _stream(self, plan: ScanPlan, frame: DataFrame, schema: pa.Schema, record: IORecord) -> Iterator[pa.RecordBatch]:
        """A Spark-computed read streamed as ``schema``: partition by partition through the driver."""
        import pyarrow as pa

        def collected() -> Iterator[pa.RecordBatch]:
            rows = frame.toLocalIterator(prefetchPartitions=True)
            while chunk := list(itertools.islice(rows, _ROWS_PER_BATCH)):
                yield pa.RecordBatch.from_pylist([row.asDict(recursive=True) for row in chunk], schema=schema)

        return collected()

    def _read_on_arrow(self, plan: ScanPlan) -> Callable[[], object]:
        """Reads ``plan`` on the Arrow engine: on the error path only, to name the file of a bad value."""
        return lambda: self._arrow.read_arrow(plan, plan.record("read", "arrow", "naming the file of a bad value"))

    # Counts, schemas and file counts come from Spark's own plan: an opened Arrow scan is not used.

    def count(self, plan: ScanPlan, record: IORecord, scan: Scan | None = None) -> int:
        frame, schema = self._read(plan, record)
        with translated(plan.describe(), read=(plan, schema), read_on_arrow=self._read_on_arrow(plan)):
            return frame.count()

    def schema(self, plan: ScanPlan, scan: Scan | None = None) -> pa.Schema:
        from pyspark.sql.pandas.types import to_arrow_schema

        frame, schema = self._read(plan, check_text=False)
        return schema or to_arrow_schema(frame.schema)

    def file_counts(self, plan: ScanPlan, scan: Scan | None = None) -> tuple[None, None]:
        return None, None

    def partition_counts(self, plan: ScanPlan) -> tuple[int, int] | None:
        """Partitions the read lists versus the table's total, or None for a read that is not pruned.

        Reads never count the total when it takes listing the whole table; this does.
        """
        if not pruning.applies(plan):
            return None
        spark = self.session()
        selection = pruning.select_partitions(spark, plan, door=self._door())
        total = selection.total
        if total is None:
            total = len(pruning.select_partitions(spark, plan, prune=False, door=self._door()).paths)
        return len(selection.paths), total

    def scratch(self) -> Location:
        """Where Spark stages results handed to Arrow: the environment's ``spark.scratch_uri``, else
        a local temporary folder when Spark runs locally (:func:`lakeio.spark.handoff.scratch_location`)."""
        return handoff.scratch_location(self.settings, self.session())

    # -- writes -------------------------------------------------------------------------------

    def write(self, request: WriteRequest, record: IORecord) -> None:
        request.check_arguments()
        frame, table = self._spark_data(request.data, record, request.describe(), request.format,
                                        request.check_replace_where)
        request.check_partition_columns({field.name: field.dataType.simpleString() for field in frame.schema})
        if table is not None and request.partition_by:  # the folders the Arrow engine refuses
            partitions.check_folder_values(table, request.partition_by, request.describe())
        elif table is None and request.partition_by:
            _check_folder_values(frame, request)
        if request.replace_where is not None and table is None:
            outside = frame.where(is_not_true(to_column(request.replace_where))).limit(1).count()
            if outside:
                raise InvalidArgumentError(f"{request.describe()}: the data has rows that do not match "
                                           f"replace_where {to_sql(request.replace_where)}; nothing was written")
        sample = compat.to_arrow(frame.limit(files.SIZE_SAMPLE_ROWS)) if table is None else table.slice(0, files.SIZE_SAMPLE_ROWS)
        frame, rows_per_file = _spread_for_file_size(request, frame, sample, None if table is None else table.num_rows)
        if request.format == "delta":
            self._write_delta(request, frame, sample, rows_per_file, record)
        else:
            self._write_files(request, frame, sample, rows_per_file, record)

    def _spark_data(self, data, record: IORecord, what: str, format: str,
                    check=None) -> tuple[DataFrame, pa.Table | None]:
        """``data`` as a Spark DataFrame, and as the Arrow table it came from (None for Spark data),
        refused when it holds durations ``format`` written by Spark cannot (naming ``what``; see
        :func:`lakeio.engines.refuse_durations`). Arrow and pandas data keep their types (naive
        timestamps stay TIMESTAMP_NTZ; nanoseconds become Spark's microseconds or are refused, see
        :func:`lakeio.engines.in_microseconds`) and are counted on the record, after ``check(table)``."""
        if is_spark_dataframe(data):
            refuse_durations(data.schema, format, "spark", what)
            return data, None
        from pyspark.sql.pandas.types import from_arrow_schema

        table = to_arrow_data(data)
        refuse_durations(table.schema, format, "spark", what)
        table = in_microseconds(table.read_all() if hasattr(table, "read_all") else table, what)
        if check is not None:
            check(table)
        record.rows, record.bytes = table.num_rows, table.nbytes
        schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
        return compat.create_frame(self.session(), table, schema), table

    def _write_delta(self, request: WriteRequest, frame: DataFrame, sample: pa.Table, rows_per_file: int,
                     record: IORecord) -> None:
        exists = self._arrow.exists(request.location, "delta")
        if exists and request.mode != "error" and request.options.schema_mode != "overwrite":
            # The Arrow engine's rule (Delta on Spark would fill a missing column with nulls): one answer.
            files.check_schema(request, self._arrow.delta_schema(request.location), sample)
        # Delta itself skips a repeated txnAppId/txnVersion (the writer options); asking first says so on the record.
        if exists and self._arrow.transaction_committed(request):
            request.skipped_as_repeat(record)
            return
        check_delta_commits(self.session(), self.storage, request.location)
        writer = frame.write.format("delta").options(**_write_options(request, rows_per_file),
                                                     userMetadata=request.commit_marker)
        # "error", never its alias "errorifexists", which Spark Connect refuses
        writer = writer.mode({"overwrite_partitions": "overwrite"}.get(request.mode, request.mode))
        if request.partition_by:
            writer = writer.partitionBy(*request.partition_by)
        with translated(request.describe(), exists=request.already_exists):
            writer.save(request.location.spark_path)
        own = find_own_commit(request, lambda depth: [
            (row["version"], row["userMetadata"], dict(row["operationMetrics"] or {}))
            for row in self._history(request.location, depth)])
        if own is not None:
            record.version, metrics = own
            record.rows = int(metrics.get("numOutputRows", record.rows or 0))
            record.files_written = int(metrics["numFiles"]) if "numFiles" in metrics else None

    def _history(self, location: Location, depth: int) -> list:
        """The Delta table's latest ``depth`` commits, newest first (rows of ``DESCRIBE HISTORY``:
        SQL, so Spark Connect runs it too)."""
        return self.session().sql(f"DESCRIBE HISTORY delta.{quote_name(location.spark_path)} LIMIT {depth}").collect()

    def _last_commit_metrics(self, location) -> dict:
        return dict(self._history(location, 1)[0]["operationMetrics"] or {})

    def _write_files(self, request: WriteRequest, frame: DataFrame, sample: pa.Table, rows_per_file: int,
                     record: IORecord) -> None:
        """Plain files by :func:`lakeio.files.write`: Spark writes the whole result to the staging
        folder, then the protocol's commit moves it in. ``sample``: the first rows, as Arrow (text
        formats are checked as the reader will type them; Parquet by Spark's schema)."""
        from pyarrow import fs as pafs
        from pyspark.sql.pandas.types import to_arrow_schema

        filesystem = self.storage.filesystem(request.location)
        incoming = sample if request.format in text.TEXT_FORMATS else to_arrow_schema(frame.schema).empty_table()

        def stage(staging: str, token: str) -> tuple[list[str], list[str]]:
            writer = frame.write.format(request.format).options(**_write_options(request, rows_per_file)) \
                .mode("error")
            if request.partition_by:
                writer = writer.partitionBy(*request.partition_by)
            with translated(request.describe()):
                writer.save(Location(request.location.scheme, staging).spark_path)
            staged = [info.path for info in filesystem.get_file_info(pafs.FileSelector(staging, recursive=True))
                      if info.type == pafs.FileType.File and _is_data_file(info.path)]
            return staged, sorted({files.relative_dir(staging, path) for path in staged})

        files.write(request, self.storage, incoming, stage, record, empty=sample.num_rows == 0)

    # -- merge --------------------------------------------------------------------------------

    def merge(self, request: MergeRequest, record: IORecord) -> None:
        request.check_arguments()
        check_delta_commits(self.session(), self.storage, request.location)
        frame, table = self._spark_data(request.data, record, request.describe(), "delta", request.check_unique_keys)
        if table is None:
            repeated = frame.groupBy(*request.on).count().where("count > 1").limit(3).collect()
            if repeated:
                raise InvalidArgumentError(f"{request.describe()}: keys appear more than once in the data, e.g. "
                                           f"{[row.asDict() for row in repeated]}; nothing was merged")
        with translated(request.describe()), _transaction(self.session(), request.transaction_app_id):
            counts = self._merge_into(request, frame)
        request.set_counts(record, counts.get("num_inserted_rows", 0), counts.get("num_updated_rows", 0),
                           counts.get("num_deleted_rows", 0))
        record.files_written = int(self._last_commit_metrics(request.location).get("numTargetFilesAdded", 0))

    def _merge_into(self, request: MergeRequest, frame: DataFrame) -> dict:
        """Merges ``frame`` into the request's Delta table with Delta's DeltaTable API; its counts."""
        from delta.tables import DeltaTable

        spark = self.session()
        if not DeltaTable.isDeltaTable(spark, request.location.spark_path):
            raise StorageError(f"{request.describe()}: no Delta table to merge into; create it with lake.write()")
        table = DeltaTable.forPath(spark, request.location.spark_path)
        request.check_columns(table.toDF().columns, frame.columns)
        builder = table.alias("target").merge(frame.alias("source"), merge_condition(request))
        if request.options.schema_mode == "merge":
            builder = builder.withSchemaEvolution()
        if request.delete_when is not None:
            builder = builder.whenMatchedDelete(condition=to_column(request.delete_when, "source"))
        if request.when_matched == "update":
            builder = builder.whenMatchedUpdateAll()
        if request.when_not_matched == "insert":
            builder = builder.whenNotMatchedInsertAll(condition=merge_inserts(request))
        return compat.merge_counts(builder.execute(), lambda: self._last_commit_metrics(request.location))


# Delta's idempotent DML: a MERGE commits the txn these session settings name (Delta >= 2.3).
TRANSACTION_CONFS = ("spark.databricks.delta.write.txnAppId", "spark.databricks.delta.write.txnVersion")


@contextlib.contextmanager
def _transaction(spark: SparkSession, app_id: str | None) -> Iterator[None]:
    """Delta commits made in the block carry the ``txn`` of ``app_id`` (a quarantining run's)."""
    if app_id is None:
        yield
        return
    spark.conf.set(TRANSACTION_CONFS[0], app_id)
    spark.conf.set(TRANSACTION_CONFS[1], str(TRANSACTION_VERSION))
    try:
        yield
    finally:
        for conf in TRANSACTION_CONFS:
            spark.conf.unset(conf)


def time_kinds(frame: DataFrame) -> dict[str, TimeKind]:
    """The frame's date and timestamp columns, as :func:`lakeio.predicate.typed` takes them."""
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    kinds: dict[str, TimeKind] = {}
    for field in frame.schema.fields:
        if isinstance(field.dataType, DateType):
            kinds[field.name] = "date"
        elif isinstance(field.dataType, (TimestampType, TimestampNTZType)):
            kinds[field.name] = "timestamp" if isinstance(field.dataType, TimestampType) else "timestamp_ntz"
    return kinds


def to_column(predicate: Predicate, table: str | None = None) -> Column:
    """A predicate as a Spark Column of ``F.col`` and ``F.lit``: values reach Spark as values, never
    as SQL text it parses (or substitutes ``${...}`` into). ``table`` qualifies each column
    (``source.`op```), as a MERGE condition needs."""
    import functools
    import operator

    from pyspark.sql import functions as F

    def literal(value):
        if isinstance(value, dt.datetime):  # as the SQL literal TIMESTAMP '...' reads: in the session's zone
            return F.lit(value.isoformat(sep=" ")).cast("timestamp")
        return F.lit(value)

    if isinstance(predicate, (Compare, In, IsNull)):
        column = F.col(f"{table}.{quote_name(predicate.column)}" if table else quote_name(predicate.column))
    if isinstance(predicate, Compare):
        compare = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
                   ">": operator.gt, ">=": operator.ge}[predicate.op]
        return compare(column, literal(predicate.value))
    if isinstance(predicate, In):
        return column.isin(*[literal(value) for value in predicate.values])
    if isinstance(predicate, IsNull):
        return column.isNull()
    if isinstance(predicate, Not):
        return ~to_column(predicate.operand, table)
    combine = operator.and_ if isinstance(predicate, And) else operator.or_
    return functools.reduce(combine, [to_column(p, table) for p in predicate.operands])


def is_not_true(condition: Column) -> Column:
    """Rows where ``condition`` is false or null (SQL's ``NOT coalesce(condition, false)``)."""
    from pyspark.sql import functions as F

    return ~F.coalesce(condition, F.lit(False))


def merge_condition(request: MergeRequest, target: str = "target") -> Column:
    """The join of target and source rows on the request's key columns, as a Column; ``target``: the
    target table's qualifier, quoted."""
    import functools
    import operator

    from pyspark.sql import functions as F

    return functools.reduce(operator.and_, [F.col(f"{target}.{quote_name(c)}") == F.col(f"source.{quote_name(c)}")
                                            for c in request.on])


def merge_inserts(request: MergeRequest) -> Column | None:
    """Which unmatched source rows a merge inserts: all (None), or those ``delete_when`` does not match."""
    return None if request.delete_when is None else is_not_true(to_column(request.delete_when, "source"))


def _is_data_file(path: str) -> bool:
    """Spark's committer leaves _SUCCESS and .crc files beside the data; readers skip them."""
    name = posixpath.basename(path)
    return not name.startswith(("_", "."))


def _read_options(plan: ScanPlan) -> dict[str, str]:
    """Spark reader options for the plan's format, options and time travel. Text formats fail on
    a malformed record instead of reading it as nulls; CSV quotes are escaped by doubling them, as
    pyarrow (and RFC 4180) does, and with a header each file's column names are checked against
    the schema instead of being matched by position."""
    options = plan.options
    if plan.format == "csv":
        return {"header": str(options.header).lower(), "sep": options.delimiter, "escape": '"',
                "enforceSchema": "false", "mode": "FAILFAST"}
    if plan.format == "json":
        return {"mode": "FAILFAST"}
    if plan.version is not None:
        return {"versionAsOf": str(plan.version)}
    if plan.timestamp is not None:
        return {"timestampAsOf": plan.timestamp.isoformat()}
    return {}


def _check_folder_values(frame: DataFrame, request: WriteRequest) -> None:
    """Refuses a Spark frame whose partition values no folder can name, as
    :func:`lakeio.partitions.check_folder_values` refuses Arrow data (with its words), before
    anything is staged. Only text can make a folder name too long (types that cannot name one at
    all are refused by :meth:`~lakeio.requests.WriteRequest.check_partition_columns`): one
    aggregate finds each text column's value of the longest folder name, as Spark escapes it."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    texts = [field.name for field in frame.schema
             if field.name in request.partition_by and field.dataType.simpleString() == "string"]
    if not texts:
        return

    def folder_bytes(column: Column) -> Column:  # each escaped character is 3 bytes (%XX) for its 1
        unescaped = F.regexp_replace(column, partitions.ESCAPED_PATTERN, "")
        return F.octet_length(column) + 2 * (F.length(column) - F.length(unescaped))

    longest = frame.agg(*[F.max_by(F.col(quote_name(name)), folder_bytes(F.col(quote_name(name)))).alias(name)
                          for name in texts]).collect()[0]  # one row: an aggregate
    partitions.check_folder_values(pa.table({name: pa.array([longest[name]], pa.string()) for name in texts}),
                                   texts, request.describe())


def _spread_for_file_size(request: WriteRequest, frame: DataFrame, sample: pa.Table,
                          rows: int | None) -> tuple[DataFrame, int]:
    """``frame`` spread over Spark's tasks so that its files come out at about the request's
    ``target_file_size``, and the rows per file to cap each file at (``maxRecordsPerFile``).

    The rows per file are learnt as the Arrow engine learns them, by writing ``sample`` (the
    data's first rows) to memory in the target format. A partitioned table's rows are grouped by
    partition, so each partition is written by one task: its files hold that many rows but the
    last, as the Arrow engine writes them (a large partition is written by one task, in
    sequence). Other data is spread evenly over as many tasks as files it makes, so no file is
    small (``rows``: the data's rows, counted by Spark when None).
    """
    from pyspark.sql import functions as F

    rows_per_file = files.rows_per_file(sample, "parquet" if request.format == "delta" else request.format,
                                   request.options)
    if request.partition_by:
        return frame.repartition(*[F.col(quote_name(c)) for c in request.partition_by]), rows_per_file
    rows = frame.count() if rows is None else rows
    return frame.repartition(max(1, math.ceil(rows / rows_per_file))), rows_per_file





def _read_text(spark: SparkSession, plan: ScanPlan, schema: pa.Schema) -> DataFrame:
    """CSV or JSON files read by Spark as ``schema`` (the Arrow engine's), value for value as the
    Arrow engine reads them. CSV values are read as text and converted as pyarrow's CSV reader
    converts them (:func:`_converted`, with the dataset's null values); JSON values by Spark's JSON
    parser with that schema, except timestamps (converted as pyarrow's JSON reader converts them:
    a value without a time zone is UTC), decimals (Spark's parser rounds extra decimals, which
    pyarrow refuses) and dates (Spark's parser takes ``2024-01-02T05:00`` for a day; the Arrow
    engine, a ``yyyy-mm-dd`` date only). A value that does not convert fails the job, with the message of
    :func:`text.bad_value_message`."""
    import pyarrow as pa
    from pyspark.sql import Column
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import from_arrow_type

    def spark_type(data_type: pa.DataType):
        return from_arrow_type(data_type, prefer_timestamp_ntz=True)

    as_text = {field.name for field in schema if field.name not in plan.partition_by
               and (plan.format == "csv" or pa.types.is_timestamp(field.type) or pa.types.is_decimal(field.type)
                    or pa.types.is_date(field.type))}
    read_schema = T.StructType([T.StructField(f.name, T.StringType() if f.name in as_text else spark_type(f.type))
                                for f in schema])
    frame = spark.read.format(plan.format).options(**_read_options(plan)).schema(read_schema) \
        .load(plan.location.spark_path)
    file = F.regexp_replace(F.col("_metadata.file_path"), SPARK_PATH, "")
    columns = []
    for field in schema:
        column = F.col(quote_name(field.name))
        if field.name not in as_text:
            columns.append(column)
            continue
        if plan.format == "csv":  # Spark reads an empty field as null; pyarrow as "" unless it is a null value
            raw = F.coalesce(column, F.lit(""))
            is_null = raw.isin(list(plan.options.null_values))
        else:
            raw, is_null = column, column.isNull()
        value, converts = _converted(raw, field.type, plan.format)
        message = F.concat(*[piece if isinstance(piece, Column) else F.lit(piece)
                             for piece in text.bad_value_message(plan, file, field.name, raw, field.type)])
        columns.append(F.when(is_null, F.lit(None)).when(converts, value).otherwise(F.raise_error(message))
                       .cast(spark_type(field.type)).alias(field.name))
    return frame.select(*columns)


def _converted(raw: Column, data_type: pa.DataType, format: str) -> tuple[Column, Column]:
    """``raw`` (text, not null) as ``data_type``, and whether it converts, as pyarrow's CSV reader
    converts text (its JSON reader, for JSON timestamps). Spark's casts accept more than pyarrow
    does (``+1`` or `` 1`` as an integer, ``2024-1-1`` as a date, a rounded decimal, a timestamp
    without a zone in a zoned column); the patterns and checks keep them to what pyarrow accepts."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_type

    types = pa.types
    if types.is_string(data_type) or types.is_large_string(data_type):
        return raw, F.lit(True)
    if types.is_null(data_type):
        return F.lit(None), F.lit(False)
    if types.is_boolean(data_type):
        true, false = pcsv.ConvertOptions().true_values, pcsv.ConvertOptions().false_values
        return F.when(raw.isin(true), True).when(raw.isin(false), False), raw.isin(true + false)
    target = from_arrow_type(data_type, prefer_timestamp_ntz=True)
    if types.is_timestamp(data_type):
        zoned = raw.rlike(r"[T ]\d{2}:\d{2}(:\d{2}(\.\d*)?)?(Z|[+-]\d{2}(:?\d{2})?)$")
        if format == "json":  # pyarrow's JSON reader: a value without a zone is UTC, a zoned value is kept in UTC
            instant = F.when(zoned, compat.try_cast(raw, "timestamp")).otherwise(
                F.convert_timezone(F.lit("UTC"), F.current_timezone(), compat.try_cast(raw, "timestamp_ntz")).cast("timestamp"))
            value = instant if data_type.tz else F.convert_timezone(F.current_timezone(), F.lit("UTC"),
                                                                    instant.cast("timestamp_ntz"))
            return value, value.isNotNull()
        # pyarrow's CSV reader: a zoned column takes zoned values only, a naive column naive ones only
        value = compat.try_cast(raw, target)
        return value, (zoned if data_type.tz else ~zoned) & value.isNotNull()
    value = compat.try_cast(F.trim(raw), target)
    if types.is_integer(data_type):
        return value, raw.rlike(r"^\s*-?\d+\s*$") & value.isNotNull()
    if types.is_decimal(data_type):  # pyarrow refuses a value with more decimals; Spark rounds it
        exact = compat.try_cast(F.trim(raw), f"decimal(38,{38 - data_type.precision + data_type.scale})")
        return value, value.isNotNull() & (value == exact)
    if types.is_date(data_type):
        value = compat.try_cast(raw, target)
        return value, raw.rlike(r"^\d{4}-\d{2}-\d{2}$") & value.isNotNull()
    return value, value.isNotNull()


def _write_options(request: WriteRequest, rows_per_file: int) -> dict[str, str]:
    """Spark writer options for the request's format, options, mode and predicate, with files of
    at most ``rows_per_file`` rows."""
    options = request.options
    result: dict[str, str] = {"maxRecordsPerFile": str(rows_per_file)}
    if request.format == "csv":  # quotes in values doubled, as pyarrow writes and reads them
        result.update(header=str(options.header).lower(), sep=options.delimiter, escape='"')
    if request.format in ("csv", "json"):  # microseconds, as Spark holds them (its default writes milliseconds)
        result.update(timestampFormat="yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX", timestampNTZFormat="yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
    if request.format in ("parquet", "delta"):
        result["compression"] = options.compression.replace("none", "uncompressed")
    if request.mode == "overwrite_partitions":
        result["partitionOverwriteMode"] = "dynamic"
    if request.replace_where is not None:
        result["replaceWhere"] = to_sql(request.replace_where)
    if options.schema_mode == "merge":
        result["mergeSchema"] = "true"
    if options.schema_mode == "overwrite":
        result["overwriteSchema"] = "true"
    if request.transaction_app_id is not None:  # Delta's idempotent write (see WriteRequest)
        result.update(txnAppId=request.transaction_app_id, txnVersion=str(TRANSACTION_VERSION))
    return result



"""The Spark engine: a classic session with Delta and s3a, reads and writes through Spark."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from typing import TYPE_CHECKING, Iterator

from lakeio import jvm, pruning
from lakeio.config import EnvironmentSettings
from lakeio.engines import WriteRequest, is_spark_dataframe, to_arrow_data
from lakeio.errors import EngineUnavailableError, InvalidArgumentError, SchemaMismatchError, StorageError
from lakeio.metrics import IORecord
from lakeio.predicate import to_sql
from lakeio.storage import Storage

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from lakeio.frame import ScanPlan

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
_ROWS_PER_BATCH = 65_536


def spark_session(settings: EnvironmentSettings, storage: Storage) -> "SparkSession":
    """The active classic SparkSession, or a new one built from the environment's settings.

    A new session gets Delta's extension and catalog, lakeio's helper and third-party jars, s3a
    pointed at the environment's S3, and Arrow for pandas conversion; ``spark.conf`` in the
    environment's settings overrides any of these. An active session (spark-submit, the Spark
    operator, a notebook) is reused: it must already have Delta, and gets the s3a settings.

    Raises:
        EngineUnavailableError: no pyspark, no Java, a missing jar, or a session lakeio cannot use.

    Example:
        >>> from lakeio.config import EnvironmentSettings, SparkSettings
        >>> settings = EnvironmentSettings(spark=SparkSettings(master="local[2]"))
        >>> spark = spark_session(settings, Storage(settings.s3))        # doctest: +SKIP
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise EngineUnavailableError("the Spark engine needs pyspark: pip install 'lakeio[spark]'") from error

    active = SparkSession.getActiveSession()
    if active is not None:
        jvm.check_helper(active)
        extensions = active.conf.get("spark.sql.extensions", "") or ""
        if DELTA_EXTENSION not in extensions:
            raise EngineUnavailableError(
                f"the active SparkSession lacks Delta: set spark.sql.extensions={DELTA_EXTENSION} and "
                f"spark.sql.catalog.spark_catalog={DELTA_CATALOG} when starting Spark"
            )
        hadoop = active.sparkContext._jsc.hadoopConfiguration()
        for key, value in storage.hadoop_conf().items():
            hadoop.set(key.removeprefix("spark.hadoop."), value)
        return active

    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise EngineUnavailableError("the Spark engine needs Java 17: install it or set JAVA_HOME")
    conf = {
        "spark.jars": ",".join(jvm.jar_paths()),
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        **storage.hadoop_conf(),
        **settings.spark.conf,
    }
    builder = SparkSession.builder.master(settings.spark.master).appName(settings.spark.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    jvm.check_helper(session)
    return session


class SparkEngine:
    name = "spark"

    def __init__(self, settings: EnvironmentSettings, storage: Storage):
        self.settings, self.storage = settings, storage

    def session(self) -> "SparkSession":
        return spark_session(self.settings, self.storage)

    # -- reads --------------------------------------------------------------------------------

    def read_dataframe(self, plan: "ScanPlan", record: IORecord | None = None) -> "DataFrame":
        """The plan as a lazy Spark DataFrame; a filtered read of a partitioned Parquet table reads
        only the partitions the helper selects (see :mod:`lakeio.pruning`), and says how many on ``record``."""
        from pyspark.sql import functions as F

        spark = self.session()
        with _translated(f"dataset {plan.dataset!r} [{plan.env}] at {plan.location.uri}"):
            if pruning.applies(plan):
                selection = pruning.select_partitions(spark, plan)
                if record is not None:
                    record.partitions_listed, record.partitions_total = len(selection.paths), selection.total
                frame = pruning.read(spark, plan, selection)
            else:
                frame = spark.read.format(plan.format).options(**_read_options(plan)).load(plan.location.spark_path)
        plan.check_columns(frame.columns)
        if plan.predicate is not None:
            frame = frame.where(to_sql(plan.predicate))
        if plan.columns is not None:
            frame = frame.select(*[F.col("`" + c.replace("`", "``") + "`") for c in plan.columns])
        return frame

    def read_arrow(self, plan: "ScanPlan", record: IORecord) -> "pa.Table":
        return self.read_dataframe(plan, record).toArrow()

    def read_batches(self, plan: "ScanPlan", record: IORecord) -> tuple["pa.Schema", Iterator["pa.RecordBatch"]]:
        """The plan's schema, and its rows streamed partition by partition to the driver."""
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema

        frame = self.read_dataframe(plan)
        schema = to_arrow_schema(frame.schema)

        def batches():
            rows = frame.toLocalIterator(prefetchPartitions=True)
            while chunk := list(itertools.islice(rows, _ROWS_PER_BATCH)):
                yield pa.RecordBatch.from_pylist([row.asDict(recursive=True) for row in chunk], schema=schema)

        return schema, batches()

    def count(self, plan: "ScanPlan", record: IORecord) -> int:
        return self.read_dataframe(plan, record).count()

    def schema(self, plan: "ScanPlan") -> "pa.Schema":
        from pyspark.sql.pandas.types import to_arrow_schema

        return to_arrow_schema(self.read_dataframe(plan).schema)

    def file_counts(self, plan: "ScanPlan") -> tuple[None, None]:
        return None, None

    def partition_counts(self, plan: "ScanPlan") -> tuple[int, int] | None:
        """Partitions the read lists versus the table's total, or None for a read that is not pruned.

        Reads never count the total when it takes listing the whole table; this does.
        """
        if not pruning.applies(plan):
            return None
        spark = self.session()
        selection = pruning.select_partitions(spark, plan)
        total = selection.total
        if total is None:
            total = len(pruning.select_partitions(spark, plan, prune=False).paths)
        return len(selection.paths), total

    # -- writes -------------------------------------------------------------------------------

    def write(self, request: WriteRequest, record: IORecord) -> None:
        request.check_arguments()
        if request.replace_where is not None and request.format != "delta":
            raise InvalidArgumentError(f"{request.describe()}: replace_where on plain {request.format} files is "
                                       "not supported on Spark; use engine='arrow' or a Delta dataset")
        spark = self.session()
        data = request.data
        if is_spark_dataframe(data):
            frame = data
        else:
            table = to_arrow_data(data)
            table = table.read_all() if hasattr(table, "read_all") else table
            request.check_replace_where(table)
            record.rows, record.bytes = table.num_rows, table.nbytes
            frame = spark.createDataFrame(table)
        request.check_partition_columns(frame.columns)
        writer = frame.write.format(request.format).options(**_write_options(request))
        writer = writer.mode({"error": "errorifexists", "overwrite_partitions": "overwrite"}.get(request.mode, request.mode))
        if request.partition_by:
            writer = writer.partitionBy(*request.partition_by)
        with _translated(request.describe(), exists=request.already_exists):
            writer.save(request.location.spark_path)
        if request.format == "delta":
            from delta.tables import DeltaTable

            history = DeltaTable.forPath(spark, request.location.spark_path).history(1).collect()[0]
            metrics = history["operationMetrics"] or {}
            record.rows = int(metrics.get("numOutputRows", record.rows or 0))
            record.files_written = int(metrics["numFiles"]) if "numFiles" in metrics else None


def _read_options(plan: "ScanPlan") -> dict[str, str]:
    """Spark reader options for the plan's format, options and time travel."""
    options = plan.options
    if plan.format == "csv":
        return {"header": str(options.header).lower(), "sep": options.delimiter, "inferSchema": "true",
                "nullValue": options.null_values[0] if options.null_values else ""}
    if plan.version is not None:
        return {"versionAsOf": str(plan.version)}
    if plan.timestamp is not None:
        return {"timestampAsOf": plan.timestamp.isoformat()}
    return {}


def _write_options(request: WriteRequest) -> dict[str, str]:
    """Spark writer options for the request's format, options, mode and predicate."""
    options = request.options
    result: dict[str, str] = {}
    if request.format == "csv":
        result.update(header=str(options.header).lower(), sep=options.delimiter)
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
    return result


@contextlib.contextmanager
def _translated(what: str, exists=None):
    """Turns Spark's and Delta's errors into lakeio's, once, at this boundary.

    ``exists`` makes the error for a write that found data where mode='error' wanted none.
    """
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as error:
        condition = (error.getCondition() or "") if hasattr(error, "getCondition") else ""
        text = f"{condition} {error}"
        if "PATH_NOT_FOUND" in text or "DELTA_MISSING_DELTA_TABLE" in text or "is not a Delta table" in text:
            raise StorageError(f"{what}: no data there ({condition or type(error).__name__})") from error
        if exists is not None and ("ALREADY_EXISTS" in text or "already exists" in text):
            raise exists() from error
        if "SCHEMA" in condition or "MERGE_FIELDS" in condition or "METADATA_MISMATCH" in condition:
            raise SchemaMismatchError(f"{what}: {error}") from error
        if "UNRESOLVED_COLUMN" in condition:
            raise InvalidArgumentError(f"{what}: {error}") from error
        raise StorageError(f"{what}: Spark failed: {condition or type(error).__name__}: {error}") from error

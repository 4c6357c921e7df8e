"""The Spark engine on Spark Connect: the same reads, writes, merges and contract as the classic
engine, through the DataFrame API only (no py4j, no ``sparkContext``).

- **The session** is :func:`lakeio.spark.session.connect_session`'s: the active Connect session, or
  one to the environment's ``spark.remote``, with the storage settings as session conf.
- **Pruning**: lakeio's helper runs in the server as a Spark Connect relation plugin
  (``lakeio.helper.ConnectPlugin``); :class:`PluginDoor` sends it the JSON the py4j door sends. A
  server without the plugin gets explicit partition paths with ``basePath``, listed and pruned by
  this process (pyarrow). ``record.extra["pruning"]`` says which ran.
- **The model boundary**: a plain scan is read from its files by Arrow when this process reaches the
  storage. Otherwise, and for what Spark computes, the server writes the result as Parquet to the
  scratch folder and Arrow reads it, as on a classic session, when the server shares that folder with
  this process (:func:`lakeio.spark.handoff.shared_scratch`, asked once per session): Connect's
  result-size limit does not apply. Without a shared folder the result comes as Connect's Arrow
  batches, and one over the server's ``spark.driver.maxResultSize`` is a
  :class:`~lakeio.errors.ResultTooLargeError` that says what works. ``record.extra["path"]`` says
  which ran.
- **MERGE** is Spark's ``DataFrame.mergeInto`` on the ``delta.`path``` table (Delta's Python
  DeltaTable API on Connect needs Delta's own Connect plugin on the server, which this stack lacks);
  its counts come from the commit's metrics.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lakeio.errors import EngineUnavailableError, InvalidArgumentError, StorageError
from lakeio.metrics import IORecord
from lakeio.predicate import quote_name
from lakeio.spark import handoff, pruning
from lakeio.spark.engine import SparkEngine, merge_condition, merge_inserts, to_column
from lakeio.spark.session import connect_session

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from lakeio.engines.arrow import Scan
    from lakeio.requests import MergeRequest, ScanPlan
    from lakeio.storage import Location

# The type URL of lakeio's extension relations (jvm/src/connect/scala/lakeio/helper/ConnectPlugin.scala).
REQUEST_TYPE_URL = "type.googleapis.com/lakeio.helper.Request"
PLUGIN_CLASS = "lakeio.helper.ConnectPlugin"
# How a Spark-computed result came back (record.extra["path"]).
HANDOFF_PATH = "spark connect: parquet hand-off"
BATCHES_PATH = "spark connect: arrow batches"


class PluginDoor:
    """The helper's entry points through its Spark Connect plugin: an extension relation carrying
    ``{"entry": ..., "payload": ...}``; the same JSON the py4j door (:mod:`lakeio.spark.jvm`) sends."""

    @staticmethod
    def frame(spark: SparkSession, entry_point: str, payload: dict | None = None) -> DataFrame:
        from pyspark.sql.connect.dataframe import DataFrame

        connect_session: Any = spark  # a Connect session, typed as the SparkSession API it implements
        return DataFrame(_helper_relation(json.dumps({"entry": entry_point, "payload": payload})), connect_session)

    @classmethod
    def call(cls, spark: SparkSession, entry_point: str, payload: dict | None = None) -> dict:
        return json.loads(cls.frame(spark, entry_point, payload).collect()[0]["json"])


def _helper_relation(request: str):
    """A Connect logical plan of one extension relation holding ``request`` (a StringValue's shape:
    field 1, the JSON), which the plugin answers."""
    from google.protobuf import wrappers_pb2
    from pyspark.sql.connect.plan import LogicalPlan

    class HelperRelation(LogicalPlan):
        def __init__(self) -> None:
            super().__init__(None)

        def plan(self, session):
            relation = self._create_proto_relation()
            relation.extension.type_url = REQUEST_TYPE_URL
            relation.extension.value = wrappers_pb2.StringValue(value=request).SerializeToString()
            return relation

    return HelperRelation()


class SparkConnectEngine(SparkEngine):
    """The Spark engine on a Spark Connect server (see the module's notes); satisfies
    :class:`lakeio.engines.Engine` and :class:`lakeio.engines.SparkCapable`."""

    name = "spark"

    def __init__(self, settings, storage):
        super().__init__(settings, storage)
        self._session: Any = None  # the Connect session, once set up
        self._plugin: bool | None = None  # whether the server has lakeio's plugin, once asked

    def session(self) -> SparkSession:
        """The Connect session (:func:`lakeio.spark.session.connect_session`), set up once."""
        if self._session is None or self._session.is_stopped:
            self._session, self._plugin = connect_session(self.settings, self.storage), None
        return self._session

    def shared_scratch(self) -> Location | None:
        """The scratch folder when the server shares it with this process, else None
        (:func:`lakeio.spark.handoff.shared_scratch`), asked once per session."""
        return handoff.shared_scratch(self.settings, self.session(), self.storage)

    def has_plugin(self) -> bool:
        """True when the server runs lakeio's Connect plugin, of this lakeio and this Spark.

        Raises:
            EngineUnavailableError: the plugin is there but of another lakeio or Spark.
        """
        if self._plugin is None:
            from pyspark.errors import PySparkException

            from lakeio import __version__

            spark = self.session()
            try:
                versions = PluginDoor.call(spark, "version")
            except PySparkException:  # the server has no plugin for lakeio's relation
                self._plugin = False
                return False
            if versions.get("helper") != __version__ or versions.get("spark") != spark.version:
                raise EngineUnavailableError(
                    f"the Spark Connect server's lakeio plugin is lakeio {versions.get('helper')} for Spark "
                    f"{versions.get('spark')}; this is lakeio {__version__} on Spark {spark.version}: put this "
                    f"lakeio's helper jar on the server's classpath")
            self._plugin = True
        return self._plugin

    def _door(self) -> pruning.HelperDoor:
        return PluginDoor()

    # -- reads --------------------------------------------------------------------------------

    def _selection(self, plan: ScanPlan, record: IORecord | None) -> pruning.PartitionSelection:
        """The helper's selection through the plugin; without it, this process's own listing."""
        if self.has_plugin():
            selection = super()._selection(plan, record)
            kind = "helper plugin"
        else:
            selection = self._client_selection(plan)
            if record is not None:
                record.partitions_listed, record.partitions_total = len(selection.paths), selection.total
            kind = "client listing"
        if record is not None:
            record.extra["pruning"] = kind
        return selection

    def _client_selection(self, plan: ScanPlan) -> pruning.PartitionSelection:
        """The partition directories holding the files pyarrow keeps for ``plan`` (Spark gets them as
        explicit paths with ``basePath`` and lists nothing else), typed as the Arrow engine types
        them (:mod:`lakeio.partitions`: Spark's rules, over every partition, not only those read)."""
        try:
            scan = self._arrow.open_scan(plan)
        except InvalidArgumentError:  # a filter Arrow cannot type as Spark does: every partition, Spark filters
            scan = self._arrow.open_scan(replace(plan, predicate=None))
        every = sorted({posixpath.dirname(path) for path in scan.dataset.files})
        kept = sorted({posixpath.dirname(path) for path, _ in scan.files()})

        def hadoop(folder: str) -> str:
            return replace(plan.location, path=folder).spark_path

        return pruning.PartitionSelection(
            paths=tuple(hadoop(folder) for folder in kept),
            types={c: pruning.spark_type_name(scan.dataset.schema.field(c).type) for c in plan.partition_by},
            total=len(every), schema_path=hadoop(every[0]) if every else None, data_schema=None, requests=1,
            steps=("client: pyarrow listed the table and pruned its partitions",))

    def _direct_scan(self, plan: ScanPlan, record: IORecord,
                     planned: Scan | None) -> tuple[Scan | None, pruning.PartitionSelection | None]:
        """As the classic engine's, when this process reaches the table's storage; a partitioned
        Parquet table without the plugin is read through the scan that lists it. Else Spark reads."""
        if not self._reaches(plan.location):
            return None, self._selection(plan, record) if pruning.applies(plan) else None
        if pruning.applies(plan) and handoff.is_plain_scan(plan) and not self.has_plugin():
            try:
                scan = self._arrow.open_scan(plan)
            except InvalidArgumentError:
                return None, self._selection(plan, record)
            selection = self._client_selection(plan)
            record.partitions_listed, record.partitions_total = len(selection.paths), selection.total
            record.extra["pruning"] = "client listing"
            return scan, None
        return super()._direct_scan(plan, record, planned)

    def _reaches(self, location: Location) -> bool:
        """True when this process can read ``location`` itself (the server may see storage it cannot)."""
        from pyarrow import fs as pafs

        try:
            return self.storage.filesystem(location).get_file_info(location.path).type != pafs.FileType.NotFound
        except OSError:
            return False

    def _collect(self, plan: ScanPlan, frame: DataFrame, record: IORecord) -> pa.Table:
        """A Spark-computed read as Arrow: through the scratch folder when the server shares it,
        else Connect's Arrow batches."""
        from pyspark.errors import PySparkException

        scratch = self.shared_scratch()
        if scratch is not None:
            record.extra["path"] = HANDOFF_PATH
            return handoff.spark_frame_to_arrow(frame, scratch, self.storage)
        record.extra["path"] = BATCHES_PATH
        try:
            return handoff.as_spark_types(frame.toArrow())
        except PySparkException as error:
            self._raise_if_too_large(plan, error)
            raise

    def _stream(self, plan: ScanPlan, frame: DataFrame, schema: pa.Schema, record: IORecord) -> Iterator[pa.RecordBatch]:
        """A Spark-computed read streamed: from the Parquet files the server writes to the shared
        scratch folder, else as Connect's Arrow batches (never Row objects)."""
        from pyspark.errors import PySparkException

        scratch = self.shared_scratch()
        record.extra["path"] = HANDOFF_PATH if scratch is not None else BATCHES_PATH

        def batches() -> Iterator[pa.RecordBatch]:  # Spark runs at the first batch
            if scratch is not None:
                for batch in handoff.staged_batches(frame, scratch, self.storage):
                    yield handoff.conformed(batch, schema)
                return
            try:
                yield from handoff.connect_batches(frame, schema)
            except PySparkException as error:
                self._raise_if_too_large(plan, error)
                raise

        return batches()

    def _raise_if_too_large(self, plan: ScanPlan, error: Exception) -> None:
        """Raises :func:`lakeio.spark.handoff.result_too_large`'s error when ``error`` is Spark's for
        a result past the server's limit."""
        too_large = handoff.result_too_large(error, plan.describe(), self.settings)
        if too_large is not None:
            raise too_large from error

    # -- Delta --------------------------------------------------------------------------------

    def _last_commit(self, location: Location) -> tuple[int, dict]:
        """The Delta table's latest version and that commit's operation metrics."""
        row = self._history(location, 1)[0]
        return int(row["version"]), dict(row["operationMetrics"] or {})

    def _merge_into(self, request: MergeRequest, frame: DataFrame) -> dict:
        """Spark's ``mergeInto`` on the ``delta.`path``` table; the counts from its commit's metrics."""
        from pyspark.errors import PySparkException

        spark, path = self.session(), request.location.spark_path
        try:
            columns = spark.read.format("delta").load(path).columns
        except PySparkException as error:
            said = f"{error.getCondition()} {error}"
            if "PATH_NOT_FOUND" in said or "DELTA_MISSING_DELTA_TABLE" in said or "is not a Delta table" in said:
                raise StorageError(f"{request.describe()}: no Delta table to merge into; "
                                   "create it with lake.write()") from error
            raise
        request.check_columns(columns, frame.columns)
        before, _ = self._last_commit(request.location)
        writer = frame.alias("source").mergeInto(f"delta.{quote_name(path)}", merge_condition(request, quote_name(path)))
        if request.delete_when is not None:
            writer = writer.whenMatched(to_column(request.delete_when, "source")).delete()
        if request.when_matched == "update":
            writer = writer.whenMatched().updateAll()
        if request.when_not_matched == "insert":
            writer = writer.whenNotMatched(merge_inserts(request)).insertAll()
        if request.options.schema_mode == "merge":
            writer = writer.withSchemaEvolution()
        writer.merge()
        version, metrics = self._last_commit(request.location)
        if version == before:  # nothing committed
            return {}
        return {"num_inserted_rows": int(metrics.get("numTargetRowsInserted", 0)),
                "num_updated_rows": int(metrics.get("numTargetRowsUpdated", 0)),
                "num_deleted_rows": int(metrics.get("numTargetRowsDeleted", 0))}

"""The engines that move data, behind one declared contract.

Every engine satisfies :class:`Engine`: it reads a :class:`~lakeio.requests.ScanPlan` to Arrow
(whole, streamed, counted, its schema, its pruning), writes a :class:`~lakeio.requests.WriteRequest`,
merges a :class:`~lakeio.requests.MergeRequest`, and says whether a dataset exists. What only some
engines do is a capability, a protocol of its own (:class:`SparkCapable`: a Spark DataFrame of a
read, a session for Spark-side validation). Engines are made by name from one registry
(:func:`create_engine`); a new engine mode is a new class registered here, with no edits elsewhere.

Built in: ``arrow`` (:mod:`lakeio.engines.arrow`, in-process, no JVM) and ``spark``
(:mod:`lakeio.spark.engine` on a classic session, :mod:`lakeio.spark.connect` on Spark Connect).
Modules are imported only when an engine is made, so ``import lakeio`` stays light.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lakeio.errors import EngineUnavailableError, InvalidArgumentError, SchemaMismatchError, storage_error

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from lakeio.config import EnvironmentSettings
    from lakeio.engines.arrow import Scan
    from lakeio.metrics import IORecord
    from lakeio.requests import MergeRequest, ScanPlan, WriteRequest
    from lakeio.storage import Location, Storage


@runtime_checkable
class Engine(Protocol):
    """What every engine does.

    ``scan`` arguments are the plan's files as opened earlier by :meth:`open_scan` (to choose the
    engine by size, ``engine: auto``); an engine reads them while they are current, else opens anew.
    """

    name: str

    def exists(self, location: Location, format: str) -> bool:
        """True when ``location`` holds a table of ``format``."""
        ...

    def open_scan(self, plan: ScanPlan) -> Scan:
        """The plan's data opened once, its files pruned by the plan's filter."""
        ...

    def read_arrow(self, plan: ScanPlan, record: IORecord, scan: Scan | None = None) -> pa.Table:
        """The plan's rows in this process."""
        ...

    def read_batches(self, plan: ScanPlan, record: IORecord,
                     scan: Scan | None = None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The plan's schema, and its rows streamed, never all in memory."""
        ...

    def count(self, plan: ScanPlan, record: IORecord, scan: Scan | None = None) -> int:
        """The plan's number of rows, read from as little data as the engine can."""
        ...

    def schema(self, plan: ScanPlan, scan: Scan | None = None) -> pa.Schema:
        """The Arrow schema of the plan's result."""
        ...

    def file_counts(self, plan: ScanPlan, scan: Scan | None = None) -> tuple[int | None, int | None]:
        """(files scanned, files in the table), or (None, None) where the engine cannot tell."""
        ...

    def partition_counts(self, plan: ScanPlan) -> tuple[int, int] | None:
        """(partitions listed, partitions in the table) for an engine that lists them itself, else None."""
        ...

    def write(self, request: WriteRequest, record: IORecord) -> None:
        """Writes the request's data; a failed or refused write leaves the previous data as it was."""
        ...

    def merge(self, request: MergeRequest, record: IORecord) -> None:
        """Upserts the request's data into its Delta table."""
        ...


@runtime_checkable
class SparkCapable(Protocol):
    """The capability of engines that run on Spark: reads as Spark DataFrames, and a session
    (for Spark-side validation and for callers who want Spark itself)."""

    def session(self) -> SparkSession:
        """The SparkSession the engine runs on."""
        ...

    def read_dataframe(self, plan: ScanPlan, record: IORecord | None = None) -> DataFrame:
        """The plan as a lazy Spark DataFrame."""
        ...


EngineFactory = Callable[["EnvironmentSettings", "Storage"], Engine]

# Built-in engines by name, as "module:class", imported when first made.
_REGISTRY: dict[str, str | EngineFactory] = {
    "arrow": "lakeio.engines.arrow:ArrowEngine",
    "spark": "lakeio.spark.engine:spark_engine",  # classic or Spark Connect, by the environment
}


def register_engine(name: str, factory: str | EngineFactory) -> None:
    """Registers an engine mode: ``factory(settings, storage)`` makes it (or ``"module:class"``).

    Example:
        >>> register_engine("arrow", "lakeio.engines.arrow:ArrowEngine")
        >>> "arrow" in engine_names()
        True
    """
    _REGISTRY[name] = factory


def engine_names() -> list[str]:
    """The names engines can be made by."""
    return sorted(_REGISTRY)


def create_engine(name: str, settings: EnvironmentSettings, storage: Storage) -> Engine:
    """Makes the engine registered as ``name`` for an environment's settings and storage.

    Raises:
        InvalidArgumentError: no engine has that name.
        EngineUnavailableError: the engine's module cannot be imported here.

    Example:
        >>> from lakeio.config import EnvironmentSettings
        >>> from lakeio.storage import Storage
        >>> settings = EnvironmentSettings()
        >>> engine = create_engine("arrow", settings, Storage(settings.s3))
        >>> engine.name, isinstance(engine, Engine)
        ('arrow', True)
    """
    if name not in _REGISTRY:
        raise InvalidArgumentError(f"no engine {name!r}; engines: {', '.join(engine_names())}")
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attribute)
        except ImportError as error:
            raise EngineUnavailableError(f"the {name} engine cannot be imported here: {error}") from error
    return factory(settings, storage)


def counted(schema, batches, record: IORecord, on_end=None):
    """A RecordBatchReader over ``batches`` that adds each batch's rows and bytes to ``record``
    as it passes, and calls ``on_end`` once the stream is exhausted."""
    import pyarrow as pa

    record.rows = record.bytes = 0

    def passing():
        for batch in batches:
            record.rows += batch.num_rows
            record.bytes += batch.get_total_buffer_size()
            yield batch
        if on_end is not None:
            on_end()

    return pa.RecordBatchReader.from_batches(schema, passing())


def is_spark_dataframe(data: Any) -> bool:
    """True for a pyspark DataFrame, without importing pyspark."""
    return any(cls.__module__.startswith("pyspark.sql") and cls.__name__ == "DataFrame"
               for cls in type(data).__mro__)


def to_arrow_data(data: Any, settings: EnvironmentSettings | None = None, storage: Storage | None = None):
    """pandas, Arrow tables, batches and readers -> a pyarrow Table or RecordBatchReader.

    A Spark DataFrame (with the environment's ``settings`` and ``storage``, for its scratch folder)
    is streamed from the Parquet files Spark writes there (:func:`lakeio.spark.handoff.spark_frame_batches`),
    never collected through the driver.
    """
    import pyarrow as pa

    from lakeio.errors import InvalidArgumentError

    if isinstance(data, (pa.Table, pa.RecordBatchReader)):
        return data
    if is_spark_dataframe(data):
        if settings is None or storage is None:
            raise InvalidArgumentError("a Spark DataFrame becomes Arrow data through the environment's scratch "
                                       "folder: pass its settings and storage")
        from lakeio.spark.handoff import spark_frame_batches

        return spark_frame_batches(data, settings, storage)
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if type(data).__module__.startswith("pandas") and type(data).__name__ == "DataFrame":
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InvalidArgumentError(
        f"cannot take a {type(data).__module__}.{type(data).__name__}: "
        "use a pandas DataFrame, a pyarrow Table/RecordBatch/RecordBatchReader or a Spark DataFrame"
    )


def in_microseconds(data, what: str):
    """``data`` (a pyarrow Table or RecordBatchReader) with its nanosecond timestamps and durations
    (pandas' own, nested ones too) as microseconds, the finest that Parquet as Spark reads it, Delta,
    Spark and lakeio's text records keep: cast losslessly, or refused. A table is cast now, before
    anything is written; a stream's batches as they pass. Data without nanoseconds is returned as is.

    Raises:
        InvalidArgumentError: naming ``what`` (the write), the column and its first value with a
            part finer than a microsecond (no format would keep it: it is never truncated silently).
    """
    import pyarrow as pa

    wanted = pa.schema([field.with_type(_in_microseconds(field.type)) for field in data.schema], data.schema.metadata)
    if wanted.equals(data.schema):
        return data

    def cast(part):
        try:
            return part.cast(wanted)  # a safe cast: it fails on a value it would truncate
        except pa.ArrowInvalid:
            name, value = next((name, value) for name, value in
                               ((name, _first_finer(part.column(name))) for name in part.schema.names)
                               if value is not None)
            raise InvalidArgumentError(
                f"{what}: column {name!r}: value {value} has nanoseconds, which lakeio does not keep (Parquet as "
                "Spark reads it, Delta and Spark hold microseconds): round it to microseconds first "
                "(pandas: .dt.floor('us'))") from None

    if isinstance(data, pa.Table):
        return cast(data)
    return pa.RecordBatchReader.from_batches(wanted, (cast(batch) for batch in data))


def refuse_durations(schema, format: str, engine: str, what: str) -> None:
    """Refuses columns of durations (at any depth) where they would read back as something else:
    Delta has no such type, and Spark writes its day-time intervals to Parquet as int64, which read
    back as numbers; the Arrow engine's Parquet keeps them (CSV and JSON refuse them as types text
    cannot carry). ``schema``: the data's, Arrow's or Spark's (a ``StructType``), before anything
    else (such as :func:`in_microseconds`) refuses what it holds less clearly.

    Raises:
        SchemaMismatchError: naming ``what`` (the write) and each such column.

    Example:
        >>> import pyarrow as pa
        >>> refuse_durations(pa.schema({"wait": pa.duration("ns")}), "parquet", "arrow", "write of 'x'")
        >>> refuse_durations(pa.schema({"wait": pa.duration("ns")}), "parquet", "spark", "write of 'x'")
        Traceback (most recent call last):
        ...
        lakeio.errors.SchemaMismatchError: write of 'x': parquet written by Spark cannot hold durations ...
    """
    from lakeio.engines import text

    if format in text.TEXT_FORMATS or (format == "parquet" and engine == "arrow"):
        return
    types = {field.name: str(field.type) if hasattr(field, "type") else field.dataType.simpleString()
             for field in schema}
    held = [f"{name!r} ({type_})" for name, type_ in types.items() if "duration[" in type_ or "interval day" in type_]
    if held:
        why, other = (("delta cannot hold durations (it has no such type)", "") if format == "delta" else
                      (f"{format} written by Spark cannot hold durations (Spark writes them as int64, which read back "
                       "as numbers)", ", or write with engine='arrow'"))
        raise SchemaMismatchError(f"{what}: {why}: column(s) {', '.join(held)}; cast them to int64 microseconds{other}")


def _microsecond_twin(data_type: pa.DataType) -> pa.DataType | None:
    """The microsecond type of a nanosecond timestamp or duration type, else None."""
    import pyarrow as pa

    if pa.types.is_timestamp(data_type) and data_type.unit == "ns":
        return pa.timestamp("us", data_type.tz)
    if pa.types.is_duration(data_type) and data_type.unit == "ns":
        return pa.duration("us")
    return None


def _in_microseconds(data_type: pa.DataType) -> pa.DataType:
    """``data_type`` with its nanosecond timestamps and durations (at any depth of structs, lists and
    maps) in microseconds."""
    import pyarrow as pa

    twin = _microsecond_twin(data_type)
    if twin is not None:
        return twin
    if pa.types.is_struct(data_type):
        return pa.struct([field.with_type(_in_microseconds(field.type)) for field in data_type])
    if pa.types.is_map(data_type):
        return pa.map_(data_type.key_field.with_type(_in_microseconds(data_type.key_type)),
                       data_type.item_field.with_type(_in_microseconds(data_type.item_type)), data_type.keys_sorted)
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type) or pa.types.is_fixed_size_list(data_type):
        inner = data_type.value_field.with_type(_in_microseconds(data_type.value_type))
        return (pa.list_(inner, data_type.list_size) if pa.types.is_fixed_size_list(data_type)
                else pa.list_(inner) if pa.types.is_list(data_type) else pa.large_list(inner))
    return data_type


def _first_finer(values) -> pa.Scalar | None:
    """The first timestamp or duration of ``values`` (an array, at any depth) with a part finer than
    a microsecond."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    twin = _microsecond_twin(values.type)
    if twin is not None:
        rounded = pc.cast(pc.cast(values, twin, safe=False), values.type)
        index = pc.index(pc.fill_null(pc.not_equal(rounded, values), False), True).as_py()
        return None if index < 0 else values[index]
    if pa.types.is_struct(values.type):
        return next((found for found in (_first_finer(values.field(i)) for i in range(values.type.num_fields))
                     if found is not None), None)
    if pa.types.is_map(values.type):
        keys = _first_finer(values.keys)
        return keys if keys is not None else _first_finer(values.items)
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or pa.types.is_fixed_size_list(values.type):
        return _first_finer(values.flatten())
    return None


#: How many of a Delta table's latest commits a write looks through for its own (others may have
#: committed since), and how often it asks again when the history cannot be read.
OWN_COMMIT_DEPTH, OWN_COMMIT_ATTEMPTS = 20, 3


def find_own_commit(request: WriteRequest, history: Callable[[int], Iterable[tuple[int, str | None, dict]]]
                    ) -> tuple[int, dict] | None:
    """The version and operation metrics of the Delta commit ``request`` made, found by its
    :attr:`~lakeio.requests.WriteRequest.commit_marker` in ``history(depth)`` (the table's latest
    commits: version, ``userMetadata``, metrics), asked again after a pause if it fails.

    The write has committed when this runs: a history that still cannot be read (a storage fault)
    is a warning on the ``lakeio`` logger and None (the record goes without the commit's figures),
    never an error, since a caller told the write failed would retry it and write it twice.
    """
    for attempt in range(1, OWN_COMMIT_ATTEMPTS + 1):
        try:
            for version, marker, metrics in history(OWN_COMMIT_DEPTH):
                if marker == request.commit_marker:
                    return version, metrics
            return None
        except Exception as error:  # noqa: BLE001 - committed: the figures are the only loss
            if attempt == OWN_COMMIT_ATTEMPTS:
                logging.getLogger("lakeio").warning(
                    "lakeio: %s: committed, but its commit could not be read back from the table's history (%s)",
                    request.describe(), storage_error("history", error))
                return None
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")

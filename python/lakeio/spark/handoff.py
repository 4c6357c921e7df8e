"""The model boundary: handing data from Spark's side to Arrow (and pandas) without the driver.

A Spark-planned *plain scan* (a filter and a projection over Parquet or Delta) is read straight from
its pruned file list by the Arrow engine, the same scan it runs for its own reads, and cast to the
types Spark gives the same columns, so the engine behind a frame does not change its schema. For a
partitioned Parquet table the file list is the one the Scala helper found for Spark
(:func:`selected_files_dataset`), so nothing is listed twice. Data that Spark computes goes through
:func:`spark_frame_to_arrow` (and :func:`spark_frame_batches`): Spark writes it as Parquet to a
scratch folder, Arrow reads it. On Spark Connect that needs a folder the server and this process
share, which :func:`shared_scratch` asks the server about; without one, the result is Connect's
Arrow batches (:func:`connect_batches`), within the server's ``spark.driver.maxResultSize``.

Before a whole result is materialised, :func:`check_fits_in_memory` compares an estimate of its
in-memory size against the memory this process can still get, so a result that cannot fit is a
clear error instead of an out-of-memory kill.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import operator
import os
import posixpath
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from lakeio.dispatch import readable_size
from lakeio.errors import InvalidArgumentError, ResultTooLargeError
from lakeio.spark import jvm

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyspark.sql import DataFrame, SparkSession

    from lakeio.config import EnvironmentSettings
    from lakeio.engines.arrow import Scan
    from lakeio.requests import ScanPlan
    from lakeio.spark.pruning import PartitionSelection
    from lakeio.storage import Location, Storage

PLAIN_SCAN_FORMATS = ("parquet", "delta")
# Footers read to learn how much bigger a file's columns are decoded than stored.
_FOOTER_SAMPLE = 4
# Arrow memory is about the Parquet pages' uncompressed size; dictionary-encoded columns decode
# larger, so the estimate keeps this margin below what is available.
_MEMORY_MARGIN = 1.25


def is_plain_scan(plan: ScanPlan) -> bool:
    """True when the plan is a filter and projection over Parquet or Delta files, so Arrow can read
    its files directly (CSV and JSON are parsed by Spark, in parallel, into the types the Arrow
    engine gives them)."""
    return plan.format in PLAIN_SCAN_FORMATS


def selected_files_dataset(plan: ScanPlan, selection: PartitionSelection,
                           filesystem) -> tuple[ds.Dataset, dict[str, int]]:
    """The files of the partitions the helper selected for ``plan`` (a
    :attr:`~lakeio.pruning.PartitionSelection.listed` selection) as an Arrow dataset that lists and
    infers nothing, and each file's size by path.

    The partition columns are typed as Spark types them (pyspark's mapping of the helper's types),
    the data columns as the first file's footer has them (what Spark reads too); with no file
    selected, the schema is the helper's.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    from pyspark.sql.pandas.types import to_arrow_schema

    from lakeio.engines.arrow import native_parquet_fragments
    from lakeio.files import check_parquet_files
    from lakeio.spark import pruning

    spark_schema = to_arrow_schema(pruning.table_schema(selection, plan.partition_by))
    partition_types = {c: spark_schema.field(c).type for c in plan.partition_by}

    def condition(column: str, value):
        if value is None:
            return pc.field(column).is_null()
        return pc.field(column) == pruning.arrow_value(value, partition_types[column])

    files = []
    for partition in selection.partitions:
        values = partition["values"]
        expression = functools.reduce(operator.and_, [condition(c, values[c]) for c in plan.partition_by])
        files += [(_arrow_path(file["path"]), expression, file["size"]) for file in partition["files"]]
    fragments = native_parquet_fragments(files, filesystem)
    # The files' one schema, read through their fragments, which keep their footers for the read.
    data = check_parquet_files(plan.describe(), fragments, plan.partition_by) or spark_schema
    schema = pa.schema([field for field in data if field.name not in partition_types]
                       + [pa.field(c, t) for c, t in partition_types.items()])
    dataset = ds.FileSystemDataset(fragments, schema, ds.ParquetFileFormat(), filesystem)
    return dataset, {path: size for path, _, size in files}


def _arrow_path(hadoop_path: str) -> str:
    """A Hadoop path the helper gives (``file:/dir/f``, ``s3a://bucket/key``) as pyarrow's filesystems
    take it (``/dir/f``, ``bucket/key``); Hadoop's ``toString`` keeps names as they are on storage."""
    for prefix in ("s3a://", "file://", "file:"):
        if hadoop_path.startswith(prefix):
            return hadoop_path[len(prefix):]
    return hadoop_path


def spark_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """The Arrow schema Spark gives columns of these Arrow types, by pyspark's own type mapping
    (e.g. nanosecond timestamps become microseconds, large strings become strings)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_type, to_arrow_type

    return pa.schema([field.with_type(to_arrow_type(from_arrow_type(field.type, prefer_timestamp_ntz=True)))
                      for field in schema], metadata=schema.metadata)


def as_spark_types(table: pa.Table) -> pa.Table:
    """``table`` cast to :func:`spark_arrow_schema` (no copy when the types already agree)."""
    wanted = spark_arrow_schema(table.schema)
    return table if wanted.equals(table.schema) else table.cast(wanted, safe=False)


def estimated_memory(scan: Scan, columns: Sequence[str] | None) -> int:
    """Bytes the Arrow table of a Parquet ``scan`` will take.

    The footers of a few of its largest files give the ratio of the wanted columns' uncompressed size
    to the file size; the total size of the kept files, times that ratio, is the estimate. Footers
    are read through the scan's own fragments, which keep them for the read. Filters are ignored
    (the estimate is an upper bound for filtered reads).
    """
    sizes = dict(scan.files())
    total = sum(sizes.values())
    sample = sorted(scan.kept, key=lambda fragment: sizes[fragment.path], reverse=True)[:_FOOTER_SAMPLE]
    wanted = None if columns is None else set(columns)
    sampled_size = decoded = 0
    for fragment in sample:
        metadata = fragment.metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                if wanted is None or chunk.path_in_schema.split(".")[0] in wanted:
                    decoded += chunk.total_uncompressed_size
        sampled_size += sizes[fragment.path]
    return int(total * decoded / sampled_size) if sampled_size else 0


def available_memory() -> int:
    """Bytes this process can still allocate: the kernel's MemAvailable, capped by the cgroup limit."""
    available = None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/fs/cgroup/memory.max") as limit, open("/sys/fs/cgroup/memory.current") as current:
            text = limit.read().strip()
            if text != "max":
                headroom = int(text) - int(current.read().strip())
                available = headroom if available is None else min(available, headroom)
    if available is None:  # not Linux: let the allocator decide
        import pyarrow as pa

        return pa.total_allocated_bytes() + (1 << 62)
    return available


def check_fits_in_memory(plan: ScanPlan, needed: int, available: int | None = None) -> None:
    """Raises :class:`ResultTooLargeError` when ``needed`` bytes (with a margin) exceed what is left."""
    available = available_memory() if available is None else available
    if needed * _MEMORY_MARGIN > available:
        raise ResultTooLargeError(
            f"dataset {plan.dataset!r} [{plan.env}] at {plan.location.uri}: the result would take about "
            f"{readable_size(needed)} in memory and {readable_size(available)} is available; stream it with "
            f".to_batches(), narrow it with columns=/where=, or write it to another dataset with lake.write()"
        )


def spark_frame_to_arrow(frame: DataFrame, scratch: Location, storage: Storage) -> pa.Table:
    """A Spark-computed DataFrame as an Arrow table, without collecting it through the driver.

    Spark writes the frame as Parquet to a scratch folder (``scratch``, on storage every executor
    and this process can reach), Arrow reads the files in parallel, and the folder is removed. This
    is never limited by ``spark.driver.maxResultSize``, unlike ``toArrow()``.
    """
    dataset, remove, void = _staged(frame, scratch, storage)
    try:
        return _with_nulls(as_spark_types(dataset.to_table()), void)
    finally:
        remove()


def spark_frame_batches(frame: DataFrame, settings: EnvironmentSettings, storage: Storage) -> pa.RecordBatchReader:
    """A Spark DataFrame as a stream of Arrow batches, without the driver: what a write of Spark
    data on the Arrow engine takes. Spark writes Parquet to the environment's scratch folder
    (:func:`scratch_location`) and :func:`staged_batches` streams it. On Spark Connect the folder is
    used when the server shares it (:func:`shared_scratch`, asked once per session); else the frame
    comes as Connect's Arrow batches (:func:`connect_batches`), within the server's
    ``spark.driver.maxResultSize``."""
    import pyarrow as pa

    spark = frame.sparkSession
    if not jvm.is_connect(spark):
        return staged_batches(frame, scratch_location(settings, spark), storage)
    scratch = shared_scratch(settings, spark, storage)
    if scratch is not None:
        return staged_batches(frame, scratch, storage)
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(frame.schema)
    return pa.RecordBatchReader.from_batches(schema, connect_batches(frame, schema))


def staged_batches(frame: DataFrame, scratch: Location, storage: Storage) -> pa.RecordBatchReader:
    """``frame`` written by Spark as Parquet under ``scratch`` (:func:`_staged`), streamed by Arrow
    in Spark's types; the files are removed once the reader is exhausted or closed."""
    import pyarrow as pa

    dataset, remove, void = _staged(frame, scratch, storage)
    schema = spark_arrow_schema(dataset.schema)

    def batches():
        try:
            for batch in dataset.to_batches():
                yield _with_nulls(batch if batch.schema.equals(schema) else batch.cast(schema, safe=False), void)
        finally:
            remove()

    return pa.RecordBatchReader.from_batches(_with_nulls(schema.empty_table(), void).schema, batches())


def connect_batches(frame: DataFrame, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """A Spark Connect frame's rows as the server sends them, Arrow batches, cast to ``schema``
    (pyspark's ``toLocalIterator`` makes Row objects of the same stream). The server runs one job
    for the whole result, so it is bounded by the server's ``spark.driver.maxResultSize``: past it,
    the stream raises Spark's error (see :func:`result_too_large`)."""
    import pyarrow as pa

    connect_frame: Any = frame  # a Connect DataFrame, typed as the DataFrame API it implements
    client, plan = connect_frame.sparkSession.client, connect_frame._plan  # what toArrow() sends
    for item in client.to_table_as_iterator(plan.to_proto(client), plan.observations):
        if isinstance(item, pa.Table):  # the first item is the result's Spark schema
            yield from conformed(item, schema).to_batches()


def conformed(data, schema: pa.Schema):
    """A table or batch of Spark's columns as ``schema`` has them (its order, types and nullability)."""
    return data.select(schema.names).cast(schema)


def _staged(frame: DataFrame, scratch: Location, storage: Storage
            ) -> tuple[ds.Dataset, Callable[[], None], list[tuple[int, str]]]:
    """``frame`` written by Spark as Parquet under a new folder of ``scratch``: the Arrow dataset
    of its files, the function that removes the folder, and the positions and names of the frame's
    VOID (all-null, e.g. a partition column holding only nulls) columns, which Parquet cannot hold
    (Spark 3.5 refuses them): they are left out of the files and come back as Arrow nulls
    (:func:`_with_nulls`)."""
    import pyarrow.dataset as ds
    from pyspark.sql.types import NullType

    folder = posixpath.join(scratch.path, f"lakeio-handoff-{uuid.uuid4().hex[:12]}")
    filesystem = storage.filesystem(scratch)

    def remove() -> None:
        with contextlib.suppress(OSError):
            filesystem.delete_dir(folder)

    void = [(index, field.name) for index, field in enumerate(frame.schema.fields) if isinstance(field.dataType, NullType)]
    if void:
        frame = frame.drop(*[name for _, name in void])
    frame.write.mode("error").parquet(dataclasses.replace(scratch, path=folder).spark_path)
    try:
        return ds.dataset(folder, filesystem=filesystem, format="parquet"), remove, void
    except BaseException:
        remove()
        raise


def _with_nulls(data, void: list[tuple[int, str]]):
    """A table or batch with the VOID columns :func:`_staged` left out put back, as Arrow nulls."""
    import pyarrow as pa

    for index, name in void:
        data = data.add_column(index, pa.field(name, pa.null()), pa.nulls(data.num_rows))
    return data


def scratch_location(settings: EnvironmentSettings, spark: SparkSession) -> Location:
    """Where Spark stages results handed to Arrow: the environment's ``spark.scratch_uri``, else a
    local temporary folder when Spark runs locally. With any other master the driver and the
    executors need not share a disk, so the scratch must be shared storage (S3).

    Raises:
        InvalidArgumentError: Spark runs on a cluster and the scratch URI is unset or local.
    """
    from pathlib import Path

    from lakeio.storage import resolve_location

    uri = settings.spark.scratch_uri
    master = spark.conf.get("spark.master", "") or ""  # a conf, not sparkContext: Spark Connect has none
    on_cluster = not master.startswith("local")
    if uri is None:
        if on_cluster:
            raise InvalidArgumentError(
                f"Spark runs on {master}: set spark.scratch_uri in lakeio.yaml to a folder every executor "
                "and this process can reach (e.g. s3://bucket/tmp), where results computed by Spark are "
                "staged for Arrow")
        uri = default_scratch()
    location = resolve_location(uri, Path.cwd())
    if on_cluster and location.scheme == "file":
        raise InvalidArgumentError(
            f"spark.scratch_uri {uri!r} is a local folder, but Spark runs on {master}, whose executors do not "
            "write to this machine's disk: set it to shared storage every executor and this process can "
            "reach (e.g. s3://bucket/tmp)")
    return location


# per Connect session (gone with it), the answer of :func:`shared_scratch` for each scratch URI
_shared_answers: weakref.WeakKeyDictionary[SparkSession, dict[str | None, Location | None]] = \
    weakref.WeakKeyDictionary()


def shared_scratch(settings: EnvironmentSettings, spark: SparkSession, storage: Storage) -> Location | None:
    """The scratch folder (:func:`scratch_location`) when a Spark Connect server and this process
    both reach it, else None: a fact asked, not assumed, once per session and scratch URI. This
    process writes a token under the folder and the server reads it back (``spark.read.text``); the
    probe is removed either way. A server on a cluster with no shared ``spark.scratch_uri`` shares
    none."""
    answers = _shared_answers.setdefault(spark, {})
    uri = settings.spark.scratch_uri
    if uri not in answers:
        answers[uri] = _probed_scratch(settings, spark, storage)
    return answers[uri]


def _probed_scratch(settings: EnvironmentSettings, spark: SparkSession, storage: Storage) -> Location | None:
    from pyspark.errors import PySparkException

    try:
        scratch = scratch_location(settings, spark)  # the server's spark.master decides what a cluster is
    except InvalidArgumentError:
        return None
    token = uuid.uuid4().hex
    folder = posixpath.join(scratch.path, f"lakeio-probe-{token[:12]}")
    filesystem = storage.filesystem(scratch)
    try:
        filesystem.create_dir(folder)
        with filesystem.open_output_stream(posixpath.join(folder, "token")) as probe:
            probe.write(token.encode())
        seen = [row[0] for row in spark.read.text(dataclasses.replace(scratch, path=folder).spark_path).collect()]
    except (OSError, PySparkException):  # this process cannot write there, or the server cannot read it
        seen = []
    finally:
        with contextlib.suppress(OSError):
            filesystem.delete_dir(folder)
    return scratch if seen == [token] else None


def result_too_large(error: Exception, what: str, settings: EnvironmentSettings) -> ResultTooLargeError | None:
    """The error for a Spark Connect result past the server's ``spark.driver.maxResultSize`` (None
    for any other ``error``), raised when the server does not share the scratch folder: what works
    is a scratch folder both reach, less data, or a write that stays in the server."""
    if "maxResultSize" not in str(error):
        return None
    uri = settings.spark.scratch_uri
    scratch = f"the scratch folder {uri}" if uri else "a scratch folder (spark.scratch_uri is unset)"
    return ResultTooLargeError(
        f"{what}: the result is larger than the Spark Connect server's spark.driver.maxResultSize, and the "
        f"server and this process do not share {scratch}, through which larger results come back as Parquet: "
        "set spark.scratch_uri in lakeio.yaml to a folder both reach (e.g. s3://bucket/tmp), narrow the read "
        "with columns=/where=, or write the data to another dataset with lake.write()")


def default_scratch() -> str:
    """Where :func:`spark_frame_to_arrow` stages files when the environment names no scratch URI:
    the local temporary folder (right for ``local[*]`` masters, whose executors share this disk)."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), "lakeio-scratch")


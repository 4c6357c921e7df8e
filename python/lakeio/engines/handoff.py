"""The model boundary: handing data from Spark's side to Arrow (and pandas) without the driver.

A Spark-planned *plain scan* (a filter and a projection over Parquet or Delta) is read straight from
its pruned file list by the Arrow engine, the same scan it runs for its own reads, and cast to the
types Spark gives the same columns, so the engine behind a frame does not change its schema. Data
that Spark computes goes through :func:`spark_frame_to_arrow`.

Before a whole result is materialised, :func:`check_fits_in_memory` compares an estimate of its
in-memory size against the memory this process can still get, so a result that cannot fit is a
clear error instead of an out-of-memory kill.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from typing import TYPE_CHECKING, Sequence

from lakeio.errors import ResultTooLargeError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from lakeio.frame import ScanPlan
    from lakeio.storage import Location, Storage

PLAIN_SCAN_FORMATS = ("parquet", "delta")
# Footers read to learn how much bigger a file's columns are decoded than stored.
_FOOTER_SAMPLE = 4
# Arrow memory is about the Parquet pages' uncompressed size; dictionary-encoded columns decode
# larger, so the estimate keeps this margin below what is available.
_MEMORY_MARGIN = 1.25


def is_plain_scan(plan: "ScanPlan") -> bool:
    """True when the plan is a filter and projection over Parquet or Delta files, so Arrow can read
    its files directly (CSV and JSON are parsed by Spark, in parallel, into the types the Arrow
    engine gives them).

    A partition-filtered read of plain Parquet is not, for now: its partitions are chosen by the
    Scala helper (:mod:`lakeio.pruning`), which lists only those, and the Arrow engine would list
    the whole table; it goes through Spark and the Parquet hand-off instead."""
    from lakeio import pruning

    return plan.format in PLAIN_SCAN_FORMATS and not pruning.applies(plan)


def spark_arrow_schema(schema: "pa.Schema") -> "pa.Schema":
    """The Arrow schema Spark gives columns of these Arrow types, by pyspark's own type mapping
    (e.g. nanosecond timestamps become microseconds, large strings become strings)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_type, to_arrow_type

    return pa.schema([field.with_type(to_arrow_type(from_arrow_type(field.type, prefer_timestamp_ntz=True)))
                      for field in schema], metadata=schema.metadata)


def as_spark_types(table: "pa.Table") -> "pa.Table":
    """``table`` cast to :func:`spark_arrow_schema` (no copy when the types already agree)."""
    wanted = spark_arrow_schema(table.schema)
    return table if wanted.equals(table.schema) else table.cast(wanted, safe=False)


def estimated_memory(files: Sequence[tuple[str, int]], columns: Sequence[str] | None, filesystem) -> int:
    """Bytes the Arrow table of a Parquet scan of ``files`` ((path, size) pairs) will take.

    The footers of a few files give the ratio of the wanted columns' uncompressed size to the file
    size; the total size of all files, times that ratio, is the estimate. Filters are ignored (the
    estimate is an upper bound for filtered reads).
    """
    import pyarrow.parquet as pq

    total = sum(size for _, size in files)
    sample = sorted(files, key=lambda item: item[1], reverse=True)[:_FOOTER_SAMPLE]
    sampled_size = decoded = 0
    for path, size in sample:
        with filesystem.open_input_file(path) as handle:
            metadata = pq.ParquetFile(handle).metadata
        wanted = None if columns is None else set(columns)
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                if wanted is None or chunk.path_in_schema.split(".")[0] in wanted:
                    decoded += chunk.total_uncompressed_size
        sampled_size += size
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


def check_fits_in_memory(plan: "ScanPlan", needed: int, available: int | None = None) -> None:
    """Raises :class:`ResultTooLargeError` when ``needed`` bytes (with a margin) exceed what is left."""
    available = available_memory() if available is None else available
    if needed * _MEMORY_MARGIN > available:
        raise ResultTooLargeError(
            f"dataset {plan.dataset!r} [{plan.env}] at {plan.location.uri}: the result would take about "
            f"{needed / 2**30:.1f} GiB in memory and {available / 2**30:.1f} GiB is available; stream it with "
            f".to_batches(), narrow it with columns=/where=, or write it to another dataset with lake.write()"
        )


def spark_frame_to_arrow(frame: "DataFrame", scratch: "Location", storage: "Storage") -> "pa.Table":
    """A Spark-computed DataFrame as an Arrow table, without collecting it through the driver.

    Spark writes the frame as Parquet to a scratch folder (``scratch``, on storage every executor
    and this process can reach), Arrow reads the files in parallel, and the folder is removed. This
    is never limited by ``spark.driver.maxResultSize``, unlike ``toArrow()``.
    """
    import pyarrow.dataset as ds

    folder = posixpath.join(scratch.path, f"lakeio-handoff-{uuid.uuid4().hex[:12]}")
    spark_path = f"file:{folder}" if scratch.scheme == "file" else f"s3a://{folder}"
    filesystem = storage.filesystem(scratch)
    frame.write.mode("errorifexists").parquet(spark_path)
    try:
        return as_spark_types(ds.dataset(folder, filesystem=filesystem, format="parquet").to_table())
    finally:
        with contextlib.suppress(OSError):
            filesystem.delete_dir(folder)


def default_scratch() -> str:
    """Where :func:`spark_frame_to_arrow` stages files when the environment names no scratch URI:
    the local temporary folder (right for ``local[*]`` masters, whose executors share this disk)."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), "lakeio-scratch")


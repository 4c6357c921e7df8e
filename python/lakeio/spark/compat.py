"""The one place where lakeio's Spark code meets the differences between its Spark lines (3.5, 4.1).

Spark 4.0 added ``Column.try_cast``, ``DataFrame.toArrow``, ``createDataFrame`` of an Arrow table
and ``is_valid_utf8``;
on 3.5 the same results are built here from what 3.5 has (Catalyst's ``Cast`` in its TRY mode; Arrow
batches collected by pyspark; pandas).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType


def _spark4() -> bool:
    import pyspark

    return int(pyspark.__version__.split(".")[0]) >= 4


def try_cast(value: Column, target: DataType | str) -> Column:
    """``value`` cast to ``target`` (a Spark type or its SQL text), null where it does not convert."""
    if _spark4():
        return value.try_cast(target)
    from lakeio.spark import jvm

    return jvm.try_cast_column(value, target if isinstance(target, str) else target.simpleString())


def is_valid_utf8(text: Column) -> Column:
    """Whether ``text`` (a line of Spark's text source, which keeps a file's bytes as they are) is
    UTF-8: Spark 4's ``is_valid_utf8``; on 3.5, whether decoding it (which puts U+FFFD for a bad
    byte) and encoding it back gives its bytes."""
    from pyspark.sql import functions as F

    if _spark4():
        return F.is_valid_utf8(text)
    raw = text.cast("binary")
    return F.encode(F.decode(raw, "UTF-8"), "UTF-8") == raw


def to_arrow(frame: DataFrame) -> pa.Table:
    """The frame collected to the driver as one Arrow table (``DataFrame.toArrow`` on Spark 4)."""
    if _spark4():
        return frame.toArrow()
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    batches = cast(Any, frame)._collect_as_arrow()  # Spark 3.5's own Arrow collection
    return pa.Table.from_batches(batches) if batches else to_arrow_schema(frame.schema).empty_table()


def create_frame(spark: SparkSession, table: pa.Table, schema: StructType | None = None) -> DataFrame:
    """An Arrow table as a Spark DataFrame of ``schema`` (the table's own types by default).

    Spark 4 takes the table as is. Spark 3.5 takes pandas, whose conversion turns NaN into null (it
    masks every ``isnull()``), so the table goes in as Python rows instead: exact (NaN stays a value,
    integers with nulls stay integers) but slower, which is fine for the test- and sample-sized data
    lakeio hands to Spark from Arrow.
    """
    if _spark4():
        return spark.createDataFrame(table) if schema is None else spark.createDataFrame(table, schema=schema)
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = schema if schema is not None else from_arrow_schema(table.schema)
    # Nanosecond timestamps would come out as pandas Timestamps, which Spark 3.5 refuses: Spark holds
    # microseconds anyway.
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            table = table.set_column(index, field.name, table[field.name].cast(pa.timestamp("us", field.type.tz),
                                                                               safe=False))
    return spark.createDataFrame([tuple(row.values()) for row in table.to_pylist()], schema=schema)


def merge_counts(result: DataFrame | None, commit_metrics: Callable[[], dict]) -> dict:
    """A Delta merge's row counts: the frame ``execute()`` returns (Delta 4), or, where it returns
    None (Delta 3.x, the 3.5 line), the merge commit's operation metrics (read only then)."""
    if result is not None:
        return result.collect()[0].asDict()
    metrics = commit_metrics()
    return {"num_inserted_rows": int(metrics.get("numTargetRowsInserted", 0)),
            "num_updated_rows": int(metrics.get("numTargetRowsUpdated", 0)),
            "num_deleted_rows": int(metrics.get("numTargetRowsDeleted", 0))}

"""The one place where lakeio's Spark code meets the differences between its Spark lines (3.5, 4.1).

Spark 4.0 added ``Column.try_cast`` and ``DataFrame.toArrow``; on 3.5 the same results are built
here from what 3.5 has (Catalyst's ``Cast`` in its TRY mode; Arrow batches collected by pyspark).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType


def _spark4() -> bool:
    import pyspark

    return int(pyspark.__version__.split(".")[0]) >= 4


def try_cast(value: Column, target: DataType | str) -> Column:
    """``value`` cast to ``target`` (a Spark type or its SQL text), null where it does not convert."""
    if _spark4():
        return value.try_cast(target)
    from lakeio.spark import jvm

    return jvm.try_cast_column(value, target if isinstance(target, str) else target.simpleString())


def to_arrow(frame: DataFrame) -> pa.Table:
    """The frame collected to the driver as one Arrow table (``DataFrame.toArrow`` on Spark 4)."""
    if _spark4():
        return frame.toArrow()
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    batches = frame._collect_as_arrow()
    return pa.Table.from_batches(batches) if batches else to_arrow_schema(frame.schema).empty_table()

"""The engines that move data: ``arrow`` (in-process) and ``spark`` (at scale).

Both take the same :class:`~lakeio.frame.ScanPlan` for reads and :class:`WriteRequest` for writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lakeio.metrics import IORecord
from lakeio.storage import Location

WRITE_MODES = ("error", "append", "overwrite")


@dataclass(frozen=True)
class WriteRequest:
    dataset: str
    env: str
    format: str
    location: Location
    partition_by: tuple[str, ...]
    mode: str
    data: Any

    def record(self, engine: str, reason: str) -> IORecord:
        return IORecord(operation="write", dataset=self.dataset, env=self.env, engine=engine,
                        engine_reason=reason, format=self.format, uri=self.location.uri, mode=self.mode)

    def describe(self) -> str:
        return f"dataset {self.dataset!r} [{self.env}] at {self.location.uri}"

    def already_exists(self):
        """The error for mode='error' on a dataset that has data."""
        from lakeio.errors import StorageError

        return StorageError(f"{self.describe()} already exists; write with mode='append' or 'overwrite'")

    def check_partition_columns(self, columns: list[str]) -> None:
        """Refuses data that lacks a partition column of the dataset."""
        from lakeio.errors import SchemaMismatchError

        missing = [c for c in self.partition_by if c not in columns]
        if missing:
            raise SchemaMismatchError(f"{self.describe()}: data has no partition column(s) {missing}")


def is_spark_dataframe(data: Any) -> bool:
    """True for a pyspark DataFrame, without importing pyspark."""
    return any(cls.__module__.startswith("pyspark.sql") and cls.__name__ == "DataFrame"
               for cls in type(data).__mro__)


def to_arrow_data(data: Any):
    """pandas, Arrow tables, batches and readers -> a pyarrow Table or RecordBatchReader."""
    import pyarrow as pa

    from lakeio.errors import InvalidArgumentError

    if isinstance(data, (pa.Table, pa.RecordBatchReader)):
        return data
    if is_spark_dataframe(data):
        return data.toArrow()
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if type(data).__module__.startswith("pandas") and type(data).__name__ == "DataFrame":
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InvalidArgumentError(
        f"cannot take a {type(data).__module__}.{type(data).__name__}: "
        "use a pandas DataFrame, a pyarrow Table/RecordBatch/RecordBatchReader or a Spark DataFrame"
    )

"""The engines that move data: ``arrow`` (in-process) and ``spark`` (at scale).

Both take the same :class:`~lakeio.frame.ScanPlan` for reads and :class:`WriteRequest` for writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lakeio.config import Options
from lakeio.metrics import IORecord
from lakeio.predicate import Predicate, columns_of, to_sql
from lakeio.storage import Location

# overwrite_partitions replaces only the partitions present in the data; overwrite with
# replace_where replaces only the rows (Delta) or partitions (plain files) matching a predicate.
WRITE_MODES = ("error", "append", "overwrite", "overwrite_partitions")


@dataclass(frozen=True)
class WriteRequest:
    dataset: str
    env: str
    format: str
    location: Location
    partition_by: tuple[str, ...]
    mode: str
    data: Any
    options: Options = Options()
    replace_where: Predicate | None = None

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

    def check_arguments(self) -> None:
        """Refuses combinations of mode, predicate, options and layout that cannot mean anything."""
        from lakeio.errors import InvalidArgumentError

        problems = []
        if self.replace_where is not None:
            if self.mode != "overwrite":
                problems.append(f"replace_where needs mode='overwrite', not {self.mode!r}")
            outside = sorted(columns_of(self.replace_where) - set(self.partition_by))
            if self.format != "delta" and outside:
                problems.append(f"replace_where on {self.format} data may use partition columns only "
                                f"({', '.join(self.partition_by) or 'none'}), not {', '.join(outside)}")
        if self.mode == "overwrite_partitions" and not self.partition_by:
            problems.append("mode='overwrite_partitions' needs a partitioned dataset (partition_by)")
        if self.options.schema_mode == "merge" and self.format != "delta":
            problems.append(f"schema_mode='merge' needs Delta: plain {self.format} files have no table schema to evolve")
        if self.options.schema_mode == "overwrite" and (self.mode != "overwrite" or self.replace_where is not None):
            problems.append("schema_mode='overwrite' replaces the whole table: use it with mode='overwrite' "
                            "and no replace_where")
        if problems:
            raise InvalidArgumentError(f"{self.describe()}: {'; '.join(problems)}")

    def check_replace_where(self, table) -> None:
        """Refuses a replace_where write whose data has rows outside the predicate (they would
        land where the predicate says nothing is replaced)."""
        if self.replace_where is None:
            return
        import pyarrow.dataset as ds

        from lakeio.errors import InvalidArgumentError
        from lakeio.predicate import to_arrow

        matching = ds.dataset(table).count_rows(filter=to_arrow(self.replace_where))
        if matching != table.num_rows:
            raise InvalidArgumentError(
                f"{self.describe()}: {table.num_rows - matching} of {table.num_rows} rows do not match "
                f"replace_where {to_sql(self.replace_where)}; nothing was written"
            )


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


MERGE_WHEN_MATCHED = ("update", "ignore")
MERGE_WHEN_NOT_MATCHED = ("insert", "ignore")


@dataclass(frozen=True)
class MergeRequest:
    """A Delta upsert: rows of ``data`` matched to the table's rows on the ``on`` key columns.

    Matched rows are updated (``when_matched="update"``) or left alone (``"ignore"``); unmatched
    source rows are inserted (``when_not_matched="insert"``) or dropped (``"ignore"``). Source rows
    matching ``delete_when`` delete their matched target row and are never inserted.
    """

    dataset: str
    env: str
    format: str
    location: Location
    partition_by: tuple[str, ...]
    data: Any
    on: tuple[str, ...]
    when_matched: str = "update"
    when_not_matched: str = "insert"
    delete_when: Predicate | None = None
    options: Options = Options()

    def record(self, engine: str, reason: str) -> IORecord:
        return IORecord(operation="merge", dataset=self.dataset, env=self.env, engine=engine,
                        engine_reason=reason, format=self.format, uri=self.location.uri, mode="merge")

    def describe(self) -> str:
        return f"dataset {self.dataset!r} [{self.env}] at {self.location.uri}"

    def check_arguments(self) -> None:
        from lakeio.errors import InvalidArgumentError

        problems = []
        if self.format != "delta":
            problems.append(f"merge needs a Delta table, this dataset is {self.format}")
        if not self.on or not all(isinstance(c, str) and c for c in self.on):
            problems.append(f"on= must name the key column(s), got {self.on!r}")
        if self.when_matched not in MERGE_WHEN_MATCHED:
            problems.append(f"when_matched={self.when_matched!r} is not one of {', '.join(MERGE_WHEN_MATCHED)}")
        if self.when_not_matched not in MERGE_WHEN_NOT_MATCHED:
            problems.append(f"when_not_matched={self.when_not_matched!r} is not one of "
                            f"{', '.join(MERGE_WHEN_NOT_MATCHED)}")
        if self.options.schema_mode == "overwrite":
            problems.append("schema_mode='overwrite' replaces a table; a merge can only add columns (schema_mode='merge')")
        if problems:
            raise InvalidArgumentError(f"{self.describe()}: {'; '.join(problems)}")

    def check_columns(self, target: list[str], source: list[str]) -> None:
        """The keys and ``delete_when`` columns must be in the data, and the data's columns must be
        the table's (new ones only with ``schema_mode='merge'``)."""
        from lakeio.errors import SchemaMismatchError

        problems = [f"data has no key column {c!r}" for c in self.on if c not in source]
        problems += [f"table has no key column {c!r}" for c in self.on if c not in target]
        problems += [f"delete_when uses {c!r}, which the data lacks"
                     for c in sorted(columns_of(self.delete_when)) if c not in source]
        problems += [f"data lacks the table's column {c!r}" for c in target if c not in source]
        if self.options.schema_mode != "merge":
            problems += [f"data has column {c!r}, which the table lacks (schema_mode='merge' adds it)"
                         for c in source if c not in target]
        if problems:
            raise SchemaMismatchError(f"{self.describe()}: cannot merge: {'; '.join(problems)}")

    def check_unique_keys(self, table) -> None:
        """Refuses data (a pyarrow Table) with two rows for one key: which would win is undefined."""
        import pyarrow.compute as pc

        from lakeio.errors import InvalidArgumentError

        if not set(self.on) <= set(table.column_names):
            return  # check_columns names the missing key
        counts = table.group_by(list(self.on), use_threads=False).aggregate([([], "count_all")])
        repeated = counts.filter(pc.greater(counts["count_all"], 1))
        if repeated.num_rows:
            examples = repeated.drop_columns(["count_all"]).slice(0, 3).to_pylist()
            raise InvalidArgumentError(f"{self.describe()}: {repeated.num_rows} key(s) appear more than once "
                                       f"in the data, e.g. {examples}; nothing was merged")

    def condition(self) -> str:
        """The SQL join condition of source and target rows."""
        return " AND ".join(f"target.{_quoted(c)} = source.{_quoted(c)}" for c in self.on)

    def delete_condition(self) -> str | None:
        return None if self.delete_when is None else to_sql(self.delete_when, "source")

    def insert_condition(self) -> str | None:
        """Source rows that ``delete_when`` marks are not inserted (a null verdict is not a mark)."""
        return None if self.delete_when is None else f"NOT coalesce(({self.delete_condition()}), false)"

    def set_counts(self, record: IORecord, inserted: int, updated: int, deleted: int) -> None:
        record.extra.update(rows_inserted=int(inserted), rows_updated=int(updated), rows_deleted=int(deleted))


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


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

"""LakeFrame: a lazy read. Nothing moves until ``to_arrow``, ``to_pandas``, ``to_spark`` or ``count``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from lakeio.engines import Engine, SparkCapable, counted, text
from lakeio.errors import InvalidArgumentError
from lakeio.metrics import Timer
from lakeio.predicate import And, FilterSpec, parse_filter, to_sql
from lakeio.requests import ScanPlan

if TYPE_CHECKING:  # heavy imports stay lazy
    import pandas
    import pyarrow
    import pyspark.sql

    from lakeio.engines.arrow import Scan


class LakeFrame:
    """A lazy read of one dataset, planned for one engine.

    Example:
        >>> import lakeio
        >>> lake = lakeio.Catalog.load("conf", env="sample")
        >>> jan = lake.read("flights", where="year = 2013 AND month = 1")
        >>> jan.select("carrier", "dep_delay").to_pandas().shape
        (224, 2)
    """

    def __init__(self, plan: ScanPlan, engine: Engine, reason: str, scan: Scan | None = None):
        """
        Args:
            plan: what to read.
            engine: the engine that runs the read.
            reason: why that engine (for the I/O record).
            scan: the plan's data as opened to choose the engine (``engine: auto``), or None.
                Reads reuse it only while it is current (a Delta table with no newer commit), so
                a frame reads the data as it is when it materialises, with or without one.
        """
        self._plan, self._engine, self._reason, self._scan = plan, engine, reason, scan

    @property
    def plan(self) -> ScanPlan:
        return self._plan

    @property
    def engine(self) -> str:
        """The engine that will run this read: ``"arrow"`` or ``"spark"``."""
        return self._engine.name

    def select(self, *columns: str) -> LakeFrame:
        """Keeps only ``columns`` (names, in this order)."""
        if not columns or not all(isinstance(c, str) for c in columns):
            raise InvalidArgumentError(f"select() takes column names, got {columns!r}")
        return LakeFrame(replace(self._plan, columns=tuple(columns)), self._engine, self._reason)

    def where(self, condition: FilterSpec) -> LakeFrame:
        """Keeps only rows matching ``condition`` (and any filter already on this frame)."""
        added = parse_filter(condition)
        if added is None:
            return self
        current = self._plan.predicate
        combined = added if current is None else And((current, added))
        return LakeFrame(replace(self._plan, predicate=combined), self._engine, self._reason)

    def to_arrow(self) -> pyarrow.Table:
        """Runs the read and returns an Arrow table."""
        with Timer(self._plan.record("read", self.engine, self._reason)) as record:
            table = text.from_json_lists(self._engine.read_arrow(self._plan, record, self._scan), self._plan.json_lists)
            record.version = self._plan.version if self._plan.version is not None else record.version
            if self._plan.contract is not None:
                table = self._plan.contract.check_read(self._plan, table, record)
            record.rows, record.bytes = table.num_rows, table.get_total_buffer_size()
        return table

    def to_pandas(self) -> pandas.DataFrame:
        """Runs the read and returns a pandas DataFrame, converted from Arrow.

        The frame is the one ``to_arrow().to_pandas()`` gives (dtypes, values, index, column
        labels, pandas blocks), converted a few columns at a time, each column's Arrow memory
        handed back before the next (:mod:`lakeio.conversion`). The peak is the read's own, the
        table and the reader's scratch memory, not the table plus the frame (``bench_to_pandas.py``
        measures it; see docs/figures.md).
        """
        from lakeio.conversion import arrow_to_pandas

        return arrow_to_pandas(self.to_arrow)

    def to_batches(self) -> pyarrow.RecordBatchReader:
        """Streams the read as Arrow record batches, for results larger than memory.

        The I/O record is logged when the stream is exhausted. The reader can be written straight
        to another dataset: ``lake.write("copy", frame.to_batches())``.

        The contract is checked as the batches pass (cast where it allows); its verdict comes at
        the end of the stream: an error-level failure raises
        :class:`~lakeio.errors.DataQualityError` from the reader's last step, so a write consuming
        the stream fails before it commits.
        """
        record = self._plan.record("read", self.engine, self._reason)
        timer = Timer(record)
        timer.__enter__()
        schema, batches = self._engine.read_batches(self._plan, record, self._scan)
        if self._plan.json_lists:
            lists = self._plan.json_lists
            schema, batches = text.json_lists_schema(schema, lists), (text.from_json_lists(b, lists) for b in batches)
        if self._plan.contract is not None:
            schema, batches = self._plan.contract.check_batches(self._plan, schema, batches, record)
        return counted(schema, batches, record, on_end=lambda: timer.__exit__(None, None, None))

    def to_spark(self) -> pyspark.sql.DataFrame:
        """The read as a (lazy) Spark DataFrame; only for frames planned on Spark."""
        if not isinstance(self._engine, SparkCapable):
            raise InvalidArgumentError(
                f"dataset {self._plan.dataset!r} is planned on the {self.engine} engine; "
                "read it with engine='spark' to get a Spark DataFrame"
            )
        frame = self._engine.read_dataframe(self._plan)
        if self._plan.contract is not None:  # one Spark aggregate job over the read, before it is handed out
            frame = self._plan.contract.check_read(self._plan, frame)
        return frame

    def count(self) -> int:
        """The number of matching rows, read from as little data as the engine can."""
        with Timer(self._plan.record("count", self.engine, self._reason)) as record:
            record.rows = self._engine.count(self._plan, record, self._scan)
        return record.rows

    @property
    def schema(self) -> pyarrow.Schema:
        """The Arrow schema of what this frame returns."""
        return text.json_lists_schema(self._engine.schema(self._plan, self._scan), self._plan.json_lists)

    def explain(self) -> str:
        """What the read will do: engine and why, filter, columns, files scanned versus total, and
        for an engine that prunes partitions itself, partitions listed versus total."""
        plan = self._plan
        scanned, total = self._engine.file_counts(plan, self._scan)
        files = "unknown" if scanned is None else f"{scanned} scanned of {total} ({total - scanned} pruned)" \
            if total is not None else f"{scanned} scanned (only the partitions the filter matches listed)"
        version = f" version {plan.version}" if plan.version is not None else \
            f" as of {plan.timestamp.isoformat()}" if plan.timestamp is not None else ""
        lines = [
            f"dataset:  {plan.dataset} [{plan.env}] {plan.format} at {plan.location.uri}{version}",
            f"engine:   {self.engine} ({self._reason})",
            f"columns:  {'all' if plan.columns is None else ', '.join(plan.columns) or 'none'}",
            f"filter:   {to_sql(plan.predicate) if plan.predicate else 'none'}",
            f"files:    {files}",
        ]
        partitions = self._engine.partition_counts(plan)
        if partitions is not None:
            listed, total_partitions = partitions
            lines.append(f"partitions: {listed} listed of {total_partitions} ({total_partitions - listed} pruned)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"LakeFrame({self._plan.dataset!r}, engine={self.engine!r})"


def columns_argument(columns: Iterable[str] | None) -> tuple[str, ...] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        raise InvalidArgumentError(f"columns must be a list of names, got the string {columns!r}")
    return tuple(columns)

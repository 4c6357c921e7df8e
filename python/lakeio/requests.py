"""What engines are asked to do: the resolved dataset and the read, write and merge requests.

A leaf module: it imports nothing of lakeio's engines, frame or catalog, so every engine and the
user-facing modules can import it. The catalog resolves a dataset once per call
(:class:`ResolvedDataset`) and every request of that call shares it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from lakeio.config import Options
from lakeio.errors import InvalidArgumentError, SchemaMismatchError, StorageError
from lakeio.metrics import IORecord
from lakeio.predicate import Predicate, columns_of, quote_name, to_arrow, to_sql
from lakeio.storage import Location

if TYPE_CHECKING:
    from lakeio.validation import ContractBinding

WriteMode = Literal["error", "append", "overwrite", "overwrite_partitions"]
# type names (Arrow's, Spark's simpleString) of columns no partition folder can spell and read back
_NOT_FOLDER_TYPES = ("binary", "large_binary", "fixed_size_binary", "list", "large_list", "fixed_size_list",
                     "array", "struct", "map")
EngineChoice = Literal["arrow", "spark", "auto"]
MergeMatched = Literal["update", "ignore"]
MergeNotMatched = Literal["insert", "ignore"]
WRITE_MODES: tuple[str, ...] = get_args(WriteMode)
ENGINE_CHOICES: tuple[str, ...] = get_args(EngineChoice)
MERGE_WHEN_MATCHED: tuple[str, ...] = get_args(MergeMatched)
MERGE_WHEN_NOT_MATCHED: tuple[str, ...] = get_args(MergeNotMatched)


@dataclass(frozen=True)
class ResolvedDataset:
    """One dataset as one call sees it: its binding in the active environment, its ``{placeholders}``
    filled, its options refined by the call's, resolved once by the catalog.

    Attributes:
        name: the dataset's name in the catalog.
        env: the active environment.
        format: ``delta``, ``parquet``, ``csv`` or ``json``.
        location: where it lives.
        partition_by: its hive partition columns.
        options: the resource's options, refined by the binding's, then by the call's.
        contract: its contract in this environment, or None (none, or the call skips validation).
        column_types: the contract's declared (name, logical type) of non-partition columns, even
            when validation is skipped: text formats are read as these types instead of inferred.
        partition_types: the contract's declared (name, logical type) of partition columns: their
            folders are read as these types instead of inferred (see :mod:`lakeio.partitions`).
        recorded_types: a CSV or JSON dataset's (name, logical type) of its data columns as lakeio's
            last commit to it wrote them (:meth:`lakeio.files.CommitLog.recorded_columns`): the
            columns the contract does not declare are read as these types instead of inferred.
        engine: the binding's ``engine:``, or None.
        placeholders: the call's ``{placeholder}`` values, as (name, value) pairs.
        on_complete: what runs when an I/O of this call ends (see :class:`~lakeio.metrics.Timer`).
    """

    name: str
    env: str
    format: str
    location: Location
    partition_by: tuple[str, ...] = ()
    options: Options = Options()
    contract: ContractBinding | None = None
    column_types: tuple[tuple[str, str], ...] = ()
    partition_types: tuple[tuple[str, str], ...] = ()
    recorded_types: tuple[tuple[str, str], ...] = ()
    engine: str | None = None
    placeholders: tuple[tuple[str, str], ...] = ()
    on_complete: Callable[[ResolvedDataset, IORecord, BaseException | None], None] | None = field(
        default=None, repr=False, compare=False)

    @property
    def partition(self) -> str | None:
        """The call's placeholders as ``name=value/...`` (the part of the dataset a run is about), or None."""
        return "/".join(f"{k}={v}" for k, v in self.placeholders) or None

    def describe(self) -> str:
        """How errors name the dataset.

        Example:
            >>> ResolvedDataset("flights", "local", "delta", Location("file", "/lake/flights")).describe()
            "dataset 'flights' [local] at /lake/flights"
        """
        return f"dataset {self.name!r} [{self.env}] at {self.location.uri}"

    def record(self, operation: str, engine: str, reason: str, **fields: Any) -> IORecord:
        """A new I/O record of ``operation`` on this dataset."""
        on_complete = None if self.on_complete is None else functools.partial(self.on_complete, self)
        return IORecord(operation=operation, dataset=self.name, env=self.env, engine=engine, engine_reason=reason,
                        format=self.format, uri=self.location.uri, on_complete=on_complete, **fields)


@dataclass(frozen=True)
class _OnDataset:
    """A request on one resolved dataset; its attributes are readable from the request itself."""

    target: ResolvedDataset

    @property
    def dataset(self) -> str:
        return self.target.name

    @property
    def env(self) -> str:
        return self.target.env

    @property
    def format(self) -> str:
        return self.target.format

    @property
    def location(self) -> Location:
        return self.target.location

    @property
    def partition_by(self) -> tuple[str, ...]:
        return self.target.partition_by

    @property
    def options(self) -> Options:
        return self.target.options

    @property
    def column_types(self) -> tuple[tuple[str, str], ...]:
        """The (name, logical type) text files' data columns are read as: the contract's, and the
        recorded ones (:attr:`ResolvedDataset.recorded_types`) of the columns it does not declare."""
        declared, recorded = dict(self.target.column_types), dict(self.target.recorded_types)
        # In the order written (JSON lines may leave a null out, so the files do not always say it).
        return tuple((name, declared.get(name, logical)) for name, logical in self.target.recorded_types) + \
            tuple(pair for pair in self.target.column_types if pair[0] not in recorded)

    @property
    def partition_types(self) -> tuple[tuple[str, str], ...]:
        return self.target.partition_types

    def describe(self) -> str:
        return self.target.describe()


@dataclass(frozen=True)
class ScanPlan(_OnDataset):
    """What to read: a dataset, plus the columns and rows wanted and, for Delta, the version.

    ``validate=False`` reads without the contract; ``column_types`` still type text formats.
    """

    columns: tuple[str, ...] | None = None
    predicate: Predicate | None = None
    version: int | None = None  # Delta time travel: a version, or
    timestamp: dt.datetime | None = None  # the version current at this (aware) time
    validate: bool = True
    # Text columns holding a JSON array of strings in each value (a CSV quarantine's checks): read as lists.
    json_lists: tuple[str, ...] = ()

    @property
    def contract(self) -> ContractBinding | None:
        """The contract run on what the read materialises; None: no contract, or skipped."""
        return self.target.contract if self.validate else None

    def record(self, operation: str, engine: str, reason: str) -> IORecord:
        return self.target.record(operation, engine, reason)

    def check_columns(self, available: Sequence[str]) -> None:
        """Raises if the plan names a column the data does not have, suggesting the closest one."""
        wanted = list(self.columns or ()) + sorted(columns_of(self.predicate))
        for column in wanted:
            if column not in available:
                hint = difflib.get_close_matches(column, list(available), n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                raise InvalidArgumentError(
                    f"dataset {self.dataset!r} ({self.location.uri}) has no column {column!r}{suggestion} "
                    f"(columns: {', '.join(available)})"
                )


# Delta's txnVersion of an idempotent append: one app id per key, so every key's one commit is version 0.
TRANSACTION_VERSION = 0


@dataclass(frozen=True)
class WriteRequest(_OnDataset):
    """A write of ``data`` to a dataset, in one of :data:`WRITE_MODES`.

    ``overwrite_partitions`` replaces only the partitions present in the data; ``overwrite`` with
    ``replace_where`` replaces only the rows (Delta) or partitions (plain files) matching it.

    ``idempotency_key`` (an append to Delta only) commits the append at most once per key, so a
    retried task does not write its rows twice. It uses Delta's idempotent-write transaction ids
    (a ``txn`` action of ``appId`` and ``version``): Delta skips a write whose version is <= the
    last one recorded for its app id. Run ids have no order, so no key can map to a monotonic
    version (a hash would skip a later run whose hash is smaller): each key gets an app id of its
    own, :attr:`transaction_app_id`, committed with version 0; any repeat of it is skipped. The
    table's state keeps one small ``txn`` entry per key (Delta expires them only when
    ``delta.setTransactionRetentionDuration`` is set on the table). Plain files have no
    transaction log: the key is refused there rather than promised and not kept.

    ``run_id`` and ``run_receipt`` (set by the catalog, never by a user) mark the write as the
    commit point of a quarantining run (:class:`lakeio.files.RunJournal`): on Delta its commit
    carries the run's ``txn`` (the idempotency key's, if it has one), in any mode; a plain-file
    commit puts an object at ``run_receipt`` once made.
    """

    mode: WriteMode
    data: Any
    replace_where: Predicate | None = None
    idempotency_key: str | None = None
    run_id: str | None = None
    run_receipt: str | None = None
    #: This write's own mark (on Delta, its commit's ``userMetadata``), by which it finds its commit
    #: in the table's history whoever committed since (:func:`lakeio.engines.find_own_commit`).
    write_id: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)

    @property
    def commit_marker(self) -> str:
        """The ``userMetadata`` of this write's Delta commit."""
        return f"lakeio-write:{self.write_id}"

    @property
    def transaction_app_id(self) -> str | None:
        """Delta's ``txnAppId`` of this write: the dataset and the idempotency key (else the run);
        None with neither."""
        key = self.idempotency_key or self.run_id
        return None if key is None else f"lakeio:{self.dataset}:{key}"

    def skipped_as_repeat(self, record: IORecord) -> None:
        """Marks ``record`` as the repeat of an append already committed under its key: nothing written."""
        record.rows, record.files_written = 0, 0
        record.extra.update(idempotent_skip=True, idempotency_key=self.idempotency_key)

    def record(self, engine: str, reason: str) -> IORecord:
        return self.target.record("write", engine, reason, mode=self.mode)

    def already_exists(self):
        """The error for mode='error' on a dataset that has data."""
        return StorageError(f"{self.describe()} already exists; write with mode='append' or 'overwrite'")

    def check_partition_columns(self, types: Mapping[str, str]) -> None:
        """Refuses data that lacks a partition column of the dataset, or whose partition column is of
        a type no folder name can spell and read back (binary, nested). ``types``: the data's
        column names and type names (Arrow's or Spark's ``simpleString``)."""
        missing = [c for c in self.partition_by if c not in types]
        if missing:
            raise SchemaMismatchError(f"{self.describe()}: data has no partition column(s) {missing}")
        unfit = [f"{c} ({types[c]})" for c in self.partition_by if types[c].startswith(_NOT_FOLDER_TYPES)]
        if unfit:
            raise SchemaMismatchError(f"{self.describe()}: partition column(s) {', '.join(unfit)} cannot name "
                                      "folders: partition by a column of text, numbers, dates or booleans")

    def check_arguments(self) -> None:
        """Refuses combinations of mode, predicate, options and layout that cannot mean anything."""
        problems = []
        if self.replace_where is not None:
            if self.mode != "overwrite":
                problems.append(f"replace_where needs mode='overwrite', not {self.mode!r}")
            outside = sorted(columns_of(self.replace_where) - set(self.partition_by))
            if self.format != "delta" and outside:
                problems.append(f"replace_where on {self.format} data may use partition columns only "
                                f"({', '.join(self.partition_by) or 'none'}), not {', '.join(outside)}")
        if self.idempotency_key is not None:
            if not isinstance(self.idempotency_key, str) or not self.idempotency_key.strip():
                problems.append(f"idempotency_key must be a non-empty string, got {self.idempotency_key!r}")
            if self.mode != "append":
                problems.append(f"idempotency_key needs mode='append', not {self.mode!r} (overwrite, "
                                "overwrite_partitions and replace_where writes give the same table when repeated)")
            if self.format != "delta":
                problems.append(f"idempotency_key needs Delta's transaction log: plain {self.format} files "
                                "cannot tell a repeated append from a new one")
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

        matching = ds.dataset(table).count_rows(filter=to_arrow(self.replace_where, table.schema))
        if matching != table.num_rows:
            raise InvalidArgumentError(
                f"{self.describe()}: {table.num_rows - matching} of {table.num_rows} rows do not match "
                f"replace_where {to_sql(self.replace_where)}; nothing was written"
            )


@dataclass(frozen=True)
class MergeRequest(_OnDataset):
    """A Delta upsert: rows of ``data`` matched to the table's rows on the ``on`` key columns.

    Matched rows are updated (``when_matched="update"``) or left alone (``"ignore"``); unmatched
    source rows are inserted (``when_not_matched="insert"``) or dropped (``"ignore"``). Source rows
    matching ``delete_when`` delete their matched target row and are never inserted.
    """

    data: Any
    on: tuple[str, ...]
    when_matched: MergeMatched = "update"
    when_not_matched: MergeNotMatched = "insert"
    delete_when: Predicate | None = None
    run_id: str | None = None  # the quarantining run whose commit point the merge is (see WriteRequest)

    @property
    def transaction_app_id(self) -> str | None:
        """Delta's ``txnAppId`` the merge's commit carries: its quarantining run's; None outside one."""
        return None if self.run_id is None else f"lakeio:{self.dataset}:{self.run_id}"

    def record(self, engine: str, reason: str) -> IORecord:
        return self.target.record("merge", engine, reason, mode="merge")

    def check_arguments(self) -> None:
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

        if not set(self.on) <= set(table.column_names):
            return  # check_columns names the missing key
        counts = table.group_by(list(self.on), use_threads=False).aggregate([([], "count_all")])
        repeated = counts.filter(pc.greater(counts["count_all"], 1))
        if repeated.num_rows:
            examples = repeated.drop_columns(["count_all"]).slice(0, 3).to_pylist()
            raise InvalidArgumentError(f"{self.describe()}: {repeated.num_rows} key(s) appear more than once "
                                       f"in the data, e.g. {examples}; nothing was merged")

    def condition(self) -> str:
        """The join condition of source and target rows, in delta-rs's SQL."""
        return " AND ".join(f"target.{quote_name(c)} = source.{quote_name(c)}" for c in self.on)

    def delete_condition(self) -> str | None:
        """``delete_when`` on the source rows, in delta-rs's SQL."""
        return None if self.delete_when is None else to_sql(self.delete_when, "source", dialect="delta")

    def insert_condition(self) -> str | None:
        """Source rows that ``delete_when`` marks are not inserted (a null verdict is not a mark)."""
        return None if self.delete_when is None else f"NOT coalesce(({self.delete_condition()}), false)"

    def set_counts(self, record: IORecord, inserted: int, updated: int, deleted: int) -> None:
        record.extra.update(rows_inserted=int(inserted), rows_updated=int(updated), rows_deleted=int(deleted))

"""The embedded engine: pyarrow.dataset for Parquet, CSV and JSON lines, deltalake (delta-rs) for
Delta. No JVM.

Plain-file writes (Parquet, CSV, JSON) are staged beside the dataset, in ``<root>.lakeio-staging-*``,
and moved in only once every file is written, so a failed or refused write leaves the previous data
as it was. Delta writes get that from the Delta log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import posixpath
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from lakeio import files, partitions
from lakeio.engines import counted, find_own_commit, in_microseconds, refuse_durations, text, to_arrow_data
from lakeio.errors import ConcurrentWriteError, InvalidArgumentError, SchemaMismatchError, StorageError, storage_error
from lakeio.metrics import IORecord
from lakeio.predicate import columns_of, to_arrow, to_sql
from lakeio.requests import TRANSACTION_VERSION, MergeRequest, WriteRequest
from lakeio.storage import Location, Storage, again_if_transient

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakeio.config import EnvironmentSettings
    from lakeio.requests import ScanPlan

# lakeio's compression names -> delta-rs's.
DELTA_COMPRESSION: dict[str, Literal["SNAPPY", "ZSTD", "GZIP", "UNCOMPRESSED"]] = {
    "snappy": "SNAPPY", "zstd": "ZSTD", "gzip": "GZIP", "none": "UNCOMPRESSED"}


T = TypeVar("T")

# Reads of plain files whose files a commit replaced mid-read, before that is an error; and of
# any data that met a fault the S3 client's own retries did not ride out.
_READ_ATTEMPTS = 3


class ArrowEngine:
    """The in-process engine (see the module's docstring); satisfies :class:`lakeio.engines.Engine`."""

    name = "arrow"

    def __init__(self, settings: EnvironmentSettings | None, storage: Storage):
        from lakeio.config import EnvironmentSettings

        # the settings: a Spark DataFrame written here is staged in the environment's scratch folder
        self.settings, self.storage = settings or EnvironmentSettings(), storage
        # The latest version of each Delta table read, by URI, with the mark of its commit file (see
        # _latest_delta_table); the lock guards them and every use of their table objects.
        self._latest: dict[str, tuple[Any, tuple]] = {}
        self._latest_lock = threading.Lock()

    def exists(self, location: Location, format: str) -> bool:
        """True when ``location`` holds a table of ``format`` (for plain files: anything at all)."""
        if format == "delta":
            from deltalake import DeltaTable

            return DeltaTable.is_deltatable(location.uri, storage_options=self.storage.delta_options(location))
        return files.exists(self.storage.filesystem(location), location)

    def delta_schema(self, location: Location) -> pa.Schema:
        """The Arrow schema of the Delta table at ``location`` (its latest version)."""
        from deltalake import DeltaTable

        return _delta_arrow_schema(DeltaTable(location.uri, storage_options=self.storage.delta_options(location)))

    # -- reads --------------------------------------------------------------------------------

    def _latest_delta_table(self, location: Location):
        """The latest version of the Delta table at ``location``: the table object opened by an
        earlier read, brought up to date with only the commits made since (one listing of the log),
        or opened now. Opening replays the whole log, which costs in proportion to the table's
        files, not to what a read selects. An earlier object is reused only while the commit file
        of its version is the one it read (same size and time), so a table deleted and made again
        at the URI is opened anew. Called with ``_latest_lock`` held."""
        from deltalake import DeltaTable

        cached = self._latest.get(location.uri)
        if cached is not None and self._commit_mark(location, cached[0].version()) == cached[1]:
            table = cached[0]
            version = table.version()
            table.update_incremental()
            if table.version() != version:
                self._latest[location.uri] = (table, self._commit_mark(location, table.version()))
            return table
        table = DeltaTable(location.uri, storage_options=self.storage.delta_options(location))
        self._latest[location.uri] = (table, self._commit_mark(location, table.version()))
        return table

    def _commit_mark(self, location: Location, version: int) -> tuple:
        """The type, size and modification time of the commit file of ``version``."""
        info = self.storage.filesystem(location).get_file_info(
            posixpath.join(location.path, "_delta_log", f"{version:020d}.json"))
        return info.type, info.size, info.mtime_ns

    def _delta_table(self, plan: ScanPlan):
        """The Delta table of the plan, at the version or timestamp it asks for (a new object)."""
        from deltalake import DeltaTable

        table = DeltaTable(plan.location.uri, storage_options=self.storage.delta_options(plan.location))
        what = f"dataset {plan.dataset!r} [{plan.env}]"
        latest = table.version()
        if plan.version is not None:
            if not 0 <= plan.version <= latest:
                raise InvalidArgumentError(f"{what} has versions 0 to {latest}; there is no version {plan.version}")
            table.load_as_version(plan.version)
            return table
        # The version current at the timestamp: the last one committed at or before it.
        commits = sorted((c["version"], c["timestamp"]) for c in table.history())
        assert plan.timestamp is not None  # no version asked for: a timestamp is
        wanted = plan.timestamp.timestamp() * 1000
        before = [version for version, millis in commits if millis <= wanted]
        if not before:
            first = dt.datetime.fromtimestamp(commits[0][1] / 1000, dt.UTC)
            raise InvalidArgumentError(f"{what}: timestamp {plan.timestamp.isoformat()} is before the first "
                                       f"commit ({first.isoformat()})")
        table.load_as_version(before[-1])
        return table

    def _open(self, plan: ScanPlan, walk: bool = True) -> tuple[ds.Dataset, DeltaSnapshot | None, dict[str, int] | None]:
        """The plan's data as a pyarrow dataset, its Delta snapshot (None for plain files), and for
        plain files of which only the partitions the filter can match were listed (``walk``), their
        files' sizes (else None)."""
        return again_if_transient(plan.location, lambda: self._open_once(plan, walk))

    def _open_delta(self, plan: ScanPlan) -> tuple[ds.Dataset, DeltaSnapshot]:
        import pyarrow as pa

        latest = plan.version is None and plan.timestamp is None
        lock = self._latest_lock if latest else threading.Lock()
        with lock:
            table = self._latest_delta_table(plan.location) if latest else self._delta_table(plan)
            dataset = _delta_dataset(table, plan, self.storage.filesystem(plan.location))
            actions = pa.table(table.get_add_actions(flatten=False))
            # The log's paths are URI-encoded (a folder k=a%20b is logged k=a%2520b); fragments' are not.
            sizes = dict(zip(map(urllib.parse.unquote, actions["path"].to_pylist()), actions["size_bytes"].to_pylist()))
            return dataset, DeltaSnapshot(table, table.version(), sizes, lock)

    def _open_once(self, plan: ScanPlan, walk: bool) -> tuple[ds.Dataset, DeltaSnapshot | None, dict[str, int] | None]:
        try:
            if plan.format == "delta":
                return (*self._open_delta(plan), None)
            selecting = (plan.partition_by, plan.predicate) if walk else ((), None)
            dataset, sizes = files.read_consistently(self.storage, plan, lambda: files.open_dataset(
                self.storage.filesystem(plan.location), plan.location, plan.format, bool(plan.partition_by),
                plan.options, plan.column_types, plan.partition_types, selecting=selecting))
            return dataset, None, sizes
        except Exception as error:
            if plan.format in text.TEXT_FORMATS and text.is_conversion_error(error):
                # A value of a file's first rows that does not read as the contract's type.
                found = text.bad_value_error(plan, error, (), self.storage.filesystem(plan.location),
                                             files.declared_types(plan.column_types))
                if found is not None:
                    raise found from error
            raise storage_error(f"dataset {plan.dataset!r} [{plan.env}]: cannot open {plan.format} data at "
                                 f"{plan.location.uri}", error) from error

    def text_schema(self, plan: ScanPlan) -> pa.Schema:
        """The Arrow schema the plan's CSV or JSON files are read as, by this engine and by Spark:
        the contract's types for the columns it declares, pyarrow's inference for the others: over
        every file, as Spark reads them all."""
        return _presented(self._open(plan, walk=False)[0].schema, _converted(plan))

    def open_scan(self, plan: ScanPlan, walk: bool = True) -> Scan:
        """Opens the plan's data and prunes its files; a scan opened once serves both a size
        estimate (:meth:`Scan.files`) and the reads of the frame planned with it (``scan=``
        of the read methods), for as long as it is current (see :meth:`Scan.is_current`).

        A partitioned plain dataset filtered on its partition columns lists only the folders the
        filter can match (:func:`lakeio.files.pruned_listing`); ``walk=False`` lists every file,
        for a caller that needs the table's every partition."""
        dataset, delta, sizes = self._open(plan, walk)
        return self.scan(plan, dataset, delta, sizes)

    def scan(self, plan: ScanPlan, dataset: ds.Dataset, delta: DeltaSnapshot | None = None,
             sizes: dict[str, int] | None = None) -> Scan:
        """The scan of ``plan`` over an opened ``dataset``: its columns checked, its files pruned by
        the plan's filter. ``sizes``: the files' sizes, for a dataset of files selected elsewhere."""
        import pyarrow.compute as pc

        plan.check_columns(dataset.schema.names)
        expression = None
        converted = _converted(plan)
        with _filter_errors(plan, dataset.schema, plan.predicate):
            if plan.predicate is not None:
                fields = {name: pc.field(name).cast(data_type) for name, data_type in converted.items()}
                expression = to_arrow(plan.predicate, _presented(dataset.schema, converted), fields)
            kept = list(dataset.get_fragments(filter=expression))
        if plan.format == "parquet" and sizes is None:
            # The files read, and the first (whose schema the dataset took), must read together;
            # text files are checked as they are opened (files.open_dataset).
            first = next(iter(dataset.get_fragments()), None)
            checked = kept if first is None or first.path in {f.path for f in kept} else [first, *kept]
            files.check_parquet_files(plan.describe(), checked, plan.partition_by)
        return Scan(plan, dataset, delta, expression, kept, sizes, None if delta is None else delta.version)

    def current_scan(self, plan: ScanPlan, scan: Scan | None) -> Scan:
        """``scan`` (opened earlier for ``plan``) if reading it now reads what opening the plan now
        would, else a newly opened scan."""
        if scan is not None:
            try:
                if scan.is_current():
                    return scan
            except Exception:  # noqa: BLE001 - opening anew raises the storage's error, with lakeio's message
                pass
        return self.open_scan(plan)

    @contextlib.contextmanager
    def _scanning(self, plan: ScanPlan, record: IORecord | None, scan: Scan) -> Iterator[ds.Scanner]:
        """A scanner of ``scan``, as it is."""
        if record is not None:
            record.files_total = scan.total_files()
            record.files_scanned = len(scan.kept)
            record.version = scan.version
        dataset = scan.dataset
        if plan.format == "delta":
            import pyarrow.dataset as ds

            # Only the kept files, so the scan does not test every fragment's statistics again.
            dataset = ds.FileSystemDataset(scan.kept, dataset.schema, dataset.format, dataset.filesystem)
        columns: list[str] | dict | None = None if plan.columns is None else list(plan.columns)
        converted = _converted(plan)
        if converted:
            import pyarrow.compute as pc

            columns = {name: pc.field(name).cast(converted[name]) if name in converted else pc.field(name)
                       for name in columns or dataset.schema.names}
        with _filter_errors(plan, dataset.schema, scan.expression, scan):
            yield dataset.scanner(columns=columns, filter=scan.expression)

    def read_arrow(self, plan: ScanPlan, record: IORecord, scan: Scan | None = None) -> pa.Table:
        """The plan's rows; ``scan``: the plan opened earlier, read if still current."""
        return self.read_scan(plan, record, self.current_scan(plan, scan))

    def read_scan(self, plan: ScanPlan, record: IORecord, scan: Scan) -> pa.Table:
        """The rows of ``scan``, opened for this read; opened again if a commit replaced its files
        while they were read (plain files have no snapshot to hold on to)."""
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                with self._scanning(plan, record, scan) as scanner:
                    return _utf8_checked(plan, again_if_transient(plan.location, scanner.to_table))
            except OSError as error:
                if plan.format == "delta" or not files.vanished(error):
                    raise
                if attempt == _READ_ATTEMPTS:
                    raise files.replaced_while_read(plan, error) from error
                scan = self.open_scan(plan)
        raise AssertionError("unreachable")

    def read_batches(self, plan: ScanPlan, record: IORecord,
                     scan: Scan | None = None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The plan's schema, and its batches streamed from the files, never all in memory."""
        return self.scan_batches(plan, record, self.current_scan(plan, scan))

    def scan_batches(self, plan: ScanPlan, record: IORecord,
                     scan: Scan) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The schema and streamed batches of ``scan``, opened for this read."""
        scope = self._scanning(plan, record, scan)
        scanner = scope.__enter__()

        def batches():
            with contextlib.ExitStack() as stack:
                stack.push(scope)
                try:
                    yield from (_utf8_checked(plan, batch) for batch in scanner.to_batches())
                except OSError as error:  # batches already yielded: reading again would repeat them
                    if plan.format == "delta" or not files.vanished(error):
                        raise
                    raise files.replaced_while_read(plan, error) from error

        return scanner.projected_schema, batches()

    def count(self, plan: ScanPlan, record: IORecord, scan: Scan | None = None) -> int:
        scan = self.current_scan(plan, scan)
        if plan.format in text.TEXT_FORMATS:  # pyarrow counts text's lines without decoding them
            _check_utf8(plan, scan)
        with self._scanning(plan, record, scan) as scanner:
            return scanner.count_rows()

    def schema(self, plan: ScanPlan, scan: Scan | None = None) -> pa.Schema:
        with self._scanning(plan, None, self.current_scan(plan, scan)) as scanner:
            return scanner.projected_schema

    def file_counts(self, plan: ScanPlan, scan: Scan | None = None) -> tuple[int | None, int | None]:
        record = plan.record("explain", self.name, "")
        with self._scanning(plan, record, self.current_scan(plan, scan)):
            return record.files_scanned, record.files_total

    def partition_counts(self, plan: ScanPlan) -> None:
        """None: the Arrow engine lists no partitions of its own; its pruning shows in file counts."""
        return None

    # -- writes -------------------------------------------------------------------------------

    def write(self, request: WriteRequest, record: IORecord) -> None:
        request.check_arguments()
        data = to_arrow_data(request.data, self.settings, self.storage)
        refuse_durations(data.schema, request.format, self.name, request.describe())
        data = in_microseconds(data, request.describe())
        request.check_partition_columns({field.name: str(field.type) for field in data.schema})
        if request.partition_by:  # Delta's folders and JSON's too: parity with Parquet's and CSV's
            data = partitions.check_folder_values(data, request.partition_by, request.describe())
        if request.replace_where is not None or request.mode == "overwrite_partitions" or request.format == "json":
            data = data.read_all() if hasattr(data, "read_all") else data  # these need every row at once
        if hasattr(data, "num_rows"):
            request.check_replace_where(data)
            record.rows, record.bytes = data.num_rows, data.nbytes
        else:
            data = counted(data.schema, data, record)
        data, sample = _peeked(data)
        if request.format == "delta":
            self._write_delta(request, data, sample, record)
        else:
            self._write_files(request, data, sample, record)

    def _write_delta(self, request: WriteRequest, data, sample: pa.Table, record: IORecord) -> None:
        from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
        from deltalake.exceptions import CommitFailedError
        from deltalake.exceptions import SchemaMismatchError as DeltaSchemaMismatch

        location, options = request.location, request.options
        storage_options = self.storage.delta_write_options(location)
        exists = DeltaTable.is_deltatable(location.uri, storage_options=storage_options)
        if exists and request.mode == "error":
            raise request.already_exists()
        if exists and options.schema_mode != "overwrite":
            files.check_schema(request, self.delta_schema(location), sample)
        if exists and self.transaction_committed(request):
            request.skipped_as_repeat(record)
            return
        mode: Literal["error", "append", "overwrite"]
        mode, predicate = ("overwrite", files.partitions_of(data, request.partition_by)) \
            if request.mode == "overwrite_partitions" else (request.mode, request.replace_where)
        if sample.num_rows == 0 and exists and request.mode in ("append", "overwrite_partitions"):
            if request.run_id is None:
                record.rows, record.files_written = 0, 0  # no rows: no commit
                return
            mode, predicate = "append", None  # no rows, but the run's commit point: its txn commits
        try:
            # delta-rs's overloads tie predicate= to mode="overwrite" (it is None in the other modes).
            write_deltalake(
                location.uri, data, mode=mode, storage_options=storage_options,  # type: ignore[arg-type]
                partition_by=list(request.partition_by) or None,
                predicate=to_sql(predicate, dialect="delta") if predicate is not None and exists else None,
                schema_mode=None if options.schema_mode == "enforce" else options.schema_mode,
                target_file_size=int(options.target_file_size),
                writer_properties=WriterProperties(compression=DELTA_COMPRESSION[options.compression]),
                commit_properties=CommitProperties(
                    custom_metadata={"userMetadata": request.commit_marker},
                    app_transactions=None if request.transaction_app_id is None else [
                        Transaction(request.transaction_app_id, TRANSACTION_VERSION)]),
            )
        except DeltaSchemaMismatch as error:
            raise SchemaMismatchError(f"{request.describe()}: {error} (schema_mode='merge' adds new columns)") from error
        except CommitFailedError as error:
            raise _lost_to_another_writer(request.describe(), error) from error
        except Exception as error:
            if "cast" in str(error).lower():  # delta-rs reports a column of the wrong type as a cast failure
                raise SchemaMismatchError(f"{request.describe()}: data does not match the table's schema: {error}") from error
            if request.mode == "error" and "already exists" in str(error).lower():
                raise request.already_exists() from error
            raise storage_error(f"{request.describe()}: Delta write failed", error) from error
        own = find_own_commit(request, lambda depth: [
            (entry["version"], entry.get("userMetadata"), entry.get("operationMetrics") or {})
            for entry in DeltaTable(location.uri, storage_options=storage_options).history(depth)])
        if own is not None:
            record.version, metrics = own
            record.files_written = metrics.get("num_added_files")

    def transaction_committed(self, request: WriteRequest) -> bool:
        """True when the request's Delta table already holds the commit of its idempotency key
        (its ``txn`` app id at :data:`~lakeio.requests.TRANSACTION_VERSION` or later); False without a key."""
        if request.transaction_app_id is None:
            return False
        committed = self.storage.delta_transaction(request.location, request.transaction_app_id)
        return committed is not None and committed >= TRANSACTION_VERSION

    def _write_files(self, request: WriteRequest, data, sample: pa.Table, record: IORecord) -> None:
        """Plain files by :func:`lakeio.files.write`; ``sample``: the first rows of ``data`` (all of
        it for a table; a stream's first batch)."""
        filled = files.partition_dirs(data, request.partition_by) \
            if request.partition_by and request.mode != "append" and hasattr(data, "num_rows") else []

        def stage(staging: str, token: str) -> tuple[list[str], list[str]]:
            filesystem = self.storage.filesystem(request.location)
            return _write_file_dataset(request, data, sample, filesystem, staging, token), filled

        files.write(request, self.storage, sample, stage, record, empty=sample.num_rows == 0)

    # -- merge --------------------------------------------------------------------------------

    def merge(self, request: MergeRequest, record: IORecord) -> None:
        from deltalake import CommitProperties, DeltaTable, Transaction
        from deltalake.exceptions import CommitFailedError
        from deltalake.exceptions import SchemaMismatchError as DeltaSchemaMismatch

        request.check_arguments()
        data = to_arrow_data(request.data, self.settings, self.storage)
        refuse_durations(data.schema, "delta", self.name, request.describe())
        data = in_microseconds(data.read_all() if hasattr(data, "read_all") else data, request.describe())
        request.check_unique_keys(data)
        record.rows, record.bytes = data.num_rows, data.nbytes
        storage_options = self.storage.delta_write_options(request.location)
        if not DeltaTable.is_deltatable(request.location.uri, storage_options=storage_options):
            raise StorageError(f"{request.describe()}: no Delta table to merge into; create it with lake.write()")
        table = DeltaTable(request.location.uri, storage_options=storage_options)
        request.check_columns([field.name for field in table.schema().fields], data.schema.names)
        merger = table.merge(data, predicate=request.condition(), source_alias="source", target_alias="target",
                             merge_schema=request.options.schema_mode == "merge",
                             commit_properties=None if request.transaction_app_id is None else CommitProperties(
                                 app_transactions=[Transaction(request.transaction_app_id, TRANSACTION_VERSION)]))
        if request.delete_when is not None:
            merger = merger.when_matched_delete(predicate=request.delete_condition())
        if request.when_matched == "update":
            merger = merger.when_matched_update_all()
        if request.when_not_matched == "insert":
            merger = merger.when_not_matched_insert_all(predicate=request.insert_condition())
        try:
            metrics = merger.execute()
        except DeltaSchemaMismatch as error:
            raise SchemaMismatchError(f"{request.describe()}: {error}") from error
        except CommitFailedError as error:
            raise _lost_to_another_writer(request.describe(), error) from error
        except Exception as error:
            if "cast" in str(error).lower():
                raise SchemaMismatchError(f"{request.describe()}: data does not match the table's schema: {error}") from error
            raise storage_error(f"{request.describe()}: Delta merge failed", error) from error
        request.set_counts(record, metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"],
                           metrics["num_target_rows_deleted"])
        record.files_written = metrics.get("num_target_files_added")


def _lost_to_another_writer(what: str, error: Exception) -> ConcurrentWriteError:
    """delta-rs's commit that conflicted with one another writer made first, as lakeio's error."""
    return ConcurrentWriteError(f"{what}: another writer committed a conflicting change first ({error}); "
                                f"nothing was committed: retry the write")


def _delta_arrow_schema(table) -> pa.Schema:
    """The Arrow schema of a DeltaTable, as its pyarrow datasets have it, with no file touched."""
    import pyarrow as pa

    return pa.schema(table.schema().to_arrow())


def _delta_dataset(table, plan: ScanPlan, filesystem) -> ds.Dataset:
    """The Delta table's files as a pyarrow dataset: only those of the partitions the plan's
    filter can match, chosen by delta-rs from the log before any fragment is made (making every
    file's fragment costs in proportion to the table, not to the read). Each fragment carries
    its partition values and statistics, so the scan's filter prunes the rest by statistics.

    The part of the filter handed to delta-rs is its AND terms on partition columns whose
    literals are of the column's own kind (see :func:`_partition_literal_fits`): those select
    the same files in delta-rs as in Arrow. A filter delta-rs refuses builds every file's fragment.

    The fragments read through ``filesystem`` (pyarrow's own, rooted at the table) rather than
    delta-rs's Python wrapper, which is several times slower and costs a walk of the log to make.
    """
    from pyarrow import fs as pafs

    from lakeio.predicate import conjuncts_where

    rooted = pafs.SubTreeFileSystem(plan.location.path, filesystem)
    schema = _delta_arrow_schema(table)
    types = {name: schema.field(name).type for name in table.metadata().partition_columns}
    selecting = conjuncts_where(plan.predicate, lambda column, value: column in types and
                                _partition_literal_fits(types[column], value))
    if selecting is not None:
        with contextlib.suppress(Exception):  # delta-rs cannot apply it: the scan's filter alone prunes
            return table.to_pyarrow_dataset(file_pruning_predicate=to_sql(selecting, dialect="delta"),
                                            filesystem=rooted)
    return table.to_pyarrow_dataset(filesystem=rooted)


def _partition_literal_fits(type_: pa.DataType, value: object) -> bool:
    """True when delta-rs compares ``value`` with a partition column of ``type_`` as Arrow does:
    integers, strings, dates and booleans of the column's own kind, and ``IS NULL`` (None).
    Other kinds (floats, timestamps and their zones, decimals, mixed kinds) are left to Arrow."""
    import pyarrow as pa

    if value is None:
        return True
    if isinstance(value, bool):
        return pa.types.is_boolean(type_)
    if isinstance(value, int):
        return pa.types.is_integer(type_)
    if isinstance(value, str):
        return pa.types.is_string(type_) or pa.types.is_large_string(type_)
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime) and pa.types.is_date(type_)


def native_parquet_fragments(files: list[tuple[str, object, int | None]], filesystem) -> list:
    """Parquet files already found, as fragments read through pyarrow's own filesystem, with nothing
    listed or opened to make them.

    Each file is (path on ``filesystem``, partition expression, size in bytes or None); a known size
    spares a request per file on S3.
    """
    import pyarrow.dataset as ds

    file_format = ds.ParquetFileFormat()
    return [file_format.make_fragment(path, filesystem=filesystem, partition_expression=expression, file_size=size)
            for path, expression, size in files]


@dataclass(frozen=True)
class DeltaSnapshot:
    """A Delta table as a scan opened it. The table object may be shared by later reads, which
    bring it up to date; what the scan needs of the version it read is kept here."""

    table: Any  # the DeltaTable
    version: int
    sizes: dict[str, int]  # every file of the version (its path, decoded) -> bytes
    lock: threading.Lock  # held for every use of ``table``: delta-rs refuses concurrent updates of one object


@dataclass
class Scan:
    """A plan's data, opened, with the files its scan keeps after pruning."""

    plan: ScanPlan
    dataset: ds.Dataset
    delta: DeltaSnapshot | None  # a Delta scan's table, else None
    expression: object  # the plan's filter as a pyarrow expression, or None
    kept: list
    # For a dataset of files already selected (the partitions Spark's helper chose, or the folders a
    # pruned listing walked into): their sizes. The dataset is then only what was selected, so the
    # table's file count is unknown.
    sizes: dict[str, int] | None = None
    version: int | None = None  # the Delta table version the dataset was built from

    def is_current(self) -> bool:
        """True when reading this scan now reads what opening its plan now would.

        A Delta scan of a fixed version always is; one of the latest version is while the table
        has no newer commit, which listing the log after that version tells for a fraction of what
        opening the table again costs (reading the log and building a fragment per file takes as
        long as a small pruned read itself). Scans of plain files (their folders change in place)
        and of the version current at a timestamp are not reused.
        """
        if self.delta is None or self.plan.timestamp is not None:
            return False
        if self.plan.version is not None:
            return True
        with self.delta.lock:
            self.delta.table.update_incremental()
            return self.delta.table.version() == self.version

    @property
    def filesystem(self):
        return self.dataset.filesystem

    def total_files(self) -> int | None:
        """The table's files (before pruning), or None when the dataset holds only selected ones."""
        if self.sizes is not None:
            return None
        if self.delta is not None:  # the dataset holds only the files delta-rs selected: count the log's
            return len(self.delta.sizes)
        return sum(1 for _ in self.dataset.get_fragments())

    def files(self) -> list[tuple[str, int]]:
        """The kept files as (path, bytes): sizes as selected, from the Delta log, or from one listing
        of the dataset's folder for plain files."""
        from pyarrow import fs as pafs

        if self.sizes is not None:
            sizes = self.sizes
        elif self.delta is not None:
            sizes = self.delta.sizes
        else:
            root = self.filesystem.get_file_info(self.plan.location.path)
            listing = self.filesystem.get_file_info(pafs.FileSelector(root.path, recursive=True)) \
                if root.type == pafs.FileType.Directory else [root]
            sizes = {info.path: info.size for info in listing}
        return [(fragment.path, sizes[fragment.path]) for fragment in self.kept]


@contextlib.contextmanager
def _filter_errors(plan: ScanPlan, schema: pa.Schema, expression, scan: Scan | None = None) -> Iterator[None]:
    """Arrow's errors while filtering or reading (``scan``): a value of a text file that does not
    read as its column's type is the data's fault, a filter that does not fit the column types
    the caller's mistake, anything else a storage error."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid) as error:
        if scan is not None and plan.format in text.TEXT_FORMATS and text.is_conversion_error(error):
            types = {f.name: f.type for f in _presented(scan.dataset.schema, _converted(plan))
                     if f.name not in plan.partition_by}
            found = text.bad_value_error(plan, error, [fragment.path for fragment in scan.kept], scan.filesystem,
                                         types)
            if found is not None:
                raise found from error
        if expression is None:
            raise storage_error(f"dataset {plan.dataset!r} [{plan.env}]: cannot read {plan.format} data "
                                 f"at {plan.location.uri}", error) from error
        shown = to_sql(plan.predicate) if plan.predicate else "none"
        raise InvalidArgumentError(
            f"dataset {plan.dataset!r}: filter {shown} does not fit the column types "
            f"({', '.join(f'{f.name}: {f.type}' for f in schema if f.name in columns_of(plan.predicate))}): {error}"
        ) from error


def _check_utf8(plan: ScanPlan, scan: Scan) -> None:
    """Refuses a scan of CSV or JSON files with one that is not UTF-8, as a read (and Spark's count)
    does, with the error naming the file, line and byte; the files are decoded in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as threads:
        for error in threads.map(lambda fragment: text.not_utf8_error(plan, fragment.path, scan.filesystem),
                                 scan.kept):
            if error is not None:
                raise error


def _utf8_checked(plan: ScanPlan, data: T) -> T:
    """``data`` (a table or batch read from ``plan``'s files), once its text is known to be UTF-8:
    pyarrow's JSON reader keeps bytes that are not, which fail only later, as they are converted.

    Raises:
        pyarrow.ArrowInvalid: bytes that are not UTF-8 (the read's error handler names the file).
    """
    if plan.format == "json":
        data.validate(full=True)  # type: ignore[attr-defined]  # a pa.Table or pa.RecordBatch
    return data


def _converted(plan: ScanPlan) -> dict[str, pa.DataType]:
    """The columns a scan of ``plan`` converts as it reads them, with their types: a JSON dataset's
    dates, which the files hold as text (:func:`lakeio.engines.text.json_dates`)."""
    return text.json_dates(files.declared_types(plan.column_types)) if plan.format == "json" else {}


def _presented(schema: pa.Schema, converted: dict[str, pa.DataType]) -> pa.Schema:
    """``schema`` (the files' as read) with the ``converted`` columns' types."""
    import pyarrow as pa

    return pa.schema([field.with_type(converted.get(field.name, field.type)) for field in schema], schema.metadata)


def _write_file_dataset(request: WriteRequest, data, sample: pa.Table, filesystem, target: str,
                        token: str) -> list[str]:
    """Writes ``data`` as hive-partitioned files under ``target``; returns the files' paths. No rows
    make one file of no rows, so the dataset keeps its columns; but none for a ``replace_where``
    write, which only empties the partitions it matches (a file at the root would stay, and later
    match every partition's filter)."""
    import pyarrow.dataset as ds

    options = request.options
    rows_per_file = files.rows_per_file(sample, request.format, options)
    partition_by = list(request.partition_by) or None
    if sample.num_rows == 0 and request.replace_where is not None:
        filesystem.create_dir(target, recursive=True)
        return []
    if sample.num_rows == 0:
        filesystem.create_dir(target, recursive=True)
        if request.format == "json":  # pyarrow cannot read an empty JSON file: an empty folder it is
            return []
        path = f"{target}/part-{token}-0.{request.format}"
        with filesystem.open_output_stream(path) as out:
            out.write(files.encoded(sample, request.format, options))
        return [path]
    if request.format == "json":
        return _write_json_lines(data, filesystem, target, partition_by, token, rows_per_file)
    file_format = ds.ParquetFileFormat() if request.format == "parquet" else ds.CsvFileFormat()
    # Microsecond timestamps (Spark cannot read Parquet's nanosecond ones): engines.in_microseconds made them so.
    write_options = file_format.make_write_options(compression=options.compression) if request.format == "parquet" \
        else file_format.make_write_options(**files.csv_write_options(options))
    written: list[str] = []
    ds.write_dataset(
        partitions.with_spark_text(data, partition_by, request.describe()) if partition_by else data, target,
        filesystem=filesystem, format=file_format, file_options=write_options,
        basename_template=f"part-{token}-{{i}}.{request.format}",
        partitioning=partition_by, partitioning_flavor="hive" if partition_by else None,
        max_rows_per_file=rows_per_file, max_rows_per_group=min(rows_per_file, 1 << 20),
        min_rows_per_group=min(rows_per_file, 1 << 17),
        existing_data_behavior="overwrite_or_ignore", file_visitor=lambda f: written.append(f.path),
    )
    return partitions.respell(filesystem, target, written) if partition_by else written


def _peeked(data) -> tuple[object, pa.Table]:
    """``data`` and its first rows: all of a table; a stream's first batch, put back in the stream."""
    import pyarrow as pa

    if hasattr(data, "num_rows"):
        return data, data
    seen = []
    for batch in data:  # the first batch with rows (a stream may start with empty ones)
        seen.append(batch)
        if batch.num_rows:
            break
    stream = pa.RecordBatchReader.from_batches(data.schema, itertools.chain(seen, data))
    return stream, pa.Table.from_batches(seen[-1:], schema=data.schema)


def _write_json_lines(table: pa.Table, filesystem, target: str, partition_by: list[str] | None,
                      token: str, rows_per_file: int) -> list[str]:
    """JSON lines, one object per row, hive-partitioned like pyarrow's own writers (pyarrow has a
    JSON reader but no writer)."""
    import pyarrow.dataset as ds

    groups = [("", table)]
    if partition_by:
        groups = []
        for key in files.partition_keys(table, partition_by):
            condition = files.partition_predicate(key)
            groups.append((partitions.folder_path(key),
                           ds.dataset(table).to_table(filter=to_arrow(condition)).drop_columns(partition_by)))
    written = []
    for folder, rows in groups:
        directory = posixpath.join(target, folder) if folder else target
        filesystem.create_dir(directory, recursive=True)
        for index, start in enumerate(range(0, max(rows.num_rows, 1), rows_per_file)):
            path = f"{directory}/part-{token}-{index}.json"
            with filesystem.open_output_stream(path) as out:
                out.write(files.json_lines(rows.slice(start, rows_per_file)))
            written.append(path)
    return written



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
import json
import posixpath
import uuid
from typing import TYPE_CHECKING, Iterator

from lakeio.engines import MergeRequest, WriteRequest, to_arrow_data
from lakeio.errors import InvalidArgumentError, SchemaMismatchError, StorageError
from lakeio.metrics import IORecord
from lakeio.predicate import And, Compare, IsNull, Or, Predicate, columns_of, to_arrow, to_sql
from lakeio.storage import Location, Storage

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakeio.config import Options
    from lakeio.frame import ScanPlan

# Rows of the data written to memory to learn its size per row on disk (for target_file_size).
_SIZE_SAMPLE_ROWS = 50_000


class ArrowEngine:
    name = "arrow"

    def __init__(self, storage: Storage):
        self.storage = storage

    def exists(self, location: Location, format: str) -> bool:
        """True when ``location`` holds a table of ``format`` (for plain files: anything at all)."""
        if format == "delta":
            from deltalake import DeltaTable

            return DeltaTable.is_deltatable(location.uri, storage_options=self.storage.delta_options(location))
        from pyarrow import fs as pafs

        return self.storage.filesystem(location).get_file_info(location.path).type != pafs.FileType.NotFound

    # -- reads --------------------------------------------------------------------------------

    def _dataset(self, plan: "ScanPlan") -> "ds.Dataset":
        location = plan.location
        try:
            if plan.format == "delta":
                return _with_native_files(self._delta_table(plan).to_pyarrow_dataset(),
                                          self.storage.filesystem(location), location.path)
            return self._file_dataset(location, plan.format, bool(plan.partition_by), plan.options)
        except Exception as error:
            raise _storage_error(f"dataset {plan.dataset!r} [{plan.env}]: cannot open {plan.format} data at {location.uri}", error)

    def _delta_table(self, plan: "ScanPlan"):
        """The Delta table of the plan, at the version or timestamp it asks for."""
        from deltalake import DeltaTable

        options = self.storage.delta_options(plan.location)
        if plan.version is None and plan.timestamp is None:
            return DeltaTable(plan.location.uri, storage_options=options)
        table = DeltaTable(plan.location.uri, storage_options=options)
        what = f"dataset {plan.dataset!r} [{plan.env}]"
        latest = table.version()
        if plan.version is not None:
            if not 0 <= plan.version <= latest:
                raise InvalidArgumentError(f"{what} has versions 0 to {latest}; there is no version {plan.version}")
            table.load_as_version(plan.version)
            return table
        # The version current at the timestamp: the last one committed at or before it.
        commits = sorted((c["version"], c["timestamp"]) for c in table.history())
        wanted = plan.timestamp.timestamp() * 1000
        before = [version for version, millis in commits if millis <= wanted]
        if not before:
            first = dt.datetime.fromtimestamp(commits[0][1] / 1000, dt.timezone.utc)
            raise InvalidArgumentError(f"{what}: timestamp {plan.timestamp.isoformat()} is before the first "
                                       f"commit ({first.isoformat()})")
        table.load_as_version(before[-1])
        return table

    def _file_dataset(self, location: Location, format: str, partitioned: bool, options: "Options") -> "ds.Dataset":
        import pyarrow.dataset as ds

        return ds.dataset(location.path, filesystem=self.storage.filesystem(location),
                          format=_file_format(format, options), partitioning="hive" if partitioned else None)

    @contextlib.contextmanager
    def _scanning(self, plan: "ScanPlan", record: IORecord | None = None) -> Iterator["ds.Scanner"]:
        """A scanner for the plan; a filter that cannot apply to the data's types is the caller's error."""
        import pyarrow as pa

        dataset = self._dataset(plan)
        plan.check_columns(dataset.schema.names)
        expression = to_arrow(plan.predicate) if plan.predicate is not None else None
        try:
            if record is not None:
                record.files_total = sum(1 for _ in dataset.get_fragments())
                record.files_scanned = sum(1 for _ in dataset.get_fragments(filter=expression))
            yield dataset.scanner(columns=None if plan.columns is None else list(plan.columns), filter=expression)
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid) as error:
            if expression is None:
                raise _storage_error(f"dataset {plan.dataset!r} [{plan.env}]: cannot read {plan.format} data "
                                     f"at {plan.location.uri}", error) from error
            raise InvalidArgumentError(
                f"dataset {plan.dataset!r}: filter {to_sql(plan.predicate)} does not fit the column types "
                f"({', '.join(f'{f.name}: {f.type}' for f in dataset.schema if f.name in columns_of(plan.predicate))}): {error}"
            ) from error

    def read_arrow(self, plan: "ScanPlan", record: IORecord) -> "pa.Table":
        with self._scanning(plan, record) as scanner:
            return scanner.to_table()

    def read_batches(self, plan: "ScanPlan", record: IORecord) -> tuple["pa.Schema", Iterator["pa.RecordBatch"]]:
        """The plan's schema, and its batches streamed from the files, never all in memory."""
        scope = self._scanning(plan, record)
        scanner = scope.__enter__()

        def batches():
            with contextlib.ExitStack() as stack:
                stack.push(scope)
                yield from scanner.to_batches()

        return scanner.projected_schema, batches()

    def count(self, plan: "ScanPlan", record: IORecord) -> int:
        with self._scanning(plan, record) as scanner:
            return scanner.count_rows()

    def schema(self, plan: "ScanPlan") -> "pa.Schema":
        with self._scanning(plan) as scanner:
            return scanner.projected_schema

    def file_counts(self, plan: "ScanPlan") -> tuple[int, int]:
        record = plan.record("explain", self.name, "")
        with self._scanning(plan, record):
            return record.files_scanned, record.files_total

    def scan_files(self, plan: "ScanPlan") -> tuple[object, list[tuple[str, int]]]:
        """The files the plan's scan reads once partitions are pruned, as (path, bytes) pairs, and
        the pyarrow filesystem those paths are on. Sizes come from the Delta log, or from one
        listing of the dataset's folder for plain files."""
        import pyarrow as pa
        from pyarrow import fs as pafs

        try:
            table = self._delta_table(plan) if plan.format == "delta" else None
        except Exception as error:
            raise _storage_error(f"dataset {plan.dataset!r} [{plan.env}]: cannot open delta data at "
                                 f"{plan.location.uri}", error)
        dataset = table.to_pyarrow_dataset() if table is not None else self._dataset(plan)
        plan.check_columns(dataset.schema.names)
        expression = to_arrow(plan.predicate) if plan.predicate is not None else None
        paths = [fragment.path for fragment in dataset.get_fragments(filter=expression)]
        if table is not None:
            actions = pa.table(table.get_add_actions(flatten=True))
            sizes = dict(zip(actions["path"].to_pylist(), actions["size_bytes"].to_pylist()))
        else:
            root = dataset.filesystem.get_file_info(plan.location.path)
            listing = dataset.filesystem.get_file_info(pafs.FileSelector(root.path, recursive=True)) \
                if root.type == pafs.FileType.Directory else [root]
            sizes = {info.path: info.size for info in listing}
        return dataset.filesystem, [(path, sizes[path]) for path in paths]

    # -- writes -------------------------------------------------------------------------------

    def write(self, request: WriteRequest, record: IORecord) -> None:
        request.check_arguments()
        data = to_arrow_data(request.data)
        request.check_partition_columns(data.schema.names)
        if request.replace_where is not None or request.mode == "overwrite_partitions" or request.format == "json":
            data = data.read_all() if hasattr(data, "read_all") else data  # these need every row at once
        if hasattr(data, "num_rows"):
            request.check_replace_where(data)
            record.rows, record.bytes = data.num_rows, data.nbytes
        if request.format == "delta":
            self._write_delta(request, data, record)
        else:
            self._write_files(request, data, record)

    def _write_delta(self, request: WriteRequest, data, record: IORecord) -> None:
        from deltalake import DeltaTable, WriterProperties, write_deltalake
        from deltalake.exceptions import SchemaMismatchError as DeltaSchemaMismatch

        location, options = request.location, request.options
        storage_options = self.storage.delta_options(location)
        exists = DeltaTable.is_deltatable(location.uri, storage_options=storage_options)
        if exists and options.schema_mode == "enforce" and request.mode != "error":
            _check_delta_kinds(request, DeltaTable(location.uri, storage_options=storage_options), data.schema)
        mode, predicate = request.mode, request.replace_where
        if mode == "overwrite_partitions":
            if data.num_rows == 0:
                record.files_written = 0
                return
            predicate = _partitions_of(data, request.partition_by)
            mode = "overwrite"
        try:
            write_deltalake(
                location.uri, data, mode=mode, storage_options=storage_options,
                partition_by=list(request.partition_by) or None,
                predicate=to_sql(predicate) if predicate is not None and exists else None,
                schema_mode=None if options.schema_mode == "enforce" else options.schema_mode,
                target_file_size=int(options.target_file_size),
                writer_properties=WriterProperties(compression=options.compression.upper().replace("NONE", "UNCOMPRESSED")),
            )
        except DeltaSchemaMismatch as error:
            raise SchemaMismatchError(f"{request.describe()}: {error} (schema_mode='merge' adds new columns)") from error
        except Exception as error:
            if "cast" in str(error).lower():  # delta-rs reports a column of the wrong type as a cast failure
                raise SchemaMismatchError(f"{request.describe()}: data does not match the table's schema: {error}") from error
            if request.mode == "error" and "already exists" in str(error).lower():
                raise request.already_exists() from error
            raise _storage_error(f"{request.describe()}: Delta write failed", error)
        metrics = DeltaTable(location.uri, storage_options=storage_options).history(1)[0].get("operationMetrics", {})
        record.files_written = metrics.get("num_added_files")

    def _write_files(self, request: WriteRequest, data, record: IORecord) -> None:
        from pyarrow import fs as pafs

        location = request.location
        filesystem = self.storage.filesystem(location)
        exists = filesystem.get_file_info(location.path).type != pafs.FileType.NotFound
        if exists and request.mode == "error":
            raise request.already_exists()
        existing = self._file_dataset(location, request.format, bool(request.partition_by), request.options) \
            if exists else None
        if existing is not None and request.options.schema_mode == "enforce":
            _check_schema(request, existing.schema, data)
        replaced: list[str] | None  # folders (relative to the root) whose contents the write replaces
        if request.mode == "append":
            replaced = None
        elif request.replace_where is not None:
            matching = existing.get_fragments(filter=to_arrow(request.replace_where)) if existing else ()
            replaced = sorted({_relative_dir(location.path, f.path) for f in matching}
                              | set(_partition_dirs(data, request.partition_by)))
        elif request.mode == "overwrite_partitions":
            replaced = _partition_dirs(data, request.partition_by)
        else:
            replaced = [""]

        token = uuid.uuid4().hex[:12]
        staging = f"{location.path}.lakeio-staging-{token}"
        try:
            written = _write_file_dataset(request, data, filesystem, staging, token)
            _commit(filesystem, location, staging, replaced, token)
        except BaseException as error:
            with contextlib.suppress(Exception):
                filesystem.delete_dir(staging)
            if isinstance(error, Exception):
                raise _storage_error(f"{request.describe()}: {request.format} write failed", error) from error
            raise
        record.files_written = len(written)


    # -- merge --------------------------------------------------------------------------------

    def merge(self, request: MergeRequest, record: IORecord) -> None:
        from deltalake import DeltaTable
        from deltalake.exceptions import SchemaMismatchError as DeltaSchemaMismatch

        request.check_arguments()
        data = to_arrow_data(request.data)
        data = data.read_all() if hasattr(data, "read_all") else data
        request.check_unique_keys(data)
        record.rows, record.bytes = data.num_rows, data.nbytes
        storage_options = self.storage.delta_options(request.location)
        if not DeltaTable.is_deltatable(request.location.uri, storage_options=storage_options):
            raise StorageError(f"{request.describe()}: no Delta table to merge into; create it with lake.write()")
        table = DeltaTable(request.location.uri, storage_options=storage_options)
        request.check_columns([field.name for field in table.schema().fields], data.schema.names)
        merger = table.merge(data, predicate=request.condition(), source_alias="source", target_alias="target",
                             merge_schema=request.options.schema_mode == "merge")
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
        except Exception as error:
            if "cast" in str(error).lower():
                raise SchemaMismatchError(f"{request.describe()}: data does not match the table's schema: {error}") from error
            raise _storage_error(f"{request.describe()}: Delta merge failed", error)
        request.set_counts(record, metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"],
                           metrics["num_target_rows_deleted"])
        record.files_written = metrics.get("num_target_files_added")


def _check_delta_kinds(request: WriteRequest, table, schema: "pa.Schema") -> None:
    """Refuses a column whose kind (string, integer, timestamp...) differs from the table's, as Delta
    on Spark does; delta-rs would cast it (an integer column written into a string one)."""
    import pyarrow as pa

    have = {field.name: field.type for field in pa.schema(table.schema().to_arrow())}
    problems = [f"column {field.name!r} is {field.type}, the table has {have[field.name]}"
                for field in schema if field.name in have and _kind(field.type) != _kind(have[field.name])]
    if problems:
        raise SchemaMismatchError(f"{request.describe()}: cannot {request.mode}: {'; '.join(problems)} "
                                  "(schema_mode='overwrite' with mode='overwrite' replaces the schema)")


def _kind(type_: "pa.DataType") -> str:
    import pyarrow as pa

    for kind, test in (("string", pa.types.is_string), ("string", pa.types.is_large_string),
                       ("string", pa.types.is_string_view), ("integer", pa.types.is_integer),
                       ("float", pa.types.is_floating), ("decimal", pa.types.is_decimal),
                       ("timestamp", pa.types.is_timestamp), ("date", pa.types.is_date),
                       ("boolean", pa.types.is_boolean)):
        if test(type_):
            return kind
    return str(type_)


def _with_native_files(dataset: "ds.Dataset", filesystem, root: str) -> "ds.Dataset":
    """delta-rs's dataset of a Delta table (its files, partition values and statistics), read
    through pyarrow's own filesystem: delta-rs's Python filesystem wrapper reads several times
    slower (measured by bench_to_pandas.py)."""
    import pyarrow.dataset as ds
    from urllib.parse import unquote

    file_format = ds.ParquetFileFormat()
    fragments = [file_format.make_fragment(posixpath.join(root, unquote(fragment.path)), filesystem=filesystem,
                                           partition_expression=fragment.partition_expression)
                 for fragment in dataset.get_fragments()]
    return ds.FileSystemDataset(fragments, dataset.schema, file_format, filesystem)


def _file_format(format: str, options: "Options"):
    """The pyarrow.dataset file format for reading, with the dataset's options."""
    import pyarrow.csv as pcsv
    import pyarrow.dataset as ds

    if format == "csv":
        return ds.CsvFileFormat(
            parse_options=pcsv.ParseOptions(delimiter=options.delimiter),
            read_options=pcsv.ReadOptions(autogenerate_column_names=not options.header),
            convert_options=pcsv.ConvertOptions(null_values=list(options.null_values), strings_can_be_null=True),
        )
    return ds.JsonFileFormat() if format == "json" else ds.ParquetFileFormat()


def _write_file_dataset(request: WriteRequest, data, filesystem, target: str, token: str) -> list[str]:
    """Writes ``data`` as hive-partitioned files under ``target``; returns the files' paths."""
    import pyarrow.dataset as ds

    options = request.options
    data, rows_per_file = _rows_per_file(data, request.format, options)
    partition_by = list(request.partition_by) or None
    if request.format == "json":
        return _write_json_lines(data, filesystem, target, partition_by, token, rows_per_file)
    file_format = ds.ParquetFileFormat() if request.format == "parquet" else ds.CsvFileFormat()
    # Microsecond timestamps: Spark cannot read Parquet's nanosecond ones.
    write_options = file_format.make_write_options(compression=options.compression, coerce_timestamps="us",
                                                   allow_truncated_timestamps=True) if request.format == "parquet" \
        else file_format.make_write_options(include_header=options.header, delimiter=options.delimiter)
    written: list[str] = []
    ds.write_dataset(
        data, target, filesystem=filesystem, format=file_format, file_options=write_options,
        basename_template=f"part-{token}-{{i}}.{request.format}",
        partitioning=partition_by, partitioning_flavor="hive" if partition_by else None,
        max_rows_per_file=rows_per_file, max_rows_per_group=min(rows_per_file, 1 << 20),
        min_rows_per_group=min(rows_per_file, 1 << 17),
        existing_data_behavior="overwrite_or_ignore", file_visitor=lambda f: written.append(f.path),
    )
    return written


def _rows_per_file(data, format: str, options: "Options"):
    """Rows per file that make files of about ``target_file_size`` on disk, learnt by writing a
    sample of the data to memory in the target format (compression makes memory size useless)."""
    import pyarrow as pa

    if hasattr(data, "num_rows"):
        sample = data.slice(0, _SIZE_SAMPLE_ROWS)
    else:  # a stream: peek at its first batch and put it back
        first = next(iter(data), None)
        if first is None:
            return data, 1 << 20
        rest = itertools.chain([first], data)
        data = pa.RecordBatchReader.from_batches(data.schema, rest)
        sample = pa.Table.from_batches([first])
    if sample.num_rows == 0:
        return data, 1 << 20
    sink = pa.BufferOutputStream()
    if format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(sample, sink, compression=options.compression)
    elif format == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(sample, sink)
    else:
        sink.write(_json_lines(sample))
    bytes_per_row = max(sink.getvalue().size / sample.num_rows, 1e-3)
    return data, max(1, int(int(options.target_file_size) / bytes_per_row))


def _write_json_lines(table: "pa.Table", filesystem, target: str, partition_by: list[str] | None,
                      token: str, rows_per_file: int) -> list[str]:
    """JSON lines, one object per row, hive-partitioned like pyarrow's own writers (pyarrow has a
    JSON reader but no writer)."""
    import pyarrow.dataset as ds

    groups = [("", table)]
    if partition_by:
        partitioning = ds.partitioning(table.select(partition_by).schema, flavor="hive")
        keys = table.select(partition_by).group_by(partition_by, use_threads=False).aggregate([]).to_pylist()
        groups = []
        for key in keys:
            condition = _partition_predicate(key)
            folder, _ = partitioning.format(to_arrow(condition))
            groups.append((folder, ds.dataset(table).to_table(filter=to_arrow(condition)).drop_columns(partition_by)))
    written = []
    for folder, rows in groups:
        directory = posixpath.join(target, folder) if folder else target
        filesystem.create_dir(directory, recursive=True)
        for index, start in enumerate(range(0, max(rows.num_rows, 1), rows_per_file)):
            path = f"{directory}/part-{token}-{index}.json"
            with filesystem.open_output_stream(path) as out:
                out.write(_json_lines(rows.slice(start, rows_per_file)))
            written.append(path)
    return written


def _json_lines(table: "pa.Table") -> bytes:
    def default(value):
        if isinstance(value, (dt.date, dt.datetime, dt.time)):
            return value.isoformat()
        if isinstance(value, bytes):
            import base64

            return base64.b64encode(value).decode()
        if isinstance(value, dt.timedelta):
            return value.total_seconds()
        return float(value)  # Decimal: a JSON number, as Spark writes it

    return "".join(json.dumps(row, default=default, ensure_ascii=False) + "\n"
                   for row in table.to_pylist()).encode()


def _partition_predicate(key: dict) -> Predicate:
    """``year = 2013 AND month = 1`` for one partition's values (IS NULL for a null one)."""
    parts = tuple(IsNull(c) if v is None else Compare(c, "=", v) for c, v in key.items())
    return parts[0] if len(parts) == 1 else And(parts)


def _partitions_of(data: "pa.Table", partition_by: tuple[str, ...]) -> Predicate:
    """A predicate matching exactly the partitions present in ``data``."""
    keys = data.select(list(partition_by)).group_by(list(partition_by), use_threads=False).aggregate([]).to_pylist()
    predicates = tuple(_partition_predicate(key) for key in keys)
    return predicates[0] if len(predicates) == 1 else Or(predicates)


def _partition_dirs(data: "pa.Table", partition_by: tuple[str, ...]) -> list[str]:
    """The hive folders (``year=2013/month=1``) of the partitions present in ``data``."""
    import pyarrow.dataset as ds

    partitioning = ds.partitioning(data.select(list(partition_by)).schema, flavor="hive")
    keys = data.select(list(partition_by)).group_by(list(partition_by), use_threads=False).aggregate([]).to_pylist()
    return sorted(partitioning.format(to_arrow(_partition_predicate(key)))[0] for key in keys)


def _relative_dir(root: str, path: str) -> str:
    return posixpath.dirname(path)[len(root):].strip("/")


def _check_schema(request: WriteRequest, existing: "pa.Schema", data) -> None:
    """Writes must match the existing columns and types, as Delta enforces; plain files would not.
    CSV and JSON carry no types: their columns are compared as the reader will type them, and a
    column read as all-null matches any type."""
    import pyarrow as pa

    incoming = _as_read_schema(data, request.format, request.options) if request.format in ("csv", "json") \
        else data.schema
    have = {f.name: f.type for f in existing}
    new = {f.name: f.type for f in incoming}
    problems = [f"missing column {n!r}" for n in have if n not in new] + \
               [f"unknown column {n!r}" for n in new if n not in have] + \
               [f"column {n!r} is {new[n]}, the dataset has {have[n]}" for n in new
                if n in have and n not in request.partition_by and new[n] != have[n]
                and not (pa.types.is_null(new[n]) or pa.types.is_null(have[n]))]
    if problems:
        raise SchemaMismatchError(f"{request.describe()}: cannot {request.mode}: {'; '.join(problems)} "
                                  "(schema_mode='overwrite' with mode='overwrite' replaces the schema)")


def _as_read_schema(data, format: str, options: "Options") -> "pa.Schema":
    """The schema a text format's reader gives a sample of ``data`` once written."""
    import pyarrow as pa

    sample = data.slice(0, 1000) if hasattr(data, "slice") else pa.Table.from_batches([], schema=data.schema)
    buffer = pa.BufferOutputStream()
    if format == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(sample, buffer, pcsv.WriteOptions(include_header=options.header, delimiter=options.delimiter))
    else:
        buffer.write(_json_lines(sample))
    source = pa.BufferReader(buffer.getvalue())
    return _file_format(format, options).inspect(source) if sample.num_rows else data.schema


def _commit(filesystem, location: Location, staging: str, replaced: list[str] | None, token: str) -> None:
    """Moves the staged files into the dataset. ``replaced`` lists the folders (relative to the
    root, ``""`` for the root itself) whose old contents the staged ones replace; None adds files.

    Locally each folder is swapped with two renames, so readers see its old or its new contents.
    S3 has no rename: a replaced folder's old objects go, then the staged objects move in.
    """
    from pyarrow import fs as pafs

    root = location.path
    staged = [info.path for info in filesystem.get_file_info(pafs.FileSelector(staging, recursive=True))
              if info.type == pafs.FileType.File]
    if replaced is None:
        for path in staged:
            target = root + path[len(staging):]
            filesystem.create_dir(posixpath.dirname(target), recursive=True)
            filesystem.move(path, target)
        filesystem.delete_dir(staging)
        return
    retired = f"{root}.lakeio-retired-{token}"
    for folder in replaced:
        old, new = _joined(root, folder), _joined(staging, folder)
        has_old = filesystem.get_file_info(old).type != pafs.FileType.NotFound
        has_new = filesystem.get_file_info(new).type != pafs.FileType.NotFound
        if location.scheme == "file":
            if has_old:
                filesystem.create_dir(posixpath.dirname(_joined(retired, folder)), recursive=True)
                filesystem.move(old, _joined(retired, folder))
            if has_new:
                filesystem.create_dir(posixpath.dirname(old), recursive=True)
                filesystem.move(new, old)
            continue
        if has_old:
            filesystem.delete_dir_contents(old)
        for path in staged:
            if path.startswith(new + "/"):
                filesystem.move(path, old + path[len(new):])
    for leftover in (staging, retired):
        if filesystem.get_file_info(leftover).type != pafs.FileType.NotFound:
            filesystem.delete_dir(leftover)


def _joined(root: str, folder: str) -> str:
    return posixpath.join(root, folder) if folder else root


def _storage_error(message: str, error: Exception) -> Exception:
    if isinstance(error, (InvalidArgumentError, StorageError, SchemaMismatchError)):
        return error
    return StorageError(f"{message}: {type(error).__name__}: {error}")

"""The plain-file table protocol: how every engine writes a Parquet, CSV or JSON dataset.

A plain dataset has no log, so lakeio gives its writes one protocol, the same for every engine:

1. :func:`write` refuses ``mode='error'`` on existing data and checks the incoming schema against
   the dataset's (:func:`check_schema`);
2. the engine *stages* its files beside the dataset, in ``<root>.lakeio-staging-<token>``, sized
   by :func:`rows_per_file` to about ``target_file_size``;
3. :func:`commit` moves them in, replacing the folders the mode replaces (:func:`replaced_folders`),
   and undoes every move if one fails, so a failed or refused write leaves the old data as it was.

Delta tables get the same guarantee from the Delta log and do not come here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import logging
import posixpath
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from lakeio.engines import text
from lakeio.errors import SchemaMismatchError, storage_error
from lakeio.predicate import And, Compare, IsNull, Or, Predicate, to_arrow

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakeio.config import Options
    from lakeio.metrics import IORecord
    from lakeio.requests import WriteRequest
    from lakeio.storage import Location

# Rows of the data written to memory to learn its size per row on disk (for target_file_size).
SIZE_SAMPLE_ROWS = 50_000

# An engine's staging step: given the staging folder and the write's token, it writes the data's
# files there and returns (their paths, the partition folders (relative to the root) they fill).
Stage = Callable[[str, str], "tuple[list[str], list[str]]"]


def exists(filesystem, location: Location) -> bool:
    """True when anything is at ``location``."""
    from pyarrow import fs as pafs

    return filesystem.get_file_info(location.path).type != pafs.FileType.NotFound


def open_dataset(filesystem, location: Location, format: str, partitioned: bool, options: Options,
                 column_types: tuple[tuple[str, str], ...] = ()) -> ds.Dataset:
    """The plain files at ``location`` as one pyarrow dataset, typed as every engine reads them.

    Text files are typed by inference, file by file: a column all null in the first file must not
    make the dataset's column null-typed, so every file's inferred schema is unified. The
    contract's types (``column_types``) win: the scan converts.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    file_format = read_format(format, options, column_types)

    def open_(schema=None):
        return ds.dataset(location.path, filesystem=filesystem, schema=schema,
                          format=file_format, partitioning="hive" if partitioned else None)

    dataset = open_()
    if format == "parquet":
        return dataset
    declared = declared_types(column_types)

    def typed(schema: pa.Schema) -> pa.Schema:
        return pa.schema([field.with_type(declared.get(field.name, field.type)) for field in schema])

    physical = [typed(fragment.physical_schema) for fragment in dataset.get_fragments()]
    unified = text.held_by_both(pa.unify_schemas([typed(dataset.schema), *physical], promote_options="permissive"))
    return dataset if unified == dataset.schema else open_(unified)


def write(request: WriteRequest, filesystem, incoming: pa.Table, stage: Stage, record: IORecord, *,
          empty: bool) -> None:
    """Writes a plain dataset by the protocol above; ``stage`` is the engine's part.

    Args:
        request: the write.
        filesystem: the pyarrow filesystem of the request's location.
        incoming: the data's first rows (or a table of no rows with its schema): checked against
            the dataset's schema.
        stage: writes the data under the staging folder (see :data:`Stage`).
        record: gets the number of files written.
        empty: the data has no rows: an append or partition overwrite of existing data is a no-op.

    Raises:
        StorageError: data exists and the mode is ``error``, or a step failed (nothing changed).
        SchemaMismatchError: the data's columns or types differ from the dataset's.
    """
    location = request.location
    present = exists(filesystem, location)
    if present and request.mode == "error":
        raise request.already_exists()
    existing = open_dataset(filesystem, location, request.format, bool(request.partition_by), request.options) \
        if present else None
    if existing is not None and request.options.schema_mode != "overwrite":
        check_schema(request, existing.schema, incoming)
    if empty and present and request.mode in ("append", "overwrite_partitions"):
        record.rows, record.files_written = 0, 0  # no rows: no partition to add or replace
        return
    token = uuid.uuid4().hex[:12]
    staging = f"{location.path}.lakeio-staging-{token}"
    try:
        written, filled = stage(staging, token)
        commit(filesystem, location, staging, replaced_folders(request, existing, filled), token)
    except BaseException as error:
        with contextlib.suppress(Exception):
            filesystem.delete_dir(staging)
        if isinstance(error, Exception):
            raise storage_error(f"{request.describe()}: {request.format} write failed", error) from error
        raise
    record.files_written = len(written)


def replaced_folders(request: WriteRequest, existing: ds.Dataset | None, filled: list[str]) -> list[str] | None:
    """The folders (relative to the root, ``""`` for the root) whose old contents a write replaces;
    None for an append, which only adds files. ``filled``: the partition folders the data fills."""
    if request.mode == "append":
        return None
    if request.replace_where is not None:
        matching = existing.get_fragments(filter=to_arrow(request.replace_where)) if existing else ()
        return sorted({relative_dir(request.location.path, f.path) for f in matching} | set(filled))
    if request.mode == "overwrite_partitions":
        return sorted(filled)
    return [""]


def declared_types(column_types: tuple[tuple[str, str], ...]) -> dict[str, pa.DataType]:
    """The Arrow types of a contract's columns (``ScanPlan.column_types``)."""
    if not column_types:
        return {}
    from lakeio.validation.arrow_backend import arrow_type
    from lakeio.validation.contract import LogicalType

    return {name: arrow_type(LogicalType.parse(logical)) for name, logical in column_types}


def read_format(format: str, options: Options, column_types: tuple[tuple[str, str], ...] = ()):
    """The pyarrow.dataset file format for reading, with the dataset's options; text formats read
    the columns a contract declares as its types, and infer the others."""
    import pyarrow.dataset as ds

    if format == "csv":
        return ds.CsvFileFormat(**text.csv_options(options, declared_types(column_types)))
    if format == "json":
        return ds.JsonFileFormat(parse_options=text.json_options(declared_types(column_types)))
    return ds.ParquetFileFormat()


def csv_write_options(options: Options) -> dict:
    # Quotes only where a value needs them, as pandas and Spark write CSV.
    return {"include_header": options.header, "delimiter": options.delimiter, "quoting_style": "needed"}


def rows_per_file(sample: pa.Table, format: str, options: Options) -> int:
    """Rows per file that make files of about ``target_file_size`` on disk, learnt by writing a
    sample of the data to memory in the target format (compression makes memory size useless)."""
    sample = sample.slice(0, SIZE_SAMPLE_ROWS)
    if sample.num_rows == 0:
        return 1 << 20
    bytes_per_row = max(len(encoded(sample, format, options)) / sample.num_rows, 1e-3)
    return max(1, int(int(options.target_file_size) / bytes_per_row))


def encoded(table: pa.Table, format: str, options: Options) -> bytes:
    """``table`` as the bytes of one file of ``format``."""
    import pyarrow as pa

    if format == "json":
        return json_lines(table)
    sink = pa.BufferOutputStream()
    if format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, sink, compression=options.compression)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, sink, pcsv.WriteOptions(**csv_write_options(options)))
    return sink.getvalue().to_pybytes()


def json_lines(table: pa.Table) -> bytes:
    """One JSON object per row. Decimals are exact JSON numbers, digit for digit (as Spark writes
    them), never floats: each is written as a marked string first, then unquoted."""
    marker = f"decimal-{uuid.uuid4().hex}:"

    def default(value):
        if isinstance(value, (dt.date, dt.datetime, dt.time)):
            return value.isoformat()
        if isinstance(value, bytes):
            import base64

            return base64.b64encode(value).decode()
        if isinstance(value, dt.timedelta):
            return value.total_seconds()
        if isinstance(value, decimal.Decimal):
            return f"{marker}{value}"
        return float(value)

    text = "".join(json.dumps(row, default=default, ensure_ascii=False) + "\n" for row in table.to_pylist())
    return re.sub(f'"{re.escape(marker)}([^"]*)"', r"\1", text).encode()


def partition_predicate(key: dict) -> Predicate:
    """``year = 2013 AND month = 1`` for one partition's values (IS NULL for a null one)."""
    parts = tuple(IsNull(c) if v is None else Compare(c, "=", v) for c, v in key.items())
    return parts[0] if len(parts) == 1 else And(parts)


def partition_keys(data: pa.Table, partition_by) -> list[dict]:
    """The distinct partition values present in ``data``, one dict per partition."""
    columns = list(partition_by)
    return data.select(columns).group_by(columns, use_threads=False).aggregate([]).to_pylist()


def partitions_of(data: pa.Table, partition_by: tuple[str, ...]) -> Predicate:
    """A predicate matching exactly the partitions present in ``data``."""
    predicates = tuple(partition_predicate(key) for key in partition_keys(data, partition_by))
    return predicates[0] if len(predicates) == 1 else Or(predicates)


def partition_dirs(data: pa.Table, partition_by: tuple[str, ...]) -> list[str]:
    """The hive folders (``year=2013/month=1``) of the partitions present in ``data``."""
    import pyarrow.dataset as ds

    partitioning = ds.partitioning(data.select(list(partition_by)).schema, flavor="hive")
    return sorted(partitioning.format(to_arrow(partition_predicate(key)))[0]
                  for key in partition_keys(data, partition_by))


def relative_dir(root: str, path: str) -> str:
    return posixpath.dirname(path)[len(root):].strip("/")


def check_schema(request: WriteRequest, existing: pa.Schema, sample: pa.Table) -> None:
    """Refuses a write whose columns or types differ from the dataset's, naming each difference.

    Parquet types must be equal (partition columns excepted: their folders type them); Delta types
    must be of one kind (delta-rs casts int32 to int64, nanoseconds to microseconds); CSV and JSON
    carry no types, so their columns are compared as the reader will type them, and a column read
    as all-null matches any type. ``schema_mode='merge'`` (Delta) accepts new and missing columns.
    """
    import pyarrow as pa

    incoming = as_read_schema(sample, request.format, request.options) if request.format in ("csv", "json") \
        else sample.schema
    have = {f.name: f.type for f in existing}
    new = {f.name: f.type for f in incoming}
    same = same_kind if request.format == "delta" else (lambda a, b: a == b)
    problems = [] if request.options.schema_mode == "merge" else \
        [f"missing column {n!r}" for n in have if n not in new] + [f"unknown column {n!r}" for n in new if n not in have]
    problems += [f"column {n!r} is {new[n]}, the dataset has {have[n]}" for n in new
                 if n in have and n not in request.partition_by and not same(new[n], have[n])
                 and not (pa.types.is_null(new[n]) or pa.types.is_null(have[n]))]
    if problems:
        raise SchemaMismatchError(f"{request.describe()}: cannot {request.mode}: {'; '.join(problems)} "
                                  "(schema_mode='overwrite' with mode='overwrite' replaces the schema"
                                  f"{'; merge adds columns' if request.format == 'delta' else ''})")


def same_kind(new: pa.DataType, have: pa.DataType) -> bool:
    """True when a column of type ``new`` can be written into one of type ``have`` without loss
    of meaning: the same kind of value, or integers into floats."""
    import pyarrow.types as t

    kinds = (t.is_integer, t.is_floating, t.is_decimal, t.is_boolean, t.is_timestamp, t.is_date,
             lambda x: t.is_string(x) or t.is_large_string(x) or t.is_string_view(x),
             lambda x: t.is_binary(x) or t.is_large_binary(x) or t.is_binary_view(x))
    return new == have or (t.is_integer(new) and t.is_floating(have)) or \
        any(kind(new) and kind(have) for kind in kinds)


def as_read_schema(sample: pa.Table, format: str, options: Options) -> pa.Schema:
    """The schema a text format's reader gives ``sample`` once written."""
    import pyarrow as pa

    sample = sample.slice(0, 1000)
    if sample.num_rows == 0:  # no values to type: any type matches
        return pa.schema([pa.field(name, pa.null()) for name in sample.schema.names])
    return text.held_by_both(read_format(format, options).inspect(pa.BufferReader(encoded(sample, format, options))))


def commit(filesystem, location: Location, staging: str, replaced: list[str] | None, token: str) -> None:
    """Moves the staged files into the dataset. ``replaced`` lists the folders (relative to the
    root, ``""`` for the root itself) whose old contents the staged ones replace; None adds files.
    If a move fails, the moves already made are undone, so the old data stays as it was.

    Locally each replaced folder is swapped with two renames, so readers see its old or its new
    contents. S3 has no rename: the new objects move in first (under names no old object has), then
    the replaced folders' old objects move aside to ``<root>.lakeio-retired-*`` and are deleted once
    all are aside; until then every step can be undone.
    """
    from pyarrow import fs as pafs

    def exists(path: str) -> bool:
        return filesystem.get_file_info(path).type != pafs.FileType.NotFound

    def files_under(folder: str) -> list[str]:
        if not exists(folder):
            return []
        return [info.path for info in filesystem.get_file_info(pafs.FileSelector(folder, recursive=True))
                if info.type == pafs.FileType.File]

    def move(source: str, target: str) -> None:
        filesystem.create_dir(posixpath.dirname(target), recursive=True)
        filesystem.move(source, target)
        done.append((target, source))

    root, retired = location.path, f"{location.path}.lakeio-retired-{token}"
    done: list[tuple[str, str]] = []  # (moved to, moved from), to undo in reverse
    try:
        if location.scheme == "file" and replaced is not None:
            for folder in replaced:
                if exists(_joined(root, folder)):
                    move(_joined(root, folder), _joined(retired, folder))
                if exists(_joined(staging, folder)):
                    move(_joined(staging, folder), _joined(root, folder))
        else:
            for path in files_under(staging):
                move(path, root + path[len(staging):])
            new = {target for target, _ in done}
            for folder in replaced or ():  # S3: the old objects step aside, where an undo finds them
                for path in files_under(_joined(root, folder)):
                    if path not in new:
                        move(path, retired + path[len(root):])
    except BaseException:
        for target, source in reversed(done):
            filesystem.move(target, source)
        _remove_quietly(filesystem, retired)  # the empty folders the undone moves leave
        raise
    # Committed: what is left over is litter, not a reason to call the write failed.
    for leftover in (staging, retired):
        _remove_quietly(filesystem, leftover)


def _remove_quietly(filesystem, folder: str) -> None:
    """Deletes ``folder`` if it is there; a failure is logged (the data is already right)."""
    from pyarrow import fs as pafs

    try:
        if filesystem.get_file_info(folder).type != pafs.FileType.NotFound:
            filesystem.delete_dir(folder)
    except Exception as error:  # noqa: BLE001 - any failure here leaves litter only
        logging.getLogger(__name__).warning("lakeio: could not remove %s (%s); it holds no live data", folder, error)


def _joined(root: str, folder: str) -> str:
    return posixpath.join(root, folder) if folder else root

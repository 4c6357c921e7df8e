"""The plain-file table protocol: how every engine writes a Parquet, CSV or JSON dataset.

A plain dataset has no log, so lakeio gives its writes one protocol, the same for every engine:

1. :func:`write` refuses ``mode='error'`` on existing data and checks the incoming schema against
   the dataset's (:func:`check_schema`);
2. the engine *stages* its files beside the dataset, in ``<root>.lakeio-staging-<token>``, sized
   by :func:`rows_per_file` to about ``target_file_size``;
3. :func:`commit` moves them in, replacing the folders the mode replaces (:func:`replaced_folders`),
   and undoes every move if one fails, so a failed or refused write leaves the old data as it was.
   It runs under the dataset's :class:`CommitLog` (a lock and a journal of the planned moves), so
   commits are serialised, readers see one commit's files, and a commit whose writer was killed is
   completed or rolled back by the next write (docs/guide/reliability.md).

Delta tables get the same guarantee from the Delta log and do not come here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import functools
import hashlib
import itertools
import json
import logging
import operator
import os
import posixpath
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from lakeio import partitions
from lakeio.engines import text
from lakeio.errors import SchemaMismatchError, StorageError, storage_error
from lakeio.predicate import And, Compare, IsNull, Or, Predicate, columns_of, conjuncts_where, passing_rows, to_arrow
from lakeio.storage import again_if_transient

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakeio.config import Options
    from lakeio.metrics import IORecord
    from lakeio.requests import ResolvedDataset, ScanPlan, WriteRequest
    from lakeio.storage import Location, Storage

T = TypeVar("T")

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
                 column_types: tuple[tuple[str, str], ...] = (),
                 partition_types: tuple[tuple[str, str], ...] = (), *,
                 selecting: tuple[tuple[str, ...], Predicate | None] = ((), None)) -> tuple[ds.Dataset, dict[str, int] | None]:
    """The plain files at ``location`` as one pyarrow dataset, typed as every engine reads them;
    and, when only some partitions' folders were listed, the sizes of the files listed (else None).

    Partition folders are read, and their columns typed, by :mod:`lakeio.partitions` (Spark's
    rules). Text files are typed by inference, file by file: a column all null in the first file
    must not make the dataset's column null-typed, so every file's inferred schema is unified. The
    contract's types (``column_types``, ``partition_types``) win: the scan converts.

    ``selecting``: the partition columns and a read's filter; the folders are then walked level by
    level, only into those the filter can match (:func:`pruned_listing`), and the dataset holds
    only their files (its data columns and text types those of the files listed).
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    file_format = read_format(format, options, column_types)
    sizes = None
    if partitioned:
        dataset, sizes = partitioned_dataset(filesystem, location, file_format, declared_types(partition_types),
                                             selecting)
    else:
        dataset = ds.dataset(location.path, filesystem=filesystem, format=file_format)
    if format == "parquet":
        return dataset, sizes
    declared = declared_types(column_types)
    if format == "json":
        declared = text.json_read_types(declared)

    def typed(schema: pa.Schema) -> pa.Schema:
        return pa.schema([field.with_type(declared.get(field.name, field.type)) for field in schema])

    fragments = list(dataset.get_fragments())
    physical = [typed(fragment.physical_schema) for fragment in fragments]
    if format == "csv" and options.header:
        _check_headers(location, fragments, physical)
    unified = text.held_by_both(pa.unify_schemas([typed(dataset.schema), *physical], promote_options="permissive"))
    if format == "json" and declared:  # JSON lines name their fields in any order: the declared ones first
        unified = pa.schema([unified.field(name) for name in declared if name in unified.names]
                            + [field for field in unified if field.name not in declared], metadata=unified.metadata)
    if unified == dataset.schema:
        return dataset, sizes
    return (dataset.replace_schema(unified) if partitioned else
            ds.dataset(location.path, filesystem=filesystem, schema=unified, format=file_format)), sizes


def _check_headers(location: Location, fragments: list, schemas: list[pa.Schema]) -> None:
    """Refuses CSV files whose headers name other columns, or the same in another order, than
    the first file's (a reader would add columns, or match values to columns by position).

    Raises:
        SchemaMismatchError: naming each file that differs, and its header.
    """
    if not schemas:
        return
    first = schemas[0].names
    other = [(fragment.path, schema.names) for fragment, schema in zip(fragments, schemas, strict=True)
             if schema.names != first]
    if other:
        shown = "; ".join(f"{path} has {','.join(names)}" for path, names in other[:3])
        raise SchemaMismatchError(f"{location.uri}: CSV files whose header is not the dataset's "
                                  f"({','.join(first)}, as in {fragments[0].path}): {shown}"
                                  + (f" and {len(other) - 3} more" if len(other) > 3 else ""))


def partitioned_dataset(filesystem, location: Location, file_format, declared: dict[str, pa.DataType],
                        selecting: tuple[tuple[str, ...], Predicate | None] = ((), None),
                        ) -> tuple[ds.Dataset, dict[str, int] | None]:
    """The files under ``location`` (hidden ones, ``.*`` and ``_*``, left out as pyarrow and Spark
    leave them) as a dataset whose partition columns are typed and valued by
    :mod:`lakeio.partitions` from their folders, a ``declared`` type winning over inference; the
    data columns are the first file's. With ``selecting`` (partition columns, filter), only the
    files of the partitions :func:`pruned_listing` walks into, and their sizes; else every file
    and None.

    Raises:
        SchemaMismatchError: a folder's value is not of the column's declared type.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    from pyarrow import fs as pafs

    root = location.path.rstrip("/")
    if filesystem.get_file_info(root).type != pafs.FileType.Directory:  # not there, or a file: pyarrow says so
        return ds.dataset(root, filesystem=filesystem, format=file_format), None
    walked = pruned_listing(filesystem, root, declared, *selecting)
    listing, sizes = (filesystem.get_file_info(pafs.FileSelector(root, recursive=True)), None) if walked is None \
        else (walked[0], {info.path: info.size for info in walked[0]})
    folders: dict[str, dict[str, str | None]] = {}  # each folder holding files -> its columns' values
    written: dict[str, set[str]] = {}  # each column -> its values as spelt in folder names
    paths = []
    for info in listing:
        parts = info.path[len(root):].strip("/").split("/")
        if info.type != pafs.FileType.File or any(part.startswith((".", "_")) for part in parts):
            continue
        paths.append(info.path)
        folder = "/".join(parts[:-1])
        if folder not in folders:
            found = [(part, partitions.parse_folder(part)) for part in parts[:-1]]
            folders[folder] = dict(pair for _, pair in found if pair is not None)
            for part, pair in found:
                if pair is not None:
                    written.setdefault(pair[0], set()).add(part.partition("=")[2])
    if walked is not None:  # typed from every folder of each level, not only the files' folders
        types = walked[1]
        columns = list(types)
    else:
        columns = list(dict.fromkeys(column for values in folders.values() for column in values))
        types = {c: declared.get(c) or partitions.infer(values.get(c) for values in folders.values())
                 for c in columns}
        if columns and not declared.keys() & set(columns) and all(partitions.pyarrow_reads_alike(spelt, types[c])
                                            for c in columns for spelt in written[c]):
            # pyarrow's own hive parsing gives these folders the same values, and builds fragments far faster.
            partitioning = ds.HivePartitioning(pa.schema([(c, types[c]) for c in columns]),
                                               null_fallback=partitions.NULL_NAME)
            return ds.dataset(root, filesystem=filesystem, format=file_format, partitioning=partitioning), None

    def condition(folder: str, column: str):
        value = folders[folder].get(column)
        if value is None:
            return pc.field(column).is_null()
        try:
            return pc.field(column) == partitions.typed_value(value, types[column])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise SchemaMismatchError(f"{location.uri}: the partition folder {folder!r} holds {column} = {value!r}, "
                                      f"which is not of the column's declared type {types[column]}") from error

    expressions = {folder: functools.reduce(operator.and_, [condition(folder, c) for c in columns])
                   if columns else None for folder in folders}
    fragments = [file_format.make_fragment(path, filesystem=filesystem,
                                           partition_expression=expressions[relative_dir(root, path)])
                 for path in sorted(paths)]
    data = [field for field in fragments[0].physical_schema if field.name not in types] if fragments else []
    schema = pa.schema(data + [pa.field(column, type_) for column, type_ in types.items()])
    return ds.FileSystemDataset(fragments, schema, file_format, filesystem), sizes


def pruned_listing(filesystem, root: str, declared: dict[str, pa.DataType], partition_by: tuple[str, ...],
                   predicate: Predicate | None) -> tuple[list, dict[str, pa.DataType]] | None:
    """The files (``FileInfo``) of the partitions ``predicate`` can match, found by listing the
    folders under ``root`` level by level (``partition_by``'s order) and descending only into the
    ``column=value`` folders whose value passes the filter's AND terms on the partition columns
    (those of the levels above included); and each partition column's type. A read's listing so
    costs in proportion to the partitions it reads, not to the table's.

    None (list every file instead) when the filter has no such term, the folders are not exactly
    ``partition_by``'s levels (a file above the last level, a folder that is no ``column=value`` of
    its level's column, a partition folder below it), a value is not of its declared type (the full
    listing says which), a term does not fit the column's type (the scan says why), or a column
    below a pruned level has no declared type: inferring it from the folders kept could differ
    from inferring it from all of them, as the full listing does.

    Each level's type is the declared one, else inferred (:func:`lakeio.partitions.infer`) from
    every folder of that level under the folders kept, which are all of them above any pruning.
    A level costs one listing per folder kept above it and a few Arrow calls on its whole column of
    values (:func:`lakeio.partitions.typed_texts`), not a Python call per folder.
    """
    import pyarrow as pa
    from pyarrow import fs as pafs

    selecting = conjuncts_where(predicate, lambda column, value: column in partition_by)
    if selecting is None:
        return None
    pending = list(selecting.operands) if isinstance(selecting, And) else [selecting]
    kept = [root]  # the folders walked into, and (below) each walked column's typed value in each of them
    columns: dict[str, pa.Array] = {}
    pruned = False
    for level, column in enumerate(partition_by):
        if column not in declared and pruned:
            return None
        children = _children(filesystem, kept, column)
        if children is None:
            return None
        paths, parents, values = children
        try:  # the whole level's values typed at once: one cast, not one per folder
            typed = partitions.typed_texts(values, declared.get(column))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        level_columns = {c: array.take(parents) for c, array in columns.items()} | {column: typed}
        known = set(partition_by[:level + 1])
        now = [term for term in pending if columns_of(term) <= known]
        pending = [term for term in pending if term not in now]
        if now and paths:
            rows = _passing(level_columns, now[0] if len(now) == 1 else And(tuple(now)))
            if rows is None:
                return None
            pruned = pruned or len(rows) < len(paths)
            taken = pa.array(rows, pa.int64())
            paths, level_columns = [paths[row] for row in rows], {c: array.take(taken) for c, array in level_columns.items()}
        kept, columns = paths, level_columns
    found = []
    for folder in kept:
        for info in filesystem.get_file_info(pafs.FileSelector(folder, recursive=True)):
            parts = info.path[len(folder):].strip("/").split("/")
            if any(part.startswith((".", "_")) for part in parts):
                continue
            if info.type == pafs.FileType.Directory and partitions.parse_folder(info.base_name) is not None:
                return None
            if info.type == pafs.FileType.File:
                found.append(info)
    return found, {column: array.type for column, array in columns.items()}


def _children(filesystem, folders: list[str], column: str) -> tuple[list[str], pa.Array, pa.Array] | None:
    """The ``column=value`` folders in ``folders`` (hidden ones left out), by one listing of each
    folder: their paths, the position in ``folders`` of the folder each is in, and their unescaped
    values (a string array, null for the null partition). None when one of them holds a file or a
    folder of another column. The names are parsed as whole arrays, not one by one: a table's root
    may hold thousands.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import fs as pafs

    paths: list[str] = []
    names: list[str] = []
    sizes: list[int | None] = []  # a listing sizes every file, and no folder (a size costs far less than a type)
    counts = []
    for folder in folders:
        listing = filesystem.get_file_info(pafs.FileSelector(folder))
        listed = [info.path for info in listing]
        cut = listed[0].rfind("/") + 1 if listed else 0  # each is the folder's path, "/" and a name
        paths += listed
        names += [path[cut:] for path in listed]
        sizes += [info.size for info in listing]
        counts.append(len(listed))
    spelt = pa.array(names, pa.string())
    parents = pa.array(np.repeat(np.arange(len(folders), dtype=np.int64), counts))
    shown = pc.invert(pc.or_(pc.starts_with(spelt, "."), pc.starts_with(spelt, "_")))
    if shown.false_count:
        kept = np.flatnonzero(shown)
        paths, names, sizes = [paths[i] for i in kept], [names[i] for i in kept], [sizes[i] for i in kept]
        spelt, parents = spelt.take(kept), parents.take(kept)
    if any(size is not None for size in sizes):  # a file where only folders belong
        return None
    prefix = partitions.escape(column) + "="
    if pc.all(pc.starts_with(spelt, prefix)).as_py() is False:  # a column spelt otherwise (an escape), or another
        pairs = [partitions.parse_folder(name) for name in names]
        if any(pair is None or pair[0] != column for pair in pairs):
            return None
        return paths, parents, pa.array([pair[1] for pair in pairs if pair is not None], pa.string())
    values = pc.utf8_slice_codeunits(spelt, len(prefix))
    values = pc.if_else(pc.equal(values, partitions.NULL_NAME), pa.scalar(None, pa.string()), values)
    if pc.any(pc.match_substring(values, "%")).as_py():
        values = pa.array([None if text is None else partitions.unescape(text) for text in values.to_pylist()],
                          pa.string())
    return paths, parents, values


def _passing(columns: dict[str, pa.Array], condition: Predicate) -> list[int] | None:
    """The positions of the folders whose typed partition values (``columns``) pass ``condition``;
    None when the condition does not fit the columns' types."""
    import pyarrow as pa

    try:
        return passing_rows({column: columns[column] for column in sorted(columns_of(condition))}, condition)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def read_consistently(storage: Storage, plan: ScanPlan, listing: Callable[[], T]) -> T:
    """``listing()`` (which lists the plan's files) run so that it sees one commit's files
    (:meth:`CommitLog.consistent`); an interrupted commit's error names the command that ends it."""
    command = f"lakeio --env {plan.env} recover {plan.dataset}"
    return CommitLog(storage, plan.location, plan.describe()).consistent(listing, command)


# Threads that read the footers of a Parquet dataset's files at once (S3 round trips overlap).
FOOTER_THREADS = 16


def check_parquet_files(describe: str, fragments: list, partition_by: tuple[str, ...] = ()) -> pa.Schema | None:
    """Refuses Parquet files that do not read together: every file's footer is read (in threads;
    the fragments keep them for the scan) and all must have one schema (names and types, in
    order; partition columns, which folders give, left out), since a reader that takes one file's
    schema for all of them silently drops or nulls the others' columns. Returns that schema
    (None for no files).

    Raises:
        SchemaMismatchError: files of different schemas, each schema named with its files.
        StorageError: a file that is no readable Parquet (empty, truncated), named.
    """
    import concurrent.futures

    import pyarrow as pa

    def footer(fragment) -> tuple[tuple[str, str], ...] | None:
        try:
            schema = fragment.physical_schema
        except (pa.ArrowInvalid, OSError) as error:
            if "file size is 0 bytes" in str(error):
                return None  # an empty file holds no rows (Spark skips it): no schema to disagree
            if isinstance(error, OSError) and vanished(error):
                raise StorageError(f"{describe}: file {fragment.path} went while the dataset was read (a write "
                                   "replaced it): read it again") from error
            raise StorageError(f"{describe}: file {fragment.path} is not a readable Parquet file "
                               f"({type(error).__name__}: {error})") from error
        return tuple((field.name, str(field.type)) for field in schema if field.name not in partition_by)

    if not fragments:
        return None
    with concurrent.futures.ThreadPoolExecutor(min(FOOTER_THREADS, len(fragments))) as pool:
        schemas = list(pool.map(footer, fragments))
    kinds: dict[tuple, list[str]] = {}
    for fragment, schema in zip(fragments, schemas, strict=True):
        if schema is not None:
            kinds.setdefault(schema, []).append(fragment.path)
    if len(kinds) > 1:
        def named(schema: tuple, paths: list[str]) -> str:
            shown = ", ".join(sorted(paths)[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            columns = ", ".join(f"{name}: {type_}" for name, type_ in schema)
            return f"{len(paths)} file{'s' if len(paths) > 1 else ''} ({shown}) {'have' if len(paths) > 1 else 'has'} " \
                   f"columns ({columns})"

        groups = sorted(kinds.items(), key=lambda kind: -len(kind[1]))
        raise SchemaMismatchError(f"{describe}: the dataset's files do not share one schema: "
                                  + "; ".join(named(schema, paths) for schema, paths in groups)
                                  + ". Move the files that do not belong away, or rewrite the dataset")
    return next((fragment.physical_schema for fragment, schema in zip(fragments, schemas, strict=True)
                 if schema is not None), None)


def recorded_types(storage: Storage, target: ResolvedDataset) -> ResolvedDataset:
    """``target`` with the types lakeio's last commit to it recorded for its text columns
    (:meth:`CommitLog.recorded_columns`; none for other formats, or data of other tools)."""
    if target.format not in text.TEXT_FORMATS:
        return target
    log = CommitLog(storage, target.location, target.describe())
    try:
        columns = again_if_transient(target.location, log.recorded_columns)
    except Exception as error:
        raise storage_error(f"{target.describe()}: cannot read its commit log {log.marker}", error) from error
    if not columns:
        return target
    return dataclasses.replace(target, recorded_types=tuple((name, logical) for name, logical in columns))


def vanished(error: OSError) -> bool:
    """True when pyarrow's ``error`` says a file is not there (locally or on S3)."""
    said = str(error)
    return isinstance(error, FileNotFoundError) or "NO_SUCH_KEY" in said or "does not exist" in said


def replaced_while_read(plan: ScanPlan, error: OSError) -> StorageError:
    return StorageError(f"{plan.describe()}: writes kept replacing the dataset's files while it was read "
                        f"({error}); read it again")


def write(request: WriteRequest, storage: Storage, incoming: pa.Table, stage: Stage, record: IORecord, *,
          empty: bool) -> None:
    """Writes a plain dataset by the protocol above; ``stage`` is the engine's part.

    Args:
        request: the write.
        storage: the environment's storage (its filesystem and, on S3, the client of the commit's
            conditional puts).
        incoming: the data's first rows (or a table of no rows with its schema): checked against
            the dataset's schema.
        stage: writes the data under the staging folder (see :data:`Stage`).
        record: gets the number of files written.
        empty: the data has no rows: an append or partition overwrite of existing data is a no-op.

    Raises:
        StorageError: data exists and the mode is ``error``, another write committed meanwhile, or
            a step failed (nothing changed).
        SchemaMismatchError: the data's columns or types differ from the dataset's.
    """
    location, filesystem = request.location, storage.filesystem(request.location)
    log = CommitLog(storage, location, request.describe())
    log.recover_abandoned()
    seen = log.last_commit()
    present = exists(filesystem, location)
    if present and request.mode == "error":
        raise request.already_exists()
    try:
        existing = again_if_transient(location, lambda: open_dataset(
            filesystem, location, request.format, bool(request.partition_by), request.options,
            partition_types=request.partition_types)[0]) if present else None
    except OSError as error:  # nothing staged yet: nothing changed
        raise storage_error(f"{request.describe()}: cannot read the data there to check the write against it",
                            error) from error
    columns = text_columns(request, incoming.schema) if request.format in text.TEXT_FORMATS else None
    recorded = log.recorded_columns() if columns is not None and present else None
    if existing is not None and request.options.schema_mode != "overwrite":
        check_schema(request, existing.schema, incoming, recorded)
        if recorded is not None and columns is not None:  # a column all null here keeps its recorded type
            typed = dict(recorded) | dict(columns)
            columns = [[name, typed[name]] for name in incoming.schema.names if name in typed]
    if empty and present and request.mode in ("append", "overwrite_partitions"):
        record.rows, record.files_written = 0, 0  # no rows: no partition to add or replace
        if request.run_receipt is not None:  # a run whose rows all went to its quarantine: still its commit point
            log.put_receipt(request.run_receipt, None)
        return
    token = uuid.uuid4().hex[:12]
    staging = f"{location.path}{STAGING_MARK}{token}.{_writer_tag()}"
    try:
        written, filled = stage(staging, token)
        reach_step("staged")
        with log.held(token, request.run_receipt, columns):
            if request.mode != "append" and log.last_commit() != seen:
                # Its replaced folders were chosen from data another write has replaced since.
                raise StorageError(f"{request.describe()}: another write committed to the dataset while this "
                                   f"{request.mode} was staged; nothing was written: run it again")
            log.sweep(filesystem)
            commit(filesystem, location, staging, replaced_folders(request, existing, filled), token, log)
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
        matching = existing.get_fragments(filter=to_arrow(request.replace_where, existing.schema)) if existing else ()
        return sorted({relative_dir(request.location.path, f.path) for f in matching} | set(filled))
    if request.mode == "overwrite_partitions":
        # Folders of the same values spelt otherwise go too: pyarrow's URI-encoding or older
        # lakeio's (`k=%C3%A9` for `k=é`), digits with leading zeros (`code=007` for `code=7`).
        if existing is None:
            return sorted(filled)
        folders = {relative_dir(request.location.path, f.path) for f in existing.get_fragments()}
        keys = {partitions.partition_key(folder, existing.schema) for folder in filled} - {None}
        return sorted({folder for folder in folders
                       if partitions.respelt(folder) in filled
                       or partitions.partition_key(folder, existing.schema) in keys} | set(filled))
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
    """The hive folders (``year=2013/month=1``) of the partitions present in ``data``, named by
    :func:`lakeio.partitions.folder_path` (as Spark names them)."""
    return sorted(partitions.folder_path(key) for key in partition_keys(data, partition_by))


def relative_dir(root: str, path: str) -> str:
    return posixpath.dirname(path)[len(root):].strip("/")


def check_schema(request: WriteRequest, existing: pa.Schema, sample: pa.Table,
                 recorded: list[list[str]] | None = None) -> None:
    """Refuses a write whose columns or types differ from the dataset's, naming each difference.

    Parquet types must be equal (partition columns excepted: their folders type them); Delta types
    must be of one kind (delta-rs casts int32 to int64, nanoseconds to microseconds). CSV and JSON
    carry no types: a dataset whose last lakeio commit ``recorded`` its columns' logical types
    (:func:`text_columns`) is compared with those, as Parquet is, else the columns are compared as
    the reader will type them, a column read as all-null matching any type.
    ``schema_mode='merge'`` (Delta) accepts new and missing columns.
    """
    import pyarrow as pa

    from lakeio.validation.arrow_backend import arrow_type, logical_type

    have = {f.name: f.type for f in existing}
    inferred: set[str] = set()  # columns the commit left to inference (nested, all null): their names are checked
    if recorded is not None:
        def as_recorded(data_type: pa.DataType) -> pa.DataType:
            logical = logical_type(data_type)
            return data_type if isinstance(logical, str) else arrow_type(logical)

        inferred = set(have) - {name for name, _ in recorded} - set(request.partition_by)
        have = {**have, **declared_types(tuple((name, logical) for name, logical in recorded))}
        incoming = pa.schema([field if field.name in request.partition_by else field.with_type(as_recorded(field.type))
                              for field in sample.schema])
    elif request.format in text.TEXT_FORMATS:
        incoming = as_read_schema(sample, request.format, request.options)
    else:
        incoming = sample.schema
    new = {f.name: f.type for f in incoming}
    same = same_kind if request.format == "delta" else (lambda a, b: a == b)
    problems = [] if request.options.schema_mode == "merge" else \
        [f"missing column {n!r}" for n in have if n not in new] + [f"unknown column {n!r}" for n in new if n not in have]
    problems += [f"column {n!r} is {new[n]}, the dataset has {have[n]}" for n in new
                 if n in have and n not in request.partition_by and n not in inferred and not same(new[n], have[n])
                 and not (pa.types.is_null(new[n]) or pa.types.is_null(have[n]))]
    if problems:
        raise SchemaMismatchError(f"{request.describe()}: cannot {request.mode}: {'; '.join(problems)} "
                                  "(schema_mode='overwrite' with mode='overwrite' replaces the schema"
                                  f"{'; merge adds columns' if request.format == 'delta' else ''})")


def text_columns(request: WriteRequest, schema: pa.Schema) -> list[list[str]]:
    """The (name, logical type) of the data columns of a CSV or JSON write, recorded by its commit
    so that readers type the columns as written (the contract's types still win); partition
    columns are typed by their folders. JSON's nested columns (lists, structs) and all-null
    ones are left to inference (a nested column's integers read back as int64).

    Raises:
        SchemaMismatchError: a column of a type the format does not carry: one with no lakeio
            type (unsigned or half-precision numbers, binary, times of day, durations: they
            would read back as other types), or a nested one in CSV.
    """
    import pyarrow.types as t

    from lakeio.validation.arrow_backend import logical_type

    columns: list[list[str]] = []
    refused = []
    for field in schema:
        if field.name in request.partition_by:
            continue
        logical = logical_type(field.type)
        if not isinstance(logical, str):
            columns.append([field.name, str(logical)])
        elif not (t.is_null(field.type) or request.format == "json" and t.is_nested(field.type)):
            refused.append(f"{field.name!r} ({field.type})")
    if refused:
        raise SchemaMismatchError(
            f"{request.describe()}: {request.format} cannot carry the type of column {', '.join(refused)}: it "
            "would read back as another type; cast it (e.g. to int64, float64, string or timestamp), or write "
            "parquet or delta")
    return columns


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


def commit(filesystem, location: Location, staging: str, replaced: list[str] | None, token: str,
           log: CommitLog) -> None:
    """Moves the staged files into the dataset. ``replaced`` lists the folders (relative to the
    root, ``""`` for the root itself) whose old contents the staged ones replace; None adds files.

    Every move is planned first and written to the commit log (``log``, held by this write), so
    whatever stops the commit, a failure here or a kill of the process, the moves made can be
    undone: here at once, or by the next write or ``lakeio recover`` from the log.

    Locally each replaced folder is swapped with two renames. S3 has no rename: the new objects
    move in first (under names no old object has), then the replaced folders' old objects move
    aside to ``<root>.lakeio-retired-*`` and are deleted once all are aside.
    """
    from pyarrow import fs as pafs

    def exists(path: str) -> bool:
        return filesystem.get_file_info(path).type != pafs.FileType.NotFound

    def files_under(folder: str) -> list[str]:
        if not exists(folder):
            return []
        return [info.path for info in filesystem.get_file_info(pafs.FileSelector(folder, recursive=True))
                if info.type == pafs.FileType.File]

    root, retired = location.path, f"{location.path}{RETIRED_MARK}{token}"
    moves: list[tuple[str, str]] = []  # (from, to), in order
    if location.scheme == "file" and replaced is not None:
        for folder in replaced:
            if exists(_joined(root, folder)):
                moves.append((_joined(root, folder), _joined(retired, folder)))
            if exists(_joined(staging, folder)):
                moves.append((_joined(staging, folder), _joined(root, folder)))
    else:
        staged = files_under(staging)
        moves += [(path, root + path[len(staging):]) for path in staged]
        new = {target for _, target in moves}
        for folder in replaced or ():  # S3: the old objects step aside, where an undo finds them
            moves += [(path, retired + path[len(root):]) for path in files_under(_joined(root, folder))
                      if path not in new]
    log.begin(moves, [staging, retired])
    try:
        for number, (source, target) in enumerate(moves, 1):
            filesystem.create_dir(posixpath.dirname(target), recursive=True)
            filesystem.move(source, target)
            reach_step(f"moved-{number}")
    except BaseException:
        undo(filesystem, moves, location.scheme == "file")  # if this fails too, the log stays for the next write to finish
        log.undone()
        _remove_quietly(filesystem, retired)  # the empty folders the undone moves leave
        raise
    log.committed()
    # Committed: what is left over is litter, not a reason to call the write failed.
    for leftover in (staging, retired):
        _remove_quietly(filesystem, leftover)
    reach_step("cleaned")


def undo(filesystem, moves: list[tuple[str, str]], renames: bool) -> None:
    """Undoes those of ``moves`` that were made, in reverse. A move made left its target and no
    source. With ``renames`` (local files) a move is made or not; on S3 it is a copy then a
    delete to a target no object had, so one stopped half way left both: the copy goes."""
    from pyarrow import fs as pafs

    for source, target in reversed(moves):
        there = filesystem.get_file_info([source, target])
        if there[1].type == pafs.FileType.NotFound:
            continue
        if there[0].type == pafs.FileType.NotFound:
            filesystem.create_dir(posixpath.dirname(source), recursive=True)
            filesystem.move(target, source)
        elif not renames:
            filesystem.delete_file(target)


# Where a commit's files wait, beside the root: <root><mark><token>[.<writer tag>].
STAGING_MARK, RETIRED_MARK = ".lakeio-staging-", ".lakeio-retired-"
# A process's claim on settling a run: <run object><mark><generation>, beside the run's entry.
SETTLING_MARK = ".settling-"
# A commit log or staging folder whose writer is on another machine counts as abandoned this long
# after it started (on this machine: as soon as its process is gone).
ABANDONED_AFTER_S = 600.0
# How long a read waits for a commit in progress, and a write for another's commit, to finish.
WAIT_FOR_COMMIT_S = 60.0

# Called with the name of each step of a commit ("staged", "locked", "moved-<n>", "committed",
# "cleaned", "marked") and of a quarantining run ("run-journaled", "quarantine-committed",
# "dataset-committed", "run-ended"; "run-claimed" when a process takes a dead run's settling,
# "run-settled-elsewhere" each time it waits for another's):
# the seam the kill tests use to stop (or hold) a writer at every step.
step_hook: Callable[[str], None] | None = None


def reach_step(name: str) -> None:
    if step_hook is not None:
        step_hook(name)


def _writer_tag() -> str:
    """Who writes, and since when: this machine (hashed), this process, the time (hex)."""
    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
    return f"{host}-{os.getpid():x}-{int(time.time()):x}"


def _abandoned(host: str, pid: int, started: float) -> bool:
    """True when the writer that left a log or folder so tagged can no longer be writing."""
    if host == hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return time.time() - started > ABANDONED_AFTER_S


def _entry_abandoned(entry: dict) -> bool:
    host, pid, started = entry["writer"].split("-")
    return entry.get("abandoned", False) or _abandoned(host, int(pid, 16), int(started, 16))


class SmallObjects:
    """Small JSON objects beside a dataset (logs, journals, receipts), locally or on S3: each put
    is seen whole or not at all, and may be made only if nothing is there (an exclusive create
    locally, a conditional put on S3)."""

    def __init__(self, storage: Storage, location: Location):
        self.storage, self.location, self.scheme = storage, location, location.scheme

    def read(self, path: str) -> bytes | None:
        if self.scheme == "file":
            try:
                with open(path, "rb") as file:
                    return file.read()
            except FileNotFoundError:
                return None
        bucket, key = path.split("/", 1)
        try:
            return self.storage.s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.storage.s3_client.exceptions.NoSuchKey:
            return None

    def put(self, path: str, body: bytes, *, only_if_absent: bool = False) -> bool:
        """Writes ``body`` at ``path`` at once (readers see all or nothing); False when
        ``only_if_absent`` and something is there."""
        if self.scheme == "file":
            os.makedirs(posixpath.dirname(path), exist_ok=True)
            if only_if_absent:
                try:
                    with open(path, "xb") as file:
                        file.write(body)
                    return True
                except FileExistsError:
                    return False
            partial = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
            with open(partial, "wb") as file:
                file.write(body)
            os.replace(partial, path)
            return True
        from botocore.exceptions import ClientError

        bucket, key = path.split("/", 1)
        try:
            self.storage.s3_client.put_object(Bucket=bucket, Key=key, Body=body,
                                              **({"IfNoneMatch": "*"} if only_if_absent else {}))
        except ClientError as error:
            if only_if_absent and error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise
        return True

    def delete(self, path: str) -> None:
        if self.scheme == "file":
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            return
        bucket, key = path.split("/", 1)
        self.storage.s3_client.delete_object(Bucket=bucket, Key=key)

    def names(self, folder: str) -> list[str]:
        """The names of the objects directly in ``folder`` ([] when there is none)."""
        from pyarrow import fs as pafs

        selector = pafs.FileSelector(folder, allow_not_found=True)
        return sorted(info.base_name for info in self.storage.filesystem(self.location).get_file_info(selector)
                      if info.type == pafs.FileType.File)


class CommitLog:
    """The commit log of one plain dataset: two small objects beside its root.

    ``<root>.lakeio-commit`` exists while a commit is made: created only if absent (a conditional
    put on S3, an exclusive create locally), it is the lock that serialises writers and the
    journal of the commit's planned moves. ``<root>.lakeio-committed`` names the last commit: a
    reader that sees the same one, and no commit in progress, before and after listing the files
    has listed one commit's files (:meth:`consistent`).
    """

    def __init__(self, storage: Storage, location: Location, describe: str):
        self.storage, self.location, self.describe = storage, location, describe
        # Beside the root, not in it: a local commit may move the root itself aside.
        self.journal, self.marker = f"{location.path}.lakeio-commit", f"{location.path}.lakeio-committed"
        self.objects = SmallObjects(storage, location)
        self._held: dict | None = None
        self._moving = False  # moves made and not undone: the log must outlive this process's commit

    def in_progress(self) -> dict | None:
        """The journal of the commit in progress (or interrupted), or None."""
        body = self.objects.read(self.journal)
        return None if body is None else json.loads(body)

    def last_commit(self) -> str | None:
        """The token of the last commit (None before lakeio's first)."""
        marker = self._last_marker()
        return None if marker is None else marker["token"]

    def recorded_columns(self) -> list[list[str]] | None:
        """The (name, logical type) of the data columns of a text dataset as its last commit wrote
        them (:func:`text_columns`); None when no lakeio commit recorded them (data written by
        another tool, or by a lakeio before it recorded them)."""
        marker = self._last_marker()
        return None if marker is None else marker.get("columns")

    def _last_marker(self) -> dict | None:
        body = self.objects.read(self.marker)
        return None if body is None else json.loads(body)

    # -- writers ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def held(self, token: str, receipt: str | None = None, columns: list[list[str]] | None = None) -> Iterator[None]:
        """The lock: waits up to :data:`WAIT_FOR_COMMIT_S` for another write's commit (rolling
        back one whose writer is gone), then holds the log until the commit is done. ``receipt``:
        where the commit, made, puts a receipt (the commit point of a quarantining run, :class:`RunJournal`);
        ``columns``: the text columns' types the commit, made, records (:meth:`recorded_columns`)."""
        entry = {"token": token, "writer": _writer_tag(), "started": time.time(), "state": "locked",
                 "dataset": self.describe, "receipt": receipt, "columns": columns}
        deadline = time.monotonic() + WAIT_FOR_COMMIT_S
        while not self.objects.put(self.journal, json.dumps(entry).encode(), only_if_absent=True):
            if not self.recover_abandoned() and time.monotonic() > deadline:
                raise StorageError(f"{self.describe}: another write is committing to the dataset (its log "
                                   f"{self.journal} is {WAIT_FOR_COMMIT_S:.0f} s old); nothing was written")
            time.sleep(0.05)
        self._held = entry
        reach_step("locked")
        try:
            yield
            if entry.get("state") == "committed":
                self.objects.put(self.marker, json.dumps(_marker(token, columns)).encode())
                reach_step("marked")
        finally:
            self._held = None
            if self._moving:  # a failed undo: whoever comes next rolls the commit back
                self.objects.put(self.journal, json.dumps({**entry, "abandoned": True}).encode())
            else:
                self.objects.delete(self.journal)

    def begin(self, moves: list[tuple[str, str]], leftovers: list[str]) -> None:
        """Journals the planned moves before the first is made."""
        assert self._held is not None
        self._held.update(state="moving", moves=moves, leftovers=leftovers)
        self.objects.put(self.journal, json.dumps(self._held).encode())
        self._moving = True

    def undone(self) -> None:
        """Notes that the moves made were undone: the dataset is as it was."""
        self._moving = False

    def committed(self) -> None:
        """Journals that every move is made: from now on the commit is only completed, never undone."""
        assert self._held is not None
        self._held["state"] = "committed"
        self.objects.put(self.journal, json.dumps(self._held).encode())
        self._moving = False
        reach_step("committed")
        self._receipt(self._held)

    def _receipt(self, entry: dict) -> None:
        """A made commit's receipt, put before its journal goes (a writer killed in between leaves
        the journal, whose recovery puts it): once no journal is left, it exists iff the commit was made."""
        if entry.get("receipt") is not None:
            self.put_receipt(entry["receipt"], entry["token"])

    def put_receipt(self, receipt: str, token: str | None) -> None:
        """Puts the receipt of commit ``token`` at ``receipt`` (None: a write of no rows, which
        changes no file and is made at once)."""
        self.objects.put(receipt, json.dumps({"token": token, "dataset": self.describe}).encode())

    def sweep(self, filesystem) -> None:
        """Deletes the staging and retired folders beside the root that no live write owns (run
        holding the lock: a retired folder is then always litter)."""
        from pyarrow import fs as pafs

        parent, name = posixpath.split(self.location.path)
        if filesystem.get_file_info(parent).type != pafs.FileType.Directory:
            return
        for info in filesystem.get_file_info(pafs.FileSelector(parent)):
            base = posixpath.basename(info.path)
            if base.startswith(name + RETIRED_MARK) or \
                    (base.startswith(name + STAGING_MARK) and self._staging_abandoned(base)):
                _remove_quietly(filesystem, info.path)

    @staticmethod
    def _staging_abandoned(name: str) -> bool:
        tag = name.rsplit(STAGING_MARK, 1)[1].partition(".")[2].split("-")
        if len(tag) != 3:
            return True  # no writer tag: left by an older lakeio
        return _abandoned(tag[0], int(tag[1], 16), int(tag[2], 16))

    def recover_abandoned(self) -> bool:
        """Finishes a commit whose writer is gone: one that had made all its moves is completed,
        one that had not is rolled back; either way its leftovers go. False if there is none."""
        entry = self.in_progress()
        if entry is None or not _entry_abandoned(entry):
            return False
        filesystem = self.storage.filesystem(self.location)
        if entry["state"] == "moving":
            undo(filesystem, [tuple(move) for move in entry["moves"]], self.location.scheme == "file")
        elif entry["state"] == "committed":
            self._receipt(entry)
        for leftover in entry.get("leftovers", ()):
            _remove_quietly(filesystem, leftover)
        if exists(filesystem, self.location):  # a rolled back first write leaves no root
            # A completed commit's columns, or (rolled back) the last commit's.
            columns = entry.get("columns") if entry["state"] == "committed" else self.recorded_columns()
            self.objects.put(self.marker, json.dumps({**_marker(entry["token"], columns),
                                                      "recovered": entry["state"]}).encode())
        self.objects.delete(self.journal)
        logging.getLogger(__name__).warning("lakeio: %s: %s the commit %s its writer left unfinished",
                                            self.describe, "completed" if entry["state"] == "committed"
                                            else "rolled back", entry["token"])
        return True

    # -- readers ------------------------------------------------------------------------------

    def consistent(self, listing: Callable[[], T], recover_command: str) -> T:
        """``listing()`` (which lists the dataset's files) run until it ran within one commit's
        data: no commit in progress and the same last commit before and after it. Waits for a
        commit in progress up to :data:`WAIT_FOR_COMMIT_S`.

        Raises:
            StorageError: a commit's writer is gone before finishing it (``recover_command``
                finishes it), or commits kept the dataset changing for the whole wait.
        """
        deadline = time.monotonic() + WAIT_FOR_COMMIT_S
        while True:
            before = self._idle(recover_command)
            result = listing()
            if before is not None and self._idle(recover_command) == before:
                return result
            if time.monotonic() > deadline:
                raise StorageError(f"{self.describe}: the dataset kept changing for {WAIT_FOR_COMMIT_S:.0f} s "
                                   "of writes committing while it was read")
            time.sleep(0.05)

    def _idle(self, recover_command: str) -> tuple[str | None, str | None] | None:
        """(the last commit, an abandoned log's token) when the files are one commit's: no commit
        in progress, or one whose writer is gone before its first move or after its last; None
        while a live writer commits."""
        marker = self.last_commit()
        entry = self.in_progress()
        if entry is None:
            return marker, None
        if not _entry_abandoned(entry):
            return None
        if entry["state"] == "moving":
            raise StorageError(f"{self.describe}: a write's commit ({entry['token']}) was interrupted half way; "
                               f"`{recover_command}` (or the next write) rolls it back")
        return marker, entry["token"]  # its moves all made, or none: the data is whole


def _marker(token: str, columns: list[list[str]] | None) -> dict:
    """The body of a commit marker: the commit's token and time, and the text columns it recorded."""
    return {"token": token, "at": time.time(), **({} if columns is None else {"columns": columns})}


def _remove_quietly(filesystem, folder: str) -> None:
    """Deletes ``folder`` if it is there; a failure is logged (the data is already right)."""
    from pyarrow import fs as pafs

    try:
        if filesystem.get_file_info(folder).type != pafs.FileType.NotFound:
            filesystem.delete_dir(folder)
    except Exception as error:  # noqa: BLE001 - any failure here leaves litter only
        logging.getLogger(__name__).warning("lakeio: could not remove %s (%s); it holds no live data", folder, error)


def run_object(run: str) -> str:
    """The object name of run ``run`` (an idempotency key may hold any character)."""
    return hashlib.sha1(run.encode()).hexdigest()[:24]


class RunJournal:
    """The quarantining runs in flight beside one quarantine dataset: an object per run in
    ``<quarantine root>.lakeio-pending-runs/``, put before the run's quarantine commit and deleted
    once the run is settled. The run's commit point is its dataset's commit (a Delta commit with
    the run's ``txn``, or a plain-file commit that puts the run's receipt, :meth:`receipt`, in the
    same folder); the quarantine commit comes before it, so a run that reached its commit point
    has both. A run whose writer is gone with its object still there is settled
    by whoever comes next (``Catalog``): rolled back (its quarantine rows removed) when its
    dataset's commit was not made, else only forgotten.
    """

    def __init__(self, storage: Storage, location: Location):
        self.objects = SmallObjects(storage, location)
        self.folder = f"{location.path}.lakeio-pending-runs"
        self._claimed: str | None = None  # this process's claim on settling a run (:meth:`take`)

    def begin(self, run: str, dataset: Location, format: str, app_id: str | None) -> dict:
        """Journals run ``run`` of the dataset at ``dataset`` before anything of it is committed;
        ``app_id``: the Delta ``txn`` app id its dataset's commit carries. Returns its entry."""
        entry = {"run": run, "writer": _writer_tag(), "started": time.time(),
                 "dataset": {"scheme": dataset.scheme, "path": dataset.path, "format": format, "app_id": app_id}}
        self.objects.put(f"{self.folder}/{run_object(run)}.json", json.dumps(entry).encode())
        reach_step("run-journaled")
        return entry

    def receipt(self, run: str) -> str:
        """Where the plain-file commit of run ``run``'s dataset puts its receipt."""
        return f"{self.folder}/{run_object(run)}.receipt"

    def committed(self, run: str) -> bool:
        """True when run ``run``'s plain-file dataset commit put its receipt (ask once that
        dataset's commit log has no commit of a writer that is gone)."""
        return self.objects.read(self.receipt(run)) is not None

    def abandon(self, entry: dict) -> None:
        """Marks a run whose commits failed: whoever comes next settles it (if this writer cannot)."""
        self.objects.put(f"{self.folder}/{run_object(entry['run'])}.json",
                         json.dumps({**entry, "abandoned": True}).encode())

    def end(self, run: str) -> None:
        """Forgets a settled run: its entry, then its receipt and settling claims (the other way
        round, a kill in between would leave an entry whose made commit looks unmade)."""
        self.objects.delete(f"{self.folder}/{run_object(run)}.json")
        reach_step("run-ended")
        self.objects.delete(self.receipt(run))
        for name in self.objects.names(self.folder):
            if name.startswith(f"{run_object(run)}{SETTLING_MARK}"):
                self.objects.delete(f"{self.folder}/{name}")

    def take(self, run: str) -> bool:
        """Takes the settling of run ``run`` (its writer gone) for this process, so that of two
        processes settling it at once exactly one does: True when this one must settle it, False
        once another has. A claim is an object put only if absent; a claim whose process died is
        passed over by the next (``.settling-<n+1>``). Waits up to :data:`WAIT_FOR_COMMIT_S` for
        another's claim to end.

        Raises:
            StorageError: another live process has been settling the run for the whole wait.
        """
        entry, claim = f"{self.folder}/{run_object(run)}.json", {"writer": _writer_tag(), "started": time.time()}
        deadline = time.monotonic() + WAIT_FOR_COMMIT_S
        while self.objects.read(entry) is not None:
            for generation in itertools.count():
                path = f"{self.folder}/{run_object(run)}{SETTLING_MARK}{generation}"
                if self.objects.put(path, json.dumps(claim).encode(), only_if_absent=True):
                    self._claimed = path
                    if self.objects.read(entry) is None:  # settled and forgotten just before the claim
                        self.release()
                        return False
                    reach_step("run-claimed")
                    return True
                held = self.objects.read(path)
                if held is None:
                    break  # its settler is forgetting the run: look again
                if not _entry_abandoned(json.loads(held)):
                    reach_step("run-settled-elsewhere")  # a live process settles it: wait for it
                    break
            if time.monotonic() > deadline:
                raise StorageError(f"{self.folder}: another process has been settling the quarantining run {run!r} "
                                   f"for {WAIT_FOR_COMMIT_S:.0f} s")
            time.sleep(0.05)
        return False

    def release(self) -> None:
        """Gives up this process's claim (its settling failed: the next operation settles the run)."""
        if self._claimed is not None:
            self.objects.delete(self._claimed)
            self._claimed = None

    def pending(self) -> list[dict]:
        """The runs in flight (their writers live or gone); deletes the receipts and claims of runs
        already forgotten (left by a process killed between the deletes of :meth:`end`)."""
        names = self.objects.names(self.folder)
        for name in names:
            run, _, tail = name.partition(".")
            if (tail == "receipt" or tail.startswith(SETTLING_MARK[1:])) and f"{run}.json" not in names:
                self.objects.delete(f"{self.folder}/{name}")
        entries = (self.objects.read(f"{self.folder}/{name}") for name in names if name.endswith(".json"))
        return [json.loads(body) for body in entries if body is not None]

    @staticmethod
    def abandoned(entry: dict) -> bool:
        """True when run ``entry``'s writer can no longer settle it."""
        return _entry_abandoned(entry)


def _joined(root: str, folder: str) -> str:
    return posixpath.join(root, folder) if folder else root

"""The embedded engine: pyarrow.dataset for Parquet, deltalake (delta-rs) for Delta. No JVM."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Iterator

from lakeio.engines import WriteRequest, to_arrow_data
from lakeio.errors import InvalidArgumentError, SchemaMismatchError, StorageError
from lakeio.metrics import IORecord
from lakeio.predicate import columns_of, to_arrow, to_sql
from lakeio.storage import Storage

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakeio.frame import ScanPlan


class ArrowEngine:
    name = "arrow"

    def __init__(self, storage: Storage):
        self.storage = storage

    def exists(self, location, format: str) -> bool:
        """True when ``location`` holds a table of ``format`` (for Parquet: anything at all)."""
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
                from deltalake import DeltaTable

                return DeltaTable(location.uri, storage_options=self.storage.delta_options(location)).to_pyarrow_dataset()
            return self._parquet_dataset(location, bool(plan.partition_by))
        except Exception as error:
            raise _storage_error(f"dataset {plan.dataset!r} [{plan.env}]: cannot open {plan.format} data at {location.uri}", error)

    def _parquet_dataset(self, location, partitioned: bool) -> "ds.Dataset":
        import pyarrow.dataset as ds

        return ds.dataset(location.path, filesystem=self.storage.filesystem(location), format="parquet",
                          partitioning="hive" if partitioned else None)

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
                raise
            raise InvalidArgumentError(
                f"dataset {plan.dataset!r}: filter {to_sql(plan.predicate)} does not fit the column types "
                f"({', '.join(f'{f.name}: {f.type}' for f in dataset.schema if f.name in columns_of(plan.predicate))}): {error}"
            ) from error

    def read_arrow(self, plan: "ScanPlan", record: IORecord) -> "pa.Table":
        with self._scanning(plan, record) as scanner:
            return scanner.to_table()

    def read_batches(self, plan: "ScanPlan") -> Iterator["pa.RecordBatch"]:
        """The read as a stream of record batches: one pass over data larger than memory."""
        with self._scanning(plan) as scanner:
            yield from scanner.to_batches()

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

    # -- writes -------------------------------------------------------------------------------

    def write(self, request: WriteRequest, record: IORecord) -> None:
        data = to_arrow_data(request.data)
        request.check_partition_columns(data.schema.names)
        if request.format == "delta":
            self._write_delta(request, data, record)
        else:
            self._write_parquet(request, data, record)
        if hasattr(data, "num_rows"):
            record.rows, record.bytes = data.num_rows, data.nbytes

    def _write_delta(self, request: WriteRequest, data, record: IORecord) -> None:
        from deltalake import DeltaTable, write_deltalake
        from deltalake.exceptions import SchemaMismatchError as DeltaSchemaMismatch

        location = request.location
        options = self.storage.delta_options(location)
        try:
            write_deltalake(location.uri, data, mode=request.mode, storage_options=options,
                            partition_by=list(request.partition_by) or None)
        except DeltaSchemaMismatch as error:
            raise SchemaMismatchError(f"{request.describe()}: {error}") from error
        except Exception as error:
            if "cast" in str(error).lower():  # delta-rs reports a column of the wrong type as a cast failure
                raise SchemaMismatchError(f"{request.describe()}: data does not match the table's schema: {error}") from error
            if request.mode == "error" and "already exists" in str(error).lower():
                raise request.already_exists() from error
            raise _storage_error(f"{request.describe()}: Delta write failed", error)
        metrics = DeltaTable(location.uri, storage_options=options).history(1)[0].get("operationMetrics", {})
        record.files_written = metrics.get("num_added_files")

    def _write_parquet(self, request: WriteRequest, data, record: IORecord) -> None:
        import pyarrow.dataset as ds
        from pyarrow import fs as pafs

        location = request.location
        filesystem = self.storage.filesystem(location)
        exists = filesystem.get_file_info(location.path).type != pafs.FileType.NotFound
        if exists and request.mode == "error":
            raise request.already_exists()
        if exists and request.mode == "append":
            existing = self._parquet_dataset(location, bool(request.partition_by)).schema
            _check_append_schema(request, existing, data.schema)
        # Overwrite writes beside the old data first, so a failed write loses nothing.
        token = uuid.uuid4().hex[:12]
        swap = exists and request.mode == "overwrite"
        target = f"{location.path}.lakeio-staging-{token}" if swap else location.path
        written: list[str] = []
        ds.write_dataset(
            data, target, filesystem=filesystem, format="parquet",
            basename_template=f"part-{token}-{{i}}.parquet",
            partitioning=list(request.partition_by) or None, partitioning_flavor="hive",
            existing_data_behavior="overwrite_or_ignore",
            file_visitor=lambda f: written.append(f.path),
        )
        if swap:
            _swap_in(filesystem, location, target, token)
        record.files_written = len(written)


def _check_append_schema(request: WriteRequest, existing: "pa.Schema", incoming: "pa.Schema") -> None:
    """Appends must match the existing columns and types, as Delta enforces; Parquet would not."""
    have = {f.name: f.type for f in existing}
    new = {f.name: f.type for f in incoming}
    problems = [f"missing column {n!r}" for n in have if n not in new] + \
               [f"unknown column {n!r}" for n in new if n not in have] + \
               [f"column {n!r} is {new[n]}, the dataset has {have[n]}" for n in new
                if n in have and n not in request.partition_by and new[n] != have[n]]
    if problems:
        raise SchemaMismatchError(f"{request.describe()}: cannot append: {'; '.join(problems)}")


def _swap_in(filesystem, location, staging: str, token: str) -> None:
    """Replaces the dataset at ``location`` with the staged one. Locally: two renames, so readers
    see the old or the new data. S3 has no rename: old objects go, then staged objects move in."""
    from pyarrow import fs as pafs

    root = location.path
    if location.scheme == "file":
        retired = f"{root}.lakeio-retired-{token}"
        filesystem.move(root, retired)
        filesystem.move(staging, root)
        filesystem.delete_dir(retired)
        return
    filesystem.delete_dir_contents(root)
    for info in filesystem.get_file_info(pafs.FileSelector(staging, recursive=True)):
        if info.type == pafs.FileType.File:
            filesystem.move(info.path, root + info.path[len(staging):])
    filesystem.delete_dir(staging)


def _storage_error(message: str, error: Exception) -> Exception:
    if isinstance(error, (InvalidArgumentError, StorageError, SchemaMismatchError)):
        return error
    return StorageError(f"{message}: {type(error).__name__}: {error}")

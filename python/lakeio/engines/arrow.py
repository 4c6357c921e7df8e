"""The embedded engine: pyarrow.dataset for Parquet, deltalake (delta-rs) for Delta. No JVM."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from lakeio.engines import WriteRequest, to_arrow_data
from lakeio.errors import InvalidArgumentError, SchemaMismatchError, StorageError
from lakeio.metrics import IORecord
from lakeio.predicate import to_arrow
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
        import pyarrow.dataset as ds

        location = plan.location
        try:
            if plan.format == "delta":
                from deltalake import DeltaTable

                return DeltaTable(location.uri, storage_options=self.storage.delta_options(location)).to_pyarrow_dataset()
            return ds.dataset(location.path, filesystem=self.storage.filesystem(location), format="parquet",
                              partitioning="hive" if plan.partition_by else None)
        except Exception as error:
            raise _storage_error(f"dataset {plan.dataset!r} [{plan.env}]: cannot open {plan.format} data at {location.uri}", error)

    def _scan(self, plan: "ScanPlan", record: IORecord | None = None) -> "ds.Scanner":
        dataset = self._dataset(plan)
        plan.check_columns(dataset.schema.names)
        expression = to_arrow(plan.predicate) if plan.predicate is not None else None
        if record is not None:
            record.files_total = sum(1 for _ in dataset.get_fragments())
            record.files_scanned = sum(1 for _ in dataset.get_fragments(filter=expression))
        return dataset.scanner(columns=list(plan.columns) if plan.columns else None, filter=expression)

    def read_arrow(self, plan: "ScanPlan", record: IORecord) -> "pa.Table":
        return self._scan(plan, record).to_table()

    def count(self, plan: "ScanPlan", record: IORecord) -> int:
        return self._scan(plan, record).count_rows()

    def schema(self, plan: "ScanPlan") -> "pa.Schema":
        return self._scan(plan).projected_schema

    def file_counts(self, plan: "ScanPlan") -> tuple[int, int]:
        record = plan.record("explain", self.name, "")
        self._scan(plan, record)
        return record.files_scanned, record.files_total

    # -- writes -------------------------------------------------------------------------------

    def write(self, request: WriteRequest, record: IORecord) -> None:
        data = to_arrow_data(request.data)
        missing = [c for c in request.partition_by if c not in data.schema.names]
        if missing:
            raise SchemaMismatchError(f"{request.describe()}: data has no partition column(s) {missing}")
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
            if request.mode == "error" and "already exists" in str(error).lower():
                raise StorageError(f"{request.describe()} already exists; write with mode='append' or 'overwrite'") from error
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
            raise StorageError(f"{request.describe()} already exists; write with mode='append' or 'overwrite'")
        # Overwrite writes beside the old files first, so a failed write loses nothing.
        token = uuid.uuid4().hex[:12]
        target = f"{location.path}/_lakeio_staging_{token}" if exists and request.mode == "overwrite" else location.path
        written: list[str] = []
        ds.write_dataset(
            data, target, filesystem=filesystem, format="parquet",
            basename_template=f"part-{token}-{{i}}.parquet",
            partitioning=list(request.partition_by) or None, partitioning_flavor="hive",
            existing_data_behavior="overwrite_or_ignore",
            file_visitor=lambda f: written.append(f.path),
        )
        if target != location.path:
            _replace_contents(filesystem, location.path, target)
        record.files_written = len(written)


def _replace_contents(filesystem, root: str, staging: str) -> None:
    """Deletes everything under ``root`` except ``staging``, then moves ``staging``'s files up."""
    from pyarrow import fs as pafs

    for info in filesystem.get_file_info(pafs.FileSelector(root)):
        if info.path.rstrip("/") != staging:
            (filesystem.delete_dir if info.type == pafs.FileType.Directory else filesystem.delete_file)(info.path)
    for info in filesystem.get_file_info(pafs.FileSelector(staging, recursive=True)):
        if info.type == pafs.FileType.File:
            filesystem.move(info.path, root + info.path[len(staging):])
    filesystem.delete_dir(staging)


def _storage_error(message: str, error: Exception) -> Exception:
    if isinstance(error, (InvalidArgumentError, StorageError, SchemaMismatchError)):
        return error
    return StorageError(f"{message}: {type(error).__name__}: {error}")

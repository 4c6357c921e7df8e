"""Arrow-engine writes on local files: every format x layout x write mode, every refused write and
every failed write losing nothing, schema evolution, and target file size.

The datasets are those of test_arrow_engine: ``pq``/``pqp`` (Parquet), ``dl``/``dlp`` (Delta),
``cs``/``csp`` (CSV), ``js``/``jsp`` (JSON lines); the ``p`` ones are partitioned by year and month.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lakeio import Catalog, InvalidArgumentError, LakeioError, SchemaMismatchError, StorageError
from lakeio.storage import Storage

from .test_arrow_engine import DATASETS, FORMAT, PARTITIONED, RESOURCES, assert_same_rows, flights

DELTA = tuple(n for n in DATASETS if FORMAT[n] == "delta")
PLAIN = tuple(n for n in DATASETS if FORMAT[n] != "delta")
UNPARTITIONED = tuple(n for n in DATASETS if n not in PARTITIONED)
LEFTOVER_MARKS = (".lakeio-staging-", ".lakeio-retired-")


@pytest.fixture
def lake(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", RESOURCES)
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)


# -- helpers ----------------------------------------------------------------------------------------

def rows(ids, partitions, carrier=None, seed: int = 1) -> pd.DataFrame:
    """flights(ids) with (year, month) taken in turn from ``partitions`` (and one carrier, if given)."""
    frame = flights(ids, seed=seed)
    frame["year"] = [partitions[i % len(partitions)][0] for i in range(len(frame))]
    frame["month"] = [partitions[i % len(partitions)][1] for i in range(len(frame))]
    if carrier is not None:
        frame["carrier"] = carrier
    return frame


def in_partitions(frame: pd.DataFrame, partitions) -> pd.Series:
    keys = set(partitions)
    return pd.Series([(y, m) in keys for y, m in zip(frame.year, frame.month)], index=frame.index)


def leftovers(tmp_path: Path) -> list[str]:
    """Staging or retired folders lakeio left anywhere under the data folder."""
    data = tmp_path / "data"
    if not data.exists():
        return []
    return sorted(str(p.relative_to(data)) for p in data.rglob("*") if any(m in p.name for m in LEFTOVER_MARKS))


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (relative path -> size, mtime in ns)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def data_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "_delta_log" not in p.parts)


class Snapshot:
    """What a dataset holds, to prove that a refused or failed write changed nothing."""

    def __init__(self, lake: Catalog, tmp_path: Path, name: str):
        self.lake, self.tmp_path, self.name = lake, tmp_path, name
        self.root = Path(lake.location(name).path)
        self.rows = lake.read(name).to_pandas()
        self.files = files(self.root)
        self.version = DeltaTable(str(self.root)).version() if FORMAT[name] == "delta" else None

    def assert_unchanged(self) -> None:
        assert_same_rows(self.lake.read(self.name).to_pandas(), self.rows)
        if self.version is not None:  # a refused Delta write commits nothing
            assert DeltaTable(str(self.root)).version() == self.version
        else:  # a refused plain-file write does not touch a single file
            assert files(self.root) == self.files
        assert leftovers(self.tmp_path) == []


def written(lake: Catalog, name: str) -> Snapshot:
    """Writes flights(1..16) to ``name`` and returns its snapshot."""
    lake.write(name, flights())
    return Snapshot(lake, Path(lake.location(name).path).parents[1], name)


# -- the write-mode matrix -------------------------------------------------------------------------

OLD = flights()  # ids 1..16 in the six partitions (2013|2014) x (1|2|3)
# overwrite_partitions: two present partitions are replaced, (2015, 2) is new, the other four stay.
OWP_NEW = rows(range(101, 105), [(2013, 1), (2013, 1), (2014, 3), (2015, 2)])
# replace_where month IN (1, 2): the data holds month 1 only, so both month-2 partitions are emptied.
RW_PREDICATE, RW_NEW = "month IN (1, 2)", rows(range(201, 205), [(2013, 1), (2014, 1)])
# Delta replace_where on a non-partition column: the 'AA' rows are replaced, null carriers stay.
RW_ROWS_PREDICATE, RW_ROWS_NEW = "carrier = 'AA'", rows(range(301, 304), [(2013, 2), (2015, 1)], carrier="AA")

MATRIX = (
    [("error", n) for n in DATASETS]
    + [("append", n) for n in DATASETS]
    + [("overwrite", n) for n in DATASETS]
    + [("overwrite_partitions", n) for n in DATASETS if n in PARTITIONED]
    + [("replace_where_partitions", n) for n in DATASETS if n in PARTITIONED or FORMAT[n] == "delta"]
    + [("replace_where_rows", n) for n in DELTA]
)


def matrix_case(case: str):
    """(existing rows, write arguments, expected rows afterwards, partitions the write may touch)."""
    new = flights(range(101, 111), seed=2)
    if case == "error":
        return None, dict(data=new, mode="error"), new, None
    if case == "append":
        return OLD, dict(data=new, mode="append"), pd.concat([OLD, new]), None
    if case == "overwrite":
        return OLD, dict(data=new, mode="overwrite"), new, None
    if case == "overwrite_partitions":
        touched = {(2013, 1), (2014, 3), (2015, 2)}
        expected = pd.concat([OLD[~in_partitions(OLD, touched)], OWP_NEW])
        return OLD, dict(data=OWP_NEW, mode="overwrite_partitions"), expected, touched
    if case == "replace_where_partitions":
        touched = {(y, m) for y in (2013, 2014) for m in (1, 2)}
        expected = pd.concat([OLD[~OLD.month.isin([1, 2])], RW_NEW])
        return OLD, dict(data=RW_NEW, mode="overwrite", replace_where=RW_PREDICATE), expected, touched
    assert case == "replace_where_rows"
    expected = pd.concat([OLD[OLD.carrier != "AA"], RW_ROWS_NEW])  # None != "AA": null carriers stay
    return OLD, dict(data=RW_ROWS_NEW, mode="overwrite", replace_where=RW_ROWS_PREDICATE), expected, None


def partition_of(relative: str) -> tuple[int, int] | None:
    parts = dict(p.split("=", 1) for p in Path(relative).parts if "=" in p)
    return (int(parts["year"]), int(parts["month"])) if {"year", "month"} <= set(parts) else None


@pytest.mark.parametrize("case, name", MATRIX, ids=[f"{c}-{n}" for c, n in MATRIX])
def test_write_mode_matrix(lake, tmp_path, io_records, case, name):
    old, arguments, expected, touched = matrix_case(case)
    root = Path(lake.location(name).path)
    if old is not None:
        lake.write(name, old)
    before = files(root) if old is not None else {}
    delta_before = set(DeltaTable(str(root)).file_uris()) if old is not None and FORMAT[name] == "delta" else set()
    io_records.clear()

    record = lake.write(name, **arguments)

    assert_same_rows(lake.read(name).to_pandas(), expected)
    assert lake.read(name).count() == len(expected)
    assert (record.mode, record.rows, record.format) == (arguments["mode"], len(arguments["data"]), FORMAT[name])
    assert record.files_written >= 1
    assert [r["mode"] for r in io_records("write", name)] == [arguments["mode"]]
    assert leftovers(tmp_path) == []
    if touched is not None and name in PARTITIONED:  # partitions outside the write are untouched: the very same files
        if FORMAT[name] == "delta":
            kept = {f for f in delta_before if partition_of(f) not in touched}
            assert kept and kept <= set(DeltaTable(str(root)).file_uris())
        else:
            kept = {f: stat for f, stat in before.items() if partition_of(f) not in touched}
            after = files(root)
            assert kept and {f: after.get(f) for f in kept} == kept
    if case == "replace_where_partitions" and name in PARTITIONED:  # matching but absent: emptied
        assert lake.read(name, where="month = 2").count() == 0


EMPTY = [("append", n) for n in DATASETS] + [("overwrite", n) for n in ("pq", "dl", "csp", "js")] \
    + [("overwrite_partitions", n) for n in ("pqp", "jsp")]


@pytest.mark.parametrize("mode, name", EMPTY, ids=[f"{m}-{n}" for m, n in EMPTY])
def test_writing_no_rows(lake, tmp_path, mode, name):
    # A filter that matched nothing upstream must not fail the pipeline nor break the dataset:
    # appending or replacing the partitions of no rows changes nothing; overwriting empties it.
    before = written(lake, name)
    record = lake.write(name, OLD.iloc[:0], mode=mode)
    assert record.rows == 0
    if mode == "overwrite":
        assert lake.read(name).count() == 0
        assert leftovers(tmp_path) == []
    else:
        before.assert_unchanged()


@pytest.mark.parametrize("name", [n for n in DATASETS if n in PARTITIONED])
def test_replace_where_can_add_a_partition_the_predicate_names(lake, name):
    lake.write(name, OLD)
    new = rows(range(401, 404), [(2016, 1)])
    lake.write(name, new, mode="overwrite", replace_where="year = 2016")
    assert_same_rows(lake.read(name).to_pandas(), pd.concat([OLD, new]))


@pytest.mark.parametrize("format", ["parquet", "delta", "csv", "json"])
def test_partition_values_that_need_encoding_and_null_partitions(tmp_path, write_yaml, format):
    write_yaml("conf/by_carrier.yaml", f"by_carrier: {{format: {format}, partition_by: [carrier], "
                                       "environments: {local: {uri: data/by_carrier}}}")
    lake = Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)
    old = pd.DataFrame({"id": [1, 2, 3, 4, 5], "carrier": ["A B", "x/y", None, "AA", "é"], "v": [1.0, 2, 3, 4, 5]})
    new = pd.DataFrame({"id": [11, 12, 13], "carrier": ["A B", None, "x/y"], "v": [10.0, 20, 30]})
    lake.write("by_carrier", old)
    assert len(data_files(tmp_path / "data" / "by_carrier")) == 5  # "x/y" is one folder, not two

    def ids():
        return sorted(lake.read("by_carrier").to_pandas().id)

    lake.write("by_carrier", new, mode="overwrite_partitions")
    assert ids() == [4, 5, 11, 12, 13]
    lake.write("by_carrier", new.iloc[:1].assign(id=99), mode="overwrite", replace_where="carrier = 'A B'")
    assert ids() == [4, 5, 12, 13, 99]
    lake.write("by_carrier", new.iloc[1:2].assign(id=98), mode="overwrite", replace_where="carrier IS NULL")
    assert ids() == [4, 5, 13, 98, 99]
    assert lake.read("by_carrier", where="carrier = 'x/y'").count() == 1


STREAMED = [("append", n) for n in DATASETS] + [("overwrite", "cs")]


@pytest.mark.parametrize("mode, name", STREAMED, ids=[f"{m}-{n}" for m, n in STREAMED])
def test_streamed_writes_give_the_same_rows(lake, name, mode):
    # A RecordBatchReader is checked and written like the same rows as a table (for CSV, whose
    # reader types the whole-number delays of flights() as integers, this is what is tested).
    lake.write(name, OLD)
    new = pa.Table.from_pandas(flights(range(101, 141), seed=3), preserve_index=False)
    reader = pa.RecordBatchReader.from_batches(new.schema, new.to_batches(max_chunksize=7))
    lake.write(name, reader, mode=mode)
    expected = pd.concat([OLD, new.to_pandas()]) if mode == "append" else new.to_pandas()
    assert_same_rows(lake.read(name).to_pandas(), expected)


# -- refused writes: the documented error, a message that names things, nothing lost ----------------

def extra_column(): return flights(range(100, 104)).assign(gate="A1")
def missing_column(): return flights(range(100, 104)).drop(columns=["delay"])
def text_in_float_column(): return flights(range(100, 102)).assign(delay=["late", "early"])
def fraction_in_integer_column(): return flights(range(100, 102)).astype({"id": "float64"}).assign(id=[100.5, 101.5])
def integer_in_string_column(): return flights(range(100, 102)).assign(carrier=[1, 2])
def both_years(): return flights(range(100, 104))  # rows in 2013 and 2014


BAD_WRITES = [
    # (case, datasets, write arguments, error, what the message must name)
    ("error mode on existing data", DATASETS,
     lambda: dict(data=both_years(), mode="error"), StorageError, ["already exists"]),
    ("append an extra column", DATASETS,
     lambda: dict(data=extra_column(), mode="append"), SchemaMismatchError, ["gate"]),
    ("overwrite with an extra column", ("pq", "dlp", "cs", "jsp"),
     lambda: dict(data=extra_column(), mode="overwrite"), SchemaMismatchError, ["gate"]),
    ("append a missing column", DATASETS,
     lambda: dict(data=missing_column(), mode="append"), SchemaMismatchError, ["delay"]),
    ("overwrite with a missing column", ("pqp", "dl", "csp", "js"),
     lambda: dict(data=missing_column(), mode="overwrite"), SchemaMismatchError, ["delay"]),
    ("append text to a float column", DATASETS,
     lambda: dict(data=text_in_float_column(), mode="append"), SchemaMismatchError, ["delay"]),
    # Spark's Delta refuses these (no silent truncation or cast); so must the Arrow engine.
    ("append fractions to an integer column", DATASETS,
     lambda: dict(data=fraction_in_integer_column(), mode="append"), SchemaMismatchError, ["id"]),
    ("append integers to a string column", tuple(n for n in DATASETS if FORMAT[n] != "csv"),
     lambda: dict(data=integer_in_string_column(), mode="append"), SchemaMismatchError, ["carrier"]),
    ("replace_where with rows outside the predicate", tuple(n for n in DATASETS if n in PARTITIONED or n == "dl"),
     lambda: dict(data=both_years(), mode="overwrite", replace_where="year = 2013"), InvalidArgumentError,
     ["replace_where", "year", "2 of 4 rows do not match", "nothing was written"]),
    ("replace_where on a non-partition column of plain files", ("pq", "pqp", "csp", "js"),
     lambda: dict(data=both_years().assign(carrier="AA"), mode="overwrite", replace_where="carrier = 'AA'"),
     InvalidArgumentError, ["replace_where", "partition columns only", "carrier"]),
    ("replace_where with append", ("pqp", "dlp", "csp", "jsp"),
     lambda: dict(data=both_years(), mode="append", replace_where="year = 2013"), InvalidArgumentError,
     ["replace_where needs mode='overwrite'", "'append'"]),
    ("replace_where with overwrite_partitions", ("pqp", "dlp"),
     lambda: dict(data=both_years(), mode="overwrite_partitions", replace_where="year = 2013"),
     InvalidArgumentError, ["replace_where needs mode='overwrite'", "'overwrite_partitions'"]),
    ("overwrite_partitions on an unpartitioned dataset", UNPARTITIONED,
     lambda: dict(data=both_years(), mode="overwrite_partitions"), InvalidArgumentError,
     ["overwrite_partitions", "partition_by"]),
    ("schema_mode merge on plain files", ("pq", "csp", "js"),
     lambda: dict(data=extra_column(), mode="append", options={"schema_mode": "merge"}), InvalidArgumentError,
     ["schema_mode='merge'", "Delta"]),
    ("schema_mode overwrite with append", ("pq", "dl", "csp", "jsp"),
     lambda: dict(data=extra_column(), mode="append", options={"schema_mode": "overwrite"}), InvalidArgumentError,
     ["schema_mode='overwrite'", "mode='overwrite'"]),
    ("schema_mode overwrite with replace_where", ("pqp", "dlp"),
     lambda: dict(data=both_years().assign(year=2013), mode="overwrite", replace_where="year = 2013",
                  options={"schema_mode": "overwrite"}), InvalidArgumentError, ["schema_mode='overwrite'", "replace_where"]),
    ("unknown option", ("pqp", "dl", "cs", "js"),
     lambda: dict(data=both_years(), mode="append", options={"delimter": ";"}), InvalidArgumentError,
     ["delimter", "did you mean 'delimiter'?"]),
    ("csv option on another format", ("pq", "dlp", "js"),
     lambda: dict(data=both_years(), mode="append", options={"delimiter": ";"}), InvalidArgumentError,
     ["'delimiter'", "csv only"]),
    ("parquet option on a text format", ("csp", "js"),
     lambda: dict(data=both_years(), mode="append", options={"compression": "zstd"}), InvalidArgumentError,
     ["'compression'", "parquet and delta only"]),
    ("option of the wrong type", ("pq", "dl"),
     lambda: dict(data=both_years(), mode="append", options={"target_file_size": "huge"}), InvalidArgumentError,
     ["target_file_size", "huge"]),
    ("misspelt option value", ("pqp", "cs"),
     lambda: dict(data=both_years(), mode="append", options={"schema_mode": "merg"}), InvalidArgumentError,
     ["schema_mode", "'merg'", "did you mean 'merge'?"]),
]
BAD_WRITE_PARAMS = [(case, name, arguments, error, names)
                    for case, datasets, arguments, error, names in BAD_WRITES for name in datasets]


@pytest.mark.parametrize("case, name, arguments, error, names", BAD_WRITE_PARAMS,
                         ids=[f"{p[0].replace(' ', '-')}-{p[1]}" for p in BAD_WRITE_PARAMS])
def test_a_refused_write_names_the_problem_and_loses_nothing(lake, io_records, case, name, arguments, error, names):
    before = written(lake, name)
    io_records.clear()
    with pytest.raises(error) as caught:
        lake.write(name, **arguments())
    message = str(caught.value)
    assert f"dataset {name!r}" in message
    for expected in names:
        assert expected in message, f"{expected!r} not in {message!r}"
    if error is not StorageError:
        assert isinstance(caught.value, ValueError)
    assert io_records("write") == []
    before.assert_unchanged()


@pytest.mark.parametrize("name", ["csp", "jsp"])
def test_a_partition_whose_column_is_all_null_keeps_a_text_dataset_readable(lake, name):
    # The first partition in path order (year=2013/month=1) has no carrier at all.
    data = flights()
    data.loc[(data.year == 2013) & (data.month == 1), "carrier"] = None
    lake.write(name, data)
    assert_same_rows(lake.read(name).to_pandas(), data)


@pytest.mark.parametrize("name", ["pqp", "csp", "jsp"])
def test_appending_values_to_an_all_null_column_never_breaks_the_dataset(lake, tmp_path, name):
    first = rows(range(1, 4), [(2013, 1)], carrier=None)  # carrier is all null: typed null in Parquet
    lake.write(name, first)
    more = rows(range(4, 8), [(2014, 3)], carrier="UA")
    try:
        lake.write(name, more, mode="append")
    except SchemaMismatchError:  # refusing is fine, as long as nothing is lost
        assert_same_rows(lake.read(name).to_pandas(), first)
    else:  # accepting is fine, as long as every row reads back
        assert_same_rows(lake.read(name).to_pandas(), pd.concat([first, more]))
    assert leftovers(tmp_path) == []


# -- failed writes lose nothing ----------------------------------------------------------------------

MODES = {  # mode name -> (datasets, write arguments)
    "append": (DATASETS, lambda data: dict(mode="append")),
    "overwrite": (DATASETS, lambda data: dict(mode="overwrite")),
    "overwrite_partitions": (tuple(PARTITIONED), lambda data: dict(mode="overwrite_partitions")),
    "replace_where": (tuple(n for n in DATASETS if n in PARTITIONED),
                      lambda data: dict(mode="overwrite", replace_where="year = 2013")),
}
FAULT_PARAMS = [(mode, name) for mode, (datasets, _) in MODES.items() for name in sorted(datasets)]
FAULT_IDS = [f"{m}-{n}" for m, n in FAULT_PARAMS]
SMALL_FILES = {"target_file_size": "4KB"}  # several files per partition, so a fault lands half-way


@functools.cache
def _many_rows() -> pd.DataFrame:
    return flights(range(1001, 2201), seed=4)


def new_data(mode: str) -> pd.DataFrame:
    """1,200 new rows, written as several files per partition (see SMALL_FILES)."""
    data = _many_rows().copy()
    return data.assign(year=2013) if mode == "replace_where" else data


def arguments_for(mode: str, data) -> dict:
    return {**MODES[mode][1](data), "options": SMALL_FILES}


STREAM_FAULTS = [("append", n) for n in ("pq", "dl", "cs", "js")] + [("overwrite", n) for n in ("pqp", "dlp", "csp", "jsp")]


@pytest.mark.parametrize("mode, name", STREAM_FAULTS, ids=[f"{m}-{n}" for m, n in STREAM_FAULTS])
def test_a_source_that_fails_half_way_loses_nothing(lake, mode, name):
    before = written(lake, name)
    table = pa.Table.from_pandas(new_data(mode), preserve_index=False)

    def batches():
        for index, batch in enumerate(table.to_batches(max_chunksize=200)):
            if index == 3:
                raise ValueError("the source failed after 3 batches")
            yield batch

    with pytest.raises(Exception, match="the source failed after 3 batches"):
        lake.write(name, pa.RecordBatchReader.from_batches(table.schema, batches()), **arguments_for(mode, table))
    before.assert_unchanged()


WRITE_DATASET_FAULTS = [("append", "pq"), ("overwrite", "cs")] + [(m, "pqp") for m in MODES] \
    + [("overwrite_partitions", "csp"), ("replace_where", "csp")]


@pytest.mark.parametrize("mode, name", WRITE_DATASET_FAULTS, ids=[f"{m}-{n}" for m, n in WRITE_DATASET_FAULTS])
def test_write_dataset_failing_after_some_files_loses_nothing(lake, write_dataset_fails, mode, name):
    before = written(lake, name)
    seen = write_dataset_fails(3, "injected: disk full after 3 files")
    with pytest.raises(StorageError, match="disk full") as caught:
        lake.write(name, new_data(mode), **arguments_for(mode, None))
    assert len(seen) >= 3  # the fault did land after files were written
    assert f"dataset {name!r}" in str(caught.value)
    before.assert_unchanged()


class FaultyFileSystem(pafs.FileSystemHandler):
    """The local filesystem, except that one operation fails once, the time after it has run
    ``after`` times (a transient fault: later calls, e.g. to undo, succeed)."""

    def __init__(self, operation: str, after: int):
        self.inner, self.operation, self.after, self.calls, self.armed = pafs.LocalFileSystem(), operation, after, 0, True

    def _tick(self, operation: str) -> None:
        if self.armed and operation == self.operation:
            self.calls += 1
            if self.calls == self.after + 1:
                raise OSError(f"injected {operation} failure (call {self.calls})")

    def get_type_name(self): return "faulty-local"
    def normalize_path(self, path): return self.inner.normalize_path(path)
    def get_file_info(self, paths): return self.inner.get_file_info(paths)
    def get_file_info_selector(self, selector): return self.inner.get_file_info(selector)
    def create_dir(self, path, recursive): self.inner.create_dir(path, recursive=recursive)
    def delete_root_dir_contents(self): raise OSError("not in tests")

    def delete_dir(self, path):
        self._tick("delete")
        self.inner.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self._tick("delete")
        self.inner.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_file(self, path):
        self._tick("delete")
        self.inner.delete_file(path)
    def copy_file(self, source, destination): self.inner.copy_file(source, destination)
    def open_input_stream(self, path): return self.inner.open_input_stream(path)
    def open_input_file(self, path): return self.inner.open_input_file(path)
    def open_append_stream(self, path, metadata): return self.inner.open_append_stream(path, metadata=metadata)

    def move(self, source, destination):
        self._tick("move")
        self.inner.move(source, destination)

    def open_output_stream(self, path, metadata):
        self._tick("open_output_stream")
        return self.inner.open_output_stream(path, metadata=metadata)


def install(monkeypatch, handler: FaultyFileSystem) -> None:
    real = Storage.filesystem
    monkeypatch.setattr(Storage, "filesystem", lambda self, location: pafs.PyFileSystem(handler)
                        if location.scheme == "file" else real(self, location))


@pytest.mark.parametrize("mode, name", [p for p in FAULT_PARAMS if FORMAT[p[1]] == "json"],
                         ids=[i for p, i in zip(FAULT_PARAMS, FAULT_IDS) if FORMAT[p[1]] == "json"])
def test_a_json_file_that_cannot_be_created_half_way_loses_nothing(lake, monkeypatch, mode, name):
    # JSON lines are written file by file by lakeio itself (Parquet and CSV by write_dataset, whose
    # fault is injected above: pyarrow crashes when a Python filesystem raises inside write_dataset).
    before = written(lake, name)
    handler = FaultyFileSystem("open_output_stream", after=2)
    install(monkeypatch, handler)
    with pytest.raises(StorageError, match="injected open_output_stream failure") as caught:
        lake.write(name, new_data(mode), **arguments_for(mode, None))
    assert f"dataset {name!r}" in str(caught.value)
    handler.armed = False
    before.assert_unchanged()


@pytest.mark.parametrize("mode, name", [p for p in FAULT_PARAMS if FORMAT[p[1]] != "delta"],
                         ids=[i for p, i in zip(FAULT_PARAMS, FAULT_IDS) if FORMAT[p[1]] != "delta"])
def test_a_move_that_fails_while_committing_loses_nothing(lake, monkeypatch, mode, name):
    # The commit moves staged files (append) or swaps folders (the other modes) with renames: the
    # second rename fails, after the first one has already changed the dataset.
    before = written(lake, name)
    handler = FaultyFileSystem("move", after=1)
    install(monkeypatch, handler)
    with pytest.raises(StorageError, match="injected move failure") as caught:
        lake.write(name, new_data(mode), **arguments_for(mode, None))
    assert f"dataset {name!r}" in str(caught.value)
    assert handler.calls >= 2
    handler.armed = False
    before.assert_unchanged()


CLEANUP_FAULTS = [("overwrite", "pq"), ("append", "pqp"), ("overwrite_partitions", "csp"), ("replace_where", "jsp")]


@pytest.mark.parametrize("mode, name", CLEANUP_FAULTS, ids=[f"{m}-{n}" for m, n in CLEANUP_FAULTS])
def test_a_write_that_raises_has_changed_nothing(lake, monkeypatch, mode, name):
    # The first delete of the write fails once: it comes after the new files are in place (the
    # staging or retired folder's clean-up). A write that raises must have changed nothing (else a
    # caller who retries an append doubles the rows); one that succeeds must have written it all.
    before = written(lake, name)
    handler = FaultyFileSystem("delete", after=0)
    install(monkeypatch, handler)
    data = new_data(mode)
    try:
        lake.write(name, data, **arguments_for(mode, None))
    except StorageError:
        handler.armed = False
        assert_same_rows(lake.read(name).to_pandas(), before.rows)
    else:
        handler.armed = False
        old = before.rows
        kept = {"append": old, "overwrite": old.iloc[:0],
                "overwrite_partitions": old[~in_partitions(old, set(zip(data.year, data.month)))],
                "replace_where": old[old.year != 2013]}[mode]
        assert_same_rows(lake.read(name).to_pandas(), pd.concat([kept, data]))
    assert handler.calls >= 1


@pytest.mark.parametrize("mode, name", [p for p in FAULT_PARAMS if FORMAT[p[1]] == "delta"]
                         + [("replace_where", "dl")],
                         ids=[i for p, i in zip(FAULT_PARAMS, FAULT_IDS) if FORMAT[p[1]] == "delta"]
                         + ["replace_where-dl"])
def test_a_delta_write_that_fails_before_its_commit_loses_nothing(lake, monkeypatch, mode, name):
    import deltalake

    before = written(lake, name)
    root = Path(lake.location(name).path)
    calls = []

    def failing(table_or_uri, data, *args, **kwargs):
        # What delta-rs does before it commits: data files land in the table's folder.
        calls.append(kwargs.get("mode"))
        pq.write_table(pa.table({"id": [999]}), root / "part-00000-orphan-before-commit.parquet")
        raise OSError("injected: connection reset before the commit")

    monkeypatch.setattr(deltalake, "write_deltalake", failing)
    with pytest.raises(StorageError, match="connection reset") as caught:
        lake.write(name, new_data(mode), **arguments_for(mode, None))
    assert calls, "the write reached delta-rs"
    assert f"dataset {name!r}" in str(caught.value)
    assert leftovers(root.parent.parent) == []
    assert_same_rows(lake.read(name).to_pandas(), before.rows)
    assert DeltaTable(str(root)).version() == before.version


# -- schema evolution --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DELTA)
def test_delta_merge_adds_a_column_and_old_rows_read_null(lake, name):
    lake.write(name, OLD)
    new = flights(range(101, 105), seed=2).assign(gate=["A1", "B2", "C3", "D4"])
    record = lake.write(name, new, mode="append", options={"schema_mode": "merge"})
    assert record.rows == 4
    back = lake.read(name).to_pandas().sort_values("id", ignore_index=True)
    assert "gate" in back.columns
    assert lake.read(name).schema.field("gate").type in (pa.string(), pa.large_string(), pa.string_view())
    assert back.loc[back.id <= 16, "gate"].isna().all()
    assert back.loc[back.id > 100, "gate"].tolist() == ["A1", "B2", "C3", "D4"]
    assert_same_rows(back, pd.concat([OLD, new]))


@pytest.mark.parametrize("name", DATASETS)
def test_schema_mode_overwrite_replaces_the_schema(lake, name):
    lake.write(name, OLD)
    new = flights(range(50, 54)).drop(columns=["delay"]).assign(gate=["A", "B", "C", "D"], carrier=[1, 2, 3, 4])
    lake.write(name, new, mode="overwrite", options={"schema_mode": "overwrite"})
    back = lake.read(name).to_pandas()
    assert set(back.columns) == {"id", "year", "month", "carrier", "gate"}
    assert pa.types.is_integer(lake.read(name).schema.field("carrier").type)
    assert_same_rows(back, new, ["id", "year", "month", "carrier", "gate"])
    # the new schema is now the one enforced
    with pytest.raises(SchemaMismatchError):
        lake.write(name, flights(range(60, 62)), mode="append")
    lake.write(name, flights(range(60, 62)).drop(columns=["delay"]).assign(gate="E", carrier=5), mode="append")
    assert lake.read(name).count() == 6


@pytest.mark.parametrize("name", DELTA)
def test_enforce_is_the_default_and_refuses_what_merge_and_overwrite_accept(lake, tmp_path, name):
    before = written(lake, name)
    with_gate = flights(range(101, 103)).assign(gate="A1")
    other_schema = flights(range(50, 52)).drop(columns=["delay"]).assign(gate="B")
    with pytest.raises(SchemaMismatchError, match=f"dataset '{name}'"):
        lake.write(name, with_gate, mode="append")
    with pytest.raises(SchemaMismatchError, match=f"dataset '{name}'"):
        lake.write(name, other_schema, mode="overwrite")
    with pytest.raises(SchemaMismatchError, match=f"dataset '{name}'"):
        lake.write(name, with_gate, mode="append", options={"schema_mode": "enforce"})
    before.assert_unchanged()
    lake.write(name, with_gate, mode="append", options={"schema_mode": "merge"})
    assert lake.read(name).count() == 18
    lake.write(name, other_schema, mode="overwrite", options={"schema_mode": "overwrite"})
    assert set(lake.read(name).schema.names) == {"id", "year", "month", "carrier", "gate"}


# -- target file size ---------------------------------------------------------------------------------

BIG_ROWS = 300_000


@pytest.fixture(scope="module")
def big() -> pa.Table:
    """300k rows that compress poorly (random values), about 7 MB as Parquet, over six partitions."""
    rng = np.random.default_rng(7)
    ids = np.arange(BIG_ROWS)
    return pa.table({"id": ids, "year": 2013 + ids % 2, "month": 1 + ids % 3,
                     "carrier": pa.array(rng.integers(0, 1000, BIG_ROWS).astype(str)),
                     "delay": rng.normal(size=BIG_ROWS)})


@pytest.mark.parametrize("name", ["pq", "cs", "dl"])
def test_target_file_size_gives_files_of_about_that_size(lake, big, name):
    record = lake.write(name, big, options={"target_file_size": "1MB"})
    found = data_files(Path(lake.location(name).path))
    sizes = sorted(p.stat().st_size for p in found)
    assert len(found) > 2, sizes
    assert record.files_written == len(found)
    assert max(sizes) < 2_000_000, sizes
    assert all(size > 250_000 for size in sizes[1:]), sizes  # only one remainder file may be small
    assert lake.read(name).count() == BIG_ROWS


@pytest.mark.parametrize("name", ["pq", "cs", "dl", "pqp", "csp", "dlp", "jsp"])
def test_default_target_file_size_gives_one_file_per_partition(lake, big, name):
    data = big if name in ("pq", "cs", "dl", "pqp") else flights()  # 300k rows, or 16 in 6 partitions
    record = lake.write(name, data)
    found = data_files(Path(lake.location(name).path))
    assert len(found) == record.files_written == (6 if name in PARTITIONED else 1)
    if name in PARTITIONED:
        assert len({p.parent for p in found}) == 6


def test_target_file_size_applies_per_partition_and_from_yaml(tmp_path, write_yaml, big):
    write_yaml("conf/sized.yaml", """
        sized:
          format: parquet
          partition_by: [year]
          options: {target_file_size: 1MB}
          environments: {local: {uri: data/sized}}
    """)
    lake = Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)
    lake.write("sized", big)
    found = data_files(tmp_path / "data" / "sized")
    assert {p.parent.name for p in found} == {"year=2013", "year=2014"}
    for year in ("year=2013", "year=2014"):
        assert sum(1 for p in found if p.parent.name == year) > 2
    assert max(p.stat().st_size for p in found) < 2_000_000
    assert lake.read("sized").count() == BIG_ROWS


def test_json_target_file_size(lake):
    data = flights(range(1, 3001))
    lake.write("js", data, options={"target_file_size": "32KB"})
    found = data_files(Path(lake.location("js").path))
    assert len(found) > 2
    assert max(p.stat().st_size for p in found) < 64_000
    assert_same_rows(lake.read("js").to_pandas(), data)


def test_no_write_leaves_a_file_outside_the_dataset_folder(lake, tmp_path):
    for name in DATASETS:
        lake.write(name, OLD)
        lake.write(name, OLD, mode="overwrite")
    # Beside each plain dataset: its commit marker (docs/guide/reliability.md), nothing else.
    assert sorted(os.listdir(tmp_path / "data")) == sorted(
        [*DATASETS, *(f"{name}.lakeio-committed" for name in DATASETS if FORMAT[name] != "delta")])


def test_errors_share_one_root(lake):
    lake.write("pq", OLD)
    with pytest.raises(LakeioError):
        lake.write("pq", OLD)
    with pytest.raises(LakeioError):
        lake.write("pq", OLD, mode="overwrite_partitions")



_STAMP = 1_704_164_645_123_456_000  # 2024-01-02 03:04:05.123456 in nanoseconds


@pytest.mark.parametrize(("nested", "row"), [
    (pa.map_(pa.string(), pa.timestamp("ns")), lambda stamp: [("a", stamp)]),
    (pa.map_(pa.timestamp("ns", "UTC"), pa.int64()), lambda stamp: [(stamp, 1)]),
    (pa.list_(pa.timestamp("ns"), 2), lambda stamp: [stamp, stamp]),
    (pa.struct([("inner", pa.list_(pa.map_(pa.string(), pa.timestamp("ns"))))]),
     lambda stamp: {"inner": [[("a", stamp)]]}),
], ids=["map items", "map keys", "fixed-size list", "struct of lists of maps"])
def test_nanoseconds_nested_in_maps_and_fixed_size_lists_are_cast_or_refused(nested, row):
    """Every nesting holds microseconds after the cast, and a part finer than a microsecond at any
    depth is refused, naming the column and value (never truncated)."""
    from lakeio.engines import in_microseconds

    whole = pa.table({"n": pa.array([row(_STAMP)], nested)})
    cast = in_microseconds(whole, "write of 'x'")
    assert "[ns" not in str(cast.schema) and "[us" in str(cast.schema)
    assert cast.column("n").to_pylist() == whole.column("n").to_pylist()
    with pytest.raises(InvalidArgumentError,
                       match=r"write of 'x': column 'n': value 2024-01-02 03:04:05\.123456789"):
        in_microseconds(pa.table({"n": pa.array([row(_STAMP + 789)], nested)}), "write of 'x'")


def test_nanosecond_durations_are_cast_or_refused():
    """pandas' timedeltas (nanosecond durations) of whole microseconds are cast exactly, like its
    timestamps; one with a part finer than a microsecond is refused, naming column and value."""
    from lakeio.engines import in_microseconds

    whole = pa.table({"d": pa.array([1_500_000_000, None], pa.duration("ns"))})
    cast = in_microseconds(whole, "write of 'x'")
    assert cast.schema.field("d").type == pa.duration("us")
    assert cast.column("d").equals(whole.column("d").cast(pa.duration("us")))
    with pytest.raises(InvalidArgumentError, match=r"write of 'x': column 'd': value 0 days 00:00:01\.500000001 has nanos"):
        in_microseconds(pa.table({"d": pa.array([1_500_000_001], pa.duration("ns"))}), "write of 'x'")

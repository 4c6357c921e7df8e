"""The Arrow engine end to end through the Catalog, on local Delta and Parquet files in tmp_path."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil

import pandas as pd
import pyarrow as pa
import pytest

from lakeio import Catalog, InvalidArgumentError, SchemaMismatchError, StorageError
from lakeio.config import EnvironmentSettings
from lakeio.engines import create_engine
from lakeio.metrics import IORecord
from lakeio.storage import Storage

RESOURCES = """
pq:  {format: parquet, environments: {local: {uri: data/pq}}}
pqp: {format: parquet, partition_by: [year, month], environments: {local: {uri: data/pqp}}}
dl:  {format: delta, environments: {local: {uri: data/dl}}}
dlp: {format: delta, partition_by: [year, month], environments: {local: {uri: data/dlp}}}
cs:  {format: csv, environments: {local: {uri: data/cs}}}
csp: {format: csv, partition_by: [year, month], environments: {local: {uri: data/csp}}}
js:  {format: json, environments: {local: {uri: data/js}}}
jsp: {format: json, partition_by: [year, month], environments: {local: {uri: data/jsp}}}
runs:
  format: parquet
  environments: {local: {uri: "data/runs/{day}"}}
zips:
  format: parquet
  partition_by: [zip]
  environments: {local: {uri: data/zips}}
"""

PARTITIONED = {"pqp", "dlp", "csp", "jsp"}
FORMAT = {"pq": "parquet", "pqp": "parquet", "dl": "delta", "dlp": "delta",
          "cs": "csv", "csp": "csv", "js": "json", "jsp": "json"}
DATASETS = tuple(FORMAT)


@pytest.fixture
def lake(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", RESOURCES)
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)


def flights(ids=range(1, 17), seed: int = 0) -> pd.DataFrame:
    """Small, deterministic rows over 2 years x 3 months, with nulls in the value columns."""
    carriers = ["AA", "UA", None, "DL", "B6"]
    rows = []
    for i in ids:
        rows.append({
            "id": i,
            "year": 2013 + (i % 2),
            "month": 1 + (i % 3),
            "carrier": carriers[(i + seed) % len(carriers)],
            "delay": None if i % 5 == 0 else float((i * 7 + seed) % 23 - 8),
        })
    frame = pd.DataFrame(rows)
    return frame.astype({"id": "int64", "year": "int64", "month": "int64", "delay": "float64"})


def normalized(frame: pd.DataFrame, columns=None) -> pd.DataFrame:
    """Rows sorted by id, columns in a fixed order, so reads compare regardless of file order."""
    columns = list(columns or ["id", "year", "month", "carrier", "delay"])
    return frame[columns].sort_values("id").reset_index(drop=True)


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame, columns=None) -> None:
    # Partition columns may come back as int32 (hive) instead of int64: compare values, not dtypes.
    pd.testing.assert_frame_equal(normalized(actual, columns), normalized(expected, columns), check_dtype=False)


# -- write modes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DATASETS)
def test_first_write_creates_the_dataset(lake, io_records, name):
    data = flights()
    assert not lake.exists(name)
    record = lake.write(name, data)  # mode="error" by default
    assert lake.exists(name)
    assert isinstance(record, IORecord)
    assert (record.operation, record.dataset, record.env, record.mode) == ("write", name, "local", "error")
    assert (record.engine, record.format) == ("arrow", FORMAT[name])
    assert record.rows == len(data)
    assert record.bytes > 0
    assert record.files_written >= (6 if name in PARTITIONED else 1)
    assert record.uri == lake.location(name).uri
    (logged,) = io_records("write", name)
    assert logged == record.as_dict()
    assert_same_rows(lake.read(name).to_pandas(), data)


@pytest.mark.parametrize("name", DATASETS)
def test_error_mode_refuses_an_existing_dataset(lake, io_records, name):
    data = flights()
    lake.write(name, data, mode="error")
    io_records.clear()
    with pytest.raises(StorageError) as caught:
        lake.write(name, flights(range(100, 103)), mode="error")
    message = str(caught.value)
    assert "already exists" in message
    assert lake.location(name).uri in message
    assert io_records("write") == []  # a failed write logs no record
    assert_same_rows(lake.read(name).to_pandas(), data)


@pytest.mark.parametrize("name", DATASETS)
def test_append_adds_rows(lake, name):
    first, second = flights(range(1, 11)), flights(range(11, 17), seed=3)
    lake.write(name, first)
    record = lake.write(name, second, mode="append")
    assert record.mode == "append"
    assert record.rows == len(second)
    assert_same_rows(lake.read(name).to_pandas(), pd.concat([first, second]))
    assert lake.read(name).count() == len(first) + len(second)


@pytest.mark.parametrize("name", DATASETS)
def test_append_creates_a_missing_dataset(lake, name):
    data = flights()
    lake.write(name, data, mode="append")
    assert_same_rows(lake.read(name).to_pandas(), data)


@pytest.mark.parametrize("name", DATASETS)
def test_overwrite_replaces(lake, name):
    lake.write(name, flights(range(1, 17)))
    lake.write(name, flights(range(1, 17)), mode="append")
    replacement = flights(range(50, 55), seed=1)
    record = lake.write(name, replacement, mode="overwrite")
    assert record.mode == "overwrite"
    assert_same_rows(lake.read(name).to_pandas(), replacement)
    assert lake.read(name).count() == len(replacement)


@pytest.mark.parametrize("name", DATASETS)
def test_overwrite_creates_a_missing_dataset(lake, name):
    data = flights()
    lake.write(name, data, mode="overwrite")
    assert_same_rows(lake.read(name).to_pandas(), data)


def test_parquet_overwrite_leaves_no_staging_files(lake, tmp_path):
    lake.write("pq", flights())
    lake.write("pq", flights(range(1, 4)), mode="overwrite")
    lake.write("pq", flights(range(1, 3)), mode="overwrite")
    files = sorted(p.name for p in (tmp_path / "data" / "pq").iterdir())
    assert len(files) == 1 and files[0].endswith(".parquet"), files
    assert lake.read("pq").count() == 2


def test_write_accepts_arrow_tables_batches_and_readers(lake):
    data = flights()
    table = pa.Table.from_pandas(data, preserve_index=False)
    lake.write("pq", table)
    lake.write("pq", table.to_batches()[0], mode="append")
    lake.write("dl", pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))
    assert lake.read("pq").count() == 2 * len(data)
    assert_same_rows(lake.read("dl").to_pandas(), data)


def test_placeholders_give_one_folder_per_value(lake, tmp_path):
    lake.write("runs", flights(range(1, 4)), day="2024-01-01")
    lake.write("runs", flights(range(4, 9)), day="2024-01-02")
    assert lake.read("runs", day="2024-01-01").count() == 3
    assert lake.read("runs", day="2024-01-02").count() == 5
    assert (tmp_path / "data" / "runs" / "2024-01-02").is_dir()
    assert not lake.exists("runs", day="2024-01-03")


# -- reads: columns and filters -------------------------------------------------------------------

WHERE_CASES = [
    ("month = 1", lambda f: f.month == 1),
    ("year = 2013 AND month IN (1, 2)", lambda f: (f.year == 2013) & f.month.isin([1, 2])),
    ("carrier != 'AA'", lambda f: f.carrier.notna() & (f.carrier != "AA")),
    ("carrier NOT IN ('AA', 'UA')", lambda f: f.carrier.notna() & ~f.carrier.isin(["AA", "UA"])),
    ("NOT (carrier = 'DL')", lambda f: f.carrier.notna() & (f.carrier != "DL")),
    ("delay IS NULL", lambda f: f.delay.isna()),
    ("delay IS NOT NULL AND carrier IS NULL", lambda f: f.delay.notna() & f.carrier.isna()),
    ("delay > 0 OR carrier = 'UA'", lambda f: (f.delay > 0) | (f.carrier == "UA")),
    ("NOT (month BETWEEN 2 AND 3)", lambda f: ~f.month.between(2, 3)),
    ("delay BETWEEN -2.5 AND 5 AND year = 2014", lambda f: f.delay.between(-2.5, 5) & (f.year == 2014)),
    ([("year", "=", 2014), ("carrier", "in", ["DL", "UA"])], lambda f: (f.year == 2014) & f.carrier.isin(["DL", "UA"])),
    ([[("month", "=", 3)], [("delay", "<", 0)]], lambda f: (f.month == 3) | (f.delay < 0)),
]


@pytest.mark.parametrize("where, mask", WHERE_CASES, ids=[str(w) for w, _ in WHERE_CASES])
@pytest.mark.parametrize("name", DATASETS)
def test_read_columns_and_where_match_pandas(lake, name, where, mask):
    data = flights()
    lake.write(name, data)
    columns = ["id", "carrier", "delay", "month"]
    expected = data[mask(data)]
    assert 0 < len(expected) < len(data), "the case must select some rows, not all"
    actual = lake.read(name, columns=columns, where=where).to_pandas()
    assert list(actual.columns) == columns
    assert_same_rows(actual, expected, columns)
    assert lake.read(name, where=where).count() == len(expected)


@pytest.mark.parametrize("name", DATASETS)
def test_select_and_where_chain(lake, name):
    data = flights()
    lake.write(name, data)
    frame = lake.read(name).select("carrier", "id").where("year = 2014").where([("month", "in", [1, 3])])
    expected = data[(data.year == 2014) & data.month.isin([1, 3])]
    actual = frame.to_pandas()
    assert list(actual.columns) == ["carrier", "id"]
    assert_same_rows(actual, expected, ["id", "carrier"])
    assert frame.where(None) is frame


@pytest.mark.parametrize("name", DATASETS)
def test_count(lake, io_records, name):
    data = flights()
    lake.write(name, data)
    io_records.clear()
    assert lake.read(name).count() == len(data)
    assert lake.read(name, where="month = 2").count() == (data.month == 2).sum()
    assert lake.read(name, where="month = 99").count() == 0
    counts = io_records("count", name)
    assert [r["rows"] for r in counts] == [len(data), (data.month == 2).sum(), 0]
    assert io_records("read") == []


@pytest.mark.parametrize("name", DATASETS)
def test_schema(lake, name):
    lake.write(name, flights())
    schema = lake.read(name, columns=["delay", "carrier", "month"]).schema
    assert schema.names == ["delay", "carrier", "month"]
    # CSV has no types (pyarrow writes 5.0 as "5"), but lakeio's commit records the type written.
    assert schema.field("delay").type == pa.float64()
    assert schema.field("carrier").type in (pa.string(), pa.large_string(), pa.string_view())
    assert pa.types.is_integer(schema.field("month").type)
    assert set(lake.read(name).schema.names) == {"id", "year", "month", "carrier", "delay"}


@pytest.mark.parametrize("name", DATASETS)
def test_explain(lake, name):
    lake.write(name, flights())
    # delay > -100 holds in every file, so only the partition filter can prune.
    text = lake.read(name, columns=["carrier"], where="month = 1 AND delay > -100").explain()
    lines = dict(line.split(":", 1) for line in text.splitlines())
    assert set(lines) == {"dataset", "engine", "columns", "filter", "files"}
    assert name in lines["dataset"] and FORMAT[name] in lines["dataset"] and "[local]" in lines["dataset"]
    assert lake.location(name).uri in lines["dataset"]
    assert re.fullmatch(r"arrow \(auto: pruned scan [\d.]+ (KiB|B) <= arrow_max_bytes 1\.0 GiB\)", lines["engine"].strip())
    assert lines["columns"].strip() == "carrier"
    assert lines["filter"].strip() == "(`month` = 1) AND (`delay` > -100)"
    if name == "dlp":
        assert lines["files"].strip() == "2 scanned of 6 (4 pruned)"
    elif name in PARTITIONED:  # only the month=1 folders were listed: the table's total is not known
        assert lines["files"].strip() == "2 scanned (only the partitions the filter matches listed)"
    else:
        assert lines["files"].strip() == "1 scanned of 1 (0 pruned)"
    everything = lake.read(name).explain()
    assert "columns:  all" in everything and "filter:   none" in everything


# -- the I/O record ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DATASETS)
def test_read_record_fields_and_partition_pruning(lake, io_records, name):
    data = flights()
    lake.write(name, data)
    io_records.clear()
    table = lake.read(name, columns=["id", "carrier"], where="month = 1").to_arrow()
    (log,) = [r for r in io_records.caplog.records if r.name == "lakeio.io"]
    record = log.lakeio
    assert log.levelname == "INFO"
    assert json.loads(log.getMessage()) == json.loads(json.dumps(record, default=str))
    assert record["operation"] == "read"
    assert record["dataset"] == name
    assert record["env"] == "local"
    assert record["engine"] == "arrow"
    assert re.fullmatch(r"auto: pruned scan [\d.]+ (KiB|B) <= arrow_max_bytes 1\.0 GiB", record["engine_reason"])
    assert record["format"] == FORMAT[name]
    assert record["uri"] == lake.location(name).uri
    assert record["rows"] == table.num_rows == (data.month == 1).sum()
    assert record["bytes"] == table.get_total_buffer_size() > 0  # what the read allocated
    assert isinstance(record["seconds"], float) and 0 <= record["seconds"] < 30
    assert record["mode"] is None and record["files_written"] is None
    if name in PARTITIONED:
        # 2 years x 3 months; a plain table lists only the month=1 folders, so its total is not known
        assert record["files_total"] == (6 if name == "dlp" else None)
        assert record["files_scanned"] == 2  # month = 1 in each year
        assert record["files_pruned"] == (4 if name == "dlp" else None)
    else:
        assert record["files_scanned"] == record["files_total"] == 1
        assert record["files_pruned"] == 0


@pytest.mark.parametrize("name", ["pqp", "dlp"])
def test_pruning_with_in_and_or_on_partitions(lake, io_records, name):
    data = flights()
    lake.write(name, data)
    io_records.clear()
    lake.read(name, where="month IN (1, 2) AND year = 2013").to_arrow()
    lake.read(name, where="year = 2014 OR month = 3").to_arrow()
    lake.read(name, where="NOT (month = 1)").to_arrow()
    lake.read(name, where="carrier = 'AA'").to_arrow()  # not a partition column
    scanned = [(r["files_scanned"], r["files_total"]) for r in io_records("read", name)]
    if FORMAT[name] == "parquet":
        # Filters on the partitions walk into the folders they match (the total is not listed), but the
        # first prunes years and month has no declared type (typing it from some years' months could
        # differ from all years'), and one not on the partitions lists every file.
        assert scanned == [(2, 6), (4, None), (4, None), (6, 6)]  # a hive dataset prunes by partition only
    else:
        assert scanned[:3] == [(2, 6), (4, 6), (4, 6)]
        # Delta also prunes by min/max statistics: 'AA' sorts first, so a file is skipped exactly
        # when it holds no 'AA'; each (year, month) partition is one file.
        with_aa = data[data.carrier == "AA"].groupby(["year", "month"]).ngroups
        assert 0 < with_aa < 6
        assert scanned[3] == (with_aa, 6)


def test_engine_argument_is_recorded(lake, io_records):
    lake.write("pq", flights(), engine="arrow")
    lake.read("pq", engine="arrow").count()
    reasons = {r["operation"]: r["engine_reason"] for r in io_records()}
    assert reasons == {"write": "argument: engine=arrow", "count": "argument: engine=arrow"}


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DATASETS)
def test_unknown_column_in_columns(lake, io_records, name):
    lake.write(name, flights())
    io_records.clear()
    with pytest.raises(InvalidArgumentError) as caught:
        lake.read(name, columns=["id", "carier"]).to_arrow()
    message = str(caught.value)
    assert "has no column 'carier'; did you mean 'carrier'?" in message
    assert f"dataset {name!r}" in message
    assert isinstance(caught.value, ValueError)
    assert io_records() == []


@pytest.mark.parametrize("name", DATASETS)
def test_unknown_column_in_where(lake, name):
    lake.write(name, flights())
    for call in (lambda f: f.to_arrow(), lambda f: f.count(), lambda f: f.schema, lambda f: f.explain()):
        with pytest.raises(InvalidArgumentError, match="has no column 'dealy'; did you mean 'delay'?"):
            call(lake.read(name, where="dealy > 1"))
    with pytest.raises(InvalidArgumentError, match="has no column 'zzz'") as caught:
        lake.read(name, where=[("zzz", "=", 1)]).to_arrow()
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize("name", ["dl", "dlp"])
@pytest.mark.parametrize("change", ["extra column", "missing column", "renamed column"])
def test_delta_append_with_an_incompatible_schema(lake, io_records, name, change):
    data = flights()
    lake.write(name, data)
    other = flights(range(100, 104))
    other = {
        "extra column": other.assign(gate="A1"),
        "missing column": other.drop(columns=["delay"]),
        "renamed column": other.rename(columns={"carrier": "airline"}),
    }[change]
    io_records.clear()
    with pytest.raises(SchemaMismatchError) as caught:
        lake.write(name, other, mode="append")
    assert f"dataset {name!r}" in str(caught.value)
    assert io_records("write") == []
    assert_same_rows(lake.read(name).to_pandas(), data)


@pytest.mark.parametrize("name", ["pqp", "dlp"])
def test_partitioned_write_without_the_partition_column(lake, name):
    with pytest.raises(SchemaMismatchError, match=r"no partition column\(s\) \['month'\]"):
        lake.write(name, flights().drop(columns=["month"]))
    assert not lake.exists(name)


@pytest.mark.parametrize("name", DATASETS)
def test_reading_a_dataset_that_does_not_exist(lake, name):
    uri = lake.location(name).uri
    for call in (lambda f: f.to_arrow(), lambda f: f.to_pandas(), lambda f: f.count(), lambda f: f.schema,
                 lambda f: f.explain()):
        with pytest.raises(StorageError) as caught:
            call(lake.read(name, where="month = 1"))
        message = str(caught.value)
        assert uri in message
        assert f"dataset {name!r} [local]: cannot open {FORMAT[name]} data" in message


@pytest.mark.parametrize("data", [[1, 2, 3], [{"id": 1}], {"id": [1]}, "id,year\n1,2013", None])
@pytest.mark.parametrize("name", ["pq", "dl"])
def test_writing_unsupported_data(lake, name, data):
    with pytest.raises(InvalidArgumentError) as caught:
        lake.write(name, data)
    assert f"cannot take a builtins.{type(data).__name__}" in str(caught.value)
    assert "pandas DataFrame" in str(caught.value)
    assert not lake.exists(name)


def test_to_spark_on_an_arrow_frame(lake):
    with pytest.raises(InvalidArgumentError, match="engine='spark'"):
        lake.read("pq").to_spark()


def test_select_needs_names(lake):
    with pytest.raises(InvalidArgumentError):
        lake.read("pq").select()
    with pytest.raises(InvalidArgumentError):
        lake.read("pq").select(["a", "b"])


# -- schema enforcement and filter types ---------------------------------------------------------

@pytest.mark.parametrize("name", DATASETS)
def test_append_with_a_wrongly_typed_column_is_refused_and_loses_nothing(lake, name):
    data = flights()
    lake.write(name, data)
    other = flights(range(100, 102)).astype({"delay": "object"})
    other["delay"] = ["late", "early"]
    with pytest.raises(SchemaMismatchError):
        lake.write(name, other, mode="append")
    assert_same_rows(lake.read(name).to_pandas(), data)


def test_parquet_partition_values_are_typed_from_folder_names_as_spark_does(lake):
    # Plain Parquet keeps no schema for partition columns: like Spark's partition type inference,
    # '02134' reads back as the integer 2134. Delta keeps the written types (DESIGN: prefer Delta).
    data = pd.DataFrame({"zip": ["02134", "10001"], "n": [1, 2]})
    lake.write("zips", data)
    assert sorted(lake.read("zips").to_pandas()["zip"]) == [2134, 10001]
    assert lake.read("zips", where="zip = 2134").count() == 1
    with pytest.raises(InvalidArgumentError, match="zip"):
        lake.read("zips", where="zip = '02134'").count()


@pytest.mark.parametrize("name", ["pq", "dl"])
def test_filter_literal_of_the_wrong_type(lake, name):
    lake.write(name, flights())
    with pytest.raises(InvalidArgumentError):
        lake.read(name, where="carrier = 1").to_arrow()


def test_empty_column_list_returns_no_columns(lake):
    lake.write("pq", flights())
    assert lake.read("pq", columns=[]).to_arrow().num_columns == 0


# -- Delta partition filters reach delta-rs before any fragment is built -------------------------------

DAYS = (dt.date(2020, 1, 1), dt.date(2020, 1, 2), dt.date(2020, 2, 1))
KINDS = ("a", "b'x", None)  # a quote, and null partitions


def by_kind_n_day() -> pd.DataFrame:
    """One row per (kind, n, day) of 3 x 3 x 3 partitions, each in its own file, and a value column."""
    combos = list(itertools.product(KINDS, (1, 2, 3), DAYS))
    return pd.DataFrame({"id": range(len(combos)), "kind": [c[0] for c in combos],
                         "n": pd.array([c[1] for c in combos], "int32"), "day": [c[2] for c in combos],
                         "v": [float(i % 4) for i in range(len(combos))]})


PARTITION_FILTERS = [  # (where, rows it keeps, files delta-rs selects before any fragment is built)
    ("kind = 'a'", lambda d: d.kind == "a", 9),
    ("kind = 'b''x'", lambda d: d.kind == "b'x", 9),
    ("kind IS NULL", lambda d: d.kind.isna(), 9),
    ("kind IN ('a', 'zzz') AND n >= 2", lambda d: (d.kind == "a") & (d.n >= 2), 6),
    ("n = 2", lambda d: d.n == 2, 9),
    ("NOT n IN (1, 2)", lambda d: d.n == 3, 9),
    ("n BETWEEN 2 AND 3 AND kind != 'a'", lambda d: (d.n >= 2) & (d.kind == "b'x"), 6),
    ("day = DATE '2020-01-02'", lambda d: d.day == dt.date(2020, 1, 2), 9),
    ("day BETWEEN DATE '2020-01-01' AND DATE '2020-01-31'", lambda d: d.day < dt.date(2020, 2, 1), 18),
    ("day >= DATE '2020-01-02' OR n = 1", lambda d: (d.day >= dt.date(2020, 1, 2)) | (d.n == 1), 21),
    # A term on a data column is left to the scan (statistics, then rows); the partition terms still select.
    ("n = 1 AND v = 2", lambda d: (d.n == 1) & (d.v == 2), 9),
    ("v = 2", lambda d: d.v == 2, 27),
    # Literals of another kind than the column's are compared by Arrow alone, on every file.
    ("n = 2.0", lambda d: d.n == 2, 27),
    ("day = TIMESTAMP '2020-01-02 00:00:00'", lambda d: d.day == dt.date(2020, 1, 2), 27),
    ("n = 1 OR v = 2", lambda d: (d.n == 1) | (d.v == 2), 27),
]


@pytest.fixture
def delta_by_kind_n_day(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml",
               "kd: {format: delta, partition_by: [kind, n, day], environments: {local: {uri: data/kd}}}\n")
    lake = Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)
    data = by_kind_n_day()
    lake.write("kd", data)
    return lake, data


@pytest.mark.parametrize("where, mask, selected", PARTITION_FILTERS, ids=[w for w, _, _ in PARTITION_FILTERS])
def test_delta_partition_filters_select_files_before_fragments(delta_by_kind_n_day, io_records, where, mask,
                                                               selected):
    lake, data = delta_by_kind_n_day
    frame = lake.read("kd", where=where, engine="arrow")
    expected = data[mask(data)]
    assert 0 < len(expected) < len(data)
    actual = frame.to_pandas()
    pd.testing.assert_frame_equal(actual.sort_values("id").reset_index(drop=True)[list(data.columns)],
                                  expected.reset_index(drop=True), check_dtype=False)
    (record,) = io_records("read", "kd")
    assert record["files_total"] == 27
    assert record["files_scanned"] <= selected
    scan = create_engine("arrow", EnvironmentSettings(), Storage(EnvironmentSettings().s3)).open_scan(frame.plan)
    assert len(scan.dataset.files) == selected  # the fragments built: only the files delta-rs selected


def test_delta_filter_refused_by_delta_rs_reads_every_file(delta_by_kind_n_day, monkeypatch):
    """Should delta-rs refuse the partition filter handed to it, the read builds every file's fragment and
    the scan's own filter prunes and filters: the same rows."""
    from deltalake import DeltaTable

    lake, data = delta_by_kind_n_day
    original = DeltaTable.to_pyarrow_dataset
    handed = []

    def refusing(self, *args, file_pruning_predicate=None, **kwargs):
        if file_pruning_predicate is not None:
            handed.append(file_pruning_predicate)
            raise ValueError("injected: delta-rs cannot apply this predicate")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "to_pyarrow_dataset", refusing)
    actual = lake.read("kd", where="kind = 'a' AND n = 2", engine="arrow").to_pandas()
    assert handed == ["(`kind` = 'a') AND (`n` = 2)"]
    assert sorted(actual.id) == sorted(data[(data.kind == "a") & (data.n == 2)].id)


def test_delta_reads_of_the_latest_version_follow_commits_and_a_table_made_again(lake, tmp_path):
    """A read of the latest version brings the table the engine opened before up to date, and opens
    it anew when the table was deleted and made again at its URI (its commit file is another)."""
    lake.write("dlp", flights(range(1, 7)))
    assert lake.read("dlp", engine="arrow").count() == 6
    lake.write("dlp", flights(range(7, 9)), mode="append")
    assert sorted(lake.read("dlp", engine="arrow").to_pandas().id) == list(range(1, 9))
    shutil.rmtree(tmp_path / "data" / "dlp")
    lake.write("dlp", flights(range(20, 23)))
    lake.write("dlp", flights(range(23, 24)), mode="append")  # as many versions as before
    assert sorted(lake.read("dlp", engine="arrow").to_pandas().id) == [20, 21, 22, 23]
    assert sorted(lake.read("dlp", where="month = 1").to_pandas().id) == [21]


# -- engine: auto reads the scan it opened to choose the engine, while that scan is current -------------

def test_auto_read_reads_the_delta_scan_it_was_planned_with(lake, tmp_path):
    data = flights()
    lake.write("dlp", data)
    frame = lake.read("dlp", where="month = 1")
    assert frame.engine == "arrow"
    # The frame's scan was opened when the engine was chosen: its reads do not open the log again,
    # so a commit file made unreadable since then does not reach them, while a new read fails on it.
    (tmp_path / "data" / "dlp" / "_delta_log" / "00000000000000000000.json").write_text("not a commit")
    assert_same_rows(frame.to_pandas(), data[data.month == 1])
    assert frame.count() == (data.month == 1).sum()
    assert frame.schema.names == ["id", "year", "month", "carrier", "delay"]
    with pytest.raises(StorageError, match="'dlp'"):
        lake.read("dlp", where="month = 1", engine="arrow").to_arrow()


@pytest.mark.parametrize("name", ["dlp", "pqp"])
def test_auto_frame_reads_the_data_as_it_is_when_it_materialises(lake, name):
    lake.write(name, flights(range(1, 9)))
    frame = lake.read(name)
    assert frame.count() == 8
    lake.write(name, flights(range(9, 17)), mode="append")
    assert frame.count() == 16
    assert_same_rows(frame.to_pandas(), flights())
    lake.write(name, flights(range(20, 23)), mode="overwrite")
    assert_same_rows(frame.to_pandas(), flights(range(20, 23)))
    assert_same_rows(frame.to_batches().read_all().to_pandas(), flights(range(20, 23)))


def test_auto_frame_of_a_delta_version_stays_at_that_version(lake):
    lake.write("dl", flights(range(1, 9)))
    lake.write("dl", flights(range(9, 17)), mode="append")
    frame = lake.read("dl", version=0)
    lake.write("dl", flights(range(17, 20)), mode="append")
    assert_same_rows(frame.to_pandas(), flights(range(1, 9)))


# -- text files: the types both engines read them as, and the error for a value not of its type -----------

TYPED_TEXT = """
tc: {format: csv, schema: schemas/typed.yaml, environments: {local: {uri: data/tc}}}
tj: {format: json, schema: schemas/typed.yaml, environments: {local: {uri: data/tj}}}
"""


@pytest.fixture
def typed_lake(tmp_path, write_yaml):
    write_yaml("conf/typed.yaml", TYPED_TEXT)
    write_yaml("conf/schemas/typed.yaml", """
        extra_columns: allow
        columns:
          id: {type: int64}
          amount: {type: "decimal(10,2)"}
    """)
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)


def test_inferred_text_types_are_ones_spark_holds(lake, tmp_path):
    folder = tmp_path / "data" / "cs"
    folder.mkdir(parents=True)
    (folder / "part-0.csv").write_text("id,at,local,clock\n1,2024-01-01T12:00:00Z,2024-01-01 12:00:00,12:30:00\n")
    schema = lake.read("cs").schema
    assert [(f.name, str(f.type)) for f in schema] == [
        ("id", "int64"), ("at", "timestamp[us, tz=UTC]"), ("local", "timestamp[us]"), ("clock", "string")]
    assert lake.read("cs").to_arrow().column("clock").to_pylist() == ["12:30:00"]


def test_json_reads_the_contract_types(typed_lake, tmp_path):
    folder = tmp_path / "data" / "tj"
    folder.mkdir(parents=True)
    (folder / "part-0.json").write_text('{"id": 1, "amount": 2.5}\n{"id": 2, "amount": null}\n')
    table = typed_lake.read("tj").to_arrow()
    assert str(table.schema.field("amount").type) == "decimal128(10, 2)"
    assert [str(v) for v in table.column("amount").to_pylist()] == ["2.50", "None"]


@pytest.mark.parametrize("name", ["tc", "tj"])
@pytest.mark.parametrize("rows_before", [2, 150_000], ids=["in-the-first-rows", "after-the-first-rows"])
def test_a_text_value_not_of_its_type_names_file_column_and_value(typed_lake, tmp_path, name, rows_before):
    format = "csv" if name == "tc" else "json"
    folder = tmp_path / "data" / name
    folder.mkdir(parents=True)
    rows = [{"id": i, "amount": "1.50"} for i in range(rows_before)] + [{"id": rows_before, "amount": "1.255"}]
    text = "id,amount\n" + "".join(f"{r['id']},{r['amount']}\n" for r in rows) if format == "csv" \
        else "".join(json.dumps(r) + "\n" for r in rows)
    (folder / f"part-0.{format}").write_text("id,amount\n1,2.5\n" if format == "csv" else '{"id": 1, "amount": 2.5}\n')
    (folder / f"part-1.{format}").write_text(text)

    with pytest.raises(SchemaMismatchError) as caught:
        typed_lake.read(name).to_arrow()

    assert str(caught.value) == (f"dataset {name!r} [local]: file {folder / f'part-1.{format}'}, column 'amount': "
                                 "value '1.255' does not read as decimal(10,2), the type its contract declares")

"""Parity: one test body per behaviour, run on both engines (Spark classic and on Spark Connect), on
local files and on the S3 server.

Each test writes and reads through ``engine`` only, and compares against what the Arrow engine (the
reference) and plain pyarrow say, so the two engines give the same rows, the same Arrow schema and
the same errors for the same bad input.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import re
import uuid

import pandas as pd
import pyarrow as pa
import pytest
from lines import S3_COMMITS
from pandas.testing import assert_frame_equal

import lakeio
from lakeio.spark import compat

# "connect": engine="spark" in an environment with spark.remote (a `connect` test, see conftest.py).
ENGINES = ["arrow", "spark", pytest.param("connect", marks=pytest.mark.connect)]
STORAGES = ["local", "s3"]
LINE_S3 = f", s3: {{delta_commits: {S3_COMMITS}}}"
UTC = dt.UTC


@pytest.fixture(params=STORAGES)
def storage(request):
    return request.param


@pytest.fixture(params=ENGINES)
def engine_mode(request):
    return request.param


@pytest.fixture
def engine(engine_mode):
    """The engine a test names: ``"spark"`` on Spark Connect too, where the environment makes it Connect."""
    return "spark" if engine_mode == "connect" else engine_mode


@pytest.fixture
def lake(request, tmp_path, storage, spark, s3_endpoint) -> lakeio.Catalog:
    """A catalog whose datasets live under a fresh prefix of ``storage``; its Spark is the Connect
    server's when the test runs in the ``connect`` mode."""
    root = str(tmp_path / "data") if storage == "local" else f"s3://lakeio-test/parity/{uuid.uuid4().hex[:10]}"
    conf = tmp_path / "conf"
    conf.mkdir()
    connect = "engine_mode" in request.fixturenames and request.getfixturevalue("engine_mode") == "connect"
    remote = f", spark: {{remote: '{request.getfixturevalue('on_connect')}'}}" if connect else ""
    (conf / "lakeio.yaml").write_text(f"environments: {{{storage}: {{engine: auto{remote}{LINE_S3}}}}}\n")
    datasets = {
        "typed_delta": ("delta", ["part_s", "part_i"]),
        "typed_parquet": ("parquet", ["part_s", "part_i"]),
        "events": ("delta", ["day"]),
        "events_parquet": ("parquet", ["day"]),
        **{f"sized_{format}": (format, []) for format in ("delta", "parquet", "csv", "json")},
        "sized_delta_parts": ("delta", ["part"]),
        "sized_parquet_parts": ("parquet", ["part"]),
        "notes": ("csv", []),
        "notes_json": ("json", []),
        "notes_parts": ("csv", ["part"]),
        "folders_arrow": ("parquet", ["day", "code", "k"]),
        "folders_spark": ("parquet", ["day", "code", "k"]),
        "folders_delta": ("delta", ["day", "code", "k"]),
        "folders_json": ("json", ["day", "code", "k"]),
        "codes_arrow": ("parquet", ["day", "code"]),
        **{f"kinds_{format}": (format, list(KINDS)) for format in ("parquet", "csv", "json", "delta")},
        "spelt_parquet": ("parquet", ["city"]),
        "spelt_csv": ("csv", ["city"]),
        "codes_spark": ("parquet", ["day", "code"]),
        "lines": ("csv", []),
        "readings": ("csv", []),
        "readings_json": ("json", []),
        "stamps": ("csv", []),
        "stamps_json": ("json", []),
        "kept_csv": ("csv", []),
        "kept_json": ("json", []),
    }
    (conf / "schemas").mkdir()
    for contract, text in CONTRACTS.items():
        (conf / "schemas" / f"{contract}.yaml").write_text(text)
    (conf / "parity.yaml").write_text("".join(
        f"{name}: {{format: {format}, partition_by: {partition_by}, "
        + (f"schema: schemas/{name.split('_')[0]}.yaml, " if name.split("_")[0] in CONTRACTS else "")
        + f"environments: {{{storage}: {{uri: '{root}/{name}'}}}}}}\n"
        for name, (format, partition_by) in datasets.items()))
    return lakeio.Catalog.load(conf, env=storage)


# The contracts of the text datasets (by the first word of their names): the columns they declare
# are read as these types, the others as inferred from the files.
CONTRACTS = {
    "kinds": """
        extra_columns: allow
        columns:
          id: {type: int64}
          flag: {type: boolean}
          price: {type: "decimal(10,2)"}
          score: {type: float64}
          at: {type: timestamp}
    """,
    "codes": """
        extra_columns: allow
        columns:
          code: {type: string}
    """,
    "notes": """
        extra_columns: allow
        columns:
          id: {type: int64}
          amount: {type: "decimal(10,2)"}
          at: {type: timestamp}
          ok: {type: boolean}
          label: {type: string}
    """,
    "stamps": """
        extra_columns: allow
        columns:
          id: {type: int64}
          label: {type: string}
          score: {type: float64}
          at: {type: timestamp}
          day: {type: date}
    """,
    "readings": """
        extra_columns: allow
        columns:
          id: {type: int64}
          amount: {type: "decimal(10,2)"}
    """,
}


def typed_table() -> pa.Table:
    """Every type the engines must agree on, with a null in each column."""
    return pa.table({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "name": pa.array(["ann", None, "cé", ""], pa.string()),
        "at": pa.array([dt.datetime(2024, 1, 1, 12, tzinfo=UTC), None, dt.datetime(2024, 3, 1, tzinfo=UTC),
                        dt.datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=UTC)], pa.timestamp("us", "UTC")),
        "local_at": pa.array([dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 2), None,
                              dt.datetime(2000, 2, 29, 6, 30)], pa.timestamp("us")),
        "amount": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50"), decimal.Decimal("0.00")],
                           pa.decimal128(10, 2)),
        "day": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2), None, dt.date(2024, 2, 29)], pa.date32()),
        "score": pa.array([0.5, None, 2.5, -1.0], pa.float64()),
        "flag": pa.array([True, False, None, True], pa.bool_()),
        "part_s": pa.array(["x", "y", "x", "y"], pa.string()),
        "part_i": pa.array([1, 2, 1, 1], pa.int32()),
    })


# What each format keeps: Delta the table's types; hive-partitioned Parquet types its partition
# columns from the folder names (integers as int32, as Spark does), after the data columns.
EXPECTED_SCHEMA = {
    "typed_delta": typed_table().schema,
    "typed_parquet": pa.schema([f for f in typed_table().schema if not f.name.startswith("part_")]
                               + [pa.field("part_s", pa.string()), pa.field("part_i", pa.int32())]),
}


def sorted_rows(table: pa.Table, key: str = "id") -> list[dict]:
    return table.sort_by(key).to_pylist()


def types_of(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    return [(field.name, field.type) for field in schema]


@pytest.mark.parametrize("name", ["typed_delta", "typed_parquet"])
def test_round_trip_keeps_rows_and_types(lake, engine, name):
    lake.write(name, typed_table(), engine=engine)

    mine = lake.read(name, engine=engine).to_arrow()
    reference = lake.read(name, engine="arrow").to_arrow()

    assert types_of(mine.schema) == types_of(reference.schema) == types_of(EXPECTED_SCHEMA[name])
    assert types_of(lake.read(name, engine=engine).schema) == types_of(EXPECTED_SCHEMA[name])
    assert sorted_rows(mine) == sorted_rows(reference) == sorted_rows(typed_table().select(mine.schema.names))


@pytest.mark.parametrize("name", ["typed_delta", "typed_parquet"])
def test_filter_and_columns(lake, engine, name):
    lake.write(name, typed_table(), engine="arrow")
    where = "part_s = 'x' AND (score > 1 OR name IS NULL OR day >= DATE '2024-01-01')"

    frame = lake.read(name, columns=["id", "at", "part_i"], where=where, engine=engine)
    table = frame.to_arrow()

    assert table.schema.names == ["id", "at", "part_i"]
    assert sorted_rows(table) == [{"id": 1, "at": dt.datetime(2024, 1, 1, 12, tzinfo=UTC), "part_i": 1},
                                  {"id": 3, "at": dt.datetime(2024, 3, 1, tzinfo=UTC), "part_i": 1}]
    assert frame.count() == 2
    batches = pa.Table.from_batches(list(frame.to_batches()))
    assert sorted_rows(batches) == sorted_rows(table)
    assert frame.to_pandas()["id"].sort_values().tolist() == [1, 3]


# Literals compared with time columns, as Spark types them: a string against a date or timestamp
# column is one; a timestamp without a zone is UTC, the session's; an instant against wall-clock
# times is its UTC time; a date against timestamps is its midnight.
TIME_FILTERS = {
    "day > '2024-01-01'": [2, 4],
    "day IN ('2024-01-02', '2024-02-29')": [2, 4],
    "at > TIMESTAMP '2024-01-01 13:00:00'": [3],
    "at >= '2024-03-01'": [3],
    "at < TIMESTAMP '2024-01-01 13:30:00+01:00'": [1, 4],
    "local_at < TIMESTAMP '2024-01-01 12:00:00+01:00'": [4],
    "at < DATE '2000-01-01'": [4],
}


@pytest.mark.parametrize("name", ["typed_delta", "typed_parquet"])
def test_time_literals_mean_the_same_on_every_engine(lake, engine, name):
    lake.write(name, typed_table(), engine="arrow")
    found = {where: sorted(lake.read(name, where=where, engine=engine).to_arrow().column("id").to_pylist())
             for where in TIME_FILTERS}
    assert found == TIME_FILTERS
    with pytest.raises(lakeio.InvalidArgumentError, match=r"filter on 'day': '2024-13-01' is not a date"):
        lake.read(name, where="day = '2024-13-01'", engine=engine).to_arrow()


@pytest.mark.parametrize("name, where", [
    ("typed_delta", None),  # on Spark: a plain scan, its files read by Arrow
    ("typed_parquet", "score > 0"),
    ("typed_parquet", "part_s = 'x'"),  # on Spark: pruned by the helper, handed to Arrow as Parquet
])
def test_to_pandas_is_the_frame_of_the_arrow_table(lake, engine, name, where):
    lake.write(name, typed_table(), engine="arrow")
    frame = lake.read(name, where=where, engine=engine)

    converted, reference = frame.to_pandas(), frame.to_arrow().to_pandas()

    assert converted.index.equals(pd.RangeIndex(len(reference)))
    # Two reads through Spark need not give the rows in the same order; the frames must agree in
    # everything else, dtypes and column labels included.
    assert_frame_equal(converted.sort_values("id", ignore_index=True), reference.sort_values("id", ignore_index=True),
                       check_exact=True, check_index_type=True, check_column_type=True)


def day_rows(day: str, ids: list[int], value: str) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "value": [value] * len(ids), "day": [day] * len(ids)})


@pytest.mark.parametrize("name", ["events", "events_parquet"])
def test_write_modes(lake, engine, name):
    lake.write(name, pa.concat_tables([day_rows("d1", [1, 2], "a"), day_rows("d2", [3], "a")]), engine=engine)
    lake.write(name, day_rows("d3", [4], "b"), mode="append", engine=engine)
    lake.write(name, day_rows("d2", [5, 6], "c"), mode="overwrite_partitions", engine=engine)
    lake.write(name, day_rows("d1", [7], "d"), mode="overwrite", replace_where="day = 'd1'", engine=engine)

    got = {(r["id"], r["value"], r["day"]) for r in lake.read(name, engine=engine).to_arrow().to_pylist()}
    assert got == {(7, "d", "d1"), (5, "c", "d2"), (6, "c", "d2"), (4, "b", "d3")}

    lake.write(name, day_rows("d9", [9], "e"), mode="overwrite", engine=engine)
    assert lake.read(name, engine=engine).to_arrow().to_pylist() == [{"id": 9, "value": "e", "day": "d9"}]


# -- the same error for the same bad input -------------------------------------------------------

@pytest.mark.parametrize("name", ["events", "events_parquet"])
def test_bad_input_gives_the_same_errors_and_leaves_data_unchanged(lake, engine, name):
    with pytest.raises(lakeio.StorageError, match=f"dataset '{name}'"):
        lake.read(name, engine=engine).to_arrow()

    original = day_rows("d1", [1, 2], "a")
    lake.write(name, original, engine=engine)

    with pytest.raises(lakeio.StorageError, match="already exists"):
        lake.write(name, original, engine=engine)
    with pytest.raises(lakeio.SchemaMismatchError):
        lake.write(name, original.append_column("extra", pa.array([1.0, 2.0])), mode="append", engine=engine)
    with pytest.raises(lakeio.SchemaMismatchError):
        lake.write(name, original.set_column(1, "value", pa.array([1, 2], pa.int64())), mode="append", engine=engine)
    with pytest.raises(lakeio.InvalidArgumentError, match="do not match replace_where"):
        lake.write(name, day_rows("d2", [3], "z"), mode="overwrite", replace_where="day = 'd1'", engine=engine)
    with pytest.raises(lakeio.InvalidArgumentError, match="has no column 'valeu'; did you mean 'value'"):
        lake.read(name, columns=["valeu"], engine=engine).to_arrow()
    with pytest.raises(lakeio.InvalidArgumentError, match="has no column 'dya'"):
        lake.read(name, where="dya = 'd1'", engine=engine).count()

    assert sorted_rows(lake.read(name, engine=engine).to_arrow()) == sorted_rows(original)


# -- Delta: MERGE and time travel ----------------------------------------------------------------

def test_merge_upserts_and_deletes_with_counts(lake, engine):
    lake.write("events", pa.concat_tables([day_rows("d1", [1, 2, 3], "old"), day_rows("d2", [4], "old")]),
               engine=engine)
    changes = pa.table({"id": pa.array([2, 3, 5, 6], pa.int64()), "value": ["new", "gone", "new", "gone"],
                        "day": ["d1", "d1", "d2", "d2"]})

    record = lake.merge("events", changes, on=["id"], delete_when="value = 'gone'", engine=engine)

    assert record.operation == "merge" and record.engine == engine and record.rows == 4
    assert record.extra == {"rows_inserted": 1, "rows_updated": 1, "rows_deleted": 1}
    got = {(r["id"], r["value"]) for r in lake.read("events", engine=engine).to_arrow().to_pylist()}
    assert got == {(1, "old"), (2, "new"), (4, "old"), (5, "new")}

    ignored = lake.merge("events", day_rows("d1", [1, 7], "again"), on="id", when_matched="ignore", engine=engine)
    assert ignored.extra == {"rows_inserted": 1, "rows_updated": 0, "rows_deleted": 0}

    with pytest.raises(lakeio.InvalidArgumentError, match="more than once"):
        lake.merge("events", day_rows("d1", [1, 1], "dup"), on="id", engine=engine)
    with pytest.raises(lakeio.SchemaMismatchError, match="no key column 'key'"):
        lake.merge("events", day_rows("d1", [1], "x"), on="key", engine=engine)
    with pytest.raises(lakeio.StorageError, match="no Delta table to merge into"):
        lake.merge("typed_delta", typed_table(), on="id", engine=engine)
    assert lake.read("events", version=2, engine=engine).count() == 5


def test_time_travel(lake, engine):
    lake.write("events", day_rows("d1", [1], "v0"), engine=engine)
    lake.write("events", day_rows("d1", [2], "v1"), mode="append", engine=engine)

    assert lake.read("events", version=0, engine=engine).to_arrow().column("id").to_pylist() == [1]
    assert sorted(lake.read("events", version=1, engine=engine).to_arrow().column("id").to_pylist()) == [1, 2]


# -- target_file_size ------------------------------------------------------------------------------

TARGET = 256 * 1024


def sized_table(rows: int = 40_000) -> pa.Table:
    """Random values that compress poorly: about four targets' worth of data in every format."""
    import numpy as np

    rng = np.random.default_rng(11)
    return pa.table({"id": np.arange(rows), "x": rng.normal(size=rows),
                     "s": rng.integers(0, 10**6, rows).astype(str), "part": (np.arange(rows) % 2).astype(str)})


def data_file_sizes(lake: lakeio.Catalog, name: str) -> dict[str, list[int]]:
    """The sizes of a dataset's data files (not the Delta log, not hidden files), by folder."""
    from pyarrow import fs as pafs

    from lakeio.config import S3Settings
    from lakeio.storage import Storage

    location = lake.location(name)
    filesystem = Storage(S3Settings()).filesystem(location)
    sizes: dict[str, list[int]] = {}
    for info in filesystem.get_file_info(pafs.FileSelector(location.path, recursive=True)):
        relative = info.path[len(location.path):].strip("/")
        if info.type == pafs.FileType.File and "_delta_log" not in relative \
                and not info.base_name.startswith((".", "_")):
            sizes.setdefault(relative.rpartition("/")[0], []).append(info.size)
    return sizes


@pytest.mark.parametrize("name", ["sized_delta", "sized_parquet", "sized_csv", "sized_json",
                                  "sized_delta_parts", "sized_parquet_parts"])
def test_target_file_size_gives_files_near_the_target(lake, engine, name):
    data = sized_table()
    if name.endswith("_parts"):  # Spark data over many tasks, each with rows of both partitions
        data = compat.create_frame(lake.spark(), data).repartition(8)
    else:
        data = data.drop_columns(["part"])

    record = lake.write(name, data, engine=engine, options={"target_file_size": TARGET})

    sizes = data_file_sizes(lake, name)
    files = [size for folder in sizes.values() for size in folder]
    assert record.files_written == len(files)
    assert len(sizes) == (2 if name.endswith("_parts") else 1)
    assert len(files) >= 3, sizes
    assert max(files) < 1.5 * TARGET, sizes
    for folder in sizes.values():  # each folder: files near the target, but one remainder at most
        assert sum(size < TARGET / 2 for size in folder) <= 1, sizes
    assert lake.read(name, engine=engine).count() == sized_table().num_rows


def test_bad_write_options_are_refused_and_write_nothing(lake, engine):
    lake.write("sized_csv", sized_table(10).drop_columns(["part"]), engine=engine)

    with pytest.raises(lakeio.InvalidArgumentError, match="target_file_size"):
        lake.write("sized_csv", sized_table(10).drop_columns(["part"]), mode="append", engine=engine,
                   options={"target_file_size": "huge"})
    with pytest.raises(lakeio.InvalidArgumentError, match="'compression' applies to parquet and delta only, not csv"):
        lake.write("sized_csv", sized_table(10).drop_columns(["part"]), mode="append", engine=engine,
                   options={"compression": "zstd", "target_file_size": TARGET})
    assert lake.read("sized_csv", engine=engine).count() == 10


# -- CSV and JSON: read with the contract's types, the same options, the same errors -------------------

def put_files(lake: lakeio.Catalog, name: str, files: dict[str, str]) -> list[str]:
    """Writes text files into a dataset's folder as another program would; returns their paths."""
    from lakeio.config import S3Settings
    from lakeio.storage import Storage

    location = lake.location(name)
    filesystem = Storage(S3Settings()).filesystem(location)
    paths = []
    for relative, content in files.items():
        path = f"{location.path}/{relative}"
        filesystem.create_dir(path.rpartition("/")[0], recursive=True)
        with filesystem.open_output_stream(path) as out:
            out.write(content.encode())
        paths.append(path)
    return paths


def utc(*parts) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


NOTES_CSV = """id,amount,at,ok,label,day,score,count,word
1,1.25,2024-01-01T12:00:00Z,true,"a ""quoted"", b",2024-01-02,0.5,7,x
2,,2024-03-01T00:00:00+02:00,false,,,,,
3,-3.5,,1,plain,2024-02-29,-1e3,-2,y
"""
NOTES_JSON = (
    '{"id": 1, "amount": 1.25, "at": "2024-01-01T12:00:00Z", "ok": true, "label": "a \\"q\\"", "score": 0.5, '
    '"count": 7, "local": "2024-01-01 12:00:00", "tags": {"k": 1}}\n'
    '{"id": 2, "amount": null, "at": "2024-03-01 00:00:00", "ok": false, "label": null, "score": null, '
    '"count": null, "local": "2024-01-01T12:00:00+02:00"}\n'
    '{"id": 3, "amount": -3.5, "at": null, "ok": null, "label": "plain", "score": -1000, "count": -2, '
    '"local": null, "tags": {"k": null}}\n'
)
DECLARED = [("id", pa.int64()), ("amount", pa.decimal128(10, 2)), ("at", pa.timestamp("us", "UTC")),
            ("ok", pa.bool_()), ("label", pa.string())]
EXPECTED_TEXT = {
    "notes": (
        pa.schema(DECLARED + [("day", pa.date32()), ("score", pa.float64()), ("count", pa.int64()),
                              ("word", pa.string())]),
        [{"id": 1, "amount": decimal.Decimal("1.25"), "at": utc(2024, 1, 1, 12), "ok": True,
          "label": 'a "quoted", b', "day": dt.date(2024, 1, 2), "score": 0.5, "count": 7, "word": "x"},
         {"id": 2, "amount": None, "at": utc(2024, 2, 29, 22), "ok": False, "label": None, "day": None,
          "score": None, "count": None, "word": None},
         {"id": 3, "amount": decimal.Decimal("-3.50"), "at": None, "ok": True, "label": "plain",
          "day": dt.date(2024, 2, 29), "score": -1000.0, "count": -2, "word": "y"}]),
    "notes_json": (
        pa.schema(DECLARED + [("score", pa.float64()), ("count", pa.int64()), ("local", pa.timestamp("us")),
                              ("tags", pa.struct([("k", pa.int64())]))]),
        [{"id": 1, "amount": decimal.Decimal("1.25"), "at": utc(2024, 1, 1, 12), "ok": True, "label": 'a "q"',
          "score": 0.5, "count": 7, "local": dt.datetime(2024, 1, 1, 12), "tags": {"k": 1}},
         {"id": 2, "amount": None, "at": utc(2024, 3, 1), "ok": False, "label": None, "score": None,
          "count": None, "local": dt.datetime(2024, 1, 1, 10), "tags": None},
         {"id": 3, "amount": decimal.Decimal("-3.50"), "at": None, "ok": None, "label": "plain",
          "score": -1000.0, "count": -2, "local": None, "tags": {"k": None}}]),
}


@pytest.mark.parametrize("name", ["notes", "notes_json"])
def test_text_reads_take_the_contract_types_and_infer_the_rest(lake, engine, name):
    put_files(lake, name, {f"part-0.{lake.format(name)}": NOTES_CSV if name == "notes" else NOTES_JSON})
    schema, rows = EXPECTED_TEXT[name]

    table = lake.read(name, engine=engine).to_arrow()

    assert types_of(table.schema) == types_of(lake.read(name, engine=engine).schema) == types_of(schema)
    assert sorted_rows(table) == rows
    batches = lake.read(name, engine=engine).to_batches().read_all()
    assert types_of(batches.schema) == types_of(schema) and sorted_rows(batches) == rows
    some = lake.read(name, columns=["id", "at"], where="id >= 2", engine=engine)
    assert sorted_rows(some.to_arrow()) == [{"id": r["id"], "at": r["at"]} for r in rows[1:]]
    assert some.count() == 2


def test_partitioned_csv_reads_alike(lake, engine):
    lines = NOTES_CSV.splitlines(keepends=True)
    put_files(lake, "notes_parts", {"part=a/part-0.csv": "".join(lines[:3]), "part=b/part-0.csv": lines[0] + lines[3]})

    table = lake.read("notes_parts", engine=engine).to_arrow()

    schema, rows = EXPECTED_TEXT["notes"]
    assert types_of(table.schema) == types_of(schema) + [("part", pa.string())]
    assert sorted_rows(table) == [{**row, "part": "a" if row["id"] < 3 else "b"} for row in rows]
    assert lake.read("notes_parts", where="part = 'b'", engine=engine).to_arrow().column("id").to_pylist() == [3]


LINES = "1;NA;x;2024-01-01\n2;null;;\n3;;NA;null\n"


@pytest.mark.parametrize("options, schema, rows", [
    ({"header": False, "delimiter": ";", "null_values": ["", "NA", "null"]},
     [("f0", pa.int64()), ("f1", pa.null()), ("f2", pa.string()), ("f3", pa.date32())],
     [(1, None, "x", dt.date(2024, 1, 1)), (2, None, None, None), (3, None, None, None)]),
    ({"header": False, "delimiter": ";", "null_values": ["null"]},
     [("f0", pa.int64()), ("f1", pa.string()), ("f2", pa.string()), ("f3", pa.string())],
     [(1, "NA", "x", "2024-01-01"), (2, None, "", ""), (3, "", "NA", None)]),
], ids=["three-null-values", "one-null-value"])
def test_csv_options_read_alike(lake, engine, options, schema, rows):
    put_files(lake, "lines", {"part-0.csv": LINES})

    table = lake.read("lines", options=options, engine=engine).to_arrow()

    assert types_of(table.schema) == schema
    assert sorted_rows(table, "f0") == [dict(zip(table.schema.names, row)) for row in rows]


def many_lines(format: str, bad: dict) -> str:
    """A text file larger than the block pyarrow infers types from, with one bad row at its end."""
    count = 150_000 if format == "csv" else 60_000  # some 2 MB of each: twice pyarrow's 1 MB block
    rows = [{"id": i, "amount": "2.50", "count": i % 7} for i in range(count)] + [{"id": count, **bad}]
    if format == "csv":
        return "id,amount,count\n" + "".join(f"{r['id']},{r['amount']},{r['count']}\n" for r in rows)
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("name", ["readings", "readings_json"])
@pytest.mark.parametrize("bad, column, value, expected", [
    ({"amount": "1.255", "count": 1}, "amount", "1.255", "decimal(10,2), the type its contract declares"),
    ({"amount": "2.50", "count": "many"}, "count", "many", "int64, the type inferred from the first rows of the files"),
], ids=["declared", "inferred"])
def test_a_bad_text_value_names_file_column_and_value(lake, engine, storage, name, bad, column, value, expected):
    format = lake.format(name)
    _, bad_file = put_files(lake, name, {f"part-0.{format}": many_lines(format, {"amount": "1.50", "count": 3}),
                                            f"part-1.{format}": many_lines(format, bad)})

    with pytest.raises(lakeio.SchemaMismatchError) as caught:
        lake.read(name, engine=engine).to_arrow()

    assert str(caught.value) == (f"dataset {name!r} [{storage}]: file {bad_file}, column {column!r}: "
                                 f"value '{value}' does not read as {expected}")


def text_table() -> pa.Table:
    return pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "label": pa.array(['say "hi", then go', None, "plain"], pa.string()),
        "score": pa.array([0.5, None, -2.25], pa.float64()),
        "at": pa.array([utc(2024, 1, 1, 12), None, utc(1999, 12, 31, 23, 59, 59, 123456)], pa.timestamp("us", "UTC")),
        "day": pa.array([dt.date(2024, 1, 2), dt.date(2024, 2, 29), None], pa.date32()),
    })


@pytest.mark.parametrize("name", ["stamps", "stamps_json"])
@pytest.mark.parametrize("writer", ["arrow", "spark"])
def test_text_written_by_either_engine_reads_alike_on_both(lake, engine, writer, name):
    lake.write(name, text_table(), engine=writer)

    mine = lake.read(name, engine=engine).to_arrow()
    reference = lake.read(name, engine="arrow").to_arrow()

    assert types_of(mine.schema) == types_of(reference.schema) == types_of(text_table().schema)
    assert sorted_rows(mine) == sorted_rows(reference) == sorted_rows(text_table())  # the contract's types
    later = lake.read(name, engine=engine, where="day >= '2024-02-01'", columns=["id", "day"]).to_arrow()
    assert later.to_pylist() == [{"id": 2, "day": dt.date(2024, 2, 29)}]


def kept_table() -> pa.Table:
    """Every type lakeio writes to CSV and JSON, each with a null, in values inference would type
    otherwise (a date-like string, an integer-valued float, a zoned and a naive time)."""
    return pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "i8": pa.array([1, None, -128], pa.int8()),
        "i16": pa.array([None, 2, 32767], pa.int16()),
        "i32": pa.array([1, 2, None], pa.int32()),
        "f32": pa.array([0.5, None, 2.0], pa.float32()),
        "f64": pa.array([1.0, 2.0, None], pa.float64()),
        "amount": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("12345678901234.50")], pa.decimal128(16, 2)),
        "ok": pa.array([True, None, False]),
        "word": pa.array(["2024-01-02", None, "12"], pa.string()),
        "day": pa.array([dt.date(2024, 1, 2), None, dt.date(1999, 12, 31)], pa.date32()),
        "at": pa.array([utc(2024, 1, 2, 3, 4, 5, 123456), None, utc(2000, 1, 1)], pa.timestamp("us", "UTC")),
        "local": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2), None], pa.timestamp("us")),
    })


def test_text_written_without_a_contract_reads_back_as_written_on_every_engine(lake, engine):
    """lakeio's commit records the types it wrote (beside the data, in its commit marker), so a
    CSV or JSON dataset reads back with the types written, whichever engine wrote or reads it."""
    for name in ("kept_csv", "kept_json"):
        for writer in dict.fromkeys(["arrow", engine]):
            lake.write(name, kept_table(), mode="overwrite", engine=writer)
            for reader in dict.fromkeys([engine, "arrow"]):
                table = lake.read(name, engine=reader).to_arrow()
                assert types_of(table.schema) == types_of(kept_table().schema), (name, writer, reader)
                assert sorted_rows(table) == sorted_rows(kept_table()), (name, writer, reader)
        # Filters compare with the types written too.
        assert lake.read(name, engine=engine, where="word = '12' AND day < '2000-01-01'",
                         columns=["id"]).to_arrow().to_pylist() == [{"id": 3}]


@pytest.mark.parametrize("name", ["kept_csv", "kept_json"])
def test_a_text_append_of_other_types_than_written_is_refused(lake, engine, name):
    lake.write(name, kept_table(), engine="arrow")
    changed = kept_table().set_column(3, "i32", pa.array([1, 2, None], pa.int64()))  # inference read both as int64
    stringly = kept_table().set_column(10, "at", pa.array(["2024-01-02T03:04:05Z", None, None]))

    for other, problem in [(changed, "column 'i32' is int64, the dataset has int32"),
                           (stringly, "column 'at' is string, the dataset has timestamp[us, tz=UTC]")]:
        with pytest.raises(lakeio.SchemaMismatchError, match=re.escape(problem)):
            lake.write(name, other, mode="append", engine=engine)
    # A column of nulls only (pandas' None column; Spark cannot write one to text) fits any type.
    lake.write(name, kept_table().set_column(8, "word", pa.nulls(3)), mode="append", engine="arrow")


    table = lake.read(name, engine=engine).to_arrow()
    assert types_of(table.schema) == types_of(kept_table().schema)  # the all-null column's type kept
    assert table.num_rows == 6


@pytest.mark.parametrize("name", ["kept_csv", "kept_json"])
def test_a_text_write_of_a_type_the_format_cannot_carry_is_refused(lake, engine, name):
    raw = kept_table().append_column("raw", pa.array([b"\x00", None, b"ab"], pa.binary()))

    with pytest.raises(lakeio.SchemaMismatchError, match=r"cannot carry the type of column 'raw' \(binary\)"):
        lake.write(name, raw, engine=engine)
    assert not lake.exists(name)


# -- partition folders: one rule for naming and typing them (lakeio.partitions) ------------------

# Values whose folders engines used to name or type differently: a date, digits with leading zeros
# (Spark types them as integers), every character an engine escapes, control characters, non-ASCII,
# Spark's variables, empty and null.
AWKWARD = ["é t'", "a/b", "50%", "x=y", "#h", "c:d", "q\"r", "a*b?", "[1]", "^{~}", "Zürich 日本", "line\nbreak",
           "${spark.app.name}", "", None]
# Filtered on: a quote, a space and non-ASCII; escapes; a control character (Spark readers: the first,
# second and fifth, to keep the test short).
FILTERED = ["é t'", "a/b", "50%", "x=y", "Zürich 日本", "line\nbreak"]
def folders_table() -> pa.Table:
    rows = len(AWKWARD)
    return pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "day": pa.array([dt.date(2024, 1, 1 + i % 3) for i in range(rows)], pa.date32()),
        "code": pa.array([f"{i % 4 * 5:03d}" for i in range(rows)], pa.string()),
        "k": pa.array(AWKWARD, pa.string()),
    })


def folder_record(caplog, frame) -> dict:
    caplog.set_level(logging.INFO, logger="lakeio.io")
    caplog.clear()
    frame.to_arrow()
    return [r.lakeio for r in caplog.records if r.name == "lakeio.io"][-1]


def test_folders_written_by_either_engine_read_alike_on_every_engine(lake, engine, storage, caplog, monkeypatch):
    """Both engines write the same folders, and every engine reads them back as Spark types them:
    ``day`` a date, ``code`` ("005") an int (Spark's inference), ``k`` the strings as written, the
    empty one and null as null; filters on each prune, on Connect without the plugin too."""
    from lakeio.spark.connect import SparkConnectEngine

    monkeypatch.setattr(SparkConnectEngine, "has_plugin", lambda self: False)  # Connect: the client's listing
    expected = folders_table().to_pylist()
    for row in expected:
        row["code"], row["k"] = int(row["code"]), row["k"] or None
    schema = [("id", pa.int64()), ("day", pa.date32()), ("code", pa.int32()), ("k", pa.string())]
    folders = {}
    for writer in dict.fromkeys(["arrow", engine]):
        name = f"folders_{writer}"
        lake.write(name, folders_table(), engine=writer)
        folders[writer] = sorted(data_file_sizes(lake, name))
        for reader in dict.fromkeys(["arrow", engine]):
            table = lake.read(name, engine=reader).to_arrow()
            assert types_of(table.select([n for n, _ in schema]).schema) == schema, (writer, reader)
            assert sorted_rows(table.select([n for n, _ in schema])) == expected, (writer, reader)
            for where, wanted in [([("day", ">=", dt.date(2024, 1, 3))], lambda r: r["day"] >= dt.date(2024, 1, 3)),
                                  ("code = 5", lambda r: r["code"] == 5), ("k IS NULL", lambda r: r["k"] is None),
                                  *[([("k", "=", value)], lambda r, v=value: r["k"] == v)
                                    for value in (FILTERED if reader == "arrow" else FILTERED[:2] + FILTERED[4:5])]]:
                ids = {r["id"] for r in expected if wanted(r)}
                frame = lake.read(name, where=where, engine=reader)
                record = folder_record(caplog, frame)
                assert {r["id"] for r in frame.to_arrow().to_pylist()} == ids, (writer, reader, where)
                read = record["partitions_listed"] if reader != "arrow" else record["files_scanned"]
                assert read == len(ids), (writer, reader, where, record)  # one folder (and file) per row
    # the same folder names, whoever wrote them (data file names aside)
    assert len({tuple(names) for names in folders.values()}) == 1, folders
    assert "day=2024-01-01/code=000/k=é t%27" in folders["arrow"]


def test_an_overwrite_of_partitions_replaces_folders_spelt_the_old_way(lake, engine):
    """Folders pyarrow URI-encoded (as lakeio wrote them before) read as the same values, and a
    partition overwrite replaces them rather than adding a second folder of the same value."""
    import pyarrow.dataset as ds

    from lakeio.config import S3Settings
    from lakeio.storage import Storage

    table = folders_table().filter(pa.compute.field("id") < 2)
    location = lake.location("folders_arrow")
    ds.write_dataset(table, location.path, filesystem=Storage(S3Settings()).filesystem(location), format="parquet",
                     partitioning=["day", "code", "k"],
                     partitioning_flavor="hive")  # pyarrow's own spelling: k=%C3%A9%20t%27
    assert {r["k"] for r in lake.read("folders_arrow", engine="arrow").to_arrow().to_pylist()} == {"é t'", "a/b"}
    lake.write("folders_arrow", folders_table().filter(pa.compute.field("id") == 0), mode="overwrite_partitions",
               engine=engine)
    got = sorted_rows(lake.read("folders_arrow", engine="arrow").to_arrow())
    assert [(r["id"], r["k"]) for r in got] == [(0, "é t'"), (1, "a/b")]


def test_an_overwrite_of_partitions_replaces_folders_of_the_same_value_without_its_leading_zeros(lake, engine):
    """``code=5`` and ``code=005`` are one partition (``code`` reads as the integer 5 on every
    engine), so a partition overwrite of ``005`` replaces ``5`` rather than leaving its rows beside."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from lakeio.config import S3Settings
    from lakeio.storage import Storage

    written = folders_table().filter(pc.field("id") < 2)
    old = written.set_column(2, "code", pc.utf8_ltrim(written["code"], "0"))  # "" for 0: the null partition
    location = lake.location("folders_arrow")
    ds.write_dataset(old.set_column(2, "code", pc.if_else(pc.equal(old["code"], ""), "00", old["code"])),
                     location.path, filesystem=Storage(S3Settings()).filesystem(location), format="parquet",
                     partitioning=["day", "code", "k"], partitioning_flavor="hive")
    assert "code=5" in "".join(data_file_sizes(lake, "folders_arrow"))
    lake.write("folders_arrow", written, mode="overwrite_partitions", engine=engine)
    got = sorted_rows(lake.read("folders_arrow", engine="arrow").to_arrow())
    assert [(r["id"], r["code"]) for r in got] == [(0, 0), (1, 5)]  # each row once: the old folders went
    assert not any("code=5/" in folder or "code=00/" in folder for folder in data_file_sizes(lake, "folders_arrow"))


# Parquet on both storages; Delta and JSON (the same checks, before any format's write) locally, and Spark
# Connect (the classic engine's check, through its client) for Parquet locally: CI's budget
@pytest.mark.parametrize(("name", "storage", "engine_mode"), [
    *[(name, storage, engine_mode) for engine_mode in ("arrow", "spark")
      for name, storage in [("folders_arrow", "local"), ("folders_arrow", "s3"), ("folders_delta", "local"),
                            ("folders_json", "local")]],
    pytest.param("folders_arrow", "local", "connect", marks=pytest.mark.connect)], indirect=["storage", "engine_mode"])
def test_partition_values_no_folder_can_name_are_refused_and_change_nothing(lake, engine, name):
    """A binary partition column, a value whose folder name is past 255 bytes (what local file
    systems and HDFS take; S3 would, but a copy of the dataset could not) and a timestamp of
    nanoseconds (a folder would truncate it) are refused on every engine, for Parquet, JSON and
    Delta (whose writers make hive folders too), naming the dataset once, the column and value;
    the dataset keeps what it had."""
    import pyarrow.compute as pc

    first = folders_table().filter(pc.field("id") < 2)
    lake.write(name, first, mode="overwrite", engine="arrow")
    before = sorted_rows(lake.read(name, engine="arrow").to_arrow())
    bad = folders_table().filter(pc.field("id") == 2)
    refused = [(bad.set_column(3, "k", pa.array([b"\x00\xff"], pa.binary())),
                lakeio.SchemaMismatchError, r"partition column\(s\) k \(binary\) cannot name folders"),
               (bad.set_column(3, "k", pa.array(["x" * 300])), lakeio.InvalidArgumentError,
                r"partition column 'k': value 'x+'\.\.\. makes a folder name longer than 255 bytes"),
               (bad.set_column(1, "day", pa.array([1_700_000_000_123_456_789], pa.timestamp("ns", "UTC"))),
                lakeio.InvalidArgumentError, r"column 'day': value 2023-11-14 22:13:20.123456789.* "
                                             r"has nanoseconds")]
    for data, error, message in refused:
        with pytest.raises(error, match=message) as refusal:
            lake.write(name, data, mode="append", engine=engine)
        assert str(refusal.value).count(f"dataset {name!r}") == 1
        assert sorted_rows(lake.read(name, engine="arrow").to_arrow()) == before
    # Spark frames: the folder's bytes as Spark escapes them (one check before any format's write:
    # each kind of value on Parquet, one on the others)
    for value in ["x" * 300, "/" * 90, "é" * 130] if name == "folders_arrow" else ["/" * 90]:
        frame = compat.create_frame(lake.spark(), bad.set_column(3, "k", pa.array([value])))
        with pytest.raises(lakeio.InvalidArgumentError, match=rf"dataset {name!r}.*: partition column 'k': value "
                                                              rf"{re.escape(repr(value[:40]))}\.\.\. makes a folder name "
                                                              r"longer than 255 bytes"):
            lake.write(name, frame, mode="append", engine=engine)
        assert sorted_rows(lake.read(name, engine="arrow").to_arrow()) == before
    lake.write(name, compat.create_frame(lake.spark(), bad.set_column(3, "k", pa.array(["/" * 84]))), mode="append",
               engine=engine)  # 252 bytes, with "k=": as long as a folder name can be
    after = sorted_rows(lake.read(name, engine="arrow").to_arrow())
    assert [row for row in after if row not in before] == [{**after[-1], "id": 2, "k": "/" * 84}]
    before = after
    if engine == "arrow":  # a stream is checked as it passes: refused as well, the dataset unchanged
        long = bad.set_column(3, "k", pa.array(["x" * 300]))
        with pytest.raises(lakeio.InvalidArgumentError, match=r"longer than 255 bytes"):
            lake.write(name, pa.RecordBatchReader.from_batches(long.schema, long.to_batches()), mode="append",
                       engine=engine)
        assert sorted_rows(lake.read(name, engine="arrow").to_arrow()) == before


def test_folders_spelt_the_old_way_read_alike_or_are_refused(lake, engine, engine_mode, monkeypatch):
    """Folders pyarrow spelt (``city=Z%C3%BCrich``: URI-encoded UTF-8, as ``pq.write_to_dataset``
    and older lakeio wrote them) read as their text through lakeio's listing on every engine, and a
    filter matches them; a Spark read that lists them itself (CSV; Connect without the plugin)
    is refused, naming the folder and how to rewrite it. Never mojibake."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from lakeio.config import S3Settings
    from lakeio.errors import StorageError
    from lakeio.spark.connect import SparkConnectEngine
    from lakeio.storage import Storage

    table = pa.table({"id": pa.array([0, 1, 2], pa.int64()), "city": ["Zürich", "日本 x", "plain"]})
    filesystem = Storage(S3Settings()).filesystem(lake.location("spelt_parquet"))
    pq.write_to_dataset(table, lake.location("spelt_parquet").path, partition_cols=["city"], filesystem=filesystem)
    ds.write_dataset(table, lake.location("spelt_csv").path, filesystem=filesystem, format="csv",
                     partitioning=["city"], partitioning_flavor="hive")
    assert "city=Z%C3%BCrich" in data_file_sizes(lake, "spelt_parquet")
    for plugin in [True, False] if engine_mode == "connect" else [None]:
        if plugin is not None:
            monkeypatch.setattr(SparkConnectEngine, "has_plugin", lambda self, plugin=plugin: plugin)
        if plugin is False:  # the client's listing gives Spark the folders to read itself
            with pytest.raises(StorageError, match="folder 'city=%.*spelt as pyarrow spells non-ASCII.*engine='arrow'"):
                lake.read("spelt_parquet", engine=engine).to_spark().collect()
            continue
        got = lake.read("spelt_parquet", engine=engine).to_arrow()
        assert sorted_rows(got.select(["id", "city"])) == sorted_rows(table), plugin
        if engine != "arrow":
            theirs = compat.to_arrow(lake.read("spelt_parquet", engine=engine).to_spark())
            assert sorted_rows(theirs.select(["id", "city"])) == sorted_rows(table), plugin
        filtered = lake.read("spelt_parquet", where="city = 'Zürich'", engine=engine).to_arrow()
        assert filtered.column("id").to_pylist() == [0], plugin
    csv = lake.read("spelt_csv", engine=engine)
    if engine == "arrow":
        assert sorted((r["id"], r["city"]) for r in csv.to_arrow().to_pylist()) == [(0, "Zürich"), (1, "日本 x"),
                                                                                   (2, "plain")]
    else:
        with pytest.raises(StorageError, match="folder 'city=%.*read its value as '.*', not '(Zürich|日本 x)'"):
            csv.to_arrow()


# Folder values of one partition column each (a case of several: the column's folders); lakeio's
# rule must type and read them as real Spark does.
SPARK_CASES = [
    ("1", "2"), ("007", "010"), ("+5", "-3"), ("1", "9999999999"), ("1", "123456789012345678901"), ("1e5",),
    ("1.5e1",), ("1.",), ("9" * 38,), ("9" * 39,), ("1", "1e5"), ("1.5", "2"), ("-Infinity", "1"), ("1.5d",),
    ("0x1p3",), (" 5",), ("2024-01-01", "2024-01-02"), ("2024-1-5",), ("2024-02-30",),
    ("2024-01-01 10%3A00%3A00", "2024-01-02 00%3A00%3A00.5"), ("2024-01-01", "2024-01-01 10%3A00%3A00"),
    ("2024-01-01T10%3A00%3A00",), ("2024-01-01 10%3A00%3A00.1234567",), ("2024-01-01 10%3A00%3A00.25",),
    ("2024-01-01 10%3A00%3A00.123456", "2024-01-01 10%3A00%3A00.1"), ("2024-01-01", "5"), ("9999999999", "1.5"),
    ("1e5", "1.5"), ("true", "false"), ("1_000",), ("__HIVE_DEFAULT_PARTITION__", "7"), ("é t%27", "a%2Fb"),
]


def test_partition_typing_is_sparks(spark, tmp_path):
    """One table whose column ``c<i>`` has the folders of case i, read by Spark's partition discovery
    and by lakeio's rule: the same type and the same values for every column."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from pyarrow import fs

    from lakeio.files import partitioned_dataset
    from lakeio.storage import Location

    for leaf in range(max(len(case) for case in SPARK_CASES)):
        folder = tmp_path.joinpath(*(f"c{i}={case[min(leaf, len(case) - 1)]}" for i, case in enumerate(SPARK_CASES)))
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"id": [leaf]}), folder / "part-0.parquet")
    theirs = compat.to_arrow(spark.read.parquet(f"file:{tmp_path}")).sort_by("id")
    mine = partitioned_dataset(fs.LocalFileSystem(), Location("file", str(tmp_path)), ds.ParquetFileFormat(),
                               {})[0].to_table().sort_by("id")
    for i, case in enumerate(SPARK_CASES):
        column = f"c{i}"
        assert mine.schema.field(column).type == theirs.schema.field(column).type, case
        assert [str(v) for v in mine.column(column).to_pylist()] == \
            [str(v) for v in theirs.column(column).to_pylist()], case


def test_a_declared_partition_type_wins_on_every_engine(lake, engine):
    """A contract declaring ``code`` a string keeps its folders' leading zeros (``code=005``), on
    every engine, whoever wrote them."""
    table = folders_table().select(["id", "day", "code"])
    for writer in dict.fromkeys(["arrow", engine]):
        lake.write(f"codes_{writer}", table, engine=writer)
        for reader in dict.fromkeys(["arrow", engine]):
            got = lake.read(f"codes_{writer}", engine=reader).to_arrow()
            assert got.schema.field("code").type == pa.string(), (writer, reader)
            assert sorted_rows(got.select(["id", "day", "code"])) == sorted_rows(table), (writer, reader)
            filtered = lake.read(f"codes_{writer}", where="code = '005'", engine=reader).to_arrow()
            assert sorted(filtered.column("id").to_pylist()) == [1, 5, 9, 13], (writer, reader)


# Partition columns of the declared kinds Spark would infer otherwise (``true`` a string, ``1.50`` a
# double, a timestamp in its own zone rule), each row a folder of its own.
KINDS = {"flag": pa.bool_(), "price": pa.decimal128(10, 2), "score": pa.float64(), "at": pa.timestamp("us", "UTC")}


def kinds_table() -> pa.Table:
    return pa.table({
        "id": pa.array(range(6), pa.int64()),
        "flag": pa.array([True, False] * 3, pa.bool_()),
        "price": pa.array([decimal.Decimal(v) for v in ("1.50", "2.25", "1.50", "10.00", "0.10", "2.25")],
                          pa.decimal128(10, 2)),
        "score": pa.array([0.5, 1.5, 2.5, 1e10, -1.0, 0.5], pa.float64()),
        "at": pa.array([utc(2024, 1, 2, 3, 4, 5), utc(2024, 1, 3), utc(2024, 1, 3, 0, 0, 0, 500000),
                        utc(2024, 1, 4, 23, 59, 59), utc(2024, 1, 2, 3, 4, 5), utc(2023, 12, 31)],
                       pa.timestamp("us", "UTC")),
    })


@pytest.mark.parametrize("format", ["parquet", "csv", "json", "delta"])
def test_declared_partition_kinds_type_the_columns_on_every_engine(lake, engine, engine_mode, format, caplog,
                                                                   monkeypatch):
    """A contract's boolean, decimal, double and timestamp partition columns, written by either
    engine, read back as those types and values on every engine (Connect: with the plugin and with
    the client's listing), and a filter on each prunes Parquet folders."""
    from lakeio.spark.connect import SparkConnectEngine

    name = f"kinds_{format}"
    expected = sorted_rows(kinds_table())
    schema = [("id", pa.int64()), *KINDS.items()]
    filters = [("flag = true", lambda r: r["flag"]), ("price = 1.5", lambda r: r["price"] == decimal.Decimal("1.50")),
               ("score > 1.0", lambda r: r["score"] > 1),
               ([("at", ">=", utc(2024, 1, 3))], lambda r: r["at"] >= utc(2024, 1, 3))]
    listings = [True, False] if engine_mode == "connect" else [None]  # Connect: the plugin, the client's listing
    for writer in dict.fromkeys(["arrow", engine]):
        lake.write(name, kinds_table(), mode="overwrite", engine=writer)
        for reader in dict.fromkeys(["arrow", engine]):
            for plugin in listings if reader == engine else [None]:
                if plugin is not None:
                    monkeypatch.setattr(SparkConnectEngine, "has_plugin", lambda self, plugin=plugin: plugin)
                table = lake.read(name, engine=reader).to_arrow()
                assert types_of(table.select([n for n, _ in schema]).schema) == schema, (writer, reader, plugin)
                assert sorted_rows(table.select([n for n, _ in schema])) == expected, (writer, reader, plugin)
                if reader != "arrow":  # Spark's own frame, not only the rows handed to Arrow
                    theirs = compat.to_arrow(lake.read(name, engine=reader).to_spark())
                    assert types_of(theirs.select([n for n, _ in schema]).schema) == schema, (writer, plugin)
                    assert sorted_rows(theirs.select([n for n, _ in schema])) == expected, (writer, plugin)
                for where, wanted in filters:
                    ids = {r["id"] for r in expected if wanted(r)}
                    frame = lake.read(name, where=where, engine=reader)
                    record = folder_record(caplog, frame)
                    assert {r["id"] for r in frame.to_arrow().to_pylist()} == ids, (writer, reader, plugin, where)
                    if format == "parquet":  # one folder (and file) per row
                        read = record["partitions_listed"] if reader != "arrow" else record["files_scanned"]
                        assert read == len(ids), (writer, reader, plugin, where, record)

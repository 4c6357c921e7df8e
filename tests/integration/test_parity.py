"""Parity: one test body per behaviour, run on both engines, on local files and on the S3 server.

Each test writes and reads through ``engine`` only, and compares against what the Arrow engine (the
reference) and plain pyarrow say, so the two engines give the same rows, the same Arrow schema and
the same errors for the same bad input.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pandas as pd
import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

import lakeio

ENGINES = ["arrow", "spark"]
STORAGES = ["local", "s3"]
UTC = dt.timezone.utc


@pytest.fixture(params=STORAGES)
def storage(request):
    return request.param


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture
def lake(tmp_path, storage, spark, s3_endpoint) -> lakeio.Catalog:
    """A catalog whose datasets live under a fresh prefix of ``storage``."""
    root = str(tmp_path / "data") if storage == "local" else f"s3://lakeio-test/parity/{uuid.uuid4().hex[:10]}"
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "lakeio.yaml").write_text(f"environments: {{{storage}: {{engine: auto}}}}\n")
    datasets = {
        "typed_delta": ("delta", ["part_s", "part_i"]),
        "typed_parquet": ("parquet", ["part_s", "part_i"]),
        "events": ("delta", ["day"]),
        "events_parquet": ("parquet", ["day"]),
        "notes": ("csv", []),
    }
    (conf / "parity.yaml").write_text("".join(
        f"{name}: {{format: {format}, partition_by: {partition_by}, "
        f"environments: {{{storage}: {{uri: '{root}/{name}'}}}}}}\n"
        for name, (format, partition_by) in datasets.items()))
    return lakeio.Catalog.load(conf, env=storage)


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

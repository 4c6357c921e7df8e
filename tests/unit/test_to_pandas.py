"""``to_pandas()`` converts a few columns at a time (:mod:`lakeio.conversion`) and must still give
the frame ``table.to_pandas()`` gives: dtypes, values, index, column labels and order, ``attrs``,
and the same layout of pandas blocks.

The conversion is compared with pyarrow's own on tables of every type (several chunks, nulls in some
chunks only, pandas metadata), then end to end on Parquet and Delta files read by the Arrow engine.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake
from pandas.testing import assert_frame_equal

from lakeio import Catalog, DataQualityError, conversion
from lakeio.conversion import arrow_to_pandas

PARIS = "Europe/Paris"


def assert_same_frame(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal values with exactly the same dtypes, index and column labels (types included), and attrs."""
    assert_frame_equal(actual, expected, check_exact=True, check_index_type=True, check_column_type=True)
    assert actual.attrs == expected.attrs


def converted(table: pa.Table) -> pd.DataFrame:
    return arrow_to_pandas(lambda: table)


def chunked(table: pa.Table, rows_per_chunk: int) -> pa.Table:
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows_per_chunk), schema=table.schema)


def typed_table() -> pa.Table:
    """Six rows of every type the conversion must agree on; split in chunks of two rows, the nulls
    of ``late_null_*`` are in the last chunk only (the dtype is decided over the whole column)."""
    def ts(unit, tz=None):
        values = [dt.datetime(2024, 1, 1, 12, 30), None, dt.datetime(1999, 12, 31, 23, 59, 59),
                  dt.datetime(2024, 2, 29), dt.datetime(1970, 1, 1), dt.datetime(2038, 1, 19, 3, 14, 7)]
        return pa.array(values, pa.timestamp(unit, tz))

    return pa.table({
        "i8": pa.array([-128, 127, 0, 1, -1, 5], pa.int8()),
        "i16": pa.array([-32768, 32767, 0, 1, -1, 5], pa.int16()),
        "i32": pa.array([-2**31, 2**31 - 1, 0, 1, -1, 5], pa.int32()),
        "i64": pa.array([-2**63, 2**63 - 1, 0, 2**53 + 1, -1, 5], pa.int64()),
        "u8": pa.array([0, 255, 1, 2, 3, 4], pa.uint8()),
        "u16": pa.array([0, 65535, 1, 2, 3, 4], pa.uint16()),
        "u32": pa.array([0, 2**32 - 1, 1, 2, 3, 4], pa.uint32()),
        "u64": pa.array([0, 2**64 - 1, 1, 2, 3, 4], pa.uint64()),
        "i32_nulls": pa.array([1, None, 3, None, 5, 6], pa.int32()),
        "u64_nulls": pa.array([2**64 - 1, None, 0, 1, 2, 3], pa.uint64()),
        "late_null_i64": pa.array([2**53 + 1, 2, 3, 4, 5, None], pa.int64()),
        "late_null_f32": pa.array([1.5, 2.5, 3.5, 4.5, 5.5, None], pa.float32()),
        "all_null_i64": pa.array([None] * 6, pa.int64()),
        "f16": pa.array(np.array([0.5, -1.0, 2.0, 65504.0, 0.0, 3.0], np.float16), pa.float16()),
        "f32": pa.array([1.5, float("nan"), None, float("inf"), -0.0, 3.25], pa.float32()),
        "f64": pa.array([1e-300, float("nan"), None, float("-inf"), -0.0, 0.1], pa.float64()),
        "flag": pa.array([True, False, True, True, False, False]),
        "flag_nulls": pa.array([True, None, False, True, None, False]),
        "text": pa.array(["ann", None, "cé", "", "ann", "日本"]),
        "large_text": pa.array(["a", "b", None, "d", "e", "f"], pa.large_string()),
        "text_view": pa.array(["a", None, "c", "d", "e", "f"], pa.string_view()),
        "raw": pa.array([b"\x00", None, b"ab", b"", b"z", b"\xff"], pa.binary()),
        "day": pa.array([dt.date(2024, 1, 1), None, dt.date(1, 1, 1), dt.date(9999, 12, 31),
                         dt.date(2024, 2, 29), dt.date(1970, 1, 1)], pa.date32()),
        "day64": pa.array([dt.date(2024, 1, 1), None, dt.date(2000, 1, 1), dt.date(2024, 2, 29),
                           dt.date(1970, 1, 1), dt.date(1999, 1, 1)], pa.date64()),
        "ts_s": ts("s"),
        "ts_ms": ts("ms"),
        "ts_us": ts("us"),
        "ts_ns": ts("ns"),
        "ts_utc": ts("us", "UTC"),
        "ts_utc_again": ts("us", "UTC"),
        "ts_paris": ts("ns", PARIS),
        "clock": pa.array([dt.time(12, 30), None, dt.time(0), dt.time(23, 59, 59, 999999), dt.time(1),
                           dt.time(2)], pa.time64("us")),
        "wait": pa.array([dt.timedelta(seconds=1), None, dt.timedelta(days=-1), dt.timedelta(0),
                          dt.timedelta(microseconds=1), dt.timedelta(hours=5)], pa.duration("us")),
        "amount": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50"), decimal.Decimal("0.00"),
                            decimal.Decimal("99999999.99"), decimal.Decimal("0.01")], pa.decimal128(10, 2)),
        "big_amount": pa.array([decimal.Decimal("1." + "0" * 30), None, decimal.Decimal(0), decimal.Decimal(1),
                                decimal.Decimal(-1), decimal.Decimal(2)], pa.decimal256(40, 30)),
        "ids": pa.array([[1, 2], None, [], [None], [3], [4, 5, 6]], pa.list_(pa.int64())),
        "point": pa.array([{"x": 1, "label": "a"}, None, {"x": None, "label": None}, {"x": 2, "label": "b"},
                           {"x": 3, "label": "c"}, {"x": 4, "label": "d"}],
                          pa.struct([("x", pa.int64()), ("label", pa.string())])),
        "tags": pa.array([[("a", 1)], None, [], [("b", 2), ("c", None)], [("d", 4)], [("e", 5)]],
                         pa.map_(pa.string(), pa.int32())),
        "nothing": pa.nulls(6),
    })


def dictionary_table() -> pa.Table:
    """A dictionary column whose three chunks each have their own dictionary (as files do)."""
    chunks = [pa.DictionaryArray.from_arrays(pa.array(indices, pa.int8()), pa.array(values))
              for indices, values in (([0, 1, None], ["UA", "AA"]), ([0, 0], ["DL"]), ([1, 0], ["AA", "B6"]))]
    return pa.table({"carrier": pa.chunked_array(chunks), "n": pa.chunked_array([[1, 2, 3], [4, 5], [6, 7]])})


@pytest.mark.parametrize("rows_per_chunk", [6, 2, 1])
@pytest.mark.parametrize("release_bytes", [conversion._RELEASE_BYTES, 1], ids=["runs", "one-by-one"])
def test_every_type_converts_as_pyarrow_converts_it(monkeypatch, rows_per_chunk, release_bytes):
    """Small columns go to pyarrow in runs; with a tiny release size, one column per call and a
    release after every chunk copied."""
    monkeypatch.setattr(conversion, "_RELEASE_BYTES", release_bytes)
    table = chunked(typed_table(), rows_per_chunk)
    assert_same_frame(converted(table), table.to_pandas())


@pytest.mark.parametrize("table", [
    pytest.param(dictionary_table(), id="dictionaries-per-chunk"),
    pytest.param(typed_table().slice(0, 0), id="no-rows"),
    pytest.param(typed_table().select([]), id="no-columns"),
    pytest.param(pa.table({}), id="nothing"),
    pytest.param(pa.table({"n": pa.chunked_array([], pa.int64()), "s": pa.chunked_array([], pa.string())}),
                 id="no-chunks"),
    pytest.param(pa.Table.from_arrays([pa.array([1, 2]), pa.array(["a", "b"]), pa.array([1.5, None])],
                                      names=["same", "same", "other"]), id="repeated-names"),
    pytest.param(typed_table().slice(1, 3), id="sliced"),
])
def test_edge_tables_convert_as_pyarrow_converts_them(table):
    assert_same_frame(converted(table), table.to_pandas())


def pandas_frames() -> dict[str, pd.DataFrame]:
    """Frames whose pandas metadata decides the index, column labels and dtypes on the way back."""
    base = pd.DataFrame({"a": [3, 1, 2], "b": ["x", None, "z"], "c": [0.5, np.nan, 1.5]})
    labelled = base.set_axis(pd.Index([10, 20, 30], name="key"))
    columns = pd.MultiIndex.from_tuples([("m", 1), ("m", 2), ("n", 1)], names=["group", "level"])
    extension = pd.DataFrame({
        "Int64": pd.array([1, None, 3], dtype="Int64"),
        "Float64": pd.array([0.5, None, 1.5], dtype="Float64"),
        "boolean": pd.array([True, None, False], dtype="boolean"),
        "string": pd.array(["a", None, "c"], dtype="string"),
        "category": pd.Categorical(["lo", "hi", None], categories=["lo", "hi"], ordered=True),
        "aware": pd.to_datetime(["2024-01-01 12:00", None, "2024-03-31 03:30"]).tz_localize(PARIS),
    })
    with_attrs = base.copy()
    with_attrs.attrs = {"source": "unit test", "version": 2}
    return {
        "range-index": base.set_axis(pd.RangeIndex(start=5, stop=11, step=2, name="row")),
        "stored-index": labelled,
        "unnamed-stored-index": base.set_axis(pd.Index(["p", "q", "r"])),
        "multi-index": base.set_index(["a", "b"]),
        "multi-columns": base.set_axis(columns, axis=1),
        "integer-labels": base.set_axis([7, 8, 9], axis=1).rename_axis(columns="field"),
        "extension-dtypes": extension,
        "attrs": with_attrs,
    }


@pytest.mark.parametrize("name", list(pandas_frames()))
def test_pandas_metadata_is_honoured_as_pyarrow_honours_it(name):
    table = chunked(pa.Table.from_pandas(pandas_frames()[name]), 2)
    expected = table.to_pandas()
    assert_same_frame(converted(table), expected)
    assert_same_frame(expected, pandas_frames()[name])  # so the metadata did shape the frame


def block_layout(frame: pd.DataFrame) -> list[tuple[str, list[int]]]:
    """The frame's pandas blocks: each one's dtype and the positions of its columns."""
    return sorted((str(block.dtype), block.mgr_locs.as_array.tolist()) for block in frame._mgr.blocks)


@pytest.mark.parametrize("table", [
    pytest.param(chunked(typed_table(), 2), id="every-type"),
    pytest.param(chunked(pa.Table.from_pandas(pandas_frames()["extension-dtypes"]), 2), id="extension-dtypes"),
    pytest.param(pa.table({"a": [1.5, 2.5], "b": [1, 2], "c": ["x", "y"], "d": [3.5, None], "e": [3, None]}),
                 id="interleaved-dtypes"),
])
def test_blocks_are_pyarrows_one_per_dtype(table):
    """pandas copies a frame of one block per column again to consolidate it (in ``copy()``,
    ``assign()``, arithmetic): the frame has pyarrow's layout instead."""
    assert block_layout(converted(table)) == block_layout(table.to_pandas())


def test_numbers_of_one_dtype_make_one_array():
    frame = converted(chunked(pa.table({"a": [1.5, 2.5, 3.5], "b": [4, None, 6], "c": [7.5, 8.5, None]}), 2))
    matrix = frame.to_numpy()
    assert np.shares_memory(matrix, frame["a"].to_numpy())  # no copy: the frame is one float64 block
    assert matrix.tolist()[0] == [1.5, 4.0, 7.5]


def test_metadata_dtype_that_no_longer_fits_the_data_is_left_to_pyarrow():
    """An int64 column recorded by pandas that now has nulls comes back as float64, as pyarrow says."""
    table = pa.Table.from_pandas(pd.DataFrame({"a": [1, 2, 3]}), preserve_index=False)
    table = table.set_column(0, "a", pa.array([1, None, 3], pa.int64()))
    frame = converted(table)
    assert frame["a"].dtype == np.float64
    assert_same_frame(frame, table.to_pandas())


def test_frame_is_writable_and_leaves_the_table_alone():
    """Like pyarrow's default conversion (and unlike its zero-copy ``split_blocks``), every column
    is a writable copy."""
    table = chunked(pa.table({"n": pa.array([1, 2, 3, 4]), "x": pa.array([0.5, None, 1.5, 2.5]),
                              "s": pa.array(["a", "b", "c", "d"])}), 4)
    frame = converted(table)
    frame.loc[0, "n"] = 10
    frame.loc[1, "x"] = 9.5
    frame.loc[2, "s"] = "z"
    assert frame.to_dict("list") == {"n": [10, 2, 3, 4], "x": [0.5, 9.5, 1.5, 2.5], "s": ["a", "b", "z", "d"]}
    assert table.column("n").to_pylist() == [1, 2, 3, 4]  # the table is left as it was


def test_nothing_of_the_table_stays_allocated():
    """Numbers are copied out of the table and text is converted with ``self_destruct``: once the
    frame is built, the Arrow memory left is the frame's number blocks (taken from Arrow's pool, as
    pyarrow's own frame takes them), none of the table's."""
    before = pa.total_allocated_bytes()
    frame = arrow_to_pandas(lambda: chunked(pa.table({
        "n": pa.array(np.arange(1_000_000)), "x": pa.array(np.linspace(0, 1, 1_000_000)),
        "s": pa.array(np.arange(1_000_000).astype(str))}), 100_000))
    assert len(frame) == 1_000_000
    assert pa.total_allocated_bytes() - before == frame["n"].nbytes + frame["x"].nbytes
    del frame
    assert pa.total_allocated_bytes() == before


# -- end to end: files read by the Arrow engine ------------------------------------------------------

RESOURCES = """
typed: {format: parquet, environments: {local: {uri: data/typed}}}
from_pandas: {format: parquet, environments: {local: {uri: data/from_pandas}}}
delta: {format: delta, environments: {local: {uri: data/delta}}}
checked:
  format: parquet
  schema: schemas/checked.yaml
  environments: {local: {uri: data/typed}}
"""

CONTRACT = """
extra_columns: allow
columns:
  i64: {type: int64, checks: [{greater_than: 0}]}
"""


@pytest.fixture
def lake(tmp_path, write_yaml):
    """Parquet files of the typed table (three files, so three chunks or more), Parquet written by
    pandas (index and extension dtypes in its metadata), and a Delta table of two commits."""
    write_yaml("conf/datasets.yaml", RESOURCES)
    write_yaml("conf/schemas/checked.yaml", CONTRACT)
    typed = typed_table().drop_columns(["text_view"])  # Parquet stores string views as strings
    (tmp_path / "data" / "typed").mkdir(parents=True)
    for part in range(3):
        pq.write_table(typed.slice(2 * part, 2), tmp_path / "data" / "typed" / f"part-{part}.parquet")
    (tmp_path / "data" / "from_pandas").mkdir(parents=True)
    pandas_frames()["extension-dtypes"].set_axis(pd.Index([4, 5, 6], name="key")).to_parquet(
        tmp_path / "data" / "from_pandas" / "part-0.parquet")
    delta = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "score": pa.array([0.5, None, 2.0]),
                      "name": pa.array(["a", None, "c"]), "at": pa.array([1, 2, None], pa.timestamp("us", "UTC"))})
    write_deltalake(str(tmp_path / "data" / "delta"), delta)
    write_deltalake(str(tmp_path / "data" / "delta"), delta, mode="append")
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)


@pytest.mark.parametrize("name, columns, where", [
    ("typed", None, None),
    ("typed", ["ts_paris", "i64", "amount", "day"], "i64 > 0"),
    ("typed", None, "i64 > 2"),  # rows from some files only
    ("typed", None, "i64 < -2147483649"),  # no rows at all
    ("typed", [], None),  # no columns
    ("from_pandas", None, None),
    ("delta", None, None),
    ("delta", ["name", "score"], "id >= 2"),
])
def test_read_to_pandas_is_the_arrow_tables_frame(lake, name, columns, where):
    frame = lake.read(name, columns=columns, where=where)
    assert_same_frame(frame.to_pandas(), frame.to_arrow().to_pandas())


def test_pandas_written_files_come_back_as_written(lake):
    expected = pandas_frames()["extension-dtypes"].set_axis(pd.Index([4, 5, 6], name="key"))
    assert_same_frame(lake.read("from_pandas").to_pandas(), expected)


def test_to_pandas_logs_one_read_record(lake, io_records):
    frame = lake.read("typed").to_pandas()
    (record,) = io_records("read", "typed")
    assert record["rows"] == len(frame) == 6
    assert record["bytes"] > 0


def test_to_pandas_runs_the_contract_before_converting(lake, io_records):
    with pytest.raises(DataQualityError) as caught:
        lake.read("checked").to_pandas()
    assert "greater_than" in str(caught.value) and "i64" in str(caught.value)
    assert io_records("read", "checked") == []  # a read refused by its contract hands nothing out
    frame = lake.read("checked", where="i64 > 0").to_pandas()  # filtered: only the rows that pass
    assert sorted(frame["i64"]) == [5, 2**53 + 1, 2**63 - 1]
    (record,) = io_records("read", "checked")
    assert record["rows"] == 3


def _wide_catalog(tmp_path, write_yaml) -> str:
    """A 4M-row Parquet dataset ``wide`` of five integer columns and a string one; its conf folder."""
    rows, uri = 4_000_000, tmp_path / "wide.parquet"
    pq.write_table(pa.table({f"n{i}": pa.array(np.arange(rows) * (i + 1)) for i in range(5)}
                            | {"s": pa.array(np.arange(rows) % 1000).cast(pa.string())}),
                   uri, row_group_size=1_000_000)
    write_yaml("conf/wide.yaml", f"wide: {{format: parquet, environments: {{local: {{uri: '{uri}'}}}}}}")
    return str(tmp_path / "conf")


_RSS = """
import json, lakeio
from lakeio.conversion import arrow_to_pandas

def rss(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key))

def reset_peak():  # the peak RSS starts again from here
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
"""


def _measured(script: str) -> dict:
    import subprocess

    done = subprocess.run([sys.executable, "-c", _RSS + script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads and resets the peak RSS in /proc")
def test_conversion_adds_a_fraction_of_a_frame_to_the_read(tmp_path, write_yaml):
    """In a fresh process, converting a scanned table to pandas raises the peak RSS above what the
    read left by a fraction of the frame (and the freed memory not yet handed back, at most
    ``_RELEASE_BYTES``); converting it in one ``to_pandas`` call adds a whole frame."""
    measured = _measured(f"""
def read():
    table = lakeio.Catalog.load({_wide_catalog(tmp_path, write_yaml)!r}, env="local").read("wide").to_arrow()
    reset_peak()  # what the read left
    global read_left
    read_left = rss("VmRSS")
    return table

frame = arrow_to_pandas(read)
print(json.dumps({{"added": rss("VmHWM") - read_left, "frame": int(frame.memory_usage(deep=False).sum())}}))
""")
    assert measured["added"] < 0.25 * measured["frame"] + conversion._RELEASE_BYTES, measured


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak RSS in /proc")
def test_a_second_to_pandas_peaks_no_higher_than_the_first(tmp_path, write_yaml):
    """The pages the first frame freed do not sit beside the second read's: a notebook converting
    again (the frame dropped first) peaks where the first conversion did, not a third higher."""
    measured = _measured(f"""
lake = lakeio.Catalog.load({_wide_catalog(tmp_path, write_yaml)!r}, env="local")
frame = lake.read("wide").to_pandas()
first = rss("VmHWM")
frame = None
frame = lake.read("wide").to_pandas()
print(json.dumps({{"first": first, "second": rss("VmHWM"), "frame": int(frame.memory_usage(deep=False).sum())}}))
""")
    assert measured["second"] < measured["first"] + 0.1 * measured["frame"], measured

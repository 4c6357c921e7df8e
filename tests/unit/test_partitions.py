"""The partition folder rule (lakeio.partitions): Spark's escaping, typing and widening.

The table of cases is what Spark 4.1's partition discovery answered for these folder values
(tests/integration/test_parity.py::test_partition_typing_is_sparks asks real Spark the same)."""

from __future__ import annotations

import datetime as dt
import decimal
import urllib.parse

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakeio import partitions
from lakeio.files import partitioned_dataset
from lakeio.storage import Location

# (folder values of one column, as written on disk) -> the Arrow type of Spark's inference
SPARK_TYPES = {
    ("1", "2"): pa.int32(),
    ("007", "010"): pa.int32(),
    ("+5", "-3"): pa.int32(),
    ("1", "9999999999"): pa.int64(),
    ("1", "123456789012345678901"): pa.decimal128(21, 0),
    ("1e5",): pa.decimal128(6, 0),
    ("1.5e1",): pa.decimal128(2, 0),
    ("1.",): pa.decimal128(1, 0),
    ("9" * 38,): pa.decimal128(38, 0),
    ("9" * 39,): pa.float64(),
    ("1", "1e5"): pa.decimal128(10, 0),
    ("1.5", "2"): pa.float64(),
    ("NaN", "1.5"): pa.float64(),
    ("-Infinity", "1"): pa.float64(),
    ("1.5d",): pa.float64(),
    ("0x1p3",): pa.float64(),
    (" 5", "5 "): pa.float64(),
    ("2024-01-01", "2024-01-02"): pa.date32(),
    ("2024-1-5",): pa.string(),
    ("2024-02-30",): pa.string(),
    ("2024-01-01 10%3A00%3A00", "2024-01-02 00%3A00%3A00.5"): pa.timestamp("us", tz="UTC"),
    ("2024-01-01", "2024-01-01 10%3A00%3A00"): pa.timestamp("us", tz="UTC"),
    ("2024-01-01T10%3A00%3A00",): pa.string(),
    ("2024-01-01 10%3A00%3A00.1234567",): pa.string(),
    ("2024-01-01", "5"): pa.string(),
    ("9999999999", "1.5"): pa.string(),
    ("1e5", "1.5"): pa.string(),
    ("true", "false"): pa.string(),
    ("1_000",): pa.string(),
    ("__HIVE_DEFAULT_PARTITION__",): pa.null(),
    ("__HIVE_DEFAULT_PARTITION__", "7"): pa.int32(),
    ("%C3%A9", "a%2Fb", "é t'"): pa.string(),
}


@pytest.mark.parametrize("folders", list(SPARK_TYPES), ids=lambda folders: "|".join(folders))
def test_a_columns_type_is_sparks(folders):
    values = [partitions.parse_folder(f"k={folder}")[1] for folder in folders]
    assert partitions.infer(values) == SPARK_TYPES[folders]


@given(st.text())
def test_escaping_round_trips_and_leaves_no_separator(text):
    escaped = partitions.escape(text)
    assert partitions.unescape(escaped) == text
    assert "/" not in escaped and "=" not in escaped
    # pyarrow's (and older lakeio's) URI-encoded spelling of the same value reads alike
    assert partitions.unescape(urllib.parse.quote(text, safe="")) == text


def test_escaping_is_sparks():
    # What Spark 4.1 wrote for these values (its escapePathName): spaces and non-ASCII stay.
    written = {"é t'": "é t%27", "a/b": "a%2Fb", "50%": "50%25", "x=y": "x%3Dy", "#h": "%23h", "c:d": "c%3Ad",
               "a*b?": "a%2Ab%3F", "a[1]": "a%5B1%5D", "a\\b": "a%5Cb", 'q"r': "q%22r", "{x}": "%7Bx}", "^~": "%5E~"}
    assert {value: partitions.folder_value(value) for value in written} == written
    assert partitions.folder_value(None) == partitions.folder_value("") == "__HIVE_DEFAULT_PARTITION__"


@pytest.mark.parametrize(("value", "text"), [
    (dt.date(2024, 1, 2), "2024-01-02"), (dt.datetime(2024, 1, 1, 10), "2024-01-01 10:00:00"),
    (dt.datetime(2024, 1, 1, 11, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2024-01-01 10:00:00.5"),
    (1.0, "1.0"), (1e10, "1.0E10"), (0.5, "0.5"), (0.001, "0.001"), (1.5e-4, "1.5E-4"), (-2.5e7, "-2.5E7"),
    (1234567.0, "1234567.0"), (float("nan"), "NaN"), (float("-inf"), "-Infinity"),
    (decimal.Decimal("12.50"), "12.50"), (True, "true"), (7, "7"),
])
def test_a_values_folder_text_is_sparks(value, text):
    assert partitions.spark_text(value) == text


@given(st.integers(-(2**63), 2**63 - 1), st.integers(0, 3))
def test_integers_are_typed_by_range_and_leading_zeros_are_dropped(number, zeros):
    text = ("-" if number < 0 else "") + "0" * zeros + str(abs(number))
    kind, value = partitions.kind_of(text)
    assert value == number
    assert kind == ("int" if -(2**31) <= number < 2**31 else "bigint")


@given(st.one_of(st.dates(dt.date(1000, 1, 1)), st.datetimes(dt.datetime(1000, 1, 1), timezones=st.just(dt.UTC)),
                 st.decimals(allow_nan=False, allow_infinity=False, places=0, min_value=-10**30, max_value=10**30),
                 st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f) or abs(f) >= 1e7)))
def test_a_written_value_reads_back_as_itself(value):
    kind, read = partitions.kind_of(partitions.unescape(partitions.folder_value(value)))
    if isinstance(value, float):
        assert kind in ("double", "string") or isinstance(kind, tuple)  # Spark's own 1.0E10 reads as a decimal
        assert float(read) == value
    else:
        assert read == value


KINDS = st.sampled_from([None, "int", "bigint", "double", "date", "timestamp", "string", ("decimal", 5),
                         ("decimal", 25)])


@given(KINDS, KINDS)
def test_widening_is_symmetric(a, b):
    assert partitions.wider(a, b) == partitions.wider(b, a)


def test_a_folder_tree_reads_as_spark_reads_it(tmp_path):
    import pyarrow.parquet as pq
    from pyarrow import fs

    for day, code, key in [("2024-01-01", "007", "%C3%A9 t"), ("2024-01-02", "010", "é t%27"),
                           ("2024-01-02", "100", "__HIVE_DEFAULT_PARTITION__")]:
        folder = tmp_path / f"day={day}" / f"code={code}" / f"k={key}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"id": [code]}), folder / "part-0.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    dataset = partitioned_dataset(fs.LocalFileSystem(), Location("file", str(tmp_path)), ds.ParquetFileFormat(), {})
    table = dataset.to_table().sort_by("id")
    assert table.schema == pa.schema([("id", pa.string()), ("day", pa.date32()), ("code", pa.int32()),
                                      ("k", pa.string())])
    assert table.column("k").to_pylist() == ["é t", "é t'", None]
    assert table.column("code").to_pylist() == [7, 10, 100]
    declared = partitioned_dataset(fs.LocalFileSystem(), Location("file", str(tmp_path)), ds.ParquetFileFormat(),
                                   {"code": pa.string()})
    assert sorted(declared.to_table().column("code").to_pylist()) == ["007", "010", "100"]


def test_pyarrows_own_parsing_is_used_only_where_it_reads_alike(tmp_path):
    """Folders pyarrow's hive parsing reads as the rule does go through it (fast); declared types
    take the rule's own path: both give the same table."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    for n, (code, day, key) in enumerate([("007", "2024-01-01", "%C3%A9%20t%27"), ("-3", "__HIVE_DEFAULT_PARTITION__", "é t%27"),
                                          ("__HIVE_DEFAULT_PARTITION__", "2024-01-02", "__HIVE_DEFAULT_PARTITION__")]):
        folder = tmp_path / f"code={code}" / f"day={day}" / f"k={key}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"id": [n]}), folder / "part-0.parquet")
    location, filesystem = Location("file", str(tmp_path)), fs.LocalFileSystem()
    fast = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), {})
    types = {field.name: field.type for field in fast.schema if field.name != "id"}
    ruled = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), types)
    assert types == {"code": pa.int32(), "day": pa.date32(), "k": pa.string()}
    assert fast.to_table().sort_by("id").equals(ruled.to_table().sort_by("id"))
    assert fast.to_table().sort_by("id").column("k").to_pylist() == ["é t'", "é t'", None]
    assert not partitions.pyarrow_reads_alike("+5", pa.int32())
    assert not partitions.pyarrow_reads_alike("%E9", pa.string())  # a byte no UTF-8: Spark's one character
    assert partitions.unescape("%E9") == "é"

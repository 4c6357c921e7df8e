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
from lakeio.predicate import parse_filter, to_arrow
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


@pytest.mark.parametrize("folders", [*SPARK_TYPES, ("0000-01-01",), ("2024-02-29", "2023-02-29"), ("-0", "12"),
                                     ("9" * 18, "-" + "9" * 18), ("9" * 19,), ("", "1")],
                         ids=lambda folders: "|".join(folders))
@pytest.mark.parametrize("declared", [None, pa.int64(), pa.int16(), pa.date32(), pa.string(), pa.float64()], ids=str)
def test_a_columns_values_are_typed_at_once_as_one_by_one(folders, declared):
    """A listing's column typed in one cast (typed_texts) is what typing each value gives
    (typed_values), for the inferred type and for declared ones; a value not of its type fails both."""
    values = [partitions.parse_folder(f"k={folder}")[1] for folder in folders]
    type_ = declared or partitions.infer(values)
    try:
        one_by_one = partitions.typed_values(values, type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        with pytest.raises(type(error)):
            partitions.typed_texts(pa.array(values, pa.string()), declared)
        return
    at_once = partitions.typed_texts(pa.array(values, pa.string()), declared)
    assert at_once.type == type_
    assert at_once.equals(one_by_one) or repr(at_once.to_pylist()) == repr(one_by_one.to_pylist())  # NaN is NaN


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1).map(str),
                          st.dates(dt.date(1, 1, 1)).map(str)), max_size=8))
def test_any_integer_or_date_folders_are_typed_at_once_as_one_by_one(values):
    type_ = partitions.infer(values)
    assert partitions.typed_texts(pa.array(values, pa.string())).equals(partitions.typed_values(values, type_))


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
    if isinstance(value, dt.datetime) and value.microsecond % 100_000:
        # Spark reads a timestamp folder of more than one digit of a fraction as text (`[.S]`)
        assert (kind, read) == ("string", value.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0"))
    elif isinstance(value, float):
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
    dataset, _ = partitioned_dataset(fs.LocalFileSystem(), Location("file", str(tmp_path)), ds.ParquetFileFormat(), {})
    table = dataset.to_table().sort_by("id")
    assert table.schema == pa.schema([("id", pa.string()), ("day", pa.date32()), ("code", pa.int32()),
                                      ("k", pa.string())])
    assert table.column("k").to_pylist() == ["é t", "é t'", None]
    assert table.column("code").to_pylist() == [7, 10, 100]
    declared, _ = partitioned_dataset(fs.LocalFileSystem(), Location("file", str(tmp_path)), ds.ParquetFileFormat(),
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
    fast, _ = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), {})
    types = {field.name: field.type for field in fast.schema if field.name != "id"}
    ruled, _ = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), types)
    assert types == {"code": pa.int32(), "day": pa.date32(), "k": pa.string()}
    assert fast.to_table().sort_by("id").equals(ruled.to_table().sort_by("id"))
    assert fast.to_table().sort_by("id").column("k").to_pylist() == ["é t'", "é t'", None]
    assert not partitions.pyarrow_reads_alike("+5", pa.int32())
    assert not partitions.pyarrow_reads_alike("%E9", pa.string())  # a byte no UTF-8: Spark's one character
    assert partitions.unescape("%E9") == "é"


def _daily_tree(root, days: int = 70) -> None:
    """``day=.../city=...`` folders, one file each, from 2024-01-01 on."""
    import pyarrow.parquet as pq

    for n in range(days):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=n)
        for city in ("a", "b", "Zürich"):
            folder = root / f"day={day}" / f"city={city}"
            folder.mkdir(parents=True)
            pq.write_table(pa.table({"id": [n * 3 + len(city)]}), folder / "part-0.parquet")
    (root / "_SUCCESS").write_text("")


@pytest.mark.parametrize("where, declared, walked, leaves", [
    ("day >= '2024-02-01' AND day < '2024-03-01'", {"city": pa.string()}, True, 29 * 3),
    ("city = 'b'", {}, True, 70),  # nothing pruned at the day level: city is typed from every folder
    ("city IN ('a', 'Zürich') AND day = '2024-01-05' AND id > 0", {"city": pa.string()}, True, 2),
    ("NOT (city = 'a') AND day IN ('2024-03-01', '2024-03-02')", {"city": pa.string()}, True, 4),
    ("day > '2024-03-05' OR city = 'a'", {}, True, 5 * 3 + 65),
    ("day = '2024-01-05'", {}, False, None),  # city below a pruned level, its type not declared
    ("id > 3", {}, False, None),  # no term on the partitions
    ("day = 5", {}, False, None),  # a term that does not fit the column's type: the scan says why
], ids=lambda value: value if isinstance(value, str) else None)
def test_a_filter_on_partitions_walks_only_into_the_folders_it_matches(tmp_path, where, declared, walked, leaves):
    from pyarrow import fs

    _daily_tree(tmp_path)
    location, filesystem = Location("file", str(tmp_path)), fs.LocalFileSystem()
    predicate = parse_filter(where)
    every, every_sizes = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), declared)
    selected, sizes = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), declared,
                                          (("day", "city"), predicate))
    assert every_sizes is None
    assert (sizes is not None) is walked
    if not walked:
        return
    assert len(sizes) == len(selected.files) == leaves  # only the files of matching folders were listed
    assert selected.schema == every.schema
    expected = every.to_table(filter=to_arrow(predicate, every.schema)).sort_by("id")
    assert selected.to_table(filter=to_arrow(predicate, selected.schema)).sort_by("id").equals(expected)
    assert expected.num_rows > 0


@pytest.mark.parametrize("where", ["k IS NULL OR k = 'a/b'", "k IN ('é', 'x') AND n >= 2", "n = 3"])
@pytest.mark.parametrize("respelt", [[], ["%6B=y"]], ids=["names", "a name respelt"])
def test_the_walk_reads_escaped_and_null_folders_as_the_full_listing(tmp_path, where, respelt):
    """The walk parses a level's folder names as one array: escapes, UTF-8 runs, the null
    partition and a column name spelt with an escape read as the full listing reads them."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    for number, folder in enumerate(["k=a%2Fb", "k=%C3%A9", "k=x", "k=__HIVE_DEFAULT_PARTITION__", *respelt]):
        for n in (1, 2, 3):
            (tmp_path / folder / f"n={n}").mkdir(parents=True)
            pq.write_table(pa.table({"id": [number * 10 + n]}), tmp_path / folder / f"n={n}" / "part-0.parquet")
    location, filesystem = Location("file", str(tmp_path)), fs.LocalFileSystem()
    predicate, declared = parse_filter(where), {"n": pa.int32()}
    every, _ = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), declared)
    selected, sizes = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), declared, (("k", "n"), predicate))
    assert sizes is not None and len(sizes) < len(every.files)
    expected = every.to_table(filter=to_arrow(predicate, every.schema)).sort_by("id")
    assert selected.to_table(filter=to_arrow(predicate, selected.schema)).sort_by("id").equals(expected)
    assert expected.num_rows > 0


def test_a_layout_other_than_the_partition_columns_is_listed_whole(tmp_path):
    """A file above the last partition level (an empty write's, at the root) or a level of another
    column: the walk cannot tell what the full listing would, so it lists every file."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    _daily_tree(tmp_path, days=3)
    location, filesystem = Location("file", str(tmp_path)), fs.LocalFileSystem()
    predicate = parse_filter("day = '2024-01-02'")
    walked = (("day", "city"), predicate)
    assert partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), {"city": pa.string()}, walked)[1]
    assert partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), {}, (("city", "day"), predicate))[1] \
        is None
    pq.write_table(pa.table({"id": pa.array([], pa.int64())}), tmp_path / "part-empty.parquet")
    dataset, sizes = partitioned_dataset(filesystem, location, ds.ParquetFileFormat(), {"city": pa.string()}, walked)
    assert sizes is None and len(dataset.files) == 3 * 3 + 1

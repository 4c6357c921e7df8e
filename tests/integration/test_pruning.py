"""Partition pruning on Spark: lakeio's pruned reads return what Spark's plain read of the whole table
returns, on random layouts and predicates, locally and on the S3 server; the cases the helper must get
right one by one; and what a read reports."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakeio
from conftest import TEST_BUCKET
from lakeio.predicate import And, Compare, In, IsNull, Not, Or, Predicate, to_sql
from lakeio.spark import jvm, pruning

KINDS = ("int", "date", "string")
STRINGS = ("a", "b c", "x/y", "z=1", "50%", "m-1", "Ü")
FIRST_DAY = dt.date(2020, 2, 25)


# -- layouts and predicates ----------------------------------------------------------------------

def partition_value(kind: str):
    if kind == "int":
        return st.integers(-3, 20)
    if kind == "date":
        return st.integers(0, 10).map(lambda n: FIRST_DAY + dt.timedelta(days=n))
    return st.sampled_from(STRINGS)


@st.composite
def layouts(draw):
    """Partition columns p0.. of random kinds; each partition holds rows with data columns v and w."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=2))
    columns = [f"p{i}" for i in range(len(kinds))]
    row = st.tuples(*[st.one_of(st.none(), partition_value(k)) if i else partition_value(k)
                      for i, k in enumerate(kinds)])
    partitions = draw(st.lists(row, min_size=1, max_size=12, unique=True))
    rows = [(*p, v, f"w{v}") for p in partitions for v in draw(st.lists(st.integers(0, 9), min_size=1, max_size=3))]
    return dict(zip(columns, kinds)), rows


def literal(kind: str):
    if kind == "int":
        return st.one_of(st.integers(-4, 22), st.integers(-4, 22).map(str))
    if kind == "date":
        days = st.integers(-1, 11).map(lambda n: FIRST_DAY + dt.timedelta(days=n))
        return st.one_of(days, days.map(str), days.map(lambda d: dt.datetime(d.year, d.month, d.day, 12)))
    return st.sampled_from(STRINGS + ("zz",))


def predicates(kinds: dict[str, str]):
    columns = sorted(kinds)
    ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])

    def on_column(column):
        kind = kinds[column]
        return st.one_of(
            st.builds(Compare, st.just(column), ops, literal(kind)),
            st.builds(In, st.just(column), st.lists(literal(kind), min_size=1, max_size=3).map(tuple)),
            st.just(IsNull(column)),
        )

    data = st.builds(Compare, st.just("v"), ops, st.integers(0, 9))
    atoms = st.one_of(data, *[on_column(c) for c in columns])
    return st.recursive(atoms, lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda ps: And(tuple(ps))),
        st.lists(inner, min_size=2, max_size=3).map(lambda ps: Or(tuple(ps))),
    ), max_leaves=5)


def write_table(kinds: dict[str, str], rows: list[tuple], root: str, filesystem) -> None:
    """Writes the rows as a hive-partitioned Parquet table with pyarrow (values URL-escaped, nulls
    in __HIVE_DEFAULT_PARTITION__)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    types = {"int": pa.int64(), "date": pa.date32(), "string": pa.string()}
    columns = list(kinds)
    schema = pa.schema([(c, types[kinds[c]]) for c in columns] + [("v", pa.int64()), ("w", pa.string())])
    table = pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows], schema=schema)
    ds.write_dataset(table, root, filesystem=filesystem, format="parquet",
                     partitioning=ds.partitioning(pa.schema([schema.field(c) for c in columns]), flavor="hive"))


def catalog(folder: Path, uri: str, partition_by: list[str], env: str = "local", fmt: str = "parquet",
            remote: str | None = None) -> lakeio.Catalog:
    """A catalog of one table ``t``; on the Spark Connect server ``remote`` when given."""
    folder.mkdir(parents=True, exist_ok=True)
    if remote is not None:
        (folder / "lakeio.yaml").write_text(f"environments:\n  {env}: {{spark: {{remote: '{remote}'}}}}\n")
    (folder / "resources.yaml").write_text(
        f"t:\n  format: {fmt}\n  partition_by: [{', '.join(partition_by)}]\n"
        f"  environments:\n    {env}: {{uri: \"{uri}\", engine: spark}}\n")
    return lakeio.Catalog.load(folder, env=env)


def rows_of(frame) -> list[tuple]:
    return sorted((tuple(r) for r in frame.collect()), key=repr)


def lakeio_reading(value):
    """A value of Spark's plain read of pyarrow's folders as lakeio reads it: pyarrow escapes every
    non-ASCII byte, which Spark reads as one character each (``Ã\x9c``); lakeio reads the UTF-8 (``Ü``)."""
    def decoded(run: re.Match) -> str:
        try:
            return run.group().encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            return run.group()

    return re.sub(r"[\x80-\xff]+", decoded, value) if isinstance(value, str) else value


def assert_same_as_plain(spark, lake: lakeio.Catalog, predicate: Predicate) -> lakeio.LakeFrame:
    """lakeio's (pruned) read equals Spark's plain read of the whole table (its values as lakeio
    reads pyarrow's folders, :func:`lakeio_reading`), filtered, in rows and schema, both
    as a Spark DataFrame and handed to Arrow (which reads the selected files itself)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    pruned = lake.read("t", where=predicate).to_spark()
    whole = spark.read.parquet(lake.location("t").spark_path)
    plain = spark.createDataFrame([tuple(map(lakeio_reading, row)) for row in whole.collect()],
                                  whole.schema).where(to_sql(predicate))
    assert pruned.schema.simpleString() == plain.schema.simpleString(), to_sql(predicate)
    expected = rows_of(plain)
    assert rows_of(pruned) == expected, to_sql(predicate)
    table = lake.read("t", where=predicate).to_arrow()
    assert table.schema.remove_metadata() == to_arrow_schema(plain.schema), to_sql(predicate)
    assert sorted((tuple(row.values()) for row in table.to_pylist()), key=repr) == expected, to_sql(predicate)
    return pruned


def pruned_cases(draw_layout):
    """A layout, three predicates, and the helper's sample size: small samples make the tiny layouts
    look wide, so matching directories are constructed rather than listed."""
    return draw_layout.flatmap(lambda layout: st.tuples(
        st.just(layout), st.lists(predicates(layout[0]), min_size=3, max_size=3), st.sampled_from([1, 3, 100])))


@contextlib.contextmanager
def helper_sample_size(spark, size: int):
    spark.conf.set("spark.lakeio.pruning.sampleSize", str(size))
    try:
        yield
    finally:
        spark.conf.unset("spark.lakeio.pruning.sampleSize")


# spark_mode is function-scoped only to mark a Connect test's process; every example may share it.
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                          HealthCheck.function_scoped_fixture])


# -- the property, locally and on S3 -------------------------------------------------------------

@settings(PROPERTY, max_examples=12)
@given(case=pruned_cases(layouts()))
def test_pruned_reads_equal_plain_reads_locally(spark_mode, tmp_path_factory, case):
    (kinds, rows), chosen, sample_size = case
    from pyarrow import fs

    spark, remote = spark_mode
    root = tmp_path_factory.mktemp("layout") / "t"
    write_table(kinds, rows, str(root), fs.LocalFileSystem())
    lake = catalog(root.parent / "conf", str(root), list(kinds), remote=remote)
    with helper_sample_size(spark, sample_size):
        for predicate in chosen:
            assert_same_as_plain(spark, lake, predicate)


@settings(PROPERTY, max_examples=6)
@given(case=pruned_cases(layouts()))
def test_pruned_reads_equal_plain_reads_on_s3(spark_mode, s3_endpoint, tmp_path_factory, case):
    (kinds, rows), chosen, sample_size = case
    from lakeio.config import S3Settings
    from lakeio.storage import Storage, resolve_location

    spark, remote = spark_mode
    uri = f"s3://{TEST_BUCKET}/pruning/{uuid.uuid4().hex}"
    location = resolve_location(uri, Path("/"))
    write_table(kinds, rows, location.path, Storage(S3Settings()).filesystem(location))
    lake = catalog(tmp_path_factory.mktemp("conf"), uri, list(kinds), env="test", remote=remote)
    with helper_sample_size(spark, sample_size):
        for predicate in chosen:
            assert_same_as_plain(spark, lake, predicate)


# -- the cases, one by one -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def daily(spark, tmp_path_factory) -> lakeio.Catalog:
    """150 daily partitions (wider than the helper's sample, so matches are constructed), rows v=0..2."""
    from pyarrow import fs

    root = tmp_path_factory.mktemp("daily") / "t"
    rows = [(FIRST_DAY + dt.timedelta(days=d), v, f"w{v}") for d in range(150) for v in range(3)]
    write_table({"dt": "date"}, rows, str(root), fs.LocalFileSystem())
    return catalog(root.parent / "conf", str(root), ["dt"])


def day(n: int) -> dt.date:
    return FIRST_DAY + dt.timedelta(days=n)


def read_record(caplog, frame) -> dict:
    caplog.set_level(logging.INFO, logger="lakeio.io")
    caplog.clear()
    frame.to_arrow()
    return [r.lakeio for r in caplog.records if r.name == "lakeio.io"][-1]


def test_a_read_of_ten_days_lists_ten_partitions_and_says_so(spark, daily, caplog):
    where = And((Compare("dt", ">=", day(20)), Compare("dt", "<=", day(29)), Compare("v", ">", 0)))
    frame = daily.read("t", where=where)
    assert_same_as_plain(spark, daily, where)
    record = read_record(caplog, frame)
    assert (record["partitions_listed"], record["partitions_total"], record["rows"]) == (10, None, 20)
    # Arrow reads the files the helper listed: ten, one per partition, out of a total nobody listed.
    assert (record["files_scanned"], record["files_total"]) == (10, None)
    assert record["extra"]["path"] == "arrow: pruned files read directly"
    assert "partitions: 10 listed of 150 (140 pruned)" in frame.explain()


@pytest.mark.parametrize("plugin", [True, False], ids=["plugin", "client-listing"])
def test_on_connect_a_read_of_ten_days_reads_ten_partitions_and_says_how(daily, on_connect, tmp_path, caplog,
                                                                          monkeypatch, plugin):
    from lakeio.spark.connect import SparkConnectEngine

    if not plugin:  # the fault: a server without lakeio's plugin
        monkeypatch.setattr(SparkConnectEngine, "has_plugin", lambda self: False)
    lake = catalog(tmp_path / "conf", daily.location("t").path, ["dt"], remote=on_connect)
    where = And((Compare("dt", ">=", day(20)), Compare("dt", "<=", day(29)), Compare("v", ">", 0)))
    assert_same_as_plain(lake.spark(), lake, where)
    frame = lake.read("t", where=where)
    record = read_record(caplog, frame)
    assert record["rows"] == 20 and record["extra"]["pruning"] == ("helper plugin" if plugin else "client listing")
    assert frame.to_spark().count() == 20
    if plugin:
        assert (record["partitions_listed"], record["partitions_total"]) == (10, None)
        assert record["extra"]["path"] == "arrow: pruned files read directly"
        assert "partitions: 10 listed of 150 (140 pruned)" in frame.explain()
    else:
        # The client types dt=2020-02-25 folders as dates, as Spark does (lakeio.partitions), so a date
        # filter prunes client-side too; its listing saw every partition.
        assert (record["partitions_listed"], record["partitions_total"]) == (10, 150)
        assert record["extra"]["path"] == "arrow: pruned files read directly"


def test_on_connect_without_the_plugin_the_client_prunes_int_partitions(on_connect, tmp_path, caplog, monkeypatch):
    from pyarrow import fs

    from lakeio.spark.connect import SparkConnectEngine

    monkeypatch.setattr(SparkConnectEngine, "has_plugin", lambda self: False)  # the fault: no plugin on the server
    root = tmp_path / "t"
    write_table({"n": "int"}, [(n, v, f"w{v}") for n in range(30) for v in range(2)], str(root), fs.LocalFileSystem())
    lake = catalog(tmp_path / "conf", str(root), ["n"], remote=on_connect)
    where = And((Compare("n", ">=", 10), Compare("n", "<", 15)))
    assert_same_as_plain(lake.spark(), lake, where)
    record = read_record(caplog, lake.read("t", where=where))
    assert (record["partitions_listed"], record["partitions_total"], record["rows"]) == (5, 30, 10)
    assert record["extra"] == {**record["extra"], "pruning": "client listing", "path": "arrow: pruned files read directly"}
    assert lake.read("t", where=where).to_spark().count() == 10


def test_partitions_that_do_not_exist_are_skipped(spark, daily, caplog):
    where = In("dt", (day(3), day(400), dt.date(1999, 1, 1), day(149)))
    frame = assert_same_as_plain(spark, daily, where)
    assert frame.count() == 6
    assert read_record(caplog, daily.read("t", where=where))["partitions_listed"] == 2


@pytest.mark.parametrize("where, listed", [
    (Compare("dt", "!=", day(5)), 149),
    (Not(In("dt", (day(1), day(2)))), 148),
    (Compare("dt", ">", dt.datetime(2020, 3, 1, 12)), 150),
    (Or((Compare("dt", "=", day(7)), Compare("v", "=", 2))), 150),
], ids=["not-equal", "not-in", "timestamp-literal", "or-data-column"])
def test_predicates_the_helper_cannot_enumerate_list_more_never_fewer_rows(spark, daily, caplog, where, listed):
    assert_same_as_plain(spark, daily, where)
    assert read_record(caplog, daily.read("t", where=where))["partitions_listed"] == listed


def test_values_escaped_by_sparks_writer_and_null_partitions(spark, tmp_path):
    values = ["a b", "x/y", "z=1", "50%", "é", "plain", None]
    frame = spark.createDataFrame([(s, i % 3 if i != 4 else None, i) for i, s in enumerate(values)], "s string, n int, v int")
    root = tmp_path / "t"
    frame.write.partitionBy("s", "n").parquet(f"file:{root}")
    lake = catalog(tmp_path / "conf", str(root), ["s", "n"])
    for where in [In("s", ("a b", "x/y", "é")), Compare("s", "=", "z=1"), IsNull("s"), IsNull("n"),
                  And((Compare("s", ">", "a"), Not(IsNull("n")))), Compare("n", "=", 1), Not(Compare("n", "=", 1))]:
        assert_same_as_plain(spark, lake, where)


def test_a_read_of_only_null_partitions_keeps_the_tables_types(spark, tmp_path):
    from pyarrow import fs

    rows = [(1, dt.date(2020, 1, 1), 0, "a"), (2, None, 1, "b"), (None, dt.date(2020, 1, 2), 2, "c")]
    write_table({"n": "int", "d": "date"}, rows, str(tmp_path / "t"), fs.LocalFileSystem())
    lake = catalog(tmp_path / "conf", str(tmp_path / "t"), ["n", "d"])
    # With merged schemas lakeio leaves schema inference to Spark, then corrects the partition types.
    for merge in ("false", "true"):
        spark.conf.set("spark.sql.parquet.mergeSchema", merge)
        try:
            for where in (IsNull("n"), IsNull("d")):
                frame = assert_same_as_plain(spark, lake, where)
                assert frame.schema.simpleString() == "struct<v:bigint,w:string,n:int,d:date>"
                assert frame.count() == 1
        finally:
            spark.conf.unset("spark.sql.parquet.mergeSchema")


def test_zero_padded_names_are_listed_so_none_is_missed(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "t"
    for code in range(1, 151):  # wider than the sample, so only the spelling check prevents constructing
        (root / f"code={code:04d}").mkdir(parents=True)
        pq.write_table(pa.table({"v": [code]}), root / f"code={code:04d}" / "part-0.parquet")
    lake = catalog(tmp_path / "conf", str(root), ["code"])
    frame = assert_same_as_plain(spark, lake, In("code", (1, 99, 200)))
    assert sorted(r.v for r in frame.collect()) == [1, 99]


def test_an_empty_table_and_a_missing_root_are_clear_errors(spark, tmp_path):
    (tmp_path / "empty").mkdir()
    where = Compare("dt", "=", day(1))
    empty = catalog(tmp_path / "conf-empty", str(tmp_path / "empty"), ["dt"])
    with pytest.raises(lakeio.StorageError, match=r"empty.*no partitions"):
        empty.read("t", where=where).to_arrow()
    missing = catalog(tmp_path / "conf-missing", str(tmp_path / "nothing-here"), ["dt"])
    with pytest.raises(lakeio.StorageError, match=r"nothing-here does not exist"):
        missing.read("t", where=where).to_arrow()


def test_a_layout_that_does_not_match_partition_by_is_a_clear_error(spark, daily, tmp_path):
    wrong = catalog(tmp_path / "conf", daily.location("t").path, ["day"])
    with pytest.raises(lakeio.StorageError, match=r"partition_by \[day\].*/dt=2020-\d\d-\d\d is not a 'day=' directory"):
        wrong.read("t", where=Compare("day", "=", 1)).count()


def test_delta_tables_are_never_listed(spark, tmp_path, monkeypatch):
    root = tmp_path / "delta"
    spark.createDataFrame([(d, v) for d in range(20) for v in range(2)], "d int, v int") \
        .write.format("delta").partitionBy("d").save(f"file:{root}")
    lake = catalog(tmp_path / "conf", str(root), ["d"], fmt="delta")
    real_call = jvm.call

    def no_listing(session, entry_point, payload=None):  # the injected fault: listing a Delta table fails
        if entry_point == "selectPartitions":
            raise AssertionError("the helper listed a Delta table")
        return real_call(session, entry_point, payload)

    monkeypatch.setattr(jvm, "call", no_listing)
    frame = lake.read("t", where=In("d", (3, 4)))
    assert sorted((r.d, r.v) for r in frame.to_spark().collect()) == [(3, 0), (3, 1), (4, 0), (4, 1)]
    assert "partitions:" not in frame.explain()


def test_on_s3_a_missing_root_names_the_uri_and_a_read_reports_its_partitions(spark, s3_endpoint, tmp_path, caplog):
    from lakeio.config import S3Settings
    from lakeio.storage import Storage, resolve_location

    uri = f"s3://{TEST_BUCKET}/pruning/months-{uuid.uuid4().hex}"
    location = resolve_location(uri, Path("/"))
    rows = [(m, v, f"w{v}") for m in range(1, 13) for v in range(2)]
    write_table({"month": "int"}, rows, location.path, Storage(S3Settings()).filesystem(location))
    lake = catalog(tmp_path / "conf", uri, ["month"], env="test")
    where = Compare("month", ">", 10)
    assert_same_as_plain(spark, lake, where)
    record = read_record(caplog, lake.read("t", where=where))
    assert (record["partitions_listed"], record["partitions_total"]) == (2, 12)
    missing = catalog(tmp_path / "conf-missing", f"{uri}-nothing-here", ["month"], env="test")
    with pytest.raises(lakeio.StorageError, match=rf"s3a://{TEST_BUCKET}/pruning/months-.*-nothing-here does not exist"):
        missing.read("t", where=where).count()


# -- what the helper lists, Spark and Arrow do not list again --------------------------------------

def s3_table(spark, tmp_path, kinds: dict[str, str], rows: list[tuple]) -> tuple[lakeio.Catalog, object]:
    """A table on the S3 server, its catalog, and the S3A file system Spark and the helper share."""
    from lakeio.config import S3Settings
    from lakeio.storage import Storage, resolve_location

    uri = f"s3://{TEST_BUCKET}/pruning/listed-{uuid.uuid4().hex}"
    location = resolve_location(uri, Path("/"))
    write_table(kinds, rows, location.path, Storage(S3Settings()).filesystem(location))
    lake = catalog(tmp_path / "conf", uri, list(kinds), env="test")
    lake.spark()
    hadoop_path = spark._jvm.org.apache.hadoop.fs.Path(location.spark_path)
    return lake, hadoop_path.getFileSystem(spark._jsparkSession.sessionState().newHadoopConf())


def listings_during(s3a, action) -> int:
    """The S3 LIST requests made while ``action`` runs (S3A's own counter)."""
    before = s3a.getStorageStatistics().getLong("object_list_request")
    action()
    return s3a.getStorageStatistics().getLong("object_list_request") - before


def test_on_s3_ten_days_cost_one_sample_and_ten_listings_and_nothing_more(spark, tmp_path):
    rows = [(FIRST_DAY + dt.timedelta(days=d), v, f"w{v}") for d in range(150) for v in range(2)]
    lake, s3a = s3_table(spark, tmp_path, {"dt": "date"}, rows)
    where = And((Compare("dt", ">=", day(20)), Compare("dt", "<=", day(29))))
    frame = lake.read("t", where=where)
    # The helper samples the wide level once (through an S3A instance of its own, with pages of the
    # sample's size) and lists each matching partition, which also finds its files; Spark's file index
    # and the Arrow hand-off then read those files without listing.
    assert pruning.select_partitions(spark, frame.plan, files=True).requests == 1 + 10
    assert listings_during(s3a, lambda: frame.to_spark().count()) == 10
    assert listings_during(s3a, lambda: frame.to_arrow()) == 10
    assert frame.to_arrow().num_rows == frame.to_spark().count() == 20


def test_on_s3_an_unfiltered_read_lists_the_table_once_and_skips_hidden_files(spark, tmp_path):
    from lakeio.config import S3Settings
    from lakeio.storage import Storage

    rows = [(m, v, f"w{v}") for m in range(1, 13) for v in range(2)]
    lake, s3a = s3_table(spark, tmp_path, {"month": "int"}, rows)
    location = lake.location("t")
    filesystem = Storage(S3Settings()).filesystem(location)
    for hidden in ("_SUCCESS", "month=3/.part-0.parquet.crc", "_temporary/0/month=3/part-9.parquet", "month=4/empty"):
        with filesystem.open_output_stream(f"{location.path}/{hidden}") as out:
            out.write(b"" if hidden.endswith("empty") else b"not parquet")
    frame = lake.read("t", where=Compare("v", "=", 1))  # a data column only: nothing to prune
    assert listings_during(s3a, lambda: frame.to_spark().count()) == 1
    assert sorted(frame.to_arrow()["month"].to_pylist()) == list(range(1, 13))
    assert "partitions: 12 listed of 12 (0 pruned)" in frame.explain()
    assert_same_as_plain(spark, lake, Compare("v", "=", 1))
    with filesystem.open_output_stream(f"{location.path}/month=5/stray/part-0.parquet") as out:
        out.write(b"not parquet")
    with pytest.raises(lakeio.StorageError, match=r"month=5/stray/part-0.parquet (is not under 'month=\.\.\.' directories"
                       r"|is not a readable Parquet file)"):  # the footer check may find it first
        lake.read("t").count()

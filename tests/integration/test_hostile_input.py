"""Hostile input on both engines, locally and on the S3 server: placeholder values that would leave
their dataset, secrets that must never print (py4j DEBUG logging included), Spark variables in
contract patterns, and the messages of failing NaNs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import uuid

import pyarrow as pa
import pytest
import yaml

import lakeio
from conftest import TEST_BUCKET

ENGINES = ["arrow", "spark"]


@pytest.fixture(params=["local", "s3"])
def storage(request, s3_endpoint) -> str:
    return request.param


HOSTILE_PLACEHOLDERS = ["%2e%2e", "..%2F..", "*", "{a,b}", "[12]", "~", None, "", "a" * 5_000]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_hostile_placeholder_writes_nothing_and_leaves_the_siblings(spark, catalog_on, storage, engine):
    lake = catalog_on(storage, "placeholders", runs={"format": "delta"})
    lake = _with_uri(lake, "runs", lake.binding("runs").uri + "/{run}")
    for run in ("12", "a"):
        lake.write("runs", pa.table({"run": [run]}), run=run, engine=engine)

    for value in HOSTILE_PLACEHOLDERS:
        with pytest.raises(lakeio.InvalidArgumentError, match="placeholder run=.* one non-empty path segment"):
            lake.write("runs", pa.table({"run": ["x"]}), mode="overwrite", run=value, engine=engine)
        with pytest.raises(lakeio.InvalidArgumentError, match="one non-empty path segment"):
            lake.read("runs", run=value, engine=engine)

    for run in ("12", "a"):
        assert lake.read("runs", run=run, engine=engine).to_arrow().column("run").to_pylist() == [run]


def _with_uri(lake: lakeio.Catalog, name: str, uri: str) -> lakeio.Catalog:
    """The same catalog with dataset ``name`` at ``uri`` (a template with a placeholder)."""
    conf = lake._origins[name].parent
    resources = yaml.safe_load(lake._origins[name].read_text())
    resources[name]["environments"][lake.env]["uri"] = uri
    lake._origins[name].write_text(yaml.safe_dump(resources))
    return lakeio.Catalog.load(conf, env=lake.env)


def test_an_empty_variable_cannot_aim_an_overwrite_at_the_siblings(tmp_path, monkeypatch):
    siblings = tmp_path / "data"
    (siblings / "other").mkdir(parents=True)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "r.yaml").write_text(yaml.safe_dump(
        {"run": {"format": "parquet", "environments": {"local": {"uri": f"{siblings}/${{RUN:-}}"}}}}))
    monkeypatch.delenv("RUN", raising=False)
    with pytest.raises(lakeio.ConfigError, match="RUN is empty, so the URI .* would name the folder above"):
        lakeio.Catalog.load(conf, env="local")
    assert (siblings / "other").is_dir()


# -- secrets -------------------------------------------------------------------------------------

SECRET, TOKEN = f"lakeio-SECRET-{uuid.uuid4().hex}", f"lakeio-TOKEN-{uuid.uuid4().hex}"


class _Everything(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.text.append(f"{record.name} {record.getMessage()} {record.args!r} {record.exc_text or ''}")


def test_secrets_appear_in_no_repr_record_error_or_log_record(spark, tmp_path, s3_endpoint):
    """A run on the S3 server with both engines, the secret key and session token in lakeio.yaml, py4j
    and every other logger at DEBUG: neither value is in any log record, repr, I/O record or error."""
    conf = tmp_path / "conf"
    conf.mkdir()
    root = f"s3://{TEST_BUCKET}/secrets/{uuid.uuid4().hex[:8]}"
    (conf / "lakeio.yaml").write_text(yaml.safe_dump({"environments": {"s3": {
        "metrics_sink": f"{root}/_metrics",
        "s3": {"endpoint_url": s3_endpoint, "access_key_id": "AKIDLAKEIO", "secret_access_key": SECRET,
               "session_token": TOKEN}}}}))
    (conf / "r.yaml").write_text(yaml.safe_dump({
        name: {"format": fmt, "partition_by": ["p"], "environments": {"s3": {"uri": f"{root}/{name}"}}}
        for name, fmt in (("events", "delta"), ("files", "parquet"))}))
    handler = _Everything()
    root_logger = logging.getLogger()
    saved = root_logger.level, {name: logging.getLogger(name).level for name in ("py4j", "py4j.clientserver",
                                                                                 "py4j.java_gateway", "lakeio")}
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG)
    for name in saved[1]:
        logging.getLogger(name).setLevel(logging.DEBUG)
    shown: list[str] = []
    try:
        lake = lakeio.Catalog.load(conf, env="s3")
        data = pa.table({"id": [1, 2], "p": ["a", "b"]})
        for engine in ENGINES:
            for name in ("events", "files"):
                record = lake.write(name, data, mode="overwrite", engine=engine)
                shown += [repr(record), str(dataclasses.asdict(record))]
                frame = lake.read(name, engine=engine)
                shown += [repr(frame), str(frame.to_arrow().num_rows)]
            with pytest.raises(lakeio.LakeioError) as caught:
                lake.read("events", version=99, engine=engine).to_arrow()
            shown += [str(caught.value), repr(caught.value)]
        assert any("Command to send" in line for line in handler.text), "py4j DEBUG logging was not on"
        spark_engine = lake._engine("spark")
        shown += [repr(lake), repr(lake.settings), repr(lake._storage), repr(lake._storage.s3), repr(spark_engine),
                  repr(lake.resolve("events")), repr(lake.settings.s3), lake.settings.model_dump_json()]
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)
        spark.sparkContext._jsc.hadoopConfiguration().unset("fs.s3a.session.token")
    everything = "\n".join(handler.text + shown)
    assert len(handler.text) > 100
    assert SECRET not in everything and TOKEN not in everything


# -- Spark variables in contract patterns, failing NaNs ------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_contract_values_reach_spark_as_values_and_nans_are_named(spark, catalog_on, storage, engine, tmp_path):
    (tmp_path / "checked.contract.yaml").write_text(yaml.safe_dump({"columns": {
        "s": {"type": "string", "checks": [{"pattern": "^\\$\\{spark\\.app\\.name\\}$"},
                                           {"in_set": ["${spark.app.name}"]}]},
        "x": {"type": "float64", "checks": [{"between": [0, 10]}]}}}))
    lake = catalog_on(storage, "contracts", checked={"format": "parquet", "schema": "../checked.contract.yaml"})
    app = spark.conf.get("spark.app.name")

    good = lake.validate("checked", pa.table({"s": ["${spark.app.name}"], "x": [1.0]}), engine=engine)
    assert good.passed, good.describe_failures()
    bad = lake.validate("checked", pa.table({"s": [app, "${spark.app.name}"], "x": [math.nan, math.nan]}),
                        engine=engine)
    messages = {(r.check, r.column): r.message for r in bad.errors}
    assert messages.keys() == {("pattern", "s"), ("in_set", "s"), ("between", "x")}
    assert messages[("between", "x")].endswith("(failing values: NaN (2))"), messages
    assert "None" not in messages[("between", "x")]
    mixed = lake.validate("checked", pa.table({"s": ["${spark.app.name}"] * 3, "x": [math.nan, 12.0, -1.0]}),
                          engine=engine)
    assert "failing values from -1.0 to 12.0 and NaN (1)" in mixed.errors[0].message


@pytest.mark.parametrize("regex", ["^..$", "^A.B$", r"^\s$", r"^[\s]+$", r"^\w+$", "B$"])
def test_a_contract_regex_gives_one_verdict_on_both_engines(spark, catalog_on, tmp_path, regex):
    (tmp_path / "pattern.contract.yaml").write_text(yaml.safe_dump(
        {"columns": {"s": {"type": "string", "checks": [{"pattern": regex}]}}}))
    lake = catalog_on("local", "regexes", texts={"format": "parquet", "schema": "../pattern.contract.yaml"})
    values = ["AB", "AB\n", "A\rB", "A\nB", "\x0b", " ", "\r", "AÉB", "É", "a_1"]
    verdicts = {}
    for engine in ENGINES:
        verdicts[engine] = [lake.validate("texts", pa.table({"s": [v]}), engine=engine).passed for v in values]
    assert verdicts["arrow"] == verdicts["spark"], dict(zip(values, zip(*verdicts.values(), strict=True), strict=True))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_missing_delta_version_is_one_error_on_both_engines(spark, catalog_on, storage, engine):
    lake = catalog_on(storage, "versions", events={"format": "delta"})
    lake.write("events", pa.table({"id": [1]}), engine=engine)
    lake.write("events", pa.table({"id": [2]}), mode="append", engine=engine)
    assert lake.read("events", version=0, engine=engine).to_arrow().column("id").to_pylist() == [1]
    with pytest.raises(lakeio.InvalidArgumentError, match="has versions 0 to 1; there is no version 7"):
        lake.read("events", version=7, engine=engine).to_arrow()
    with pytest.raises(lakeio.InvalidArgumentError, match="is before the first commit"):
        lake.read("events", timestamp="2000-01-01T00:00:00Z", engine=engine).to_arrow()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_delta_append_missing_a_column_is_one_answer_on_both_engines(spark, catalog_on, storage, engine):
    lake = catalog_on(storage, "missing", events={"format": "delta"})
    lake.write("events", pa.table({"id": [1], "note": ["first"]}), engine=engine)
    with pytest.raises(lakeio.SchemaMismatchError, match="cannot append: missing column 'note'"):
        lake.write("events", pa.table({"id": [2]}), mode="append", engine=engine)
    if engine == "spark":
        with pytest.raises(lakeio.SchemaMismatchError, match="missing column 'note'"):
            lake.write("events", spark.createDataFrame([(3,)], "id long"), mode="append", engine=engine)
    assert lake.read("events", engine="arrow").to_arrow().to_pylist() == [{"id": 1, "note": "first"}]

    lake.write("events", pa.table({"id": [2]}), mode="append", options={"schema_mode": "merge"}, engine=engine)
    got = sorted(lake.read("events", engine="arrow").to_arrow().to_pylist(), key=lambda r: r["id"])
    assert got == [{"id": 1, "note": "first"}, {"id": 2, "note": None}]


@pytest.mark.parametrize("writer", ENGINES)
def test_json_decimals_keep_every_digit_on_both_engines(spark, catalog_on, tmp_path, storage, writer):
    import decimal

    (tmp_path / "amounts.contract.yaml").write_text(yaml.safe_dump(
        {"columns": {"id": {"type": "int64"}, "amount": {"type": "decimal(38,18)"}}}))
    lake = catalog_on(storage, "decimals", amounts={"format": "json", "schema": "../amounts.contract.yaml"})
    exact = [decimal.Decimal("12345678901234567.891234567890123456"), decimal.Decimal("-0.000000000000000001")]
    lake.write("amounts", pa.table({"id": [1, 2], "amount": pa.array(exact, pa.decimal128(38, 18))}), engine=writer)
    for engine in ENGINES:
        got = lake.read("amounts", engine=engine).to_arrow().sort_by("id")
        assert got.column("amount").to_pylist() == exact, engine


# -- nanoseconds: never truncated silently -----------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("storage", "format"), [("local", "parquet"), ("local", "delta"), ("local", "csv"),
                                                 ("local", "json"), ("s3", "parquet")])
def test_nanoseconds_are_refused_never_truncated_and_whole_microseconds_are_kept(spark, catalog_on, storage,
                                                                                 format, engine):
    """A nanosecond timestamp with a part finer than a microsecond (which no format lakeio writes
    keeps: Parquet's coercion, delta-rs and Spark truncated it silently; CSV and JSON wrote text no
    read takes) is refused before anything is written, naming the dataset, column and value, in
    a data column, a nested one and through the class form's pandas frame, by writes and merges;
    pandas' nanosecond frames of whole microseconds land exactly; the dataset is unchanged."""
    import pandas as pd

    lake = catalog_on(storage, "nanos", stamps={"format": format})
    def frame(ids, *stamps):
        return pd.DataFrame({"id": ids, "at": pd.Series([pd.Timestamp(s, tz="UTC") if s else pd.NaT for s in stamps],
                                                        dtype="datetime64[ns, UTC]")})

    whole = frame([1, 2], "2024-01-02 03:04:05.123456", None)
    assert whole["at"].dtype.unit == "ns"
    stamps = lakeio.Dataset(lake, "stamps")
    stamps.write(whole, mode="overwrite", engine=engine)
    before = lake.read("stamps", engine="arrow").to_arrow().sort_by("id")
    assert before.column("at").to_pylist() == [dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC), None]
    finer = frame([3, 4], "2024-01-02 00:00:00", "2024-01-02 03:04:05.123456789")
    nested = pa.table({"id": [5], "at": pa.array([[1_700_000_000_000_000_001]], pa.list_(pa.timestamp("ns", "UTC")))})
    cases = [(finer, r"column 'at': value 2024-01-02 03:04:05\.123456789.* has nanoseconds"),
             (pa.Table.from_pandas(finer), r"column 'at': value 2024-01-02 03:04:05\.123456789.* has nanoseconds")]
    if format == "parquet":  # nested columns: Parquet's (CSV cannot hold them; the stamps table is flat)
        cases.append((nested, r"column 'at': value 2023-11-14 22:13:20\.000000001.* has nanoseconds"))
    for data, message in cases:
        with pytest.raises(lakeio.InvalidArgumentError, match=message) as refused:
            stamps.write(data, mode="append", engine=engine)
        assert "dataset 'stamps'" in str(refused.value)
        assert lake.read("stamps", engine="arrow").to_arrow().sort_by("id").equals(before)
    if format == "delta":
        with pytest.raises(lakeio.InvalidArgumentError, match=r"column 'at': value 2024-01-02 03:04:05\.123456789"):
            lake.merge("stamps", finer, on="id", engine=engine)
        assert lake.read("stamps", engine="arrow").to_arrow().sort_by("id").equals(before)


@pytest.mark.parametrize("engine", ENGINES)
def test_durations_land_where_they_read_back_as_durations_and_are_refused_elsewhere(spark, catalog_on, engine):
    """pandas' timedeltas land in the Arrow engine's Parquet, exactly, and read back as durations;
    Delta (no such type) and Spark's Parquet (int64) refuse them before anything is written, naming
    the column, for writes and merges: never a column that reads back as numbers (nor, for one with
    nanoseconds, an error about those: the type is the first thing wrong)."""
    import pandas as pd

    lake = catalog_on("local", "durations", waits={"format": "parquet"}, table={"format": "delta"})
    frame = pd.DataFrame({"id": [1, 2], "wait": pd.to_timedelta(["1.5s", "2 days"])})
    finer = frame.assign(wait=pd.to_timedelta(["1.500000001s", "2 days"]))
    for name in ("waits", "table"):
        if name == "waits" and engine == "arrow":
            lake.write(name, frame, engine=engine)
            back = lake.read(name, engine="arrow").to_pandas()
            assert back["wait"].tolist() == frame["wait"].tolist()
            continue
        with pytest.raises(lakeio.SchemaMismatchError, match=r"cannot hold durations.*column\(s\) 'wait' \("):
            lake.write(name, frame, engine=engine)
        with pytest.raises(lakeio.SchemaMismatchError, match=r"cannot hold durations.*column\(s\) 'wait' \("):
            lake.write(name, finer, engine=engine)
        assert not lake.exists(name)
    lake.write("table", frame.assign(wait=1), engine=engine)
    for data in (frame, finer):
        with pytest.raises(lakeio.SchemaMismatchError, match=r"delta cannot hold durations.*'wait'"):
            lake.merge("table", data, on="id", engine=engine)
    assert lake.read("table", engine="arrow").to_arrow()["wait"].to_pylist() == [1, 1]


# -- corrupt input: a file that does not fit the dataset is an error naming it ---------------------

def _parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("engine", [*ENGINES, pytest.param("connect", marks=pytest.mark.connect)])
def test_a_text_file_not_utf_8_outside_a_read_s_partitions_is_not_read(request, spark, catalog_on, engine):
    """A read filtered to the partitions of good CSV files reads them on both engines, beside a
    partition with a bad byte past its file's first block (the Spark engine's UTF-8 job checks the
    folders of the files the read's partition filter keeps, as the Arrow engine decodes only those); a read of
    every partition is refused, naming the file."""
    remote = {"spark": {"remote": request.getfixturevalue("on_connect")}} if engine == "connect" else {}
    lake = catalog_on("local", "utf8", settings=remote, data={"format": "csv", "partition_by": ["part"]})
    engine = "arrow" if engine == "arrow" else "spark"
    lake.write("data", pa.table({"id": [1, 2, 5], "name": ["a", "b", "e"], "part": ["a", "a", "b"]}), engine="arrow")
    good = b"".join(b"%d,name %d\n" % (i, i) for i in range(3, 120_000))
    path = _put(lake, "data", "part=b/zzz.csv", b"id,name\n" + good + b"7,caf\xe9 noir\n")
    kept = lake.read("data", where="part = 'a'", engine=engine)
    assert kept.to_arrow().sort_by("id")["id"].to_pylist() == [1, 2] and kept.count() == 2
    with pytest.raises(lakeio.SchemaMismatchError, match=f"file {path}, line 119999: byte 0xe9 is not UTF-8"):
        lake.read("data", engine=engine).to_arrow()


def _put(lake: lakeio.Catalog, name: str, relative: str, body: bytes | None = None, *, cut: bool = False) -> str:
    """Puts ``body`` at ``relative`` under dataset ``name`` as another program would (``cut``: the
    first file there, cut to half its size); returns the file's path as errors name it."""
    from pyarrow import fs as pafs

    from lakeio.config import S3Settings
    from lakeio.storage import Storage

    location = lake.location(name)
    filesystem = Storage(S3Settings()).filesystem(location)
    if cut:
        infos = filesystem.get_file_info(pafs.FileSelector(location.path, recursive=True))
        path = sorted(i.path for i in infos if i.type == pafs.FileType.File)[0]
        with filesystem.open_input_stream(path) as stream:
            body = stream.read()
        body = body[: len(body) // 2]
    else:
        path = f"{location.path}/{relative}"
    with filesystem.open_output_stream(path) as out:
        out.write(body)
    return path


CORRUPT = {  # case -> (format, partitioned, file put, its bytes, words of the error)
    "stray parquet sorting first": ("parquet", False, "aaa.parquet", "other", "do not share one schema"),
    "stray parquet sorting last": ("parquet", False, "zzz.parquet", "other", "do not share one schema"),
    "stray parquet first in a partition": ("parquet", True, "p=x/aaa.parquet", "other", "do not share one schema"),
    "stray parquet last in a partition": ("parquet", True, "p=x/zzz.parquet", "other", "do not share one schema"),
    "truncated parquet": ("parquet", False, None, "cut", "parquet"),
    "csv with another header": ("csv", False, "zzz.csv", b"id,other\n9,z\n", "header is not the dataset's"),
    "non-utf-8 csv": ("csv", False, "zzz.csv", b"id,name\n9,caf\xe9\n", "line 2: byte 0xe9 is not UTF-8 text"),
    "zero-byte csv": ("csv", False, "zzz.csv", b"", "Empty CSV file"),
    "non-utf-8 json": ("json", False, "zzz.json", b'{"id": 9, "name": "caf\xe9"}\n', ""),
    "json with a malformed line": ("json", False, "zzz.json", b'{"id": 9, "name": "z"}\n{"id": 10, "na\n', ""),
    "zero-byte json": ("json", False, "zzz.json", b"", "Empty JSON"),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", CORRUPT)
def test_a_corrupt_file_is_a_lakeio_error_naming_it(spark, catalog_on, storage, engine, case):
    """Never a silent wrong answer, never a raw pyarrow or py4j error: each corrupt or stray file
    of a dataset is a lakeio error that names the file."""
    format, partitioned, relative, body, words = CORRUPT[case]
    lake = catalog_on(storage, "corrupt", data={"format": format, **({"partition_by": ["p"]} if partitioned else {})})
    rows = pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], **({"p": ["x"] * 3} if partitioned else {})})
    lake.write("data", rows, engine="arrow")
    if body == "other":
        body = _parquet_bytes(pa.table({"other": [1.5]}))
    path = _put(lake, "data", relative, None if body == "cut" else body, cut=body == "cut")

    with pytest.raises(lakeio.LakeioError) as caught:
        lake.read("data", engine=engine).to_arrow()
    message = str(caught.value)
    assert path in message or path.split("/", 1)[1] in message, message  # Spark names s3a://bucket/key
    assert words in message, message
    if engine == "spark" and format == "parquet":
        with pytest.raises(lakeio.LakeioError, match="do not share|not a readable|parquet"):
            lake.read("data", engine=engine).to_spark().collect()


@pytest.mark.parametrize("engine", ["arrow", "spark", pytest.param("connect", marks=pytest.mark.connect)])
# CSV on both storages, JSON (the same check) locally: CI's budget
@pytest.mark.parametrize(("format", "storage"), [("csv", "local"), ("csv", "s3"), ("json", "local")],
                         indirect=["storage"])
def test_a_text_file_not_utf_8_past_its_first_block_is_named_on_every_engine(request, spark, catalog_on, storage,
                                                                            format, engine):
    """A byte that is not UTF-8 far into a CSV or JSON file (past the first MiB, which lakeio's
    schema inference reads) is the Arrow engine's error on every engine, naming the file, line and
    byte: Spark's CSV reader put U+FFFD for it silently, its JSON reader failed with a raw error.
    Spark finds the file by a job over the files' lines, not by reading them on the driver."""
    remote = {"spark": {"remote": request.getfixturevalue("on_connect")}} if engine == "connect" else {}
    lake = catalog_on(storage, "utf8", settings=remote, data={"format": format})
    lake.write("data", pa.table({"id": [1, 2], "name": ["a", "b"]}), engine="arrow")
    lines = (b"%d,name %d\n" if format == "csv" else b'{"id": %d, "name": "name %d"}\n')
    good = b"".join(lines % (i, i) for i in range(3, 120_000))
    bad = b"7,caf\xe9 noir\n" if format == "csv" else b'{"id": 7, "name": "caf\xe9 noir"}\n'
    body = (b"id,name\n" if format == "csv" else b"") + good + bad + lines % (8, 8)
    assert body.index(bad) > 1 << 20
    path = _put(lake, "data", f"zzz.{format}", body)
    line = body.count(b"\n", 0, body.index(bad)) + 1
    words = f", line {line}: byte 0xe9 is not UTF-8 text (invalid continuation byte); {format} files must be UTF-8"
    engine_ = "arrow" if engine == "arrow" else "spark"
    reads = [lambda frame: frame.to_arrow(), lambda frame: frame.count()]  # a count too: Spark's JSON count reads
    if engine != "arrow":
        reads.append(lambda frame: frame.to_spark().collect())
    for read in reads:
        with pytest.raises(lakeio.SchemaMismatchError) as caught:
            read(lake.read("data", engine=engine_))
        message = str(caught.value)
        assert f"file {path}{words}" in message, message

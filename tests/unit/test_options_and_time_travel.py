"""Options (YAML, binding, call), a binding's own format, the per-dataset class form, Delta time
travel and streamed reads (to_batches), on local files under tmp_path."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

import lakeio
from lakeio import Catalog, ConfigError, InvalidArgumentError, ResourceNotFoundError, StorageError

from .test_arrow_engine import DATASETS, FORMAT, PARTITIONED, RESOURCES, assert_same_rows, flights

UTC = dt.UTC


@pytest.fixture
def lake(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", RESOURCES)
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)


# -- Delta time travel -------------------------------------------------------------------------------

V0, V1_ADDED, V2 = flights(range(1, 5)), flights(range(5, 9), seed=1), flights(range(100, 103), seed=2)
VERSIONS = {0: V0, 1: pd.concat([V0, V1_ADDED]), 2: V2}


@pytest.fixture
def history(lake):
    """Three versions of 'dlp' (create, append, overwrite), a few ms apart; their commit times."""
    lake.write("dlp", V0)
    time.sleep(0.02)
    lake.write("dlp", V1_ADDED, mode="append")
    time.sleep(0.02)
    lake.write("dlp", V2, mode="overwrite")
    commits = {c["version"]: c["timestamp"] for c in DeltaTable(lake.location("dlp").uri).history()}
    assert sorted(commits) == [0, 1, 2] and commits[0] < commits[1] < commits[2]
    return {version: dt.datetime.fromtimestamp(millis / 1000, UTC) for version, millis in commits.items()}


def between(a: dt.datetime, b: dt.datetime) -> dt.datetime:
    return a + (b - a) / 2


@pytest.mark.parametrize("version", [0, 1, 2])
def test_version_reads_that_version(lake, history, version):
    assert_same_rows(lake.read("dlp", version=version).to_pandas(), VERSIONS[version])
    assert lake.read("dlp", version=version).count() == len(VERSIONS[version])
    expected = VERSIONS[version][VERSIONS[version].month == 1]
    frame = lake.read("dlp", version=version, where="month = 1", columns=["id", "carrier"])
    assert_same_rows(frame.to_pandas(), expected, ["id", "carrier"])
    assert frame.schema.names == ["id", "carrier"]


def test_latest_is_read_without_time_travel(lake, history):
    assert_same_rows(lake.read("dlp").to_pandas(), V2)


def test_timestamp_reads_the_version_current_at_that_time(lake, history):
    assert_same_rows(lake.read("dlp", timestamp=between(history[0], history[1])).to_pandas(), VERSIONS[0])
    assert_same_rows(lake.read("dlp", timestamp=between(history[1], history[2])).to_pandas(), VERSIONS[1])
    assert_same_rows(lake.read("dlp", timestamp=history[1]).to_pandas(), VERSIONS[1])  # at the commit itself
    assert_same_rows(lake.read("dlp", timestamp=history[2] + dt.timedelta(days=1)).to_pandas(), VERSIONS[2])


def test_timestamps_in_other_zones_are_the_same_instant(lake, history):
    instant = between(history[0], history[1])
    tokyo = instant.astimezone(dt.timezone(dt.timedelta(hours=9)))
    new_york = instant.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    for value in (tokyo, new_york, tokyo.isoformat(), new_york.isoformat()):
        assert lake.read("dlp", timestamp=value).count() == len(VERSIONS[0]), value


def test_naive_timestamps_are_utc_whatever_the_local_zone(lake, history, monkeypatch):
    naive = between(history[1], history[2]).replace(tzinfo=None)
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # 9 hours ahead: read as local time, this would be before v0
    time.tzset()
    try:
        assert lake.read("dlp", timestamp=naive).count() == len(VERSIONS[1])
        assert lake.read("dlp", timestamp=naive.isoformat()).count() == len(VERSIONS[1])
        assert lake.read("dlp", timestamp=naive.isoformat() + "Z").count() == len(VERSIONS[1])
        assert lake.read("dlp", timestamp=naive).plan.timestamp.tzinfo is not None
    finally:
        monkeypatch.undo()
        time.tzset()


def test_iso_strings_are_accepted(lake, history):
    instant = between(history[0], history[1])
    for text in (instant.isoformat(), instant.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
                 instant.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")):
        assert_same_rows(lake.read("dlp", timestamp=text).to_pandas(), VERSIONS[0])


def test_explain_mentions_the_version(lake, history):
    text = lake.read("dlp", version=1, where="month = 1").explain()
    dataset_line = text.splitlines()[0]
    assert "version 1" in dataset_line and "delta" in dataset_line
    instant = between(history[0], history[1])
    assert f"as of {instant.isoformat()}" in lake.read("dlp", timestamp=instant).explain()
    assert "version" not in lake.read("dlp").explain().splitlines()[0]
    # the files of the version read, not of the latest one: v1 is one file per (partition, commit)
    v1 = {(commit, y, m) for commit, frame in enumerate((V0, V1_ADDED)) for y, m in zip(frame.year, frame.month)}
    in_month_1 = sum(1 for _, _, m in v1 if m == 1)
    assert f"files:    {in_month_1} scanned of {len(v1)} ({len(v1) - in_month_1} pruned)" in text


def test_time_travel_streams_too(lake, history):
    table = pa.Table.from_batches(list(lake.read("dlp", version=1).to_batches()))
    assert_same_rows(table.to_pandas(), VERSIONS[1])


@pytest.mark.parametrize("name", [n for n in DATASETS if FORMAT[n] != "delta"])
def test_time_travel_on_plain_files_is_refused(lake, name):
    lake.write(name, flights())
    for arguments in ({"version": 0}, {"timestamp": "2024-01-01T00:00:00Z"}):
        with pytest.raises(InvalidArgumentError) as caught:
            lake.read(name, **arguments)
        message = str(caught.value)
        assert f"dataset {name!r}" in message and FORMAT[name] in message and "Delta" in message


@pytest.mark.parametrize("use", [lambda f: f.to_arrow(), lambda f: f.count(), lambda f: f.explain(),
                                 lambda f: f.schema, lambda f: list(f.to_batches())],
                         ids=["to_arrow", "count", "explain", "schema", "to_batches"])
def test_version_out_of_range(lake, history, use):
    with pytest.raises(InvalidArgumentError) as caught:
        use(lake.read("dlp", version=7))
    message = str(caught.value)
    assert "'dlp'" in message and "versions 0 to 2" in message and "version 7" in message


@pytest.mark.parametrize("version", [-1, 1.5, "1", True])
def test_version_must_be_a_whole_number(lake, version):
    with pytest.raises(InvalidArgumentError, match=r"'dl'.*version must be a whole number >= 0, got") as caught:
        lake.read("dl", version=version)
    assert repr(version) in str(caught.value)


def test_timestamp_before_the_first_commit(lake, history):
    before = history[0] - dt.timedelta(hours=1)
    with pytest.raises(InvalidArgumentError) as caught:
        lake.read("dlp", timestamp=before).to_arrow()
    message = str(caught.value)
    assert "'dlp'" in message and before.isoformat() in message
    assert "before the first commit" in message and history[0].isoformat()[:19] in message


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "31/01/2024", ""])
def test_malformed_timestamp_string(lake, value):
    with pytest.raises(InvalidArgumentError) as caught:
        lake.read("dl", timestamp=value)
    assert repr(value) in str(caught.value) and "ISO-8601" in str(caught.value)


@pytest.mark.parametrize("value", [1700000000, dt.date(2024, 1, 31)])
def test_timestamp_of_another_type(lake, value):
    with pytest.raises(InvalidArgumentError, match="timestamp must be a datetime or an ISO-8601 string"):
        lake.read("dl", timestamp=value)


def test_version_and_timestamp_together(lake):
    with pytest.raises(InvalidArgumentError, match="'dl': give version or timestamp, not both"):
        lake.read("dl", version=0, timestamp="2024-01-01T00:00:00Z")


# -- to_batches ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DATASETS)
def test_to_batches_concatenates_to_to_arrow(lake, io_records, name):
    lake.write(name, flights())
    for arguments in ({}, {"columns": ["id", "carrier", "month"], "where": "month IN (1, 3) AND delay > -5"}):
        expected = lake.read(name, **arguments).to_arrow()
        reader = lake.read(name, **arguments).to_batches()
        assert isinstance(reader, pa.RecordBatchReader)
        batches = list(reader)
        assert all(isinstance(b, pa.RecordBatch) for b in batches)
        table = pa.Table.from_batches(batches, schema=reader.schema)
        assert table.schema == expected.schema
        assert table.sort_by("id").equals(expected.sort_by("id"))
        assert 0 < table.num_rows


def test_a_partitioned_read_streams_one_batch_or_more_per_file(lake):
    lake.write("pqp", flights())
    batches = list(lake.read("pqp").to_batches())
    assert len(batches) >= 6
    assert sum(b.num_rows for b in batches) == 16


@pytest.mark.parametrize("name", ["pqp", "dlp", "csp", "js"])
def test_to_batches_logs_one_record_once_exhausted(lake, io_records, name):
    data = flights()
    lake.write(name, data)
    io_records.clear()
    reader = lake.read(name, columns=["id", "delay"], where="month = 2").to_batches()
    first = reader.read_next_batch()
    assert io_records("read") == []  # not before the stream is exhausted
    rows = first.num_rows + sum(b.num_rows for b in reader)
    (record,) = io_records("read", name)
    assert record["rows"] == rows == (data.month == 2).sum()
    assert record["bytes"] > 0
    assert record["engine"] == "arrow" and record["format"] == FORMAT[name]
    if name in PARTITIONED:
        # a plain table lists only the month=2 folders (its total unknown); Delta counts its log
        assert (record["files_scanned"], record["files_total"]) == (2, 6 if FORMAT[name] == "delta" else None)
    assert io_records() == [record]


@pytest.mark.parametrize("target", ["pq", "dl", "cs", "jsp"])
def test_to_batches_can_be_written_straight_to_another_dataset(lake, io_records, target):
    data = flights()
    lake.write("dlp", data)
    io_records.clear()
    record = lake.write(target, lake.read("dlp", where="year = 2014").to_batches())
    expected = data[data.year == 2014]
    assert_same_rows(lake.read(target).to_pandas(), expected)
    (read,) = io_records("read", "dlp")
    assert read["rows"] == len(expected)
    (write,) = io_records("write", target)
    assert record.dataset == target and write == record.as_dict()


@pytest.mark.parametrize("target", ["pq", "dl", "cs"])
def test_a_streamed_write_records_the_rows_it_wrote(lake, io_records, target):
    # One record per I/O with its rows and bytes: a streamed write knows them once it has run,
    # as a streamed read does.
    lake.write("pqp", flights())
    record = lake.write(target, lake.read("pqp", where="year = 2014").to_batches())
    assert record.rows == (flights().year == 2014).sum()
    assert record.bytes > 0


def test_to_batches_of_a_missing_dataset(lake):
    with pytest.raises(StorageError, match="'pq'.*cannot open parquet data"):
        lake.read("pq").to_batches()


# -- options: resource < binding < call ----------------------------------------------------------------

OPTIONS_YAML = """
    sep:
      format: csv
      options: {delimiter: ";", header: true, target_file_size: 64MB}
      environments:
        local: {uri: data/sep}
        bound: {uri: data/sep_bound, options: {delimiter: "|"}}
"""


def first_line(folder: Path) -> str:
    """The first line of the one CSV file under ``folder``, without quotes."""
    (path,) = [p for p in folder.rglob("*.csv")]
    return path.read_text().splitlines()[0].replace('"', "")


def test_resource_binding_and_call_options_in_that_order(tmp_path, write_yaml):
    write_yaml("conf/sep.yaml", OPTIONS_YAML)
    local = Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)
    bound = Catalog.load(tmp_path / "conf", env="bound", base_dir=tmp_path)
    assert local.options("sep").delimiter == ";"
    assert bound.options("sep").delimiter == "|"
    assert bound.options("sep", {"delimiter": "\t"}).delimiter == "\t"
    # what the binding does not set comes from the resource, what the call does not set from both
    assert bound.options("sep").target_file_size == 64_000_000
    assert bound.options("sep", {"header": False}).delimiter == "|"

    data = flights()
    local.write("sep", data)
    assert first_line(tmp_path / "data" / "sep") == "id;year;month;carrier;delay"
    bound.write("sep", data)
    assert first_line(tmp_path / "data" / "sep_bound") == "id|year|month|carrier|delay"
    for lake in (local, bound):
        assert_same_rows(lake.read("sep").to_pandas(), data)

    shutil.rmtree(tmp_path / "data" / "sep_bound")  # (an overwrite would check the old files' columns)
    bound.write("sep", data, options={"delimiter": "\t"})
    assert first_line(tmp_path / "data" / "sep_bound") == "id\tyear\tmonth\tcarrier\tdelay"
    assert_same_rows(bound.read("sep", options={"delimiter": "\t"}).to_pandas(), data)
    # read with the binding's '|', the tab-separated file is one column: the call option mattered
    (only,) = bound.read("sep").schema.names
    assert only.replace('"', "") == "id\tyear\tmonth\tcarrier\tdelay"


def test_header_option_writes_and_reads_without_a_header(lake, tmp_path):
    data = flights()
    lake.write("cs", data, options={"header": False})
    assert first_line(tmp_path / "data" / "cs").split(",")[0] == str(data.id.iloc[0])
    back = lake.read("cs", options={"header": False}).to_pandas()
    assert len(back) == len(data) and list(back.columns) == ["f0", "f1", "f2", "f3", "f4"]


def test_compression_option_reaches_the_parquet_files(lake, tmp_path):
    import pyarrow.parquet as pq

    lake.write("pq", flights(), options={"compression": "zstd"})
    lake.write("dl", flights(), options={"compression": "gzip"})
    (pq_file,) = (tmp_path / "data" / "pq").glob("*.parquet")
    (dl_file,) = (tmp_path / "data" / "dl").glob("*.parquet")
    assert pq.ParquetFile(pq_file).metadata.row_group(0).column(0).compression == "ZSTD"
    assert pq.ParquetFile(dl_file).metadata.row_group(0).column(0).compression == "GZIP"


def test_call_options_are_checked_like_yaml_options(lake):
    lake.write("pq", flights())
    with pytest.raises(InvalidArgumentError) as caught:
        lake.read("cs", options={"delimter": ";"})
    assert "'cs'" in str(caught.value) and "delimter" in str(caught.value)
    assert "did you mean 'delimiter'?" in str(caught.value)
    with pytest.raises(InvalidArgumentError, match="'pq': option 'delimiter' applies to csv only, not parquet"):
        lake.read("pq", options={"delimiter": ";"})
    with pytest.raises(InvalidArgumentError, match="'js': option 'header' applies to csv only, not json"):
        lake.read("js", options={"header": False})
    with pytest.raises(InvalidArgumentError, match="'cs'.*delimiter.*at most 1 character"):
        lake.options("cs", {"delimiter": ";;"})
    with pytest.raises(InvalidArgumentError, match="'pq'.*compression.*'lz0' is not one of .*"):
        lake.options("pq", {"compression": "lz0"})
    assert lake.options("pq", {"target_file_size": "64MiB"}).target_file_size == 64 * 1024 * 1024


def test_unknown_and_misapplied_options_in_yaml_fail_at_load(tmp_path, write_yaml):
    path = write_yaml("conf/bad.yaml", """
        a: {format: csv, options: {delimter: ";"}, environments: {local: {uri: a}}}
        b: {format: parquet, options: {delimiter: ";"}, environments: {local: {uri: b}}}
        c: {format: csv, environments: {local: {uri: c, options: {compression: zstd}}}}
        d: {format: delta, environments: {local: {uri: d, options: {headr: false}}}}
        e: {format: delta, options: {schema_mode: merg}, environments: {local: {uri: e}}}
        f: {format: parquet, options: {target_file_size: lots}, environments: {local: {uri: f}}}
        g: {format: delta, environments: {local: {uri: g, format: json, options: {compression: zstd}}}}
    """)
    with pytest.raises(ConfigError) as caught:
        Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)
    message = str(caught.value)
    expected = [
        f"{path}: a.options.delimter: unknown key; did you mean 'delimiter'?",
        f"{path}: b: option 'delimiter' applies to csv only, not parquet",
        f"{path}: c: environments.local: option 'compression' applies to parquet and delta only, not csv",
        f"{path}: d.environments.local.options.headr: unknown key; did you mean 'header'?",
        f"{path}: e.options.schema_mode: 'merg' is not one of enforce, merge, overwrite; did you mean 'merge'?",
        f"{path}: f.options.target_file_size:",
        f"{path}: g: environments.local: option 'compression' applies to parquet and delta only, not json",
    ]
    for line in expected:  # every problem of the file at once, each with its file and key
        assert line in message, f"{line!r} not in {message}"


# -- a binding with a format of its own ----------------------------------------------------------------

SAMPLE_YAML = """
    flights:
      format: delta
      partition_by: [year, month]
      environments:
        local:  {uri: data/flights}
        sample: {uri: samples/flights.csv, format: csv, options: {delimiter: ";", null_values: ["NA", ""]}}
"""


def write_sample(tmp_path: Path, data: pd.DataFrame) -> None:
    (tmp_path / "samples").mkdir(exist_ok=True)
    data.to_csv(tmp_path / "samples" / "flights.csv", sep=";", na_rep="NA", index=False)


def test_a_sample_binding_reads_a_checked_in_csv_of_a_delta_table(tmp_path, write_yaml, io_records):
    write_yaml("conf/flights.yaml", SAMPLE_YAML)
    data = flights()
    write_sample(tmp_path, data)
    sample = Catalog.load(tmp_path / "conf", env="sample", base_dir=tmp_path)
    assert sample.format("flights") == "csv"
    assert sample.options("flights").delimiter == ";"
    assert_same_rows(sample.read("flights").to_pandas(), data)
    frame = sample.read("flights", where="month = 1 AND carrier IS NOT NULL", columns=["id", "carrier"])
    expected = data[(data.month == 1) & data.carrier.notna()]
    assert_same_rows(frame.to_pandas(), expected, ["id", "carrier"])
    assert "flights [sample] csv at" in frame.explain()
    assert io_records("read", "flights")[-1]["format"] == "csv"

    local = Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)
    assert local.format("flights") == "delta"
    local.write("flights", sample.read("flights").to_arrow())
    assert DeltaTable.is_deltatable(str(tmp_path / "data" / "flights"))
    assert_same_rows(local.read("flights", version=0).to_pandas(), data)


def test_a_sample_csv_binding_of_a_delta_resource_with_delta_options(tmp_path, write_yaml):
    # A Delta resource's own options (compression, schema_mode) say how Delta is written; they
    # must not make its checked-in CSV sample unloadable.
    write_yaml("conf/flights.yaml", """
        flights:
          format: delta
          options: {compression: zstd}
          environments:
            local:  {uri: data/flights}
            sample: {uri: samples/flights.csv, format: csv, options: {delimiter: ";", null_values: ["NA"]}}
    """)
    write_sample(tmp_path, flights())
    sample = Catalog.load(tmp_path / "conf", env="sample", base_dir=tmp_path)
    assert_same_rows(sample.read("flights").to_pandas(), flights())
    local = Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)
    assert local.options("flights").compression == "zstd"


# -- the per-dataset class form -----------------------------------------------------------------------

class Flights(lakeio.Dataset):
    name = "pqp"
    columns = ("id", "carrier", "delay")


class SemicolonFlights(lakeio.Dataset):
    name = "cs"
    options = {"delimiter": ";"}


class Runs(lakeio.Dataset):
    name = "runs"


def test_a_dataset_class_reads_with_its_columns_and_writes(lake, io_records):
    flights_ = Flights(lake)
    assert not flights_.exists()
    data = flights()
    record = flights_.write(data)
    assert record.dataset == "pqp" and flights_.exists()
    frame = flights_.read(where="month = 1")
    assert list(frame.to_pandas().columns) == ["id", "carrier", "delay"]
    assert_same_rows(frame.to_pandas(), data[data.month == 1], ["id", "carrier", "delay"])
    assert list(flights_.read(columns=["id", "year"]).to_pandas().columns) == ["id", "year"]
    assert flights_.location == lake.location("pqp")
    assert repr(flights_) == "Flights('pqp', env='local')"
    assert [r["dataset"] for r in io_records("write")] == ["pqp"]


def test_a_dataset_class_options_apply_and_calls_override_them(lake, tmp_path):
    semicolon = SemicolonFlights(lake)
    data = flights()
    semicolon.write(data)
    assert first_line(tmp_path / "data" / "cs").count(";") == 4
    assert_same_rows(semicolon.read().to_pandas(), data)
    shutil.rmtree(tmp_path / "data" / "cs")
    semicolon.write(data, options={"delimiter": "|"})
    assert first_line(tmp_path / "data" / "cs").count("|") == 4
    assert_same_rows(semicolon.read(options={"delimiter": "|"}).to_pandas(), data)


def test_a_dataset_class_fails_at_construction_on_a_bad_name_or_bad_options(lake):
    class Typo(lakeio.Dataset):
        name = "pqq"

    with pytest.raises(ResourceNotFoundError, match="no dataset 'pqq'.*did you mean 'pq"):
        Typo(lake)

    class Misspelt(lakeio.Dataset):
        name = "cs"
        options = {"delimter": ";"}

    with pytest.raises(InvalidArgumentError, match="'cs'.*delimter.*did you mean 'delimiter'"):
        Misspelt(lake)

    class Misapplied(lakeio.Dataset):
        name = "pq"
        options = {"delimiter": ";"}

    with pytest.raises(InvalidArgumentError, match="'pq': option 'delimiter' applies to csv only"):
        Misapplied(lake)

    with pytest.raises(InvalidArgumentError, match="Dataset names no dataset"):
        lakeio.Dataset(lake)


def test_placeholders_are_filled_once_per_object(lake, tmp_path):
    first, second = Runs(lake, day="2024-01-01"), lake.dataset("runs", day="2024-01-02")
    assert isinstance(second, lakeio.Dataset)
    first.write(flights(range(1, 4)))
    second.write(flights(range(4, 9)))
    assert first.read().count() == 3 and second.read().count() == 5
    assert first.location.path == str(tmp_path / "data" / "runs" / "2024-01-01")
    assert (tmp_path / "data" / "runs" / "2024-01-02").is_dir()
    assert lake.dataset("pqp").read is not None and lake.dataset("pqp").dataset == "pqp"
    with pytest.raises(ResourceNotFoundError):
        lake.dataset("nope")


@pytest.mark.parametrize("placeholders, problem", [({}, "needs a value for day"), ({"day": ".."}, "one non-empty path segment"),
                                                   ({"day": "a/b"}, "one non-empty path segment"),
                                                   ({"day": "x", "dya": "y"}, "has no placeholder dya")])
def test_bad_placeholders_fail_when_the_object_is_made(lake, placeholders, problem):
    # "placeholders filled once": a wrong one fails at start-up, not at the first read or write.
    with pytest.raises(InvalidArgumentError, match=problem):
        Runs(lake, **placeholders)
    with pytest.raises(InvalidArgumentError, match=problem):
        lake.dataset("runs", **placeholders)

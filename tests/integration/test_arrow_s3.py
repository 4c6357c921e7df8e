"""The Arrow engine on the S3 server (moto, real HTTP): every format x layout x write mode, refused
writes and failed writes that lose nothing. No Spark: these tests need the S3 server only.

Each test gets its own prefix, s3://lakeio-test/arrow-s3/<uuid>/, and its own catalog, loaded once
the server is up (the AWS_* variables point every client at it).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

import lakeio
from lakeio import InvalidArgumentError, SchemaMismatchError, StorageError
from lakeio.storage import Storage

BUCKET = "lakeio-test"
FORMAT = {"pq": "parquet", "pqp": "parquet", "dl": "delta", "dlp": "delta",
          "cs": "csv", "csp": "csv", "js": "json", "jsp": "json"}
DATASETS = tuple(FORMAT)
PARTITIONED = {"pqp", "dlp", "csp", "jsp"}
LEFTOVER_MARKS = (".lakeio-staging-", ".lakeio-retired-")


class S3Lake:
    """A catalog whose eight datasets live under one fresh prefix of the test bucket."""

    def __init__(self, tmp_path: Path):
        self.prefix = f"arrow-s3/{uuid.uuid4().hex[:12]}"
        lines = []
        for name, format in FORMAT.items():
            partitioning = "partition_by: [year, month], " if name in PARTITIONED else ""
            lines.append(f"{name}: {{format: {format}, {partitioning}"
                         f"environments: {{test: {{uri: 's3://{BUCKET}/{self.prefix}/{name}'}}}}}}")
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "datasets.yaml").write_text("\n".join(lines) + "\n")
        self.catalog = lakeio.Catalog.load(tmp_path / "conf", env="test", base_dir=tmp_path)
        self.s3 = boto3.client("s3")

    def objects(self, name: str | None = None, markers: bool = False) -> dict[str, str]:
        """Key (relative to the dataset, or to the test's prefix) -> ETag, for every object; the
        empty "folder/" markers pyarrow creates are left out unless ``markers``."""
        prefix = f"{self.prefix}/{name}/" if name else f"{self.prefix}/"
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return {item["Key"][len(prefix):]: item["ETag"] for page in pages for item in page.get("Contents", [])
                if markers or not item["Key"].endswith("/")}

    def leftovers(self) -> list[str]:
        """Staging or retired objects, folder markers included, anywhere under the test's prefix."""
        return sorted(key for key in self.objects(markers=True) if any(mark in key for mark in LEFTOVER_MARKS))


@pytest.fixture
def s3(s3_endpoint, tmp_path) -> S3Lake:
    return S3Lake(tmp_path)


def flights(ids=range(1, 17), seed: int = 0) -> pd.DataFrame:
    """Small, deterministic rows over 2 years x 3 months, with nulls (as in the unit tests)."""
    carriers = ["AA", "UA", None, "DL", "B6"]
    rows = [{"id": i, "year": 2013 + (i % 2), "month": 1 + (i % 3), "carrier": carriers[(i + seed) % 5],
             "delay": None if i % 5 == 0 else float((i * 7 + seed) % 23 - 8)} for i in ids]
    return pd.DataFrame(rows).astype({"id": "int64", "year": "int64", "month": "int64", "delay": "float64"})


def rows(ids, partitions, carrier=None, seed: int = 1) -> pd.DataFrame:
    frame = flights(ids, seed=seed)
    frame["year"] = [partitions[i % len(partitions)][0] for i in range(len(frame))]
    frame["month"] = [partitions[i % len(partitions)][1] for i in range(len(frame))]
    if carrier is not None:
        frame["carrier"] = carrier
    return frame


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    columns = ["id", "year", "month", "carrier", "delay"]
    pd.testing.assert_frame_equal(actual[columns].sort_values("id").reset_index(drop=True),
                                  expected[columns].sort_values("id").reset_index(drop=True), check_dtype=False)


def partition_of(key: str):
    parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
    return (int(parts["year"]), int(parts["month"])) if {"year", "month"} <= set(parts) else None


class Snapshot:
    def __init__(self, s3: S3Lake, name: str):
        self.s3, self.name = s3, name
        self.rows = s3.catalog.read(name).to_pandas()
        self.objects = s3.objects(name)

    def assert_unchanged(self) -> None:
        assert_same_rows(self.s3.catalog.read(self.name).to_pandas(), self.rows)
        if FORMAT[self.name] == "delta":  # data files may be orphaned, but no commit was added
            log = {k: v for k, v in self.s3.objects(self.name).items() if k.startswith("_delta_log/")}
            assert log == {k: v for k, v in self.objects.items() if k.startswith("_delta_log/")}
        else:
            assert self.s3.objects(self.name) == self.objects
        assert self.s3.leftovers() == []


def written(s3: S3Lake, name: str) -> Snapshot:
    s3.catalog.write(name, flights())
    return Snapshot(s3, name)


# -- the write-mode matrix -------------------------------------------------------------------------

OLD = flights()
OWP_NEW = rows(range(101, 105), [(2013, 1), (2013, 1), (2014, 3), (2015, 2)])
RW_NEW = rows(range(201, 205), [(2013, 1), (2014, 1)])
RW_ROWS_NEW = rows(range(301, 304), [(2013, 2), (2015, 1)], carrier="AA")

# Every case first creates the dataset with mode="error" (the default), so that mode is in each.
MATRIX = (
    [("append", n) for n in DATASETS]
    + [("overwrite", n) for n in DATASETS]
    + [("overwrite_partitions", n) for n in DATASETS if n in PARTITIONED]
    + [("replace_where_partitions", n) for n in DATASETS if n in PARTITIONED or FORMAT[n] == "delta"]
    + [("replace_where_rows", n) for n in ("dl", "dlp")]
)


def matrix_case(case: str):
    """(existing rows, write arguments, expected rows afterwards, partitions the write may touch)."""
    new = flights(range(101, 111), seed=2)
    if case == "append":
        return OLD, dict(data=new, mode="append"), pd.concat([OLD, new]), None
    if case == "overwrite":
        return OLD, dict(data=new, mode="overwrite"), new, None
    if case == "overwrite_partitions":
        touched = {(2013, 1), (2014, 3), (2015, 2)}
        keep = [(y, m) not in touched for y, m in zip(OLD.year, OLD.month)]
        return OLD, dict(data=OWP_NEW, mode="overwrite_partitions"), pd.concat([OLD[keep], OWP_NEW]), touched
    if case == "replace_where_partitions":
        touched = {(y, m) for y in (2013, 2014) for m in (1, 2)}
        return OLD, dict(data=RW_NEW, mode="overwrite", replace_where="month IN (1, 2)"), \
            pd.concat([OLD[OLD.month == 3], RW_NEW]), touched
    return OLD, dict(data=RW_ROWS_NEW, mode="overwrite", replace_where="carrier = 'AA'"), \
        pd.concat([OLD[OLD.carrier != "AA"], RW_ROWS_NEW]), None


@pytest.mark.parametrize("case, name", MATRIX, ids=[f"{c}-{n}" for c, n in MATRIX])
def test_write_mode_matrix_on_s3(s3, case, name):
    old, arguments, expected, touched = matrix_case(case)
    lake = s3.catalog
    assert not lake.exists(name)
    assert lake.write(name, old).mode == "error" and lake.exists(name)
    before = s3.objects(name)

    record = lake.write(name, **arguments)

    assert record.uri == f"s3://{BUCKET}/{s3.prefix}/{name}"
    assert (record.mode, record.rows, record.engine) == (arguments["mode"], len(arguments["data"]), "arrow")
    assert_same_rows(lake.read(name).to_pandas(), expected)
    assert s3.leftovers() == []
    after = s3.objects(name)
    assert after
    if touched is not None and name in PARTITIONED:  # untouched partitions: the very same objects
        kept = {k: v for k, v in before.items() if partition_of(k) is not None and partition_of(k) not in touched}
        assert kept and {k: after.get(k) for k in kept} == kept
    if case == "replace_where_partitions" and name in PARTITIONED:
        assert lake.read(name, where="month = 2").count() == 0
        assert not any(partition_of(k) is not None and partition_of(k)[1] == 2 for k in after
                       if FORMAT[name] != "delta")


@pytest.mark.parametrize("name", ["pqp", "jsp"])
def test_writing_no_rows_on_s3(s3, name):
    before = written(s3, name)
    s3.catalog.write(name, OLD.iloc[:0], mode="append")
    s3.catalog.write(name, OLD.iloc[:0], mode="overwrite_partitions")
    before.assert_unchanged()


# -- refused writes lose nothing -----------------------------------------------------------------

BAD_WRITES = [  # one dataset or two per class (the unit tests cover every format locally)
    ("error mode", ("pq",), lambda: dict(data=flights(range(100, 104)), mode="error"),
     StorageError, ["already exists", "s3://"]),
    ("extra column", ("dl",), lambda: dict(data=flights(range(100, 104)).assign(gate="A"), mode="append"),
     SchemaMismatchError, ["gate"]),
    ("missing column", ("js",),
     lambda: dict(data=flights(range(100, 104)).drop(columns=["delay"]), mode="overwrite"), SchemaMismatchError, ["delay"]),
    ("wrong type", ("pq", "cs"),
     lambda: dict(data=flights(range(100, 102)).assign(delay=["late", "early"]), mode="append"),
     SchemaMismatchError, ["delay"]),
    ("rows outside replace_where", ("pqp", "dlp"),
     lambda: dict(data=flights(range(100, 104)), mode="overwrite", replace_where="year = 2013"),
     InvalidArgumentError, ["do not match replace_where", "nothing was written"]),
    ("replace_where on a non-partition column", ("pqp",),
     lambda: dict(data=flights(range(100, 104)), mode="overwrite", replace_where="carrier = 'AA'"),
     InvalidArgumentError, ["partition columns only", "carrier"]),
    ("overwrite_partitions unpartitioned", ("dl",),
     lambda: dict(data=flights(range(100, 104)), mode="overwrite_partitions"), InvalidArgumentError, ["partition_by"]),
]
BAD_PARAMS = [(case, name, arguments, error, names) for case, datasets, arguments, error, names in BAD_WRITES
              for name in datasets]


@pytest.mark.parametrize("case, name, arguments, error, names", BAD_PARAMS,
                         ids=[f"{p[0].replace(' ', '-')}-{p[1]}" for p in BAD_PARAMS])
def test_a_refused_write_on_s3_loses_nothing(s3, case, name, arguments, error, names):
    before = written(s3, name)
    with pytest.raises(error) as caught:
        s3.catalog.write(name, **arguments())
    message = str(caught.value)
    assert f"dataset {name!r}" in message
    for expected in names:
        assert expected in message, f"{expected!r} not in {message!r}"
    before.assert_unchanged()


# -- failed writes lose nothing ------------------------------------------------------------------

MANY = flights(range(1001, 2201), seed=4)  # with 4KB files: several files per partition
SMALL_FILES = {"target_file_size": "4KB"}
FAULT_MODES = {
    "append": dict(mode="append"),
    "overwrite": dict(mode="overwrite"),
    "overwrite_partitions": dict(mode="overwrite_partitions"),
    "replace_where": dict(mode="overwrite", replace_where="year = 2013"),
}
S3_FAULTS = [("overwrite", "pq"), ("overwrite_partitions", "pqp"), ("replace_where", "pqp"), ("overwrite", "js")]


def new_data(mode: str) -> pd.DataFrame:
    return MANY.assign(year=2013) if mode == "replace_where" else MANY.copy()


@pytest.mark.parametrize("mode, name", S3_FAULTS[:2], ids=[f"{m}-{n}" for m, n in S3_FAULTS[:2]])
def test_write_dataset_failing_on_s3_after_some_files_loses_nothing(s3, write_dataset_fails, mode, name):
    before = written(s3, name)
    seen = write_dataset_fails(3, "injected: connection reset after 3 files")
    with pytest.raises(StorageError, match="connection reset"):
        s3.catalog.write(name, new_data(mode), options=SMALL_FILES, **FAULT_MODES[mode])
    assert len(seen) >= 3
    before.assert_unchanged()


class FlakyS3(pafs.FileSystemHandler):
    """The S3 filesystem, except that one call of one operation fails, once (a transient fault)."""

    def __init__(self, inner, operation: str, failing_call: int):
        self.inner, self.operation, self.failing_call, self.calls, self.armed = inner, operation, failing_call, 0, True

    def _tick(self, operation):
        if self.armed and operation == self.operation:
            self.calls += 1
            if self.calls == self.failing_call:
                raise OSError(f"injected {operation} failure (call {self.calls})")

    def get_type_name(self): return "flaky-s3"
    def normalize_path(self, path): return self.inner.normalize_path(path)
    def get_file_info(self, paths): return self.inner.get_file_info(paths)
    def get_file_info_selector(self, selector): return self.inner.get_file_info(selector)
    def create_dir(self, path, recursive): self.inner.create_dir(path, recursive=recursive)
    def delete_dir(self, path): self._tick("delete"); self.inner.delete_dir(path)
    def delete_dir_contents(self, path, missing_dir_ok=False):
        self._tick("delete")
        self.inner.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)
    def delete_root_dir_contents(self): raise OSError("not in tests")
    def delete_file(self, path): self._tick("delete"); self.inner.delete_file(path)
    def copy_file(self, source, destination): self.inner.copy_file(source, destination)
    def open_input_stream(self, path): return self.inner.open_input_stream(path)
    def open_input_file(self, path): return self.inner.open_input_file(path)
    def open_append_stream(self, path, metadata): return self.inner.open_append_stream(path, metadata=metadata)
    def open_output_stream(self, path, metadata):
        self._tick("open_output_stream")
        return self.inner.open_output_stream(path, metadata=metadata)
    def move(self, source, destination): self._tick("move"); self.inner.move(source, destination)


def flaky(monkeypatch, operation: str, failing_call: int) -> FlakyS3:
    real = Storage.filesystem
    handlers = {}

    def filesystem(self, location):
        if location.scheme != "s3":
            return real(self, location)
        if "handler" not in handlers:
            handlers["handler"] = FlakyS3(real(self, location), operation, failing_call)
        return pafs.PyFileSystem(handlers["handler"])

    monkeypatch.setattr(Storage, "filesystem", filesystem)
    return handlers


@pytest.mark.parametrize("mode, name", S3_FAULTS, ids=[f"{m}-{n}" for m, n in S3_FAULTS])
def test_a_move_failing_on_s3_while_committing_loses_nothing(s3, monkeypatch, mode, name):
    # S3 has no rename: a move is a copy and a delete, and the commit moves many objects.
    before = written(s3, name)
    handlers = flaky(monkeypatch, "move", failing_call=3)
    with pytest.raises(StorageError, match="injected move failure"):
        s3.catalog.write(name, new_data(mode), options=SMALL_FILES, **FAULT_MODES[mode])
    handlers["handler"].armed = False
    before.assert_unchanged()


S3_DELETE_FAULTS = [("overwrite", "pq"), ("append", "pqp")]


@pytest.mark.parametrize("mode, name", S3_DELETE_FAULTS, ids=[f"{m}-{n}" for m, n in S3_DELETE_FAULTS])
def test_a_delete_failing_on_s3_after_the_new_objects_are_in(s3, monkeypatch, mode, name):
    # The S3 commit moves the new objects in, then deletes the replaced ones and the staging
    # folder; the first delete fails once. A write that raises must have changed nothing (a
    # caller retries it); one that returns must have replaced exactly what it says.
    before = written(s3, name)
    handlers = flaky(monkeypatch, "delete", failing_call=1)
    data = new_data(mode)
    try:
        s3.catalog.write(name, data, options=SMALL_FILES, **FAULT_MODES[mode])
    except StorageError:
        handlers["handler"].armed = False
        assert_same_rows(s3.catalog.read(name).to_pandas(), before.rows)
    else:
        handlers["handler"].armed = False
        old = before.rows
        touched = set(zip(data.year, data.month))
        kept = {"append": old, "overwrite": old.iloc[:0],
                "overwrite_partitions": old[[(y, m) not in touched for y, m in zip(old.year, old.month)]]}[mode]
        assert_same_rows(s3.catalog.read(name).to_pandas(), pd.concat([kept, data]))
    assert handlers["handler"].calls >= 1


def test_a_source_failing_half_way_on_s3_loses_nothing(s3):
    for name in ("pq", "dl"):
        before = written(s3, name)
        table = pa.Table.from_pandas(MANY, preserve_index=False)

        def batches():
            for index, batch in enumerate(table.to_batches(max_chunksize=200)):
                if index == 3:
                    raise ValueError("the source failed after 3 batches")
                yield batch

        with pytest.raises(Exception, match="the source failed after 3 batches"):
            s3.catalog.write(name, pa.RecordBatchReader.from_batches(table.schema, batches()),
                             mode="overwrite", options=SMALL_FILES)
        before.assert_unchanged()


# -- the rest of the write path on S3 ----------------------------------------------------------------

def test_target_file_size_on_s3(s3):
    import numpy as np

    rng = np.random.default_rng(3)
    n = 100_000
    table = pa.table({"id": np.arange(n), "delay": rng.normal(size=n), "carrier": rng.integers(0, 999, n).astype(str)})
    record = s3.catalog.write("pq", table.append_column("year", pa.array(np.full(n, 2013)))
                              .append_column("month", pa.array(np.full(n, 1))), options={"target_file_size": "256KB"})
    sizes = [s3.s3.head_object(Bucket=BUCKET, Key=f"{s3.prefix}/pq/{key}")["ContentLength"] for key in s3.objects("pq")]
    assert len(sizes) == record.files_written > 2
    assert max(sizes) < 512 * 1024
    assert s3.catalog.read("pq").count() == n


def test_delta_time_travel_and_schema_merge_on_s3(s3):
    lake = s3.catalog
    lake.write("dlp", flights(range(1, 9)))
    lake.write("dlp", flights(range(9, 13)).assign(gate="G1"), mode="append", options={"schema_mode": "merge"})
    back = lake.read("dlp").to_pandas()
    assert back.loc[back.id <= 8, "gate"].isna().all() and (back.loc[back.id > 8, "gate"] == "G1").all()
    assert_same_rows(lake.read("dlp", version=0).to_pandas(), flights(range(1, 9)))
    assert "gate" not in lake.read("dlp", version=0).schema.names
    with pytest.raises(InvalidArgumentError, match="versions 0 to 1"):
        lake.read("dlp", version=2).to_arrow()


@pytest.mark.parametrize("name", ["pqp", "csp", "jsp"])
def test_a_partition_filter_on_s3_lists_only_the_folders_it_matches(s3, name, caplog):
    """month below year, no pruning of years: the walk lists the year prefixes, their month
    prefixes and the files of the months kept; a filter that prunes years first (month then has no
    declared type) or is not on the partitions lists every file."""
    import logging

    lake = s3.catalog
    lake.write(name, flights(range(1, 41)))
    data = flights(range(1, 41))
    caplog.set_level(logging.INFO, logger="lakeio.io")
    for where, mask, counts in [("month IN (1, 3)", data.month.isin([1, 3]), (4, None)),
                                ("NOT (month = 2) AND delay > 0", (data.month != 2) & (data.delay > 0), (4, None)),
                                ("year = 2014 AND month = 2", (data.year == 2014) & (data.month == 2), (1, 6)),
                                ("carrier = 'AA'", data.carrier == "AA", (6, 6))]:
        caplog.clear()
        assert_same_rows(lake.read(name, where=where).to_pandas(), data[mask])
        (record,) = [r.lakeio for r in caplog.records if r.name == "lakeio.io"]
        assert (record["files_scanned"], record["files_total"]) == counts, where


def test_to_batches_copies_between_s3_datasets(s3):
    lake = s3.catalog
    lake.write("dlp", flights())
    lake.write("pqp", lake.read("dlp", where="month = 1").to_batches())
    expected = flights()[flights().month == 1]
    assert_same_rows(lake.read("pqp").to_pandas(), expected)
    assert {partition_of(k)[1] for k in s3.objects("pqp")} == {1}


def test_a_moto_server_preloaded_with_a_local_table_serves_it(tmp_path, s3_endpoint):
    """What bench_pruning.py starts its S3 server with: a local folder's files as a bucket's objects."""
    import pyarrow.dataset as ds
    import yaml
    from s3_server import moto_server

    table = pa.table({"id": pa.array(range(6), pa.int64()), "part": ["a", "b", "c"] * 2})
    ds.write_dataset(table, tmp_path / "bucket" / "events", format="parquet", partitioning=["part"],
                     partitioning_flavor="hive")
    with moto_server(preload={"lakeio-preloaded": tmp_path / "bucket"}) as endpoint:
        conf = tmp_path / "conf"
        conf.mkdir()
        (conf / "lakeio.yaml").write_text(yaml.safe_dump(
            {"environments": {"s3": {"engine": "arrow", "s3": {"endpoint_url": endpoint}}}}))
        (conf / "events.yaml").write_text(yaml.safe_dump({"events": {
            "format": "parquet", "partition_by": ["part"],
            "environments": {"s3": {"uri": "s3://lakeio-preloaded/events"}}}}))
        read = lakeio.Catalog.load(conf, env="s3").read("events", where="part = 'b'").to_arrow()
        keys = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="lakeio-preloaded")["KeyCount"]
    assert sorted(read["id"].to_pylist()) == [1, 4] and set(read["part"].to_pylist()) == {"b"}
    assert keys == 3

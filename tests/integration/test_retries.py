"""Retried tasks, as Airflow retries them: a task writes, fails after the write, and runs again.
An append with an ``idempotency_key`` lands once per key (Delta's transaction ids on both
engines); overwrite, replace_where and merge re-runs give the same table as one run."""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import lakeio
from lakeio.storage import Storage

ENGINES = ["arrow", "spark"]


class TaskCrashed(RuntimeError):
    """The fault injected after a task's write: the worker died before the task was marked done."""


def airflow(task, attempts: int = 2) -> None:
    """Runs ``task(try_number)`` as Airflow does with retries=1: the first try crashes after its work."""
    for try_number in range(1, attempts + 1):
        try:
            task(try_number)
            return
        except TaskCrashed:
            continue
    raise AssertionError("every try failed")


@pytest.fixture(params=["local", "s3"])
def lake(request, catalog_on) -> lakeio.Catalog:
    return catalog_on(request.param, "retries", events={"format": "delta", "partition_by": ["day"]},
                      files={"format": "parquet"})


@pytest.fixture(params=ENGINES)
def engine(request):
    if request.param == "spark":
        request.getfixturevalue("spark")
    return request.param


def events(ids, day="2024-01-01", value=1.0) -> pa.Table:
    return pa.table({"id": pa.array(list(ids), pa.int64()), "day": [day] * len(ids), "value": [value] * len(ids)})


def table_rows(lake: lakeio.Catalog, name: str) -> list[dict]:
    return sorted(lake.read(name, engine="arrow", validate=False).to_arrow().to_pylist(), key=lambda r: (r["id"], r["day"]))


def delta_version(lake: lakeio.Catalog, name: str) -> int:
    location = lake.location(name)
    return DeltaTable(location.uri, storage_options=Storage(lake.settings.s3).delta_options(location)).version()


def test_a_retried_append_with_an_idempotency_key_lands_once(lake, engine):
    lake.write("events", events([1, 2]), mode="append", engine=engine, idempotency_key="seed")
    records = []

    def task(try_number):
        records.append(lake.write("events", events([3, 4]), mode="append", engine=engine,
                                  idempotency_key="run-2024-01-02"))
        if try_number == 1:
            raise TaskCrashed

    airflow(task)

    assert [r["id"] for r in table_rows(lake, "events")] == [1, 2, 3, 4]
    assert "idempotent_skip" not in records[0].extra and records[0].rows == 2
    assert records[1].extra["idempotent_skip"] is True and records[1].rows == 0
    assert records[1].extra["idempotency_key"] == "run-2024-01-02"


def test_a_key_committed_by_one_engine_is_skipped_by_the_other(lake, spark):
    lake.write("events", events([1]), mode="append", engine="spark", idempotency_key="k")
    again = lake.write("events", events([1]), mode="append", engine="arrow", idempotency_key="k")
    other = lake.write("events", events([2]), mode="append", engine="arrow", idempotency_key="k2")
    spark_again = lake.write("events", events([2]), mode="append", engine="spark", idempotency_key="k2")

    assert again.extra["idempotent_skip"] and spark_again.extra["idempotent_skip"]
    assert "idempotent_skip" not in other.extra
    assert [r["id"] for r in table_rows(lake, "events")] == [1, 2]


def test_delta_itself_skips_a_repeated_key_on_spark(lake, spark):
    """The writer options alone (what a concurrent retry that passed the check relies on) skip the commit."""
    lake.write("events", events([1]), mode="append", engine="spark", idempotency_key="k")
    location = lake.location("events")
    version = delta_version(lake, "events")
    spark.createDataFrame(events([9]).to_pandas()).write.format("delta").mode("append") \
        .option("txnAppId", "lakeio:events:k").option("txnVersion", "0").save(location.spark_path)
    assert delta_version(lake, "events") == version
    assert [r["id"] for r in table_rows(lake, "events")] == [1]


def test_without_a_key_a_retried_append_doubles_its_rows(lake, engine):
    """What the key is for: the same task without one writes its rows twice."""
    def task(try_number):
        lake.write("events", events([1, 2]), mode="append", engine=engine)
        if try_number == 1:
            raise TaskCrashed

    airflow(task)
    assert [r["id"] for r in table_rows(lake, "events")] == [1, 1, 2, 2]


@pytest.mark.parametrize("operation", ["overwrite", "replace_where", "merge"])
def test_retried_overwrite_replace_where_and_merge_give_the_table_of_one_run(lake, engine, operation):
    lake.write("events", pa.concat_tables([events([1, 2], "2024-01-01"), events([1, 2], "2024-01-02")]),
               mode="overwrite", engine=engine)
    once = {}

    def task(try_number):
        if operation == "overwrite":
            lake.write("events", events([5, 6], "2024-01-03"), mode="overwrite", engine=engine)
        elif operation == "replace_where":
            lake.write("events", events([7], "2024-01-02", 2.0), mode="overwrite", replace_where="day = '2024-01-02'",
                       engine=engine)
        else:
            lake.merge("events", events([2, 3], "2024-01-01", 3.0), on=["id", "day"], engine=engine)
        once.setdefault("rows", table_rows(lake, "events"))
        if try_number == 1:
            raise TaskCrashed

    airflow(task)
    assert table_rows(lake, "events") == once["rows"]
    expected = {
        "overwrite": [(5, "2024-01-03", 1.0), (6, "2024-01-03", 1.0)],
        "replace_where": [(1, "2024-01-01", 1.0), (2, "2024-01-01", 1.0), (7, "2024-01-02", 2.0)],
        "merge": [(1, "2024-01-01", 1.0), (1, "2024-01-02", 1.0), (2, "2024-01-01", 3.0), (2, "2024-01-02", 1.0),
                  (3, "2024-01-01", 3.0)],
    }[operation]
    assert [(r["id"], r["day"], r["value"]) for r in table_rows(lake, "events")] == expected


def test_a_committed_append_whose_history_cannot_be_read_reports_success(lake, engine, monkeypatch, caplog):
    """The fault: every read of the table's history fails after the commit (as under S3 503s). The
    write committed, so it says so; a caller told it failed would retry and append twice."""
    from deltalake import DeltaTable as RustTable

    from lakeio.spark.engine import SparkEngine

    lake.write("events", events([1]), mode="append", engine=engine)
    before = delta_version(lake, "events")

    def unreadable(*args, **kwargs):
        raise OSError("Generic S3 error: 503 SlowDown reading _delta_log")

    monkeypatch.setattr(RustTable, "history", unreadable)
    monkeypatch.setattr(SparkEngine, "_history", unreadable)
    record = lake.write("events", events([2]), mode="append", engine=engine)

    assert [r["id"] for r in table_rows(lake, "events")] == [1, 2]
    assert record.version == before + 1  # the catalog's own read of the version, which did not fail
    assert "committed, but its commit could not be read back" in caplog.text


def test_a_write_finds_its_own_commit_when_another_writer_committed_after_it(lake, engine):
    """Each write marks its commit (``userMetadata``) and reads back that one, not the latest."""
    from lakeio.engines import find_own_commit
    from lakeio.requests import WriteRequest

    first = lake.write("events", events([1, 2]), mode="append", engine=engine)
    request = WriteRequest(lake.resolve("events"), mode="append", data=None)
    location = lake.location("events")
    table = DeltaTable(location.uri, storage_options=Storage(lake.settings.s3).delta_options(location))
    marker = table.history(1)[0]["userMetadata"]
    lake.write("events", events([3]), mode="append", engine=engine)  # another commit on top

    found = find_own_commit(replace(request, write_id=marker.removeprefix("lakeio-write:")), lambda depth: [
        (e["version"], e.get("userMetadata"), e.get("operationMetrics") or {})
        for e in DeltaTable(location.uri, storage_options=Storage(lake.settings.s3).delta_options(location)).history(depth)])
    assert found is not None and found[0] == first.version == delta_version(lake, "events") - 1
    assert first.files_written is not None and first.files_written >= 1

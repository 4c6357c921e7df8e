"""Quarantine as a write outcome (issue 17): rows failing a check with ``on_fail: quarantine`` go to
the dataset's quarantine dataset with the names of the checks they failed, the others to the
dataset; both or neither, on both engines, locally and on the S3 server."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

from lakeio.errors import DataQualityError

CONTRACT = """
on_fail: quarantine
columns:
  id: {type: int64, nullable: false, checks: [unique]}
  day: {type: string, checks: [{in_set: [a, b]}]}
  v: {type: float64, checks: [{between: [0, 1000]}, {less_than: {value: 100, on_fail: refuse}}]}
"""

CASES = [(engine, storage, "delta") for engine in ("arrow", "spark") for storage in ("local", "s3")] + \
    [("arrow", "local", "parquet"), ("arrow", "s3", "parquet"), ("spark", "local", "parquet")]


@pytest.fixture
def make_lake(catalog_on, tmp_path, request):
    contract = tmp_path / "quarantine-contract.yaml"
    contract.write_text(CONTRACT)

    def make(engine: str, storage: str, format: str):
        if engine == "spark":
            request.getfixturevalue("spark")
        root = str(tmp_path / "quarantine") if storage == "local" else \
            f"s3://lakeio-test/quarantine/{tmp_path.name}"
        return catalog_on(storage, "quarantine", events={
            "format": format, "schema": str(contract),
            "quarantine": {"name": "events_rejected", "environments": {storage: {"uri": f"{root}/events_rejected"}}}})

    return make


def rows(lake, engine, ids, days, values):
    table = pa.table({"id": pa.array(ids, pa.int64()), "day": days, "v": pa.array(values, pa.float64())})
    if engine == "spark":
        return lake.spark().createDataFrame(table.to_pylist(), "id bigint, day string, v double")
    return table


def stored(lake, name):
    if not lake.exists(name):
        return []
    table = lake.read(name, engine="arrow").to_arrow().sort_by("v")
    return table.drop_columns(["lakeio_run_id"]).to_pylist() if "lakeio_run_id" in table.column_names \
        else table.to_pylist()


@pytest.mark.parametrize(("engine", "storage", "format"), CASES)
def test_failing_rows_go_to_the_quarantine_with_their_checks_and_the_rest_is_written(make_lake, engine, storage,
                                                                                      format):
    lake = make_lake(engine, storage, format)
    record = lake.write("events", rows(lake, engine, [1, 2, 3, None, 5], ["a", "c", "b", "a", "z"],
                                       [1.0, 2.0, -30.0, 4.0, -50.0]), mode="append", engine=engine)
    assert record.rows == 1
    assert record.extra["quarantine"]["rows"] == 4 and record.extra["quarantine"]["dataset"] == "events_rejected"
    assert record.extra["validation"]["rows"] == 1 and record.extra["validation"]["quarantined"] == 4
    assert stored(lake, "events") == [{"id": 1, "day": "a", "v": 1.0}]
    assert stored(lake, "events_rejected") == [
        {"id": 5, "day": "z", "v": -50.0, "lakeio_failed_checks": ["in_set [day]", "between [v]"]},
        {"id": 3, "day": "b", "v": -30.0, "lakeio_failed_checks": ["between [v]"]},
        {"id": 2, "day": "c", "v": 2.0, "lakeio_failed_checks": ["in_set [day]"]},
        {"id": None, "day": "a", "v": 4.0, "lakeio_failed_checks": ["not_null [id]"]}]
    run_ids = set(lake.read("events_rejected", engine="arrow").to_arrow()["lakeio_run_id"].to_pylist())
    assert run_ids == {record.extra["quarantine"]["run_id"]}

    # A check that refuses still refuses (less_than 100), and the table checks judge the table:
    # neither dataset changes.
    for bad in (rows(lake, engine, [6], ["a"], [500.0]), rows(lake, engine, [1, 7], ["a", "q"], [1.0, 1.0])):
        with pytest.raises(DataQualityError):
            lake.write("events", bad, mode="append", engine=engine)
    assert len(stored(lake, "events")) == 1 and len(stored(lake, "events_rejected")) == 4


@pytest.mark.parametrize(("engine", "storage", "format"), CASES)
def test_a_failed_commit_of_the_dataset_takes_its_quarantine_rows_back(make_lake, engine, storage, format,
                                                                        monkeypatch):
    lake = make_lake(engine, storage, format)
    lake.write("events", rows(lake, engine, [1, 2], ["a", "c"], [1.0, 1.0]), mode="append", engine=engine)
    written = type(lake._engine(engine)).write

    def failing(self, request, record):
        if request.dataset == "events":
            raise OSError("injected: the dataset's commit fails")
        return written(self, request, record)

    monkeypatch.setattr(type(lake._engine(engine)), "write", failing)
    with pytest.raises(OSError, match="injected"):
        lake.write("events", rows(lake, engine, [3, 4], ["a", "z"], [2.0, 2.0]), mode="append", engine=engine)
    monkeypatch.undo()
    assert [r["id"] for r in stored(lake, "events")] == [1]
    assert [r["id"] for r in stored(lake, "events_rejected")] == [2]


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_a_run_killed_between_the_commits_is_completed_by_its_retry(make_lake, storage, tmp_path):
    """Killed after the quarantine commit: a retry with the same idempotency_key skips the
    quarantine (its Delta txn) and commits the dataset, so the pair is whole and nothing doubles."""
    lake = make_lake("arrow", storage, "delta")
    script = textwrap.dedent(f"""
        import os, pyarrow as pa, lakeio
        from lakeio.engines.arrow import ArrowEngine
        written = ArrowEngine.write
        def killed(self, request, record):
            if request.dataset == "events":
                os._exit(9)  # a kill: no undo runs
            return written(self, request, record)
        ArrowEngine.write = killed
        lake = lakeio.Catalog.load({str(tmp_path / "conf")!r}, env={storage!r})
        lake.write("events", pa.table({{"id": [1, 2], "day": ["a", "c"], "v": [1.0, 1.0]}}), mode="append",
                   idempotency_key="run-1")
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == 9, killed.stderr
    assert not lake.exists("events") and [r["id"] for r in stored(lake, "events_rejected")] == [2]
    record = lake.write("events", pa.table({"id": [1, 2], "day": ["a", "c"], "v": [1.0, 1.0]}), mode="append",
                        idempotency_key="run-1")
    assert record.rows == 1 and record.extra["quarantine"]["rows"] == 1
    assert [r["id"] for r in stored(lake, "events")] == [1]
    assert [r["id"] for r in stored(lake, "events_rejected")] == [2]


"""Quarantine as a write outcome (issue 17): rows failing a check with ``on_fail: quarantine`` go to
the dataset's quarantine dataset with the names of the checks they failed, the others to the
dataset; both or neither, on both engines, locally and on the S3 server."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeio.errors import DataQualityError, StorageError
from lakeio.files import SmallObjects
from lakeio.storage import Storage

CONTRACT = """
on_fail: quarantine
columns:
  id: {type: int64, nullable: false, checks: [unique]}
  day: {type: string, checks: [{in_set: [a, b]}]}
  v: {type: float64, checks: [{between: [0, 1000]}, {less_than: {value: 100, on_fail: refuse}}]}
"""

CASES = [(engine, storage, "delta") for engine in ("arrow", "spark") for storage in ("local", "s3")] + \
    [("arrow", "local", "parquet"), ("arrow", "s3", "parquet"), ("spark", "local", "parquet")] + \
    [(engine, "local", format) for format in ("csv", "json") for engine in ("arrow", "spark")]


@pytest.fixture
def make_lake(catalog_on, tmp_path, request):
    contract = tmp_path / "quarantine-contract.yaml"
    contract.write_text(CONTRACT)

    def make(engine: str, storage: str, format: str):
        if engine == "spark" or format in ("csv", "json"):  # text quarantines are read back on both engines
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
    if format in ("csv", "json"):  # CSV has no list type: JSON text in the file, a list again when read
        if format == "csv":
            written = "".join(p.read_text() for p in Path(lake.location("events_rejected").path).rglob("*.csv"))
            assert '"[""in_set [day]"",""between [v]""]"' in written, written
        spark_rows = lake.read("events_rejected", engine="spark").to_spark().orderBy("v").collect()
        assert [row["lakeio_failed_checks"] for row in spark_rows] == \
            [r["lakeio_failed_checks"] for r in stored(lake, "events_rejected")]
        assert str(lake.read("events_rejected", engine="arrow").schema.field("lakeio_failed_checks").type) == \
            "list<item: string>"

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


WRITER = Path(__file__).with_name("commit_writer.py")
# Arrow on both stores and formats at every step; Spark (each writer process starts a JVM) at the
# steps where its part of the protocol differs: after each of its commits and, on plain files, half
# way through each (the journal and run steps around them are the catalog's, as on Arrow).
KILL_CASES = [("arrow", "local", "delta"), ("arrow", "s3", "delta"), ("arrow", "local", "parquet"),
              ("arrow", "s3", "parquet"), ("spark", "local", "delta"), ("spark", "local", "parquet"),
              ("spark", "s3", "delta"), ("spark", "s3", "parquet")]
SPARK_STEPS = {"delta": ["quarantine-committed", "dataset-committed"],
               "parquet": ["moved-1", "quarantine-committed", "moved-1@2", "dataset-committed"]}
RUN_STEPS = ["run-journaled", "quarantine-committed", "dataset-committed", "run-ended"]
# Of each plain-file commit: before its first move, after it (an append moves one file), journaled as made.
COMMIT_STEPS = ["staged", "moved-1", "committed"]


def ids(lake, name: str) -> list[int]:
    if not lake.exists(name):
        return []
    return lake.read(name, engine="arrow", validate=False).to_arrow()["id"].to_pylist()


def journals(lake) -> list[str]:
    """What is left in flight: runs and receipts beside the quarantine, commit logs of either dataset."""
    objects = SmallObjects(Storage(lake.settings.s3), lake.location("events_rejected"))
    left = objects.names(lake.location("events_rejected").path + ".lakeio-pending-runs")
    return left + [log for name in ("events", "events_rejected")
                   if objects.read(log := lake.location(name).path + ".lakeio-commit") is not None]


def batch(number: int) -> pa.Table:
    """Batch ``number`` of a quarantining run: ids 10n+1 and 10n+3 pass, 10n+2 is quarantined."""
    base = 10 * number
    return pa.table({"id": pa.array([base + 1, base + 2, base + 3], pa.int64()), "day": ["a", "c", "a"],
                     "v": [1.0, 1.0, 1.0]})


def writer_command(tmp_path, storage: str, engine: str, number: int, *, kill_at: str | None = None,
                   steps: Path | None = None, key: str | None = None, data_table: pa.Table | None = None,
                   mode: str = "append", pause_at: str | None = None) -> list[str]:
    """The command of a writer process that appends (or merges) batch ``number`` (or ``data_table``)."""
    data = tmp_path / f"batch{number}.parquet"
    pq.write_table(batch(number) if data_table is None else data_table, data)
    command = [sys.executable, str(WRITER), str(tmp_path / "conf"), storage, "events", mode, str(data),
               "--engine", engine]
    command += (["--kill-at", kill_at] if kill_at else []) + (["--steps", str(steps)] if steps else [])
    return command + (["--idempotency-key", key] if key else []) + (["--pause-at", pause_at] if pause_at else [])


def kill_writer(tmp_path, storage: str, engine: str, number: int, **options) -> subprocess.CompletedProcess:
    """Runs a writer process (:func:`writer_command`) to its end or its kill."""
    return subprocess.run(writer_command(tmp_path, storage, engine, number, **options), capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize(("engine", "storage", "format"), KILL_CASES, ids=["-".join(case) for case in KILL_CASES])
def test_a_writer_killed_at_any_step_of_a_quarantining_run_leaves_both_or_neither(make_lake, tmp_path, engine,
                                                                                 storage, format):
    """SIGKILLed at each step of its two commits: a read of the quarantine never shows the run
    without the dataset's rows; after the next operation (``recover``, or the next write) the run
    is in both datasets or in neither; a retry with the same idempotency key (Delta) then leaves
    it in each exactly once."""
    lake = make_lake(engine, storage, format)
    recorded = tmp_path / "steps.txt"
    assert kill_writer(tmp_path, storage, "arrow", 0, steps=recorded).returncode == 0
    steps = recorded.read_text().split()
    assert [s for s in steps if s in RUN_STEPS] == RUN_STEPS, steps
    if format == "parquet":  # the quarantine's commit, then the dataset's, each step by step
        assert steps.index("moved-1") < steps.index("quarantine-committed") < steps.index("moved-1@2")
    steps = SPARK_STEPS[format] if engine == "spark" else [s for s in steps if s.split("@")[0] in RUN_STEPS + COMMIT_STEPS]
    outcomes = {"both": 0, "neither": 0}
    in_dataset, in_quarantine = [1, 3], [2]  # what the datasets hold, each row once
    for number, step in enumerate(steps, 1):
        base, key = 10 * number, f"run-{number}" if format == "delta" else None
        killed = kill_writer(tmp_path, storage, engine, number, kill_at=step, key=key)
        assert killed.returncode == -9, (step, killed.stderr)
        with contextlib.suppress(StorageError):  # a plain commit killed half way: recover names itself
            assert base + 1 in ids(lake, "events") or base + 2 not in ids(lake, "events_rejected"), step
        if number % 2:
            lake.recover("events")
        else:  # the next write of the dataset settles it as well
            lake.write("events", pa.table({"id": pa.array([base + 9], pa.int64()), "day": ["b"], "v": [5.0]}),
                       mode="append", engine="arrow")
            in_dataset.append(base + 9)
        both = base + 1 in ids(lake, "events")
        outcomes["both" if both else "neither"] += 1
        in_dataset, in_quarantine = in_dataset + ([base + 1, base + 3] if both else []), \
            in_quarantine + ([base + 2] if both else [])
        # the run in both or in neither, and every earlier run as it was
        assert sorted(ids(lake, "events")) == sorted(in_dataset), step
        assert sorted(ids(lake, "events_rejected")) == sorted(in_quarantine), step
        assert journals(lake) == [], step  # nothing left in flight
        if key is not None and not both:  # the task retried: the run is made
            lake.write("events", batch(number), mode="append", engine=engine, idempotency_key=key)
            in_dataset, in_quarantine = in_dataset + [base + 1, base + 3], in_quarantine + [base + 2]
        if key is not None:  # retried again: a run made writes nothing
            record = lake.write("events", batch(number), mode="append", engine=engine, idempotency_key=key)
            assert record.extra["idempotent_skip"] and record.rows == 0
            assert sorted(ids(lake, "events")) == sorted(in_dataset), step
            assert sorted(ids(lake, "events_rejected")) == sorted(in_quarantine), step
    assert outcomes["both"] and outcomes["neither"], outcomes
    assert journals(lake) == []
    print(f"quarantine kills {engine} {storage} {format}: {len(steps)} steps, {outcomes}")


MERGE_CASES = [("arrow", "local"), ("arrow", "s3"), ("spark", "local")]


@pytest.mark.parametrize(("engine", "storage"), MERGE_CASES, ids=["-".join(case) for case in MERGE_CASES])
def test_a_merge_quarantines_the_failing_source_rows_and_merges_the_rest(make_lake, engine, storage, monkeypatch):
    lake = make_lake(engine, storage, "delta")
    lake.write("events", rows(lake, engine, [1, 2, 3], ["a", "a", "b"], [1.0, 2.0, 3.0]), mode="append", engine=engine)
    # 1 updated, 4 inserted; 2 (day z) and 5 (v < 0) quarantined, their keys untouched; 3 deleted: a
    # delete writes no values, so its failing day is no reason to quarantine it.
    changes = rows(lake, engine, [1, 2, 4, 5, 3], ["a", "z", "b", "a", "q"], [5.0, 2.5, 4.0, -1.0, 999.0])
    record = lake.merge("events", changes, on="id", delete_when="v = 999", engine=engine)
    assert (record.extra["rows_updated"], record.extra["rows_inserted"], record.extra["rows_deleted"]) == (1, 1, 1)
    assert record.extra["quarantine"]["rows"] == 2 and record.extra["quarantine"]["dataset"] == "events_rejected"
    assert sorted((r["id"], r["day"], r["v"]) for r in stored(lake, "events")) == \
        [(1, "a", 5.0), (2, "a", 2.0), (4, "b", 4.0)]
    assert sorted((r["id"], r["lakeio_failed_checks"]) for r in stored(lake, "events_rejected")) == \
        [(2, ["in_set [day]"]), (5, ["between [v]"])]
    run_ids = set(lake.read("events_rejected", engine="arrow").to_arrow()["lakeio_run_id"].to_pylist())
    assert run_ids == {record.extra["quarantine"]["run_id"]}

    merged = type(lake._engine(engine)).merge

    def failing(self, request, record):
        raise OSError("injected: the merge's commit fails")

    monkeypatch.setattr(type(lake._engine(engine)), "merge", failing)
    with pytest.raises(OSError, match="injected"):
        lake.merge("events", rows(lake, engine, [6, 7], ["a", "z"], [1.0, 1.0]), on="id", engine=engine)
    monkeypatch.setattr(type(lake._engine(engine)), "merge", merged)
    assert sorted(r["id"] for r in stored(lake, "events")) == [1, 2, 4]
    assert sorted(r["id"] for r in stored(lake, "events_rejected")) == [2, 5]  # the failed merge's row 7 went again


EDGE_CASES = [("arrow", "delta"), ("arrow", "parquet"), ("spark", "delta"), ("spark", "parquet")]


@pytest.mark.parametrize(("engine", "format"), EDGE_CASES, ids=["-".join(case) for case in EDGE_CASES])
def test_a_run_quarantining_every_row_commits_nothing_to_the_dataset_and_one_quarantining_none_no_quarantine(
        make_lake, tmp_path, engine, format):
    """No row fails: no quarantine write at all (the quarantine is not even created). Every row
    fails: the dataset's commit has no rows (on Delta an empty commit: one new version, with the
    run's txn; on plain files no file changes), the quarantine has them all, and the run's commit
    point is made: a writer killed right after it leaves the run in the quarantine."""
    lake = make_lake(engine, "local", format)
    record = lake.write("events", rows(lake, engine, [1, 2], ["a", "b"], [1.0, 2.0]), mode="append", engine=engine)
    assert record.rows == 2 and record.extra["quarantine"]["rows"] == 0 and not lake.exists("events_rejected")
    assert not Path(lake.location("events_rejected").path + ".lakeio-pending-runs").exists()
    before = delta_version(lake) if format == "delta" else None

    record = lake.write("events", rows(lake, engine, [3, 4], ["q", "a"], [1.0, -1.0]), mode="append", engine=engine)
    assert record.rows == 0 and record.extra["quarantine"]["rows"] == 2
    assert record.extra["validation"]["rows"] == 0 and record.extra["validation"]["quarantined"] == 2
    assert sorted(ids(lake, "events")) == [1, 2] and sorted(ids(lake, "events_rejected")) == [3, 4]
    if format == "delta":
        assert delta_version(lake) == before + 1

    # Killed right after the empty commit of an all-quarantined run: the run stands.
    all_failing = pa.table({"id": pa.array([6, 7], pa.int64()), "day": ["q", "q"], "v": [1.0, 1.0]})
    killed = kill_writer(tmp_path, "local", engine, 6, kill_at="dataset-committed", data_table=all_failing)
    assert killed.returncode == -9, killed.stderr
    lake.recover("events")
    assert sorted(ids(lake, "events")) == [1, 2] and sorted(ids(lake, "events_rejected")) == [3, 4, 6, 7]
    assert journals(lake) == []


def delta_version(lake) -> int:
    from deltalake import DeltaTable

    return DeltaTable(lake.location("events").path).version()


@pytest.mark.parametrize("engine", ["arrow", "spark"])
def test_a_merge_killed_at_any_step_of_its_quarantining_run_leaves_both_or_neither(make_lake, tmp_path, engine):
    """A quarantining merge (Delta) SIGKILLed at each step of its run (Spark: after each of its
    two commits): after ``recover`` (or the next merge) its rows are in both datasets or in neither."""
    lake = make_lake(engine, "local", "delta")
    assert kill_writer(tmp_path, "local", "arrow", 0).returncode == 0
    in_dataset, in_quarantine = [1, 3], [2]
    steps = ["quarantine-committed", "dataset-committed"] if engine == "spark" else RUN_STEPS
    outcomes = {"both": 0, "neither": 0}
    for number, step in enumerate(steps, 1):
        killed = kill_writer(tmp_path, "local", engine, number, kill_at=step, mode="merge")
        assert killed.returncode == -9, (step, killed.stderr)
        if number % 2:
            lake.recover("events")
        else:  # the next merge settles it as well
            lake.merge("events", pa.table({"id": pa.array([1], pa.int64()), "day": ["b"], "v": [7.0]}), on="id",
                       engine="arrow")
        both = 10 * number + 1 in ids(lake, "events")
        outcomes["both" if both else "neither"] += 1
        if both:
            in_dataset, in_quarantine = in_dataset + [10 * number + 1, 10 * number + 3], in_quarantine + [10 * number + 2]
        assert sorted(ids(lake, "events")) == sorted(in_dataset), step
        assert sorted(ids(lake, "events_rejected")) == sorted(in_quarantine), step
        assert journals(lake) == [], step
    assert outcomes["both"] and outcomes["neither"], outcomes
    print(f"quarantine merge kills {engine}: {len(steps)} steps, {outcomes}")


@pytest.mark.parametrize("format", ["delta", "parquet"])
def test_two_writers_settling_one_dead_run_at_once_settle_it_once(make_lake, tmp_path, format):
    """A run killed between its two commits; two writers start at once and both find it: one takes
    its settling (held there 3 s), the other waits for it, sees it settled and writes. The dead run
    is rolled back once, both new runs land whole, no quarantine row twice or missing. (Settling is
    the catalog's, by the Arrow engine, whichever engine wrote the run.)"""
    lake = make_lake("arrow", "local", format)
    assert kill_writer(tmp_path, "local", "arrow", 0).returncode == 0
    assert kill_writer(tmp_path, "local", "arrow", 1, kill_at="quarantine-committed").returncode == -9
    steps = [tmp_path / f"racer{number}.txt" for number in (2, 3)]
    racers = [subprocess.Popen(writer_command(tmp_path, "local", "arrow", number, steps=path,
                                              pause_at="run-claimed:3"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for number, path in zip((2, 3), steps, strict=True)]
    results = [(racer.wait(timeout=240), racer.stderr.read()) for racer in racers]
    assert [code for code, _ in results] == [0, 0], results
    seen = [path.read_text().split() for path in steps]
    assert sorted(("run-claimed" in s, "run-settled-elsewhere" in s) for s in seen) == [(False, True), (True, False)], seen
    assert sum("rolled back the quarantining run" in stderr for _, stderr in results) == 1, results
    assert sorted(ids(lake, "events")) == [1, 3, 21, 23, 31, 33]
    assert sorted(ids(lake, "events_rejected")) == [2, 22, 32]
    assert journals(lake) == []
    print(f"two settlers {format}: 1 settled the dead run, 1 waited; both runs whole")

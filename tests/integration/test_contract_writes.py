"""Every write path runs the contract (issue 14): row checks judge the rows written, table checks
the table as it will be after the write, on both engines, locally and on the S3 server, for
append, overwrite_partitions, replace_where, overwrite and merge; streamed reads run it too."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakeio.errors import DataQualityError

CONTRACT = """
columns:
  id: {type: int64, nullable: false, checks: [unique]}
  day: {type: string, checks: [{in_set: {values: [a, b], all_present: true}}]}
  v: {type: float64}
checks:
  - row_count: {min: 3}
"""

CASES = [(engine, storage) for engine in ("arrow", "spark") for storage in ("local", "s3")]


@pytest.fixture
def make_lake(catalog_on, tmp_path, request):
    contract = tmp_path / "events-contract.yaml"
    contract.write_text(CONTRACT)

    def make(engine: str, storage: str):
        if engine == "spark":
            request.getfixturevalue("spark")
        return catalog_on(storage, "contract-writes",
                          events={"format": "delta", "partition_by": ["day"], "schema": str(contract)},
                          plain={"format": "parquet", "partition_by": ["day"], "schema": str(contract)})

    return make


def rows(lake, engine: str, ids: list[int], days: list[str], values: list[float] | None = None):
    table = pa.table({"id": pa.array(ids, pa.int64()), "day": days,
                      "v": pa.array(values if values is not None else [1.0] * len(ids), pa.float64())})
    return lake.spark().createDataFrame(table.to_pandas()) if engine == "spark" else table


def stored(lake, name: str) -> list[tuple]:
    table = lake.read(name, engine="arrow", validate=False).to_arrow().sort_by("id")
    return list(zip(table["id"].to_pylist(), table["day"].to_pylist(), table["v"].to_pylist()))


def refused(check: str, write) -> str:
    with pytest.raises(DataQualityError) as caught:
        write()
    failed = [r.check for r in caught.value.report.errors]
    assert check in failed, str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize(("engine", "storage", "name"), [
    *[(engine, storage, "events") for engine, storage in CASES],
    ("arrow", "local", "plain"), ("arrow", "s3", "plain"), ("spark", "local", "plain")])  # Spark on S3 plain: slow, same code
def test_table_checks_judge_the_table_after_each_write(make_lake, engine, storage, name):
    lake = make_lake(engine, storage)

    def write(ids, days, mode, values=None, **kwargs):
        return lake.write(name, rows(lake, engine, ids, days, values), mode=mode, engine=engine, **kwargs)

    write([1, 2, 3], ["a", "b", "b"], "overwrite")
    # One row is a valid append: row_count and all_present count the rows already there.
    record = write([4], ["a"], "append")
    assert record.extra["validation"]["passed"] and record.extra["validation"]["errors"] == 0
    # unique sees the keys already in the table: a duplicate key is refused, nothing lands.
    message = refused("unique", lambda: write([1], ["a"], "append"))
    assert "1 row(s) repeat a value" in message
    assert stored(lake, name) == [(1, "a", 1.0), (2, "b", 1.0), (3, "b", 1.0), (4, "a", 1.0)]
    # Replacing partition a replaces keys 1 and 4: key 1 again is no duplicate; key 2 (in b) is.
    write([1], ["a"], "overwrite_partitions", [5.0])
    refused("unique", lambda: write([2], ["a"], "overwrite_partitions"))
    # replace_where: the rows it replaces leave the table; the others still count.
    refused("unique", lambda: write([3], ["a"], "overwrite", replace_where="day = 'a'"))
    write([9], ["a"], "overwrite", [7.0], replace_where="day = 'a'")
    # A whole overwrite leaves only its rows: two are too few, and 'b' would be absent.
    message = refused("row_count", lambda: write([5, 6], ["a", "a"], "overwrite"))
    assert "2 rows (expected 3..any)" in message and "never occur: 'b'" in message
    assert stored(lake, name) == [(2, "b", 1.0), (3, "b", 1.0), (9, "a", 7.0)]


@pytest.mark.parametrize(("engine", "storage"), CASES)
def test_merge_runs_the_contract_on_the_rows_it_writes_and_the_table_it_leaves(make_lake, engine, storage):
    lake = make_lake(engine, storage)

    def merge(ids, days, values, **kwargs):
        return lake.merge("events", rows(lake, engine, ids, days, values), on="id", engine=engine, **kwargs)

    lake.write("events", rows(lake, engine, [1, 2, 3, 4], ["a", "b", "b", "a"]), mode="overwrite", engine=engine)
    # Rows write() refuses are refused by a merge too.
    refused("in_set", lambda: merge([5], ["c"], [1.0]))
    # An update of a key is no duplicate of it.
    merge([1], ["a"], [9.0])
    # Rows marked for deleting are not written, so they are not judged row by row ('c' is fine here).
    record = merge([4], ["c"], [-1.0], delete_when="v < 0")
    assert record.extra["rows_deleted"] == 1
    # Deleting two more would leave one row: row_count judges the table after the merge.
    refused("row_count", lambda: merge([2, 3], ["b", "b"], [-1.0, -1.0], delete_when="v < 0"))
    # Only inserts land with when_matched='ignore': key 3 is not written again, key 7 is new.
    merge([3, 7], ["b", "a"], [8.0, 8.0], when_matched="ignore")
    assert stored(lake, "events") == [(1, "a", 9.0), (2, "b", 1.0), (3, "b", 1.0), (7, "a", 8.0)]
    refused("unique", lambda: lake.write("events", rows(lake, engine, [7], ["b"]), mode="append", engine=engine))


@pytest.mark.parametrize(("engine", "storage"), CASES)
def test_a_streamed_read_runs_the_contract_and_a_write_of_it_commits_nothing(make_lake, engine, storage):
    lake = make_lake(engine, storage)
    bad = rows(lake, "arrow", [1, 2, 2], ["a", "b", "b"])
    lake.write("events", bad, mode="overwrite", engine=engine, validate=False)
    with pytest.raises(DataQualityError, match="unique"):
        lake.read("events", engine=engine).to_batches().read_all()
    with pytest.raises(DataQualityError, match="unique"):
        lake.write("plain", lake.read("events", engine=engine).to_batches(), mode="overwrite", validate=False)
    assert not lake.exists("plain")

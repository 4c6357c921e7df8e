"""Contracts on reads and writes with the Arrow engine: failing data never lands, every failure is in
the report, warnings are logged, metrics reach the sink, and reads validate what they materialise."""

from __future__ import annotations

import json
import logging

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakeio import Catalog, DataQualityError, InvalidArgumentError

CONTRACT = """
columns:
  id:      {type: int64, nullable: false, checks: [unique]}
  carrier: {type: string, checks: [{in_set: [AA, UA]}, {pattern: {regex: "^[A-Z]{2}$", severity: warning}}],
            metrics: [counts_per_label]}
  delay:   {type: float64, checks: [{max_null_fraction: 0.5}, {between: [-60, 600]}], metrics: [mean, max]}
  month:   {type: int64, cast: true}
checks:
  - row_count: {min: 2}
"""


def resources(fmt: str) -> str:
    return f"""
flights:
  format: {fmt}
  partition_by: [month]
  schema: schemas/flights.yaml
  environments:
    local: {{uri: data/flights}}
plain:
  format: parquet
  environments:
    local: {{uri: data/plain}}
"""


@pytest.fixture(params=["delta", "parquet"])
def lake(request, tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", resources(request.param))
    write_yaml("conf/schemas/flights.yaml", CONTRACT)
    write_yaml("conf/lakeio.yaml", f"environments:\n  local: {{metrics_sink: {tmp_path / 'metrics'}}}\n")
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)


def good(n: int = 4, offset: int = 0) -> pa.Table:
    return pa.table({"id": pa.array(range(offset, offset + n), pa.int64()),
                     "carrier": pa.array(["AA", "UA"] * (n // 2)),
                     "delay": pa.array([1.5, None, 30.0, -5.0] * (n // 4), pa.float64()),
                     "month": pa.array([1, 2] * (n // 2), pa.int32())})


def bad() -> pa.Table:
    return pa.table({"id": pa.array([1, 1, None, 4], pa.int64()),
                     "carrier": pa.array(["AA", "XX", "zz", "UA"]),
                     "delay": pa.array([1.0, 900.0, None, None], pa.float64()),
                     "month": pa.array([1, 1, 2, 2], pa.int32())})


def stored(lake: Catalog) -> pa.Table:
    return lake.read("flights", validate=False).to_arrow().sort_by("id").select(["id", "carrier", "delay", "month"])


@pytest.mark.parametrize("mode", ["overwrite", "append"])
def test_failing_data_never_lands_and_the_previous_version_stays_readable(lake, tmp_path, mode):
    lake.write("flights", good(), mode="error")
    before = stored(lake)
    files_before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*") if p.is_file())

    with pytest.raises(DataQualityError) as caught:
        lake.write("flights", bad(), mode=mode)

    errors = {(r.check, r.column): r.observed for r in caught.value.report.errors}
    # unique judges the table after the write: an append's key 1 also repeats the table's key 1.
    duplicates = 1 if mode == "overwrite" else 2
    assert errors == {("not_null", "id"): 1, ("unique", "id"): duplicates, ("in_set", "carrier"): 2, ("between", "delay"): 1}
    assert [(w.check, w.column, w.observed) for w in caught.value.report.warnings] == [("pattern", "carrier", 1)]
    message = str(caught.value)
    assert "failed its contract on write" in message and "in_set [carrier]" in message and "unique [id]" in message
    files_after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert files_after == files_before
    assert stored(lake).equals(before)
    if lake.resource("flights").format == "delta":
        assert DeltaTable(str(tmp_path / "data" / "flights")).version() == 0


def test_a_passing_write_is_cast_as_allowed_and_recorded(lake, io_records):
    record = lake.write("flights", good(8), mode="error")
    assert record.extra["validation"]["passed"] is True
    assert record.extra["validation"]["errors"] == 0
    back = lake.read("flights", validate=False).to_arrow()
    assert back.schema.field("month").type in (pa.int64(), pa.int32())  # hive partition values come back as int32
    assert back.schema.field("id").type == pa.int64()
    assert io_records("write")[0]["extra"]["validation"]["run_id"] == record.extra["validation"]["run_id"]


def test_metrics_go_to_the_json_lines_sink_one_record_per_metric(lake, tmp_path):
    record = lake.write("flights", good(8), mode="error")
    run_id = record.extra["validation"]["run_id"]
    files = list((tmp_path / "metrics" / "dataset=flights").glob(f"*-{run_id}.jsonl"))
    assert len(files) == 1
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert {(r["column"], r["metric"], r["label"]): r["value"] for r in lines} == {
        (None, "row_count", None): 8, ("carrier", "counts_per_label", "AA"): 4,
        ("carrier", "counts_per_label", "UA"): 4, ("delay", "mean", None): 26.5 / 3, ("delay", "max", None): 30.0}
    assert all(r["run_id"] == run_id and r["dataset"] == "flights" and r["env"] == "local"
               and r["operation"] == "write" for r in lines)


def test_metrics_go_to_logging_by_default_and_warnings_are_logged_not_raised(tmp_path, write_yaml, caplog):
    write_yaml("conf/datasets.yaml", resources("parquet"))
    write_yaml("conf/schemas/flights.yaml", CONTRACT)
    lake = Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)
    caplog.set_level(logging.INFO, logger="lakeio.metrics")
    data = good(4).set_column(1, "carrier", pa.array(["AA", "UA", "UA", "UA"]))
    lake.write("flights", data, mode="error")
    metrics = [r.lakeio for r in caplog.records if r.name == "lakeio.metrics"]
    assert {(m["column"], m["metric"], m["label"], m["value"]) for m in metrics} >= {
        (None, "row_count", None, 4), ("carrier", "counts_per_label", "UA", 3)}
    caplog.clear()
    lowered = data.set_column(1, "carrier", pa.array(["AA", "UA", "UA", "Ua"]))
    with pytest.raises(DataQualityError):  # 'Ua' breaks in_set (error) and pattern (warning)
        lake.write("flights", lowered, mode="overwrite")
    warnings = [r for r in caplog.records if r.name == "lakeio.validation" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "pattern [carrier]" in warnings[0].getMessage()


def test_reads_validate_what_they_materialise(lake, tmp_path):
    lake.write("flights", bad(), mode="error", validate=False)

    with pytest.raises(DataQualityError) as caught:
        lake.read("flights").to_arrow()
    assert caught.value.report.operation == "read"
    assert {(r.check, r.column) for r in caught.value.report.errors} == {
        ("not_null", "id"), ("unique", "id"), ("in_set", "carrier"), ("between", "delay")}

    # Only the columns read are checked; a contract column not read is not "missing".
    with pytest.raises(DataQualityError) as caught:
        lake.read("flights", columns=["carrier"]).to_pandas()
    report = caught.value.report
    assert {(r.check, r.column) for r in report.errors} == {("in_set", "carrier")}
    assert ("unique", "id") in {(s.check, s.column) for s in report.skipped}

    # A filtered read skips what only the whole dataset can answer (row_count, max_null_fraction).
    with pytest.raises(DataQualityError) as caught:
        lake.read("flights", where="carrier = 'XX'").to_arrow()
    report = caught.value.report
    assert report.filtered and report.rows == 1
    assert {s.check for s in report.skipped} == {"row_count", "max_null_fraction"}

    assert lake.read("flights", validate=False).to_arrow().num_rows == 4
    assert lake.read("flights", where="carrier = 'AA'", columns=["carrier", "delay"]).to_arrow().num_rows == 1


def test_validate_streams_the_stored_dataset_and_returns_the_report(lake):
    lake.write("flights", bad(), mode="error", validate=False)
    report = lake.validate("flights")
    assert report.operation == "validate" and report.backend == "arrow" and not report.passed
    assert report.rows == 4 and {r.check for r in report.errors} >= {"unique", "in_set"}
    assert lake.validate("flights", good(8)).passed
    with pytest.raises(InvalidArgumentError, match="dataset 'plain' has no contract"):
        lake.validate("plain")


def test_a_record_batch_reader_is_validated_once_and_written_from_the_spill(lake):
    table = good(40)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
    record = lake.write("flights", reader, mode="error")
    assert record.extra["validation"]["passed"]
    assert stored(lake).column("id").to_pylist() == list(range(40))

    failing = bad()
    reader = pa.RecordBatchReader.from_batches(failing.schema, failing.to_batches(max_chunksize=1))
    with pytest.raises(DataQualityError):
        lake.write("flights", reader, mode="overwrite")
    assert stored(lake).num_rows == 40


def test_types_are_checked_and_cast_only_where_allowed(lake):
    wrong = good(4).set_column(0, "id", pa.array([1, 2, 3, 4], pa.int32()))
    with pytest.raises(DataQualityError) as caught:
        lake.write("flights", wrong, mode="error")
    (error,) = caught.value.report.errors
    assert (error.check, error.column, error.observed, error.threshold) == ("type", "id", "int32", "int64")
    assert "cast: true" in error.message

    extra = good(4).append_column("note", pa.array(["a"] * 4))
    with pytest.raises(DataQualityError, match="columns not in the contract: note"):
        lake.write("flights", extra, mode="error")

    lossy = good(4).set_column(3, "month", pa.array([1.0, 2.5, 1.0, 2.0]))
    with pytest.raises(DataQualityError, match=r"cast to int64: 1 value\(s\) do not fit"):
        lake.write("flights", lossy, mode="error")
    assert not lake.exists("flights")


def test_deequs_word_on_a_result_reaches_the_report_text_html_and_json():
    from lakeio.validation.report import CheckResult, ValidationReport

    said = "Failure: CompletenessConstraint(Completeness(n,None,None)): Value: 0.75 does not meet the constraint requirement!"
    report = ValidationReport("d", "test", "validate", "deequ", "r1", "c.yaml", rows=4, seconds=0.1, filtered=False,
                              results=(CheckResult("not_null", "n", "error", False, 1, 0, "1 null value(s) of 4 rows",
                                                   said),
                                       CheckResult("unique", "n", "error", True, 0, 0, "none repeated")),
                              metrics=(), skipped=())
    assert f"1 null value(s) of 4 rows (deequ: {said})" in str(report)
    assert [r["deequ"] for r in report.as_dict()["results"]] == [said, None]
    html = report.to_html()
    assert "deequ: Failure: CompletenessConstraint(Completeness(n,None,None))" in html and html.count("deequ:") == 1

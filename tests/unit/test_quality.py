"""Metrics history, history checks, the metrics sink's failures, OpenLineage events and the HTML report,
on the Arrow engine with local files (the S3 server and Spark: tests/integration/test_quality.py)."""

from __future__ import annotations

import http.server
import json
import logging
import threading

import pyarrow as pa
import pytest

from lakeio import Catalog, ConfigError, DataQualityError, StorageError
from lakeio.validation.contract import HistoryBounds
from lakeio.validation.semantics import judge_history

CONTRACT = """
columns:
  id:     {type: int64, nullable: false, checks: [unique]}
  amount: {type: float64, checks: [{mean: {max_change: 0.2}}, {between: [0, 1000]}]}
checks:
  - row_count: {max_change: 0.5}
"""


def events(n: int, amount: float = 10.0, offset: int = 0) -> pa.Table:
    return pa.table({"id": pa.array(range(offset, offset + n), pa.int64()),
                     "amount": pa.array([amount] * n, pa.float64())})


@pytest.fixture
def make_lake(tmp_path, write_yaml):
    def make(settings: str, contract: str = CONTRACT) -> Catalog:
        write_yaml("conf/datasets.yaml", """
            events:
              format: delta
              schema: schemas/events.yaml
              environments:
                local: {uri: "data/events/{day}"}
            """)
        write_yaml("conf/schemas/events.yaml", contract)
        write_yaml("conf/lakeio.yaml", "environments:\n  local:\n" + "".join(f"    {line}\n" for line in
                                                                           settings.strip().splitlines()))
        return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)

    return make


# -- the strategies, as semantics defines them --------------------------------------------------

@pytest.mark.parametrize(("bounds", "current", "past", "passed"), [
    (HistoryBounds(max_change=0.5), 149, [100.0], True),
    (HistoryBounds(max_change=0.5), 151, [100.0], False),
    (HistoryBounds(max_change=0.5), 49, [100.0], False),  # a fall counts as a rise does
    (HistoryBounds(max_change=0.5, window=2), 150, [0.0, 100.0, 100.0], True),  # the last 2 runs' mean
    (HistoryBounds(max_change=0.1), 1, [0.0], False),  # from zero: any change is infinite
    (HistoryBounds(max_change=0.1), 0, [0.0], True),
    (HistoryBounds(max_delta=3), 13, [10.0], True),
    (HistoryBounds(max_delta=3), 6.9, [10.0], False),
    (HistoryBounds(max_deviations=2, window=4), 11, [9.0, 11.0, 9.0, 11.0], True),  # mean 10, stddev 1
    (HistoryBounds(max_deviations=2, window=4), 12.5, [9.0, 11.0, 9.0, 11.0], False),
    (HistoryBounds(max_deviations=2, window=4), 10, [10.0, 10.0], True),  # constant history, same value
])
def test_history_strategies(bounds, current, past, passed):
    verdict, observed, threshold, message = judge_history(bounds, current, past)
    assert verdict is passed, message
    assert observed["value"] == current and "window" in threshold
    json.dumps(observed)  # plain JSON, even from a zero reference


def test_too_little_history_passes_with_a_note_and_no_history_says_why():
    assert judge_history(HistoryBounds(max_deviations=1, window=5), 99, [1.0])[::3] == \
        (True, "only 1 earlier run to compare with: passes (the first runs of this history)")
    assert judge_history(HistoryBounds(max_change=0.1), 99, None)[::3] == \
        (True, "no metrics history to compare with (the logging sink keeps none; an unreadable one is logged): passes")


def test_history_checks_are_checked_at_load(make_lake):
    with pytest.raises(ConfigError) as caught:
        make_lake("metrics_sink: metrics", """
            columns:
              id: {type: int64, checks: [{mean: {window: 3}}, {count: {max_deviations: 2}}]}
              name: {type: string, checks: [{mean: {max_change: 0.1}}, {distinct_count: {max_delta: 2}}]}
            checks:
              - row_count: {max_deviations: 2, window: 1}
            """)
    message = str(caught.value)
    assert "columns.id.checks.0.mean: give max_change, max_delta or max_deviations" in message
    assert "columns.id.checks.1.count: max_deviations needs a window of 2 runs or more" in message
    assert "columns.name.checks.0.mean: a history of mean needs a numeric column; 'name' is string" in message
    assert "checks.0.row_count: max_deviations needs a window of 2 runs or more" in message
    assert "distinct_count" not in message  # counts watch any column


# -- history in the lake ----------------------------------------------------------------------------

@pytest.mark.parametrize("sink", ["{uri: metrics, format: delta}", "metrics"])
def test_history_checks_compare_with_earlier_runs_and_a_jump_never_lands(make_lake, sink):
    lake = make_lake(f"metrics_sink: {sink}")
    first = lake.write("events", events(100), mode="overwrite", day="d1")
    notes = {r.check: r.message for r in first.report.results if r.check in ("row_count", "mean")}
    assert notes == {"row_count": "no earlier run to compare with: passes (the first run of this history)",
                     "mean": "no earlier run to compare with: passes (the first run of this history)"}
    lake.write("events", events(140, 11.0), mode="overwrite", day="d2")  # +40% rows, +10% mean

    with pytest.raises(DataQualityError) as caught:
        lake.write("events", events(300, 11.0), mode="overwrite", day="d3")
    assert [(e.check, e.observed["reference"]) for e in caught.value.report.errors] == [("row_count", 140.0)]
    assert not lake.exists("events", day="d3")

    # the refused run is in the history (passed: false) but is never a reference
    again = lake.write("events", events(150, 11.5), mode="overwrite", day="d3")
    row_count = next(r for r in again.report.results if r.check == "row_count")
    assert row_count.passed and row_count.observed["reference"] == 140.0


def test_a_delta_history_reads_through_the_catalog(make_lake, tmp_path):
    lake = make_lake("metrics_sink: {uri: metrics, format: delta}")
    written = [lake.write("events", events(n), mode="overwrite", day=f"d{n}") for n in (10, 12)]
    history = lake.read("lakeio_metrics").to_pandas().sort_values(["time", "metric"])
    assert set(history.columns) >= {"dataset", "env", "version", "partition", "metric", "value", "run_id", "time"}
    assert history["dataset"].unique().tolist() == ["events"]
    assert sorted(history["run_id"].unique()) == sorted(r.report.run_id for r in written)
    rows = history[history.metric == "row_count"]
    assert rows[["partition", "value", "version", "operation"]].values.tolist() == [
        ["day=d10", 10.0, 0, "write"], ["day=d12", 12.0, 0, "write"]]
    assert lake.read("lakeio_metrics", where="metric = 'mean'").count() == 2
    assert [r.version for r in written] == [0, 0]  # each day is a table of its own


def test_a_sink_that_cannot_be_written_does_not_stop_valid_data(make_lake, tmp_path, caplog):
    (tmp_path / "blocked").write_text("a file where the sink wants a folder")
    lake = make_lake("metrics_sink: {uri: blocked/metrics, format: delta}")
    with caplog.at_level(logging.ERROR, logger="lakeio.metrics"):
        record = lake.write("events", events(10), mode="overwrite", day="d1")
    assert lake.read("events", day="d1").count() == 10
    assert "metrics sink" in record.extra["metrics_sink_error"] and "blocked/metrics" in record.extra["metrics_sink_error"]
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert caplog.records[0].lakeio["metrics_sink_error"] == record.extra["metrics_sink_error"]


def test_a_sink_error_is_fatal_when_asked(make_lake, tmp_path):
    (tmp_path / "blocked").write_text("not a folder")
    lake = make_lake("metrics_sink: {uri: blocked/metrics, on_error: raise}")
    with pytest.raises(StorageError, match="metrics sink .*blocked/metrics"):
        lake.validate("events", events(10), day="d1")


# -- OpenLineage --------------------------------------------------------------------------------

def lineage_events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_read_and_write_emits_a_run_event_valid_by_the_spec(make_lake, tmp_path, openlineage_errors,
                                                                  monkeypatch):
    monkeypatch.setenv("LAKEIO_JOB", "daily_events")
    lake = make_lake(f"metrics_sink: {{uri: metrics, format: delta}}\n"
                     f"lineage: {{transport: file, path: {tmp_path / 'lineage.jsonl'}, namespace: pipelines}}")
    lake.write("events", events(10), mode="overwrite", day="d1")
    lake.write("events", events(11, offset=10), mode="append", day="d1")
    lake.read("events", day="d1").to_arrow()
    lake.merge("events", events(3, amount=5.0), on="id", day="d1")
    with pytest.raises(DataQualityError):
        lake.write("events", events(100, amount=-1), mode="append", day="d1")
    sent = lineage_events(tmp_path / "lineage.jsonl")
    assert [(e["eventType"], e["job"]["name"], e["job"]["facets"]["jobType"]["jobType"]) for e in sent] == [
        ("COMPLETE", "daily_events", "WRITE"), ("COMPLETE", "daily_events", "WRITE"),
        ("COMPLETE", "daily_events", "READ"), ("COMPLETE", "daily_events", "MERGE"), ("FAIL", "daily_events", "WRITE")]
    for event in sent:
        assert openlineage_errors(event) == []
    first, second, read, merged, failed = sent
    assert merged["outputs"][0]["facets"]["version"]["datasetVersion"] == "2"
    output = first["outputs"][0]
    assert (first["job"]["namespace"], output["namespace"], output["name"]) == \
        ("pipelines", "file", str(tmp_path / "data/events/d1"))
    assert output["facets"]["version"]["datasetVersion"] == "0"
    assert second["outputs"][0]["facets"]["version"]["datasetVersion"] == "1"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 10
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["id", "amount"]
    assertions = {(a["assertion"], a.get("column")): a["success"]
                  for a in output["facets"]["dataQualityAssertions"]["assertions"]}
    assert assertions[("unique", "id")] and assertions[("row_count", None)]
    assert output["facets"]["dataQualityMetrics"]["rowCount"] == 10
    assert read["inputs"][0]["name"] == output["name"] and read["inputs"][0]["facets"]["version"]["datasetVersion"] == "1"
    assert "DataQualityError" in failed["run"]["facets"]["errorMessage"]["message"]
    refused = {a["assertion"]: a["success"] for a in failed["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"]}
    assert refused["between"] is False


def test_lineage_over_http_and_console(make_lake, openlineage_errors, caplog, monkeypatch):
    received: list[tuple[str, dict]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server API)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers.get("Authorization", ""), json.loads(body)))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("LINEAGE_KEY", "s3cr3t-key")
        lake = make_lake(f"lineage: {{transport: http, url: 'http://127.0.0.1:{server.server_port}', "
                         "api_key: '${LINEAGE_KEY}'}")
        lake.write("events", events(5), mode="overwrite", day="d1")
    finally:
        server.shutdown()
        server.server_close()
    assert "s3cr3t-key" not in repr(lake.settings)
    assert [(auth, event["outputs"][0]["name"].endswith("events/d1")) for auth, event in received] == \
        [("Bearer s3cr3t-key", True)]
    assert openlineage_errors(received[0][1]) == []

    console = make_lake("lineage: {transport: console}")
    with caplog.at_level(logging.INFO, logger="openlineage.client.transport.console"):
        console.read("events", day="d1").count()
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "openlineage.client.transport.console"]
    assert [e["job"]["name"] for e in logged] == ["events.count"]
    assert openlineage_errors(logged[0]) == []


def test_lineage_that_cannot_be_sent_never_fails_the_io(make_lake, caplog):
    lake = make_lake("lineage: {transport: http, url: 'http://127.0.0.1:9', timeout: 0.5, retries: 0}")
    with caplog.at_level(logging.WARNING, logger="lakeio.lineage"):
        record = lake.write("events", events(5), mode="overwrite", day="d1")
    assert record.rows == 5 and lake.read("events", day="d1").count() == 5
    assert any("cannot emit the write event of dataset 'events'" in r.getMessage() for r in caplog.records)


# -- the HTML report ------------------------------------------------------------------------------

def test_the_html_report_shows_verdicts_failing_values_and_history(make_lake):
    lake = make_lake("metrics_sink: {uri: metrics, format: delta}")
    for n in (100, 110, 105):
        lake.write("events", events(n), mode="overwrite", day="d1")
        lake.validate("events", day="d1")
    report = lake.validate("events", events(400, amount=2000.0), day="d1")
    page = report.to_html(lake.metrics_history("events"))
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page.split("</style>")[1]
    assert 'id="verdict">FAILED' in page
    assert 'class="check failed" data-check="between" data-column="amount"' in page
    assert "failing values from 2000.0 to 2000.0" in page
    assert page.count('class="metric-plot"') == 2  # row_count and amount's mean
    assert page.count('class="point"') == 2 * 3 and page.count('class="point current failed"') == 2
    assert page.count('class="bounds"') == 2
    assert report.to_html().count('class="point current failed"') == 2

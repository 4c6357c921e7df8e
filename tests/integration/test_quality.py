"""Metrics history, history checks, the sink's failures and lineage on both engines, locally and on the
S3 server; the HTML report in a real headless browser (Debian's Chromium)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess

import pandas as pd
import pytest

from lakeio import DataQualityError
from lakeio.cli import cli

CONTRACT = """
columns:
  id:     {type: int64, nullable: false, checks: [unique]}
  amount: {type: float64, checks: [{mean: {max_delta: 5}}, {between: [0, 1000]}], metrics: [stddev]}
checks:
  - row_count: {max_change: 0.5}
"""


def events(n: int, amount: float = 10.0) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "amount": [amount + (i % 3) for i in range(n)]})


@pytest.fixture(params=["local", "s3"])
def lake(request, catalog_on, tmp_path):
    return catalog_on(request.param, "quality", contracts={"events.yaml": CONTRACT},
                      settings={"metrics_sink": {"uri": "{root}/_metrics", "format": "delta"},
                                "lineage": {"transport": "file", "path": str(tmp_path / "lineage.jsonl")}},
                      events={"format": "delta", "schema": "schemas/events.yaml"})


@pytest.mark.parametrize("engine", ["arrow", "spark"])
def test_history_checks_on_both_engines(lake, spark, engine, tmp_path, openlineage_errors):
    def data(n, amount=10.0):
        frame = events(n, amount)
        return spark.createDataFrame(frame) if engine == "spark" else frame  # Spark data: the Spark backend

    lake.write("events", data(30), mode="overwrite", engine=engine)
    lake.write("events", data(40, 12.0), mode="overwrite", engine=engine)
    with pytest.raises(DataQualityError) as caught:
        lake.write("events", data(41, 20.0), mode="overwrite", engine=engine)
    assert [(e.check, e.column, e.observed["reference"]) for e in caught.value.report.errors] == \
        [("mean", "amount", 12.975)]
    assert lake.read("events", engine="arrow").count() == 40

    history = lake.read("lakeio_metrics", engine=engine).to_pandas()
    written = history[history.passed].sort_values("time")
    assert written[written.metric == "row_count"]["value"].tolist() == [30.0, 40.0]
    assert written[written.metric == "row_count"]["version"].tolist() == [0, 1]
    assert set(written["backend"]) == {engine}
    refused = history[~history.passed]
    assert refused[refused.metric == "mean"]["value"].tolist() == [pytest.approx(21.0, abs=0.03)]

    sent = [json.loads(line) for line in (tmp_path / "lineage.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in sent if e["job"]["name"] == "events.write"] == ["COMPLETE", "COMPLETE", "FAIL"]
    for event in sent:
        assert openlineage_errors(event) == []
    output = sent[1]["outputs"][0]
    location = lake.location("events")
    assert (output["namespace"], output["facets"]["version"]["datasetVersion"]) == \
        (("file", "1") if location.scheme == "file" else ("s3://lakeio-test", "1"))
    assert output["name"] == (location.path if location.scheme == "file" else location.path.split("/", 1)[1])


def test_both_backends_record_the_same_metrics(lake, spark):
    frame = events(25, 7.5)
    frame.loc[3, "amount"] = None
    arrow = lake.validate("events", frame, engine="arrow")
    on_spark = lake.validate("events", spark.createDataFrame(frame), engine="spark")
    assert (arrow.backend, on_spark.backend) == ("arrow", "spark")
    assert [(m.column, m.metric) for m in arrow.metrics] == [(m.column, m.metric) for m in on_spark.metrics]
    for ours, theirs in zip(arrow.metrics, on_spark.metrics, strict=True):
        assert ours.value == pytest.approx(theirs.value, rel=1e-12)
    # the second run compares with the first: the same value, so no change at all
    drift = {r.check: r.observed for r in on_spark.results if r.check in ("mean", "row_count")}
    assert drift["mean"]["delta"] == pytest.approx(0, abs=1e-12) and drift["row_count"]["change"] == 0


@pytest.mark.parametrize("engine", ["arrow", "spark"])
def test_a_sink_that_cannot_be_written_does_not_stop_valid_data_on_s3(catalog_on, spark, engine, caplog):
    lake = catalog_on("s3", "quality-sink", contracts={"events.yaml": CONTRACT},
                      settings={"metrics_sink": {"uri": "s3://no-such-bucket-for-lakeio/metrics", "format": "delta"}},
                      events={"format": "delta", "schema": "schemas/events.yaml"})
    data = spark.createDataFrame(events(12)) if engine == "spark" else events(12)
    with caplog.at_level(logging.ERROR, logger="lakeio.metrics"):
        record = lake.write("events", data, mode="overwrite", engine=engine)
    assert lake.read("events", engine="arrow").count() == 12
    assert "s3://no-such-bucket-for-lakeio/metrics" in record.extra["metrics_sink_error"]
    # its history cannot be read (the checks pass, saying so) and the run cannot be recorded: both logged
    logged = [r.getMessage() for r in caplog.records if r.name == "lakeio.metrics" and r.levelname == "ERROR"]
    assert len(logged) == 2 and "cannot read the history" in logged[0] and "cannot record run" in logged[1]
    notes = {r.check: r.message for r in record.report.results if r.check in ("mean", "row_count")}
    assert set(notes.values()) == {"no metrics history to compare with (the logging sink keeps none; an unreadable "
                                   "one is logged): passes"}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is missing: `make setup` installs it (Debian's chromium package)"
    return found


def test_the_html_report_renders_in_a_headless_browser(lake, tmp_path):
    from click.testing import CliRunner

    for n in (100, 110, 104, 112):
        lake.write("events", events(n), mode="overwrite")
        lake.validate("events")
    lake.write("events", events(300, 20.0), mode="overwrite", validate=False)
    page = tmp_path / "report.html"
    conf = tmp_path / "conf"
    result = CliRunner().invoke(cli, ["--conf", str(conf), "--env", lake.env, "validate", "events", "--html", str(page)])
    assert result.exit_code == 1, result.output
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2000"]
    dom = subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert 'id="verdict">FAILED</span>' in dom
    assert dom.count('<svg class="metric-plot"') == 3  # row_count, amount's mean and stddev
    assert dom.count('class="point current failed"') == 2 and dom.count('class="point"') == 3 * 4
    assert 'data-check="row_count"' in dom and "change +167.9% (at most 50%)" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*command, "--hide-scrollbars", "--window-size=1100,1200", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_a_json_lines_history_on_s3(catalog_on):
    lake = catalog_on("s3", "quality-jsonl", contracts={"events.yaml": CONTRACT},
                      settings={"metrics_sink": "{root}/_metrics"},
                      events={"format": "parquet", "schema": "schemas/events.yaml"})
    first = lake.validate("events", events(20), engine="arrow")
    second = lake.validate("events", events(50), engine="arrow")
    assert first.passed and not second.passed
    assert [(e.check, e.observed["reference"]) for e in second.errors] == [("row_count", 20.0)]
    assert [r["value"] for r in lake.metrics_history("events") if r["metric"] == "row_count"] == [20.0]

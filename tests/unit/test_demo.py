"""The demo pipeline on the shipped configuration, with data in a temporary folder."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from lakeio import Catalog
from lakeio.demo import delay_by_carrier, load_flights, main, run_pipeline

CONF = Path(__file__).resolve().parents[2] / "conf"


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "lakeio"):
            self.records.append(record.lakeio)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Runs the pipeline twice on one catalog; keeps each run's summary and I/O records."""
    base = tmp_path_factory.mktemp("demo")
    logger = logging.getLogger("lakeio.io")
    handler, level = _Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        lake = Catalog.load(CONF, env="local", base_dir=base)
        first = run_pipeline(lake)
        first_records = list(handler.records)
        handler.records.clear()
        second = run_pipeline(lake)
        second_records = list(handler.records)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return {"base": base, "lake": lake, "first": first, "second": second,
            "first_records": first_records, "second_records": second_records}


def test_data_goes_to_the_temporary_folder(demo):
    base = demo["base"]
    assert (base / "data" / "flights" / "_delta_log").is_dir()
    assert (base / "data" / "delay_by_carrier" / "2013-01").is_dir()
    for record in demo["first_records"]:
        assert record["uri"].startswith(str(base)), record["uri"]


def test_summary(demo):
    summary = demo["first"]
    assert list(summary.columns) == ["carrier", "flights", "mean_dep_delay", "mean_arr_delay"]
    assert len(summary) == 16
    assert summary["carrier"].is_unique
    assert summary["flights"].sum() == 27004
    assert summary["mean_dep_delay"].is_monotonic_decreasing


def test_summary_matches_pandas_on_the_source_data(demo):
    flights = load_flights()
    january = flights[(flights.year == 2013) & (flights.month == 1)]
    expected = delay_by_carrier(january[["carrier", "dep_delay", "arr_delay"]])
    pd.testing.assert_frame_equal(demo["first"], expected)
    assert dict(zip(expected.carrier, expected.flights)) == january.carrier.value_counts().to_dict()


def test_delay_by_carrier_reads_back_equal(demo):
    back = demo["lake"].read("delay_by_carrier", period="2013-01").to_pandas()
    pd.testing.assert_frame_equal(back, demo["first"])


def test_first_run_ingests_flights_and_prunes_the_read(demo):
    records = demo["first_records"]
    assert [(r["operation"], r["dataset"]) for r in records] == [
        ("write", "flights"), ("read", "flights"), ("write", "delay_by_carrier")]
    write, read, summary = records
    assert write["rows"] == 336776
    assert write["mode"] == "overwrite"
    assert write["files_written"] == 12  # one per month partition
    assert read["rows"] == 27004
    assert (read["files_scanned"], read["files_total"]) == (1, 12)
    assert summary["rows"] == 16
    assert summary["uri"].endswith("data/delay_by_carrier/2013-01")
    assert all(r["engine"] == "arrow" and r["env"] == "local" for r in records)


def test_second_run_does_not_rewrite_flights(demo):
    records = demo["second_records"]
    assert not [r for r in records if r["operation"] == "write" and r["dataset"] == "flights"]
    assert [(r["operation"], r["dataset"]) for r in records] == [("read", "flights"), ("write", "delay_by_carrier")]
    pd.testing.assert_frame_equal(demo["second"], demo["first"])
    assert demo["lake"].read("flights").count() == 336776  # not appended twice


def test_main_prints_the_summary(demo, monkeypatch, capsys):
    """The command line entry point, on the flights table the fixture already wrote."""
    logger = logging.getLogger("lakeio.io")
    handlers, level = list(logger.handlers), logger.level
    monkeypatch.chdir(demo["base"])
    monkeypatch.setenv("LAKEIO_ENV", "local")
    try:
        assert main(["--conf", str(CONF)]) == 0
    finally:
        for handler in logger.handlers[len(handlers):]:
            logger.removeHandler(handler)
        logger.setLevel(level)
    out = capsys.readouterr().out
    assert "lakeio demo: environment 'local', datasets delay_by_carrier, flights" in out
    assert "mean delay per carrier, January 2013 (minutes):" in out
    assert "read  flights" in out and "27004 rows" in out
    assert "write flights" not in out  # already there
    assert "files 1/12 scanned (11 pruned)" in out


def test_the_pipeline_runs_end_to_end_on_the_checked_in_sample(tmp_path):
    """The `sample` environment reads conf/samples/flights.csv and writes under base_dir."""
    lake = Catalog.load(CONF, env="sample", base_dir=tmp_path)
    summary = run_pipeline(lake)

    source = pd.read_csv(CONF / "samples" / "flights.csv")
    expected = delay_by_carrier(source[(source.year == 2013) & (source.month == 1)])
    pd.testing.assert_frame_equal(summary, expected)
    written = lake.read("delay_by_carrier", period="2013-01").to_pandas()
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert (tmp_path / "sample-output" / "delay_by_carrier" / "2013-01").is_dir()
    assert sorted(p.name for p in (CONF / "samples").iterdir()) == ["flights.csv"]  # nothing written there

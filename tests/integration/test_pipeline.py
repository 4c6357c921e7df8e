"""The demo pipeline end to end against the S3 server: on Spark with Delta, and on the Arrow side,
each reading what the other engine wrote."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

import lakeio
from lakeio.demo import delay_by_carrier, load_flights, run_pipeline


@pytest.fixture(scope="module")
def expected_summary() -> pd.DataFrame:
    flights = load_flights()
    return delay_by_carrier(flights[(flights.year == 2013) & (flights.month == 1)])


def io_records(caplog) -> list[dict]:
    return [r.lakeio for r in caplog.records if r.name == "lakeio.io"]


@pytest.mark.parametrize("engine", ["spark", "arrow"])
def test_demo_pipeline_on_s3(engine, conf, spark, s3_objects, expected_summary, caplog):
    caplog.set_level(logging.INFO, logger="lakeio.io")
    lake = lakeio.Catalog.load(conf, env="test")

    summary = run_pipeline(lake, engine=engine, refresh=True)

    pd.testing.assert_frame_equal(summary, expected_summary)
    records = io_records(caplog)
    assert [(r["operation"], r["dataset"], r["engine"]) for r in records] == [
        ("write", "flights", engine), ("read", "flights", engine), ("write", "delay_by_carrier", engine)]
    assert records[0]["rows"] == 336_776
    assert records[1]["rows"] == 27_004
    assert all(r["uri"].startswith("s3://lakeio-test/") for r in records)
    assert any(key.startswith("flights/_delta_log/") for key in s3_objects("flights/"))
    assert any(key.startswith("flights/year=2013/month=1/") for key in s3_objects("flights/"))
    assert any(key.endswith(".parquet") for key in s3_objects("delay_by_carrier/2013-01/"))


@pytest.mark.parametrize("writer, reader", [("spark", "arrow"), ("arrow", "spark")])
def test_engines_read_each_others_delta_tables_on_s3(writer, reader, conf, spark):
    lake = lakeio.Catalog.load(conf, env="test")
    flights = load_flights()
    lake.write("flights", flights, mode="overwrite", engine=writer)

    march = lake.read("flights", where="month = 3 AND carrier IN ('AA', 'UA')",
                      columns=["carrier", "flight", "dep_delay", "time_hour"], engine=reader).to_pandas()

    want = flights[(flights.month == 3) & flights.carrier.isin(["AA", "UA"])]
    assert len(march) == len(want) > 0
    assert sorted(march.flight.tolist()) == sorted(want.flight.tolist())
    assert march.dep_delay.sum() == pytest.approx(want.dep_delay.sum())
    assert str(march.time_hour.dt.tz) == "UTC"
    assert march.time_hour.min() == want.time_hour.min()


def test_spark_engine_writes_and_reads_parquet_on_s3(conf, spark):
    lake = lakeio.Catalog.load(conf, env="test")
    frame = pd.DataFrame({"carrier": ["AA", "UA"], "flights": [10, 20],
                          "mean_dep_delay": [1.5, 2.5], "mean_arr_delay": [0.5, None]})
    record = lake.write("delay_by_carrier", frame, mode="overwrite", engine="spark", period="spark-check")
    assert record.engine == "spark" and record.rows == 2

    back = lake.read("delay_by_carrier", engine="arrow", period="spark-check").to_pandas()
    pd.testing.assert_frame_equal(back.sort_values("carrier", ignore_index=True), frame)

    with pytest.raises(lakeio.StorageError, match="already exists"):
        lake.write("delay_by_carrier", frame, mode="error", engine="spark", period="spark-check")
    assert lake.read("delay_by_carrier", engine="spark", period="spark-check").count() == 2

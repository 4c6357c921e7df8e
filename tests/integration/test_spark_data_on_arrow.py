"""Spark data written with engine="arrow": Spark writes Parquet to the scratch folder and Arrow
streams it into the write; nothing is collected through the driver (toArrow, toPandas, collect
are made to fail, the fault that ``spark.driver.maxResultSize`` would be), and the scratch folder
is left empty. Spark data is validated on Spark before the Arrow engine writes it."""

from __future__ import annotations

import uuid

import pyarrow.fs as pafs
import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import lakeio
from lakeio.storage import Storage


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path, spark, s3_endpoint) -> lakeio.Catalog:
    storage = request.param
    prefix = uuid.uuid4().hex[:10]
    root = str(tmp_path / "data") if storage == "local" else f"s3://lakeio-test/arrow-writes/{prefix}"
    scratch = str(tmp_path / "scratch") if storage == "local" else f"s3://lakeio-test/scratch/{prefix}"
    conf = tmp_path / "conf"
    (conf / "schemas").mkdir(parents=True)
    (conf / "lakeio.yaml").write_text(f"environments: {{{storage}: {{engine: auto, spark: {{scratch_uri: '{scratch}'}}}}}}\n")
    (conf / "schemas" / "totals.yaml").write_text(
        "columns:\n  k: {type: int64, nullable: false}\n  total: {type: int64, checks: [{less_than: 1000000}]}\n")
    (conf / "datasets.yaml").write_text("".join(
        f"{name}: {{format: {format}, {extra}environments: {{{storage}: {{uri: '{root}/{name}'}}}}}}\n"
        for name, format, extra in [("totals_delta", "delta", "schema: schemas/totals.yaml, "),
                                    ("totals_parquet", "parquet", "partition_by: [k], ")]))
    return lakeio.Catalog.load(conf, env=storage)


@pytest.fixture
def no_driver_collect(monkeypatch):
    """The fault: every way of pulling a DataFrame's rows into the driver fails."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("collected through the driver")

    for method in ("toArrow", "toPandas", "collect", "toLocalIterator"):
        monkeypatch.setattr(DataFrame, method, refuse)


def scratch_entries(lake: lakeio.Catalog) -> list[str]:
    location = lake.location("totals_delta")  # any dataset: for the storage's filesystem
    filesystem = Storage(lake.settings.s3).filesystem(location)
    scratch = lake.settings.spark.scratch_uri.removeprefix("s3://")
    found = filesystem.get_file_info(pafs.FileSelector(scratch, allow_not_found=True, recursive=True))
    return [info.path for info in found if info.type == pafs.FileType.File]


def totals(spark, rows: int = 10_000, keys: int = 5):
    return spark.range(rows).withColumn("k", F.col("id") % keys).groupBy("k").agg(F.sum("id").alias("total"))


@pytest.mark.parametrize("name", ["totals_delta", "totals_parquet"])
def test_a_computed_spark_frame_written_on_arrow_never_goes_through_the_driver(lake, spark, name, no_driver_collect):
    frame = totals(spark, rows=1_000, keys=5)
    record = lake.write(name, frame, mode="overwrite", engine="arrow")

    assert record.engine == "arrow"
    written = lake.read(name, engine="arrow", validate=False).to_arrow()
    assert sorted(zip(written["k"].to_pylist(), written["total"].to_pylist())) == \
        [(k, sum(range(k, 1_000, 5))) for k in range(5)]
    assert scratch_entries(lake) == []


def test_spark_data_failing_its_contract_on_arrow_is_refused_before_anything_is_written(lake, spark, no_driver_collect):
    with pytest.raises(lakeio.DataQualityError, match="less_than") as raised:
        lake.write("totals_delta", totals(spark, rows=100_000, keys=2), mode="overwrite", engine="arrow")
    assert raised.value.report.backend == "spark"
    assert not lake.exists("totals_delta")
    assert scratch_entries(lake) == []

"""The real JVM stack: lakeio's helper jar, Delta, s3a, and the errors when a part is missing."""

from __future__ import annotations

import pytest

import lakeio
from lakeio.spark import jvm


def test_helper_answers_its_version_for_this_spark(spark):
    versions = jvm.check_helper(spark)
    assert versions == {"helper": lakeio.__version__, "spark": spark.version}
    assert spark.version == "4.1.4"


def test_session_has_delta_and_s3a(spark, s3_endpoint):
    assert "io.delta.sql.DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")
    assert spark.conf.get("spark.hadoop.fs.s3a.endpoint") == s3_endpoint
    jars = spark.conf.get("spark.jars")
    assert "lakeio-helper-" in jars and "delta-spark_4.1_2.13" in jars and "hadoop-aws-3.4.2" in jars


def test_session_lakeio_starts_prints_no_console_progress_bar(spark):
    assert spark.sparkContext.getConf().get("spark.ui.showConsoleProgress") == "false"


def test_missing_jars_fail_fast_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEIO_JARS_DIR", str(tmp_path))
    with pytest.raises(lakeio.EngineUnavailableError, match="make setup"):
        jvm.jar_paths()
    (tmp_path / "lakeio-helper-0.0.0.jar").write_bytes(b"")
    with pytest.raises(lakeio.EngineUnavailableError, match=r"found lakeio-helper-0\.0\.0\.jar"):
        jvm.jar_paths()


def test_spark_read_of_missing_table_names_the_uri(conf, spark):
    lake = lakeio.Catalog.load(conf, env="test")
    with pytest.raises(lakeio.StorageError, match="s3://lakeio-test/delay_by_carrier/nothing-here"):
        lake.read("delay_by_carrier", engine="spark", period="nothing-here").to_arrow()

"""The real JVM stack: lakeio's helper jar, Delta, s3a, and the errors when a part is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lakeio
from lakeio.spark import jvm

ROOT = Path(__file__).resolve().parents[2]
# What each line's jars folder must hold (build.gradle derives them from the installed pyspark).
LINE_JARS = {"4.1": ("delta-spark_4.1_2.13-4.4.0", "hadoop-aws-3.4.2"),
             "3.5": ("delta-spark_2.12-3.3.2", "hadoop-aws-3.3.4", "deequ-2.1.0-spark-3.5")}


def pinned_pyspark(line: str) -> str:
    text = (ROOT / "constraints" / f"spark-{line}.txt").read_text()
    return re.search(r"(?m)^pyspark==(\S+)$", text).group(1)


def test_helper_answers_its_version_for_this_spark(spark):
    versions = jvm.check_helper(spark)
    assert versions == {"helper": lakeio.__version__, "spark": spark.version}
    assert spark.version == pinned_pyspark(jvm.spark_line(spark.version))


def test_session_has_delta_and_s3a(spark, s3_endpoint):
    assert "io.delta.sql.DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")
    assert spark.conf.get("spark.hadoop.fs.s3a.endpoint") == s3_endpoint
    jars = spark.conf.get("spark.jars")
    assert "lakeio-helper-" in jars
    for name in LINE_JARS[jvm.spark_line(spark.version)]:
        assert name in jars


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

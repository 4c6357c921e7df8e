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


def test_spark_commits_delta_to_s3_by_conditional_put_where_its_line_can(spark, s3_endpoint, tmp_path):
    """4.1: the commit takes part in the conditional put. 3.5 (Hadoop 3.3.4's s3a, no conditional
    create): refused before anything is written, naming the setting; single_writer then commits."""
    import uuid

    import pyarrow as pa

    uri = f"s3://lakeio-test/stack/{uuid.uuid4().hex[:10]}/events"
    conf = tmp_path / "conf"
    conf.mkdir()

    def lake(commits: str) -> lakeio.Catalog:
        (conf / "lakeio.yaml").write_text(f"environments: {{test: {{s3: {{delta_commits: {commits}}}}}}}\n")
        (conf / "events.yaml").write_text(f"events: {{format: delta, environments: {{test: {{uri: '{uri}'}}}}}}\n")
        return lakeio.Catalog.load(conf, env="test")

    data = pa.table({"id": [1, 2]})
    if jvm.spark_line(spark.version) in jvm.CONDITIONAL_CREATE_LINES:
        lake("conditional_put").write("events", data, engine="spark")
    else:
        with pytest.raises(lakeio.EngineUnavailableError, match="set s3.delta_commits: single_writer"):
            lake("conditional_put").write("events", data, engine="spark")
        assert not lake("conditional_put").exists("events")
        lake("single_writer").write("events", data, engine="spark")
    assert lake("single_writer").read("events", engine="arrow").to_arrow().column("id").to_pylist() == [1, 2]

"""The demo pipeline under spark-submit, packaged as Spark users ship Python: lakeio as a zip on
--py-files, the jars on --jars, a small driver script, the environment from LAKEIO_ENV."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyspark
import pytest
from lines import S3_COMMITS

from lakeio.spark import jvm
from lakeio.spark.session import S3_LOG_STORE, S3_LOG_STORE_CONF

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """lakeio as the zip a user puts on --py-files."""
    folder = tmp_path_factory.mktemp("dist")
    return Path(shutil.make_archive(str(folder / "lakeio"), "zip", root_dir=REPO / "python", base_dir="lakeio"))


@pytest.fixture(scope="module")
def demo_conf(tmp_path_factory) -> Path:
    """The repository's configuration folder; on a line whose Spark commits Delta to S3 as the one
    writer (3.5), a copy whose ``test`` environment says so."""
    if S3_COMMITS == "conditional_put":
        return REPO / "conf"
    conf = tmp_path_factory.mktemp("demo") / "conf"
    shutil.copytree(REPO / "conf", conf)
    text = (conf / "lakeio.yaml").read_text()
    test_s3 = "    s3: {region: us-east-1}\n    spark: {scratch_uri: \"s3://lakeio-test/scratch\"}"
    assert test_s3 in text, "conf/lakeio.yaml's test environment changed: update this fixture"
    (conf / "lakeio.yaml").write_text(text.replace(test_s3, test_s3.replace(
        "us-east-1}", f"us-east-1, delta_commits: {S3_COMMITS}}}")))
    return conf


def spark_submit(package: Path, conf: Path, env: str, *args: str) -> subprocess.CompletedProcess:
    command = [
        str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        "--master", "local[2]",
        "--py-files", str(package),
        "--jars", ",".join(jvm.jar_paths()),
        "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Delta on S3 commits by conditional put, where the line's s3a can
        *(["--conf", f"{S3_LOG_STORE_CONF}={S3_LOG_STORE}"] if S3_COMMITS == "conditional_put" else []),
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.ui.enabled=false",
        "--driver-java-options", f"-Dlog4j2.configurationFile=file:{REPO / 'deploy' / 'log4j2.properties'}",
        str(REPO / "deploy" / "demo_driver.py"),
        "--conf", str(conf), *args,
    ]
    environment = {**os.environ, "LAKEIO_ENV": env, "PYSPARK_PYTHON": sys.executable,
                   "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.run(command, env=environment, cwd=package.parent, capture_output=True, text=True, timeout=600)


def test_demo_runs_under_spark_submit_against_s3(package, demo_conf, s3_endpoint, s3_objects):
    run = spark_submit(package, demo_conf, "test", "--engine", "spark", "--refresh")

    assert run.returncode == 0, run.stderr[-3000:]
    assert "lakeio demo: environment 'test'" in run.stdout
    assert "write flights            336776 rows" in run.stdout
    assert "read  flights             27004 rows" in run.stdout
    assert "spark (argument: engine=spark)" in run.stdout
    assert any(key.startswith("flights/_delta_log/") for key in s3_objects("flights/"))
    assert any(key.endswith(".parquet") for key in s3_objects("delay_by_carrier/2013-01/"))


def test_a_failing_run_exits_non_zero_with_the_cause_last(package, s3_endpoint):
    run = spark_submit(package, REPO / "conf", "nowhere")

    assert run.returncode != 0
    # spark-submit pipes the Python driver's stderr into its own stdout: the driver's log.
    last_lines = run.stdout.strip().splitlines()[-2:]
    assert "lakeio.zip/lakeio/catalog.py" in last_lines[0]  # lakeio ran from the shipped zip
    assert last_lines[1].startswith("lakeio.errors.ConfigError:"), run.stdout[-3000:]
    assert "environment 'nowhere' is not defined" in last_lines[1]
    assert "Exception" not in run.stderr and "ERROR" not in run.stderr  # nothing after, or instead of, the cause

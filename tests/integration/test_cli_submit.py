"""``lakeio submit`` for real: the command it builds runs the demo driver under spark-submit
(local[2]), with lakeio from the zip it builds and the jars it lists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]


def test_lakeio_submit_runs_the_demo_driver_under_spark_submit(tmp_path):
    environment = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                   "PYTHONPATH": str(REPO / "python")}
    command = [sys.executable, "-m", "lakeio", "--conf", str(REPO / "conf"), "--env", "sample", "submit",
               "--master", "local[2]", "--dist", str(tmp_path / "dist"),
               "--spark-conf", "spark.ui.enabled=false", "--spark-conf", "spark.sql.shuffle.partitions=2",
               str(REPO / "deploy" / "demo_driver.py"), "--", "--conf", str(REPO / "conf"), "--engine", "spark"]
    run = subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=900)

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "lakeio demo: environment 'sample'" in run.stdout
    assert "spark (argument: engine=spark)" in run.stdout
    assert pq.read_table(tmp_path / "sample-output" / "delay_by_carrier" / "2013-01").num_rows == 12
    assert (tmp_path / "dist" / "lakeio.zip").is_file()

"""lakeio on a real multi-process cluster: spark-submit with ``--master spark://...``, lakeio on
``--py-files`` and the jars on ``--jars`` (the command ``lakeio submit`` builds), against the S3
server through s3a. The driver, the master, each worker and each executor are separate processes
with separate folders; the only storage they share is S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

import lakeio
from conftest import CLUSTER_JOB_CONF, TEST_BUCKET
from lakeio.cli import submit_command

REPO = Path(__file__).resolve().parents[2]
DRIVER_LOG_CONF = f"-Dlog4j2.configurationFile=file:{REPO / 'deploy' / 'log4j2.properties'}"
CONTRACT = """
columns:
  id: {type: int64, nullable: false, checks: [unique]}
  value: {type: string, checks: [{in_set: [ok, fine]}]}
  day: {type: string}
"""


def run_on_cluster(lake: lakeio.Catalog, cluster, driver: Path, arguments: list[str], dist: Path,
                   cwd: Path) -> subprocess.CompletedProcess:
    command = submit_command(lake, str(driver), arguments, master=cluster.master, dist=dist,
                             extra_conf={**CLUSTER_JOB_CONF, "spark.driver.extraJavaOptions": DRIVER_LOG_CONF})
    environment = {**os.environ, "LAKEIO_ENV": lake.env, "PYSPARK_PYTHON": sys.executable,
                   "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def cluster_conf(tmp_path_factory, s3_endpoint) -> Path:
    """The parity subset's datasets under an S3 prefix, in an environment named ``cluster`` whose
    scratch is on S3 too."""
    conf = tmp_path_factory.mktemp("cluster-conf")
    root = f"s3://{TEST_BUCKET}/cluster"
    (conf / "lakeio.yaml").write_text(yaml.safe_dump({"environments": {"cluster": {
        "engine": "spark", "s3": {"region": "us-east-1"}, "spark": {"scratch_uri": f"{root}/scratch"}}}}))
    (conf / "schemas").mkdir()
    (conf / "schemas" / "checked.yaml").write_text(CONTRACT)
    partitioned = {"events": "delta", "events_parquet": "parquet", "merged": "delta", "pruned": "parquet",
                   "checked": "delta", "handed": "delta"}
    datasets = {name: {"format": format, "partition_by": ["day"]} for name, format in partitioned.items()}
    datasets |= {f"fmt_{format}": {"format": format} for format in ("delta", "parquet", "csv", "json")}
    datasets["checked"]["schema"] = "schemas/checked.yaml"
    (conf / "cluster.yaml").write_text(yaml.safe_dump(
        {name: {**spec, "environments": {"cluster": {"uri": f"{root}/{name}"}}} for name, spec in datasets.items()}))
    return conf


@pytest.fixture(scope="module")
def cluster_catalog(cluster_conf) -> lakeio.Catalog:
    """The test process's view of the cluster's datasets (the Arrow engine reads them back)."""
    return lakeio.Catalog.load(cluster_conf, env="cluster")


@pytest.fixture(scope="module")
def cluster_cases(cluster_conf, cluster_catalog, spark_cluster, tmp_path_factory) -> dict[str, dict]:
    """One driver run on the cluster covers every case; each case's result by name."""
    work = tmp_path_factory.mktemp("cluster-driver")
    run = run_on_cluster(cluster_catalog, spark_cluster, REPO / "tests" / "integration" / "cluster_driver.py",
                         [str(cluster_conf)], work / "dist", work)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    cases = [json.loads(line[len("case:"):]) for line in run.stdout.splitlines() if line.startswith("case:")]
    print("cluster driver seconds per case:", {case["case"]: case["seconds"] for case in cases})
    return {case["case"]: case["result"] for case in cases}


def test_the_cases_ran_on_both_workers_executors(cluster_cases, spark_cluster):
    assert set(cluster_cases) == {"formats", "write_modes", "merge", "pruning", "validation", "handoff"}
    assert cluster_cases["handoff"]["master"] == spark_cluster.master
    # Each worker started an executor of the application in its own work folder.
    for folder in spark_cluster.worker_dirs:
        assert list((folder / "work").glob("app-*/*/stderr")), f"no executor ran on {folder}"


def test_every_format_round_trips_and_reads_alike_on_arrow(cluster_cases, cluster_catalog):
    written = [[1, "a", "d1"], [2, "a", "d1"], [3, "b", "d2"]]
    for format, got in cluster_cases["formats"].items():
        assert got == {"engine": "spark", "rows": written, "count": 3}, format
        arrow = cluster_catalog.read(f"fmt_{format}", engine="arrow").to_arrow()
        assert sorted([r["id"], r["value"], r["day"]] for r in arrow.to_pylist()) == written, format


def test_write_modes_leave_what_they_promise(cluster_cases, cluster_catalog):
    modes = cluster_cases["write_modes"]
    for name in ("events", "events_parquet"):
        assert modes[name] == {"refused": "StorageError",
                               "after_modes": [[4, "b", "d3"], [5, "c", "d2"], [6, "c", "d2"], [7, "d", "d1"]],
                               "after_overwrite": [[9, "e", "d9"]]}, name
    assert modes["idempotent_retry"] == {"skipped": [False, True], "rows": [[9, "e", "d9"], [10, "r", "d4"]]}
    arrow = cluster_catalog.read("events", engine="arrow").to_arrow()
    assert sorted(arrow.column("id").to_pylist()) == [9, 10]


def test_merge_counts_and_rows(cluster_cases, cluster_catalog):
    merged = cluster_cases["merge"]
    assert merged["engine"] == "spark"
    assert merged["counts"] == {"rows_inserted": 1, "rows_updated": 1, "rows_deleted": 1}
    assert merged["rows"] == [[1, "old", "d1"], [2, "new", "d1"], [4, "old", "d2"], [5, "new", "d2"]]
    assert sorted(cluster_catalog.read("merged", engine="arrow").to_arrow().column("id").to_pylist()) == [1, 2, 4, 5]


def test_pruning_lists_only_the_selected_partitions(cluster_cases):
    pruned = cluster_cases["pruning"]
    assert "partitions: 2 listed of 6 (4 pruned)" in pruned["explain"]
    assert pruned["rows"] == [[2, "p", "d2"], [4, "p", "d4"]]


def test_a_write_breaking_the_contract_lands_nothing(cluster_cases):
    checked = cluster_cases["validation"]
    assert checked["failures"] == ["in_set", "unique"]
    assert checked["rows"] == [[1, "ok", "d1"], [2, "ok", "d1"]]
    assert checked["stored_passes"] is True


def test_spark_data_reaches_arrow_through_the_s3_scratch_only(cluster_cases, cluster_catalog, s3_objects):
    handed = cluster_cases["handoff"]
    assert handed["engine"] == "arrow" and handed["rows"] == 1000
    assert "is a local folder, but Spark runs on spark://127.0.0.1:" in handed["local_scratch_refused"]
    assert cluster_catalog.read("handed", engine="arrow").count() == 1000
    assert not [key for key in s3_objects("cluster/scratch/") if "lakeio-handoff-" in key]  # staged files removed
    assert pa.types.is_int64(cluster_catalog.read("handed", engine="arrow").schema.field("id").type)


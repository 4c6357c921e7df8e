"""Real parts for integration tests: an S3 HTTP server on 127.0.0.1 (moto's server mode, on a free
port) and one classic Spark session for the whole test session, built by lakeio's own factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from s3_server import moto_server

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
TEST_BUCKET = "lakeio-test"

# Small and quiet: 2 cores, no UI, few shuffle and Delta snapshot partitions.
TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "2g",
    "spark.log.level": "ERROR",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server in its own process (in-process, delta-rs would wait on it while holding
    the GIL); the standard AWS variables point every client at it for the whole session."""
    import boto3

    with moto_server() as endpoint:
        variables = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                     "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
        saved = {key: os.environ.get(key) for key in variables}
        os.environ.update(variables)
        try:
            boto3.client("s3").create_bucket(Bucket=TEST_BUCKET)
            yield endpoint
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def spark(s3_endpoint):
    """The one Spark session, started by lakeio's factory with the test environment's S3 settings."""
    from lakeio.config import EnvironmentSettings, SparkSettings
    from lakeio.spark.session import spark_session
    from lakeio.storage import Storage

    settings = EnvironmentSettings(spark=SparkSettings(master="local[2]", app_name="lakeio-tests", conf=TEST_SPARK_CONF))
    session = spark_session(settings, Storage(settings.s3))
    yield session
    session.stop()


@pytest.fixture
def catalog_on(tmp_path, s3_endpoint):
    """Makes a catalog whose one environment (``"local"`` or ``"s3"``) holds ``datasets`` under a
    fresh root: ``catalog_on("s3", "retries", events={"format": "delta", "partition_by": ["day"]})``."""
    import uuid

    import yaml

    import lakeio

    def make(storage: str, prefix: str, **datasets: dict) -> lakeio.Catalog:
        root = str(tmp_path / "data") if storage == "local" else f"s3://{TEST_BUCKET}/{prefix}/{uuid.uuid4().hex[:10]}"
        conf = tmp_path / "conf"
        conf.mkdir()
        (conf / "lakeio.yaml").write_text(yaml.safe_dump({"environments": {storage: {"engine": "auto"}}}))
        (conf / f"{prefix}.yaml").write_text(yaml.safe_dump(
            {name: {**spec, "environments": {storage: {"uri": f"{root}/{name}"}}} for name, spec in datasets.items()}))
        return lakeio.Catalog.load(conf, env=storage)

    return make


@pytest.fixture
def conf() -> Path:
    """The repository's own configuration folder, the one the demo uses."""
    return CONF


@pytest.fixture
def s3_objects(s3_endpoint):
    """Lists the keys under a prefix of the test bucket."""
    import boto3

    client = boto3.client("s3")

    def keys(prefix: str) -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=TEST_BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    return keys


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A standalone Spark master and two workers on 127.0.0.1, each its own JVM with its own work
    and local folders (:mod:`spark_cluster`), for the whole test session."""
    from spark_cluster import standalone_cluster

    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
        yield cluster


# What a job on the two-core cluster may take: one core and 512 MiB per executor, on both workers.
CLUSTER_JOB_CONF = {
    "spark.executor.memory": "512m", "spark.executor.cores": "1", "spark.cores.max": "2",
    "spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "2", "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}

"""Real parts for integration tests: an S3 HTTP server on 127.0.0.1 (moto's server mode, on a free
port) and one classic Spark session for the whole test session, built by lakeio's own factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from connect_server import connect_server
from s3_server import moto_server

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
TEST_BUCKET = "lakeio-test"

# Small and quiet: 2 cores, no UI, few shuffle and Delta snapshot partitions (no console progress
# bar: lakeio's factory turns it off, which test_spark_stack checks).
TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "2g",
    "spark.log.level": "ERROR",
}


# A test's Spark Connect case: the 3.5 line deselects them (-m "not connect"): pyspark 3.5 ships no
# Connect server, and lakeio's Connect plugin is built for the 4.1 line's.
CONNECT = pytest.param("connect", marks=pytest.mark.connect)
# The test Connect server's spark.driver.maxResultSize: above every other Connect test's collected
# results (and a write's 50,000-row sample), below test_connect's large result.
CONNECT_MAX_RESULT_SIZE = "4m"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)
        if {"on_connect", "connect_remote"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.connect)


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


@pytest.fixture(scope="session")
def connect_remote(s3_endpoint, tmp_path_factory):
    """One Spark Connect server for the whole test session (Delta, s3a at the S3 server, lakeio's
    plugin), stopped at the end; its ``sc://`` URL. Its result-size limit is small
    (:data:`CONNECT_MAX_RESULT_SIZE`), so test_connect can pass it with a few MiB."""
    from lakeio.config import EnvironmentSettings
    from lakeio.storage import Storage

    conf = {key: value for key, value in TEST_SPARK_CONF.items() if key != "spark.driver.memory"}
    conf["spark.driver.maxResultSize"] = CONNECT_MAX_RESULT_SIZE
    conf.update(Storage(EnvironmentSettings().s3).hadoop_conf())
    with connect_server(conf, tmp_path_factory.mktemp("connect") / "server.log") as remote:
        yield remote


@pytest.fixture
def on_connect(connect_remote, monkeypatch):
    """The Spark Connect server's URL, for one test that runs lakeio on it. pyspark marks a process
    that made a Connect session as Connect-only (``pyspark.sql.functions`` then build Connect
    columns); the mark is removed after the test, so the classic tests after it run classic."""
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    return connect_remote


@pytest.fixture(params=["classic", CONNECT])
def spark_mode(request, spark):
    """``(session, remote)`` for a test run on both: the classic session and no remote, then a Spark
    Connect session (lakeio's own, to the test server) and the server's URL for ``spark.remote``."""
    if request.param == "classic":
        return spark, None
    from lakeio.config import EnvironmentSettings, SparkSettings
    from lakeio.spark.session import connect_session
    from lakeio.storage import Storage

    remote = request.getfixturevalue("on_connect")
    settings = EnvironmentSettings(spark=SparkSettings(remote=remote))
    return connect_session(settings, Storage(settings.s3)), remote


@pytest.fixture
def catalog_on(tmp_path, s3_endpoint):
    """Makes a catalog whose one environment (``"local"`` or ``"s3"``) holds ``datasets`` under a
    fresh root: ``catalog_on("s3", "retries", events={"format": "delta", "partition_by": ["day"]})``.
    ``settings`` are the environment's (``{root}`` in a string is the fresh root) and ``contracts``
    the contract files by name (``schema: schemas/<name>`` in a dataset names one)."""
    import uuid

    import yaml

    import lakeio

    def make(storage: str, prefix: str, *, settings: dict | None = None, contracts: dict[str, str] | None = None,
             **datasets: dict) -> lakeio.Catalog:
        root = str(tmp_path / "data") if storage == "local" else f"s3://{TEST_BUCKET}/{prefix}/{uuid.uuid4().hex[:10]}"
        conf = tmp_path / "conf"
        conf.mkdir()
        filled = yaml.safe_load(yaml.safe_dump(settings or {}).replace("{root}", root))
        (conf / "lakeio.yaml").write_text(yaml.safe_dump({"environments": {storage: {"engine": "auto", **filled}}}))
        for name, text in (contracts or {}).items():
            (conf / "schemas").mkdir(exist_ok=True)
            (conf / "schemas" / name).write_text(text)
        (conf / f"{prefix}.yaml").write_text(yaml.safe_dump(
            {name: {**spec, "environments": {storage: {"uri": f"{root}/{name}"}}} for name, spec in datasets.items()}))
        return lakeio.Catalog.load(conf, env=storage)

    return make


@pytest.fixture(scope="session")
def fault_proxy(s3_endpoint):
    """A proxy in front of the S3 server that answers chosen requests 503 SlowDown
    (:mod:`fault_proxy`); each test sets its faults and the fixture clears them after it."""
    from fault_proxy import FaultProxy

    with FaultProxy(s3_endpoint) as proxy:
        yield proxy


@pytest.fixture
def faulty(fault_proxy):
    fault_proxy.clear()
    yield fault_proxy
    fault_proxy.clear()


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

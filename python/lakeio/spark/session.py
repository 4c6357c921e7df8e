"""The SparkSession lakeio runs on: the active one (spark-submit, the operator, a notebook), or one
built from the environment's settings with Delta, s3a and lakeio's jars."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from lakeio.config import EnvironmentSettings
from lakeio.errors import EngineUnavailableError
from lakeio.spark import jvm
from lakeio.storage import Location, Storage

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# Delta's log store for s3a that commits by S3's conditional put, as delta-rs does (lakeio's helper jar).
S3_LOG_STORE_CONF = "spark.delta.logStore.s3a.impl"
S3_LOG_STORE = "lakeio.helper.S3ConditionalPutLogStore"
# Spark's default INT96 timestamps read back in Arrow as naive nanoseconds; microseconds marked as
# UTC read back as the same instants in every engine.
PARQUET_CONF = {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}


def spark_session(settings: EnvironmentSettings, storage: Storage) -> SparkSession:
    """The active classic SparkSession, or a new one built from the environment's settings.

    A new session gets Delta's extension and catalog, lakeio's helper and third-party jars, s3a
    pointed at the environment's S3, and Arrow for pandas conversion; ``spark.conf`` in the
    environment's settings overrides any of these. An active session (spark-submit, the Spark
    operator, a notebook) is reused: it must already have Delta, and gets the s3a settings.

    Raises:
        EngineUnavailableError: no pyspark, no Java, a missing jar, or a session lakeio cannot use.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise EngineUnavailableError("the Spark engine needs pyspark: pip install 'lakeio[spark]'") from error

    active = SparkSession.getActiveSession()
    if active is None and os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: its JVM is already up with --master, --jars and --conf, which
        # a builder's settings would override; take its session as is.
        active = SparkSession.builder.getOrCreate()
    if active is not None:
        jvm.check_helper(active)
        extensions = active.conf.get("spark.sql.extensions", "") or ""
        if DELTA_EXTENSION not in extensions:
            raise EngineUnavailableError(
                f"the active SparkSession lacks Delta: set spark.sql.extensions={DELTA_EXTENSION} and "
                f"spark.sql.catalog.spark_catalog={DELTA_CATALOG} when starting Spark"
            )
        jvm.set_hadoop_conf(active, {key.removeprefix("spark.hadoop."): value
                                     for key, value in storage.hadoop_conf().items()})
        for key, value in PARQUET_CONF.items():
            active.conf.set(key, value)
        return active

    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise EngineUnavailableError("the Spark engine needs Java 17: install it or set JAVA_HOME")
    conf = {"spark.jars": ",".join(jvm.jar_paths()), **session_conf(settings, storage)}
    builder = SparkSession.builder.master(settings.spark.master).appName(settings.spark.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    jvm.check_helper(session)
    return session



def session_conf(settings: EnvironmentSettings, storage: Storage) -> dict[str, str]:
    """The Spark conf lakeio starts a session with (all but ``spark.jars``): Delta, UTC, Arrow,
    Parquet timestamps, Delta's s3a log store for the environment's ``s3.delta_commits``, s3a for the
    environment's S3, then the environment's ``spark.conf``.
    ``lakeio submit`` passes the same keys to spark-submit."""
    return {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        **PARQUET_CONF,
        **({S3_LOG_STORE_CONF: S3_LOG_STORE} if storage.delta_commits == "conditional_put" else {}),
        **storage.hadoop_conf(),
        **settings.spark.conf,
    }


def check_delta_commits(spark: SparkSession, storage: Storage, location: Location) -> None:
    """Refuses a Delta commit to S3 from a session that would not take part in the environment's
    arbitration (``s3.delta_commits: conditional_put``): Delta picks its s3a log store once, from
    the SparkContext's conf, so a session started without lakeio's races other writers unseen.

    Raises:
        EngineUnavailableError: naming the table and the setting to start Spark with.
    """
    if location.scheme != "s3" or storage.delta_commits != "conditional_put":
        return
    configured = spark.sparkContext.getConf().get(S3_LOG_STORE_CONF)
    if configured != S3_LOG_STORE:
        raise EngineUnavailableError(
            f"{location.uri}: this Spark session commits Delta on s3a with {configured or 'the single-driver log store'}, "
            f"which does not take part in the conditional put that every writer here uses "
            f"(s3.delta_commits: conditional_put); start Spark with --conf {S3_LOG_STORE_CONF}={S3_LOG_STORE} "
            f"(`lakeio submit` does), or set s3.delta_commits: single_writer if only one writer at a time writes here")

"""The SparkSession lakeio runs on: the active one (spark-submit, the operator, a notebook), or one
built from the environment's settings with Delta, s3a and lakeio's jars; or a Spark Connect session
(:func:`connect_session`), whose server brings Delta and the jars."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, cast

from lakeio.config import EnvironmentSettings
from lakeio.errors import EngineUnavailableError
from lakeio.spark import jvm
from lakeio.storage import Location, Storage

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# pyspark's mark of a process that runs Spark Connect: pyspark.sql.functions then build Connect columns.
CONNECT_MODE = "SPARK_CONNECT_MODE_ENABLED"
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
    jvm.installed_line()

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
        jvm.set_hadoop_conf(active, storage.hadoop_credentials(), secret=True)
        for key, value in PARQUET_CONF.items():
            active.conf.set(key, value)
        return active

    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise EngineUnavailableError("the Spark engine needs Java 17: install it or set JAVA_HOME")
    conf = {"spark.jars": ",".join(jvm.jar_paths()), **session_conf(settings, storage)}
    builder = SparkSession.builder.master(settings.spark.master).appName(settings.spark.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    with storage.credentials_in_environment():  # the JVM starts here: Spark copies them into s3a's conf
        session = builder.getOrCreate()
    jvm.check_helper(session)
    return session



def session_conf(settings: EnvironmentSettings, storage: Storage) -> dict[str, str]:
    """The Spark conf lakeio starts a session with (all but ``spark.jars``): Delta, UTC, Arrow,
    Parquet timestamps, no console progress bar, Delta's s3a log store for the environment's
    ``s3.delta_commits``, s3a for the environment's S3, then the environment's ``spark.conf``
    (which may turn the progress bar back on).
    ``lakeio submit`` passes the same keys to spark-submit. The log store is left out on a line whose
    s3a cannot create conditionally (it would fail every commit); :func:`check_delta_commits` then
    refuses a commit under ``conditional_put`` by name."""
    arbitrated = storage.delta_commits == "conditional_put" and jvm.installed_line() in jvm.CONDITIONAL_CREATE_LINES
    return {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        **PARQUET_CONF,
        # The console progress bar redraws itself with carriage returns: noise in a job's log.
        "spark.ui.showConsoleProgress": "false",
        **({S3_LOG_STORE_CONF: S3_LOG_STORE} if arbitrated else {}),
        **storage.hadoop_conf(),
        **settings.spark.conf,
    }


def connect_session(settings: EnvironmentSettings, storage: Storage) -> SparkSession:
    """The Spark Connect session lakeio runs on: the active one (a notebook's), else one to the
    environment's ``spark.remote`` server.

    The process is marked as pyspark marks a process that made a Connect session (functions build
    Connect columns). The session gets the settings Spark takes per session: the UTC time zone,
    Parquet timestamps, s3a for the environment's S3 (Hadoop keys without ``spark.hadoop.``, which
    Spark's file sources and Delta read from the session) and the environment's ``spark.conf``.
    Delta's extension and catalog, jars and ``spark.driver.*`` are the server's own conf.

    Raises:
        EngineUnavailableError: no Connect client packages, no server, a server without Delta, or a
            setting the server takes only in its own conf.
    """
    try:
        from pyspark.errors import PySparkException
        from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError as error:
        raise EngineUnavailableError(f"Spark Connect needs its client packages ({error}): "
                                     "pip install 'lakeio[connect]'") from error

    session = ConnectSession.getActiveSession()
    if session is None:
        if settings.spark.remote is None:
            raise EngineUnavailableError("no active Spark Connect session and no spark.remote in lakeio.yaml "
                                         "(e.g. spark: {remote: 'sc://host:15002'})")
        session = ConnectSession.builder.remote(settings.spark.remote).getOrCreate()
    os.environ[CONNECT_MODE] = "1"
    try:
        extensions = session.conf.get("spark.sql.extensions", "") or ""
    except PySparkException as error:
        raise EngineUnavailableError(f"the Spark Connect server {settings.spark.remote or ''} does not answer: "
                                     f"{error.getCondition() or type(error).__name__}") from error
    if DELTA_EXTENSION not in extensions:
        raise EngineUnavailableError(
            f"the Spark Connect server lacks Delta: start it with spark.sql.extensions={DELTA_EXTENSION}, "
            f"spark.sql.catalog.spark_catalog={DELTA_CATALOG} and the Delta jars (see docs/guide/connect.md)")
    conf = {"spark.sql.session.timeZone": "UTC", **PARQUET_CONF,
            **{key.removeprefix("spark.hadoop."): value for key, value in storage.hadoop_conf().items()},
            **settings.spark.conf}
    for key, value in conf.items():
        try:
            session.conf.set(key, value)
        except PySparkException as error:  # the key only: values may be secrets
            raise EngineUnavailableError(
                f"the Spark Connect server does not take {key} per session "
                f"({error.getCondition() or type(error).__name__}): set it in the server's own conf") from error
    return cast("SparkSession", session)  # the Connect class implements SparkSession's API


def check_delta_commits(spark: SparkSession, storage: Storage, location: Location) -> None:
    """Refuses a Delta commit to S3 from a session that would not take part in the environment's
    arbitration (``s3.delta_commits: conditional_put``): Delta picks its s3a log store once, from
    the SparkContext's conf, so a session started without lakeio's races other writers unseen.

    Raises:
        EngineUnavailableError: naming the table and the setting to start Spark with.
    """
    if location.scheme != "s3" or storage.delta_commits != "conditional_put":
        return
    if jvm.spark_line(spark.version) not in jvm.CONDITIONAL_CREATE_LINES:
        raise EngineUnavailableError(
            f"{location.uri}: Spark {spark.version}'s s3a cannot create a file only if it is absent (Hadoop 3.4.2 "
            f"added it), so its Delta commits cannot take part in the conditional put that every writer here "
            f"uses (s3.delta_commits: conditional_put); set s3.delta_commits: single_writer if only one writer "
            f"at a time writes here, or run the Spark {' or '.join(jvm.CONDITIONAL_CREATE_LINES)} line")
    configured = spark.conf.get(S3_LOG_STORE_CONF, None)  # the SparkContext's conf, as Spark Connect reads it too
    if configured != S3_LOG_STORE:
        raise EngineUnavailableError(
            f"{location.uri}: this Spark session commits Delta on s3a with {configured or 'the single-driver log store'}, "
            f"which does not take part in the conditional put that every writer here uses "
            f"(s3.delta_commits: conditional_put); start Spark with --conf {S3_LOG_STORE_CONF}={S3_LOG_STORE} "
            f"(`lakeio submit` does), or set s3.delta_commits: single_writer if only one writer at a time writes here")

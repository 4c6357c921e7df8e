"""The only module that talks to the JVM: lakeio's Scala helper, through the active classic
SparkSession's py4j gateway. Entry points take and return JSON."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeio.errors import EngineUnavailableError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

HELPER_CLASS = "lakeio.helper.Helper"
ASSERTIONS_CLASS = "lakeio.helper.Assertions"  # Deequ constraints' assertions, run in the JVM
# The supported Spark lines (major.minor) and the checkout folder each line's jars are built into.
SPARK_LINES = {"4.1": "jars", "3.5": "jars-3.5"}
# The lines whose s3a creates a file only if absent (Hadoop 3.4.2+), which lakeio's Delta log store
# for S3 needs; the 3.5 line ships Hadoop 3.3.4.
CONDITIONAL_CREATE_LINES = ("4.1",)
_SETUP_HINT = ("run `make setup` (or `make setup SPARK_LINE=3.5`) in the lakeio checkout, or point "
               "LAKEIO_JARS_DIR at a folder holding the jars")


def spark_line(version: str) -> str:
    """The supported line (``"4.1"``, ``"3.5"``) of a Spark version, or a clear error naming the lines."""
    line = ".".join(version.split(".")[:2])
    if line not in SPARK_LINES:
        raise EngineUnavailableError(
            f"Spark {version} is not a line lakeio supports; supported lines: "
            f"{', '.join(f'{known}.x' for known in SPARK_LINES)} (constraints/spark-<line>.txt pins each)"
        )
    return line


def installed_line() -> str:
    """The supported line of the installed pyspark (the error names the lines if it is none)."""
    import pyspark

    return spark_line(pyspark.__version__)


def jars_dir() -> Path:
    """Where the helper and third-party jars are: ``$LAKEIO_JARS_DIR``, else the checkout's folder for
    the installed pyspark's line (build/jars, build/jars-3.5)."""
    configured = os.environ.get("LAKEIO_JARS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "build" / SPARK_LINES[installed_line()]


def jar_paths() -> list[str]:
    """The helper jar of this lakeio version and every third-party jar, or a clear error."""
    from lakeio import __version__

    folder = jars_dir()
    helper = folder / f"lakeio-helper-{__version__}.jar"
    if not helper.is_file():
        found = sorted(p.name for p in folder.glob("lakeio-helper-*.jar")) if folder.is_dir() else []
        seen = f" (found {', '.join(found)})" if found else ""
        raise EngineUnavailableError(f"lakeio's JVM helper {helper} is missing{seen}; {_SETUP_HINT}")
    third_party = sorted(str(p) for p in (folder / "third-party").glob("*.jar"))
    if not any("delta-spark" in Path(p).name for p in third_party):
        raise EngineUnavailableError(f"no Delta jar in {folder / 'third-party'}; {_SETUP_HINT}")
    return [str(helper)] + third_party


def has_class(spark: SparkSession, name: str) -> bool:
    """True when the session's classpath has the JVM class ``name`` (e.g. Deequ's)."""
    from py4j.java_gateway import JavaClass

    return isinstance(_java(spark, name), JavaClass)


def _java(spark: SparkSession, name: str):
    target = spark._jvm
    for part in name.split("."):
        target = getattr(target, part)
    return target


def column_sql(value: Column) -> str:
    """A Column as Spark SQL text (what SQL-only APIs such as Deequ's Compliance take)."""
    java_column: Any = value._jc
    return java_column.expr().sql()


def is_connect(spark: SparkSession) -> bool:
    """True for a Spark Connect session, which has no py4j door (without importing Connect's
    client, which needs grpc)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _helper(spark: SparkSession):
    if not hasattr(spark, "_jvm") or is_connect(spark):
        raise EngineUnavailableError(
            "lakeio's Spark engine needs a classic SparkSession (py4j); this is a Spark Connect session. "
            "Start Spark without SPARK_REMOTE / spark.remote, or use engine='arrow'."
        )
    if not has_class(spark, HELPER_CLASS):
        raise EngineUnavailableError(
            f"{HELPER_CLASS} is not on this Spark session's classpath; add lakeio-helper-*.jar to "
            f"spark.jars (or --jars for spark-submit); {_SETUP_HINT}"
        )
    return _java(spark, HELPER_CLASS)


def call(spark: SparkSession, entry_point: str, payload: dict | None = None) -> dict:
    """Calls a helper entry point with a JSON payload and decodes its JSON answer."""
    return json.loads(call_object(spark, entry_point, payload))


def call_object(spark: SparkSession, entry_point: str, payload: dict | None = None):
    """Calls a helper entry point with a JSON payload; its answer as py4j gives it (a JVM object)."""
    method = getattr(_helper(spark), entry_point)
    return method() if payload is None else method(json.dumps(payload))


def frame(spark: SparkSession, entry_point: str, payload: dict) -> DataFrame:
    """Calls a helper entry point that answers a Dataset; the DataFrame of it."""
    from pyspark.sql import DataFrame

    return DataFrame(call_object(spark, entry_point, payload), spark)


def check_helper(spark: SparkSession) -> dict:
    """Fails fast unless the helper on the classpath was built for this lakeio and this Spark."""
    from lakeio import __version__

    spark_line(spark.version)
    versions = call(spark, "version")
    if versions.get("helper") != __version__ or versions.get("spark") != spark.version:
        raise EngineUnavailableError(
            f"lakeio helper jar mismatch: jar is lakeio {versions.get('helper')} for Spark {versions.get('spark')}, "
            f"running lakeio {__version__} on Spark {spark.version}; rebuild it: {_SETUP_HINT}"
        )
    return versions


def set_hadoop_conf(spark: SparkSession, conf: dict[str, str], *, secret: bool = False) -> None:
    """Sets keys of the running session's Hadoop configuration (what s3a reads). With ``secret``,
    py4j's loggers are off while the values cross: at DEBUG they print every command they send."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    with _py4j_unlogged() if secret else contextlib.nullcontext():
        for key, value in conf.items():
            hadoop.set(key, value)


@contextlib.contextmanager
def _py4j_unlogged() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ["py4j", *logging.root.manager.loggerDict]
               if name == "py4j" or name.startswith("py4j.")]
    saved = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, saved, strict=True):
            logger.disabled = disabled


def try_cast_column(value: Column, type_name: str) -> Column:
    """Spark 3.5's missing ``Column.try_cast``: Catalyst's ``Cast`` in TRY mode over the column's
    expression (what ``try_cast`` in SQL and ``Column.try_cast`` on Spark 4 build)."""
    from pyspark import SparkContext
    from pyspark.sql import Column

    gateway: Any = SparkContext._jvm
    java_column: Any = value._jc
    expressions = gateway.org.apache.spark.sql.catalyst.expressions
    try_mode = getattr(getattr(expressions, "EvalMode$"), "MODULE$").TRY()
    data_type = gateway.org.apache.spark.sql.types.DataType.fromDDL(type_name)
    cast = expressions.Cast(java_column.expr(), data_type, gateway.scala.Option.empty(), try_mode)
    return Column(gateway.org.apache.spark.sql.Column(cast))


class Scala:
    """The Scala values pydeequ's raw Deequ calls take (options, sequences, arrays, regexes) and
    lakeio's JVM assertions (``lakeio.helper.Assertions``): a constraint asserting in the JVM needs
    no py4j callback server, which a Python lambda given to pydeequ starts."""

    def __init__(self, spark: SparkSession) -> None:
        _helper(spark)  # the assertions live in the helper jar: a missing one fails here, saying so
        if not has_class(spark, ASSERTIONS_CLASS):
            raise EngineUnavailableError(f"the lakeio helper jar on this session's classpath predates "
                                         f"{ASSERTIONS_CLASS}; rebuild it: {_SETUP_HINT}")
        self._gateway: Any = spark._jvm
        self._spark = spark

    def none(self) -> Any:
        return self._gateway.scala.Option.empty()

    def seq(self, values: list[str]) -> Any:
        return self._gateway.org.apache.spark.api.python.PythonUtils.toSeq(values)

    def immutable_list(self, values: list[str]) -> Any:
        return self._gateway.org.apache.spark.api.python.PythonUtils.toList(values)

    def strings(self, values: list[str]) -> Any:
        py4j: Any = self._spark.sparkContext._gateway
        array = py4j.new_array(self._gateway.java.lang.String, len(values))
        for index, value in enumerate(values):
            array[index] = value
        return array

    def regex(self, pattern: str) -> Any:
        return self._gateway.scala.util.matching.Regex(pattern, self.seq([]))

    def assertion(self, name: str, *bounds: float) -> Any:
        """``lakeio.helper.Assertions.<name>(bounds)``: a ``Double => Boolean`` (``atLeast``, ``atMost``,
        ``above``, ``below``, ``between``)."""
        return getattr(_java(self._spark, ASSERTIONS_CLASS), name)(*[float(b) for b in bounds])

    def rows_between(self, low: int | None, high: int | None) -> Any:
        """``lakeio.helper.Assertions.rowsBetween``: a ``Long => Boolean`` for Deequ's ``hasSize``
        (a missing bound is open)."""
        return _java(self._spark, ASSERTIONS_CLASS).rowsBetween(low or 0, 2**63 - 1 if high is None else high)

    def is_one(self) -> Any:
        """Deequ's own ``Check.IsOne``."""
        return self._gateway.com.amazon.deequ.checks.Check.IsOne()

    def add_required_analyzer(self, suite: Any, analyzer: Any) -> None:
        """Adds a pydeequ analyzer to a pydeequ ``VerificationRunBuilder`` as a required analyzer
        (its metric computed in the suite's run though no check needs it; pydeequ has no call for it)."""
        analyzer._set_jvm(self._gateway)
        suite._VerificationRunBuilder.addRequiredAnalyzer(analyzer._analyzer_jvm)

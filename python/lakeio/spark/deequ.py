"""The Deequ backend: a contract's measures computed by ONE Deequ analysis run (through pydeequ), on
a Spark line whose classpath has Deequ (the 3.5 line; no Deequ for Spark 4 is served).

Deequ computes what its analyzers compute; lakeio's semantics (``lakeio.validation.semantics``)
then judge, as for the other backends, so verdicts mean the same everywhere:

* rows: ``Size``; nulls: ``Completeness``; failing values: ``Compliance`` of the
  very predicate the one-job Spark backend counts (its SQL text); distinct keys: ``CountDistinct``
  (which, like lakeio, ignores keys whose columns are all null) beside a ``Compliance`` for the rows
  with a key; min, max, mean, stddev, variance of numbers: ``Minimum``, ``Maximum``, ``Mean``,
  ``StandardDeviation`` with ``where: NOT isnan(...)`` on floats (Deequ's Mean over NaN is NaN;
  lakeio leaves NaN out), variance as the square of Deequ's population stddev.
* what Deequ has no analyzer for, the one-job backend computes, in its own single job: values
  present (``all_present``), cast failures, label counts (Deequ's Histogram caps bins and names nulls
  ``NullValue``), min/max of dates, timestamps and strings, and the range of failing values shown
  when a check failed. See docs/deequ.md.

Analyzers run in the JVM: no Python callable is passed, so no py4j callback server starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lakeio.predicate import quote_name
from lakeio.spark import jvm
from lakeio.spark import validation as one_job
from lakeio.validation.contract import LogicalType
from lakeio.validation.semantics import Distinct, Failing, FailingValues, Nulls, Plan, Rows, Stat

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

RUNNER_CLASS = "com.amazon.deequ.analyzers.runners.AnalysisRunner"


def available(spark: SparkSession) -> bool:
    """True when the session has Deequ's jars and pydeequ is installed."""
    import importlib.util

    return importlib.util.find_spec("pydeequ") is not None and jvm.has_class(spark, RUNNER_CLASS)


def measure(frame: DataFrame, plan: Plan, casts: Mapping[str, LogicalType]) -> dict:
    """Computes ``plan.measures``: one Deequ run, plus the one-job backend for what Deequ lacks."""
    from pyspark.sql import functions as F

    spark = frame.sparkSession
    # pydeequ reads the Spark line from the environment at import; the session knows it.
    os.environ.setdefault("SPARK_VERSION", jvm.spark_line(spark.version))
    from pydeequ import analyzers as A

    cast = one_job.cast_frame(frame, casts)  # Deequ reads the values as the contract types them

    def column(name: str):
        return F.col(quote_name(name))

    analyzers: list = []
    readers: dict = {}  # measure -> how to read it from the metrics {(instance, name): value}

    def compliance(predicate) -> str:
        label = f"lakeio{len(analyzers)}"
        analyzers.append(A.Compliance(label, jvm.column_sql(predicate)))
        return label

    rest, stats = [], set()
    for item in plan.measures:
        if isinstance(item, Rows):
            analyzers.append(A.Size())
            readers[item] = lambda m: int(m.get(("*", "Size"), 0))
        elif isinstance(item, Nulls):
            analyzers.append(A.Completeness(item.column))
            readers[item] = _nulls_reader(item.column)
        elif isinstance(item, Failing):
            logical = plan.types[item.column]
            readers[item] = _count_reader(compliance(one_job.failing(item, column, logical)), FailingValues)
        elif isinstance(item, Distinct):
            keyed = _count_reader(compliance(one_job.has_key(item, column)), int)
            analyzers.append(A.CountDistinct(list(item.columns)))
            key = (",".join(item.columns), "CountDistinct")
            readers[item] = lambda m, keyed=keyed, key=key: (keyed(m), int(m.get(key, 0)))
        elif isinstance(item, Stat) and _numeric(plan.types[item.column]):
            logical = plan.types[item.column]
            where = f"NOT isnan({quote_name(item.column)})" if logical.is_float else None
            kind = {"min": A.Minimum, "max": A.Maximum, "mean": A.Mean}.get(item.name, A.StandardDeviation)
            name = {"min": "Minimum", "max": "Maximum", "mean": "Mean"}.get(item.name, "StandardDeviation")
            key = (item.column, name if where is None else f"{name} (where: {where})")
            if key not in stats:  # stddev and variance share one analyzer: Deequ refuses duplicates
                stats.add(key)
                analyzers.append(kind(item.column, where=where))
            readers[item] = _stat_reader(key, item.name, logical)
        else:
            rest.append(item)

    runner = A.AnalysisRunner(spark).onData(cast)
    for analyzer in analyzers:
        runner = runner.addAnalyzer(analyzer)
    context = runner.run()
    rows = A.AnalyzerContext.successMetricsAsDataFrame(spark, context).collect()
    metrics: dict[Any, Any] = {(row["instance"], row["name"]): row["value"] for row in rows}
    metrics["rows"] = metrics.get(("*", "Size"), 0)
    measured = {item: read(metrics) for item, read in readers.items()}
    if rest:
        measured.update(one_job.measure(frame, Plan((), (), (), frozenset(rest) | {Rows()}, plan.types), casts))
    failed = [m for m in plan.measures if isinstance(m, Failing) and measured[m].count]
    if failed:
        measured.update(one_job.failing_extremes(cast, failed, column, plan.types, measured))
    return measured


def _numeric(logical: LogicalType) -> bool:
    return logical.is_integer or logical.is_float or logical.name == "decimal"


def _nulls_reader(name: str):
    def read(metrics: dict) -> int:
        completeness = metrics.get((name, "Completeness"))
        return 0 if completeness is None else round((1 - completeness) * metrics["rows"])
    return read


def _count_reader(label: str, wrap):
    def read(metrics: dict) -> Any:
        fraction = metrics.get((label, "Compliance"))
        return wrap(0 if fraction is None else round(fraction * metrics["rows"]))
    return read


def _stat_reader(key: tuple[str, str], stat: str, logical: LogicalType):
    def read(metrics: dict) -> Any:
        value = metrics.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if stat == "variance":
            return value * value
        if stat in ("min", "max") and logical.is_integer:
            return int(value)
        return float(value)
    return read

"""The Deequ backend: a contract run as ONE Deequ ``VerificationSuite`` run (through pydeequ), on a
Spark line whose classpath has Deequ (the 3.5 line; no Deequ for Spark 4 is served).

The run carries, over the frame cast to the contract's types, both:

* a Deequ ``Check`` per contract check that Deequ has a constraint for (``isComplete``,
  ``hasCompleteness``, ``isUnique``, ``hasUniqueness``, ``hasSize``, ``isContainedIn``, ``hasMin``,
  ``hasMax``, ``hasPattern``, and ``satisfies`` with lakeio's own predicate for the rest), whose
  status and message the report shows beside lakeio's verdict (``CheckResult.deequ``); and
* the analyzers whose metrics lakeio's semantics (``lakeio.validation.semantics``) read, as required
  analyzers: rows: ``Size``; nulls: ``Completeness``; failing values: ``Compliance`` of the very
  predicate the one-job Spark backend counts (its SQL text); distinct keys: ``CountDistinct``
  (which, like lakeio, ignores keys whose columns are all null) beside a ``Compliance`` for the rows
  with a key; min, max, mean, stddev, variance of numbers: ``Minimum``, ``Maximum``, ``Mean``,
  ``StandardDeviation`` with ``where: NOT isnan(...)`` on floats (Deequ's Mean over NaN is NaN;
  lakeio leaves NaN out), variance as the square of Deequ's population stddev.

Deequ shares one scan (and one grouping per key) among the checks' analyzers and the required
ones. lakeio's semantics judge the metrics, so a verdict means the same on every backend; where
Deequ's own constraint says otherwise (NaN, nulls in keys, empty tables: docs/deequ.md), lakeio's
verdict stands and the report shows both.

What Deequ has no analyzer for, the one-job backend computes in its own single job: values present
(``all_present``), cast failures, label counts (Deequ's Histogram caps bins and names nulls
``NullValue``), min/max of dates, timestamps and strings, and the range of failing values shown when
a check failed. On a write, table checks judge the table after the write (the one-job backend's
job over it), so Deequ gets no constraint for them.

Every assertion runs in the JVM (Deequ's ``Check.IsOne``, or ``lakeio.helper.Assertions``): no
Python callable is passed, so no py4j callback server starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lakeio.predicate import quote_name
from lakeio.spark import jvm
from lakeio.spark import validation as one_job
from lakeio.validation.contract import (
    Between,
    Comparison,
    InSet,
    LogicalType,
    MaxNullFraction,
    NotNull,
    Pattern,
    RowCount,
    Unique,
    UniqueKey,
    ValueCheck,
    portable_regex,
)
from lakeio.validation.semantics import (
    Distinct,
    Failing,
    FailingValues,
    Nulls,
    Plan,
    Planned,
    Rows,
    Stat,
    is_table_check,
    rule_of,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

SUITE_CLASS = "com.amazon.deequ.VerificationSuite"


def available(spark: SparkSession) -> bool:
    """True when the session has Deequ's jars and pydeequ is installed."""
    import importlib.util

    return importlib.util.find_spec("pydeequ") is not None and jvm.has_class(spark, SUITE_CLASS)


def measure(frame: DataFrame, plan: Plan, casts: Mapping[str, LogicalType]) -> tuple[dict, dict[int, str]]:
    """Computes ``plan.measures`` by one Deequ run (plus the one-job backend for what Deequ lacks).
    Returns the measures and what Deequ said of each planned check it ran, by its index in
    ``plan.checks`` (``"Success: <constraint>"`` or ``"Failure: <constraint>: <message>"``)."""
    from pyspark.sql import functions as F

    spark = frame.sparkSession
    # pydeequ reads the Spark line from the environment at import; the session knows it.
    os.environ.setdefault("SPARK_VERSION", jvm.spark_line(spark.version))
    from pydeequ import analyzers as A
    from pydeequ.verification import VerificationResult, VerificationSuite

    cast = one_job.cast_frame(frame, casts)  # Deequ reads the values as the contract types them
    scala = jvm.Scala(spark)

    def column(name: str) -> Column:
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

    suite = VerificationSuite(spark).onData(cast)
    writing = bool(plan.table_measures)  # a write's table checks judge the table after it, not these rows
    for index, planned in enumerate(plan.checks):
        if writing and is_table_check(planned.check):
            continue
        check = _deequ_check(spark, scala, index, planned, plan.types, column)
        if check is not None:
            suite = suite.addCheck(check)
    for analyzer in analyzers:
        scala.add_required_analyzer(suite, analyzer)
    result = suite.run()
    rows = VerificationResult.successMetricsAsDataFrame(spark, result).collect()
    said = _said(VerificationResult.checkResultsAsJson(spark, result))

    metrics: dict[Any, Any] = {(row["instance"], row["name"]): row["value"] for row in rows}
    metrics["rows"] = metrics.get(("*", "Size"), 0)
    measured = {item: read(metrics) for item, read in readers.items()}
    if rest:
        measured.update(one_job.measure(frame, Plan((), (), (), frozenset(rest) | {Rows()}, plan.types), casts))
    failed = [m for m in plan.measures if isinstance(m, Failing) and measured[m].count]
    if failed:
        measured.update(one_job.failing_extremes(cast, failed, column, plan.types, measured))
    return measured, said


def _deequ_check(spark: SparkSession, scala: jvm.Scala, index: int, planned: Planned,
                 types: Mapping[str, LogicalType], column) -> Any:
    """A Deequ ``Check`` (named ``lakeio<index>``) of one constraint for a contract check, or None
    for the checks Deequ has no constraint for (history bounds, a row count without bounds)."""
    from pydeequ.checks import Check, CheckLevel

    check, name = planned.check, planned.column
    if isinstance(check, RowCount) and not check.has_bounds or not isinstance(
            check, (RowCount, UniqueKey, Unique, NotNull, MaxNullFraction, ValueCheck)):
        return None
    level = CheckLevel.Error if check.severity == "error" else CheckLevel.Warning
    deequ = Check(spark, level, f"lakeio{index}")
    none = scala.none
    if isinstance(check, RowCount):
        deequ._Check = deequ._Check.hasSize(scala.rows_between(check.min, check.max), none())
        return deequ
    if isinstance(check, UniqueKey):
        deequ._Check = deequ._Check.hasUniqueness(scala.seq(list(check.columns)), scala.is_one(), none())
        return deequ
    assert name is not None, "the rest are a column's checks"
    if isinstance(check, NotNull):
        return deequ.isComplete(name)
    if isinstance(check, Unique):
        return deequ.isUnique(name)
    if isinstance(check, MaxNullFraction):
        deequ._Check = deequ._Check.hasCompleteness(name, scala.assertion("atLeast", 1 - check.fraction), none(), none())
        return deequ
    assert isinstance(check, ValueCheck)
    logical, compliant = types[name], scala.assertion("atLeast", 1 - check.tolerance)
    numeric = _numeric(logical)
    exact = check.tolerance == 0  # Deequ's numeric isContainedIn, hasMin and hasMax allow no failing row
    if isinstance(check, InSet) and logical.name == "string" and all(isinstance(v, str) for v in check.values):
        deequ._Check = deequ._Check.isContainedIn(name, scala.strings(list(check.values)), compliant, none())
    elif isinstance(check, Between) and numeric and exact:
        deequ._Check = deequ._Check.isContainedIn(name, float(check.min), float(check.max), check.include_min,
                                                  check.include_max, none(), none())
    elif isinstance(check, Comparison) and numeric and exact:
        bound = {">": "above", ">=": "atLeast", "<": "below", "<=": "atMost"}[check.operator]
        method = deequ._Check.hasMin if check.operator in (">", ">=") else deequ._Check.hasMax
        deequ._Check = method(name, scala.assertion(bound, float(check.value)), none(), none())
    elif isinstance(check, Pattern):
        deequ._Check = deequ._Check.hasPattern(name, scala.regex(portable_regex(check.regex)), compliant,
                                               none(), none(), none())
    else:  # lakeio's own rule, as SQL: a row complies unless it fails it
        from pyspark.sql import functions as F

        rule = rule_of(check)
        assert rule is not None
        passing = ~F.coalesce(one_job.failing(Failing(name, rule), column, logical), F.lit(False))
        deequ._Check = deequ._Check.satisfies(jvm.column_sql(passing), f"{check.name} {name}", compliant, none(),
                                              scala.immutable_list([]), none())
    return deequ


def _said(results: list[dict]) -> dict[int, str]:
    """What Deequ said of each check, by the index its name ``lakeio<index>`` carries."""
    said = {}
    for row in results:
        words = f"{row['constraint_status']}: {row['constraint']}"
        if row.get("constraint_message"):
            words += f": {row['constraint_message']}"
        said[int(row["check"].removeprefix("lakeio"))] = words
    return said


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

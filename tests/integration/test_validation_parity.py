"""One semantics, two backends: every case of the table runs on Arrow and on Spark, and both must give
the expected verdicts and metric values (floats within REL_TOL), and the same results as each other."""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from lakeio.config import S3Settings
from lakeio.spark import compat, jvm
from lakeio.storage import Storage
from lakeio.validation import ContractBinding, MetricsSink
from lakeio.validation.contract import load_contract

DEEQU_LINES = ("3.5",)  # the Spark lines with a Deequ build (build.gradle puts its jars on the classpath)
REL_TOL = 1e-9  # the stated float tolerance between backends (both compute in float64)
NAN = float("nan")
NY = ZoneInfo("America/New_York")
UTC = dt.UTC

CASES = {
    "nulls": (
        pa.table({"n": pa.array([1, None, 3, 3, None], pa.int64())}),
        """
        columns:
          n:
            type: int64
            checks: [not_null, {max_null_fraction: 0.5}, unique, {between: [1, 3]}]
            metrics: [count, distinct_count, min, max, mean, stddev, variance]
        """,
        {("not_null", "n"): (False, 2), ("max_null_fraction", "n"): (True, 0.4), ("unique", "n"): (False, 1),
         ("between", "n"): (True, 0)},
        {("n", "count"): 3, ("n", "distinct_count"): 2, ("n", "min"): 1, ("n", "max"): 3, ("n", "mean"): 7 / 3,
         ("n", "variance"): 8 / 9, ("n", "stddev"): math.sqrt(8 / 9)},
    ),
    "nan": (
        pa.table({"x": pa.array([1.0, NAN, 2.0, None, NAN, 0.0, -0.0], pa.float64())}),
        """
        columns:
          x:
            type: float64
            checks: [not_null, {greater_or_equal: 0}, {in_set: [0, 1, 2]}, unique]
            metrics: [count, distinct_count, min, max, mean, stddev]
        """,
        {("not_null", "x"): (False, 1), ("greater_or_equal", "x"): (False, 2), ("in_set", "x"): (False, 2),
         ("unique", "x"): (False, 2)},  # NaN twice and 0.0 == -0.0: two repeats
        {("x", "count"): 6, ("x", "distinct_count"): 4, ("x", "min"): 0.0, ("x", "max"): 2.0, ("x", "mean"): 0.75,
         ("x", "stddev"): math.sqrt(0.6875)},
    ),
    "empty table": (
        pa.table({"n": pa.array([], pa.int64()), "s": pa.array([], pa.string())}),
        """
        columns:
          n: {type: int64, nullable: false, checks: [unique, {greater_than: 0}], metrics: [count, min, mean]}
          s: {type: string, checks: [{max_null_fraction: 0}, {pattern: "^a"}], metrics: [counts_per_label, distinct_count]}
        checks:
          - row_count: {min: 1}
          - unique: [n, s]
        """,
        {("not_null", "n"): (True, 0), ("unique", "n"): (True, 0), ("greater_than", "n"): (True, 0),
         ("max_null_fraction", "s"): (True, 0.0), ("pattern", "s"): (True, 0), ("row_count", None): (False, 0),
         ("unique", "n, s"): (True, 0)},
        {("n", "count"): 0, ("n", "min"): None, ("n", "mean"): None, ("s", "distinct_count"): 0, (None, "row_count"): 0},
    ),
    "all-null column": (
        pa.table({"x": pa.array([None, None, None], pa.float64()), "k": pa.array([1, 2, 3], pa.int32())}),
        """
        columns:
          x: {type: float64, checks: [not_null, {max_null_fraction: 0.5}, {between: [0, 1]}, unique],
              metrics: [count, distinct_count, min, max, mean, stddev]}
          k: {type: int32}
        checks: [{unique: [x, k]}]
        """,
        {("not_null", "x"): (False, 3), ("max_null_fraction", "x"): (False, 1.0), ("between", "x"): (True, 0),
         ("unique", "x"): (True, 0), ("unique", "x, k"): (True, 0)},
        {("x", "count"): 0, ("x", "distinct_count"): 0, ("x", "min"): None, ("x", "max"): None, ("x", "mean"): None,
         ("x", "stddev"): None},
    ),
    "unicode": (
        pa.table({"s": pa.array(["café", "naïve", "日本", "café", None])}),
        """
        columns:
          s:
            type: string
            checks: [{pattern: "é"}, {pattern: "^(café|naïve|日本)$"}, {in_set: {values: [café, naïve, 日本], all_present: true}},
                     unique, {greater_than: "b"}]
            metrics: [counts_per_label, distinct_count, min, max]
        """,
        {("pattern", "s"): [(False, 2), (True, 0)], ("in_set", "s"): (True, 0), ("unique", "s"): (False, 1),
         ("greater_than", "s"): (True, 0)},
        {("s", "counts_per_label", "café"): 2, ("s", "counts_per_label", "naïve"): 1,
         ("s", "counts_per_label", "日本"): 1, ("s", "distinct_count"): 3, ("s", "min"): "café", ("s", "max"): "日本"},
    ),
    "timestamps with time zones": (
        pa.table({
            "at": pa.array([dt.datetime(2013, 1, 1, 0, 30, tzinfo=NY), dt.datetime(2013, 6, 1, 12, tzinfo=NY), None],
                           pa.timestamp("us", tz="America/New_York")),
            "local": pa.array([dt.datetime(2013, 1, 1, 8), dt.datetime(2013, 1, 2, 9), dt.datetime(2013, 1, 2, 9)],
                              pa.timestamp("us")),
        }),
        """
        columns:
          at:
            type: timestamp
            checks:
              - {between: ["2013-01-01T05:00:00Z", "2013-12-31T00:00:00Z"]}
              - {greater_than: "2013-01-01T06:00:00+00:00"}
              - unique
            metrics: [min, max, count]
          local:
            type: timestamp_ntz
            checks: [{less_than: "2013-01-02T00:00:00"}, unique]
            metrics: [min, max, distinct_count]
        """,
        {("between", "at"): (True, 0), ("greater_than", "at"): (False, 1), ("unique", "at"): (True, 0),
         ("less_than", "local"): (False, 2), ("unique", "local"): (False, 1)},
        {("at", "min"): "2013-01-01T05:30:00+00:00", ("at", "max"): "2013-06-01T16:00:00+00:00", ("at", "count"): 2,
         ("local", "min"): "2013-01-01T08:00:00", ("local", "max"): "2013-01-02T09:00:00",
         ("local", "distinct_count"): 2},
    ),
    "decimals": (
        pa.table({"d": pa.array([Decimal("1.10"), Decimal("2.25"), None, Decimal("2.25"), Decimal("-0.50")],
                                pa.decimal128(10, 2))}),
        """
        columns:
          d:
            type: decimal(10,2)
            checks: [{greater_or_equal: 0}, {between: {min: 0, max: 2.25, include_max: false}}, {in_set: [1.1, 2.25]}, unique]
            metrics: [min, max, mean, stddev, count, distinct_count]
        """,
        {("greater_or_equal", "d"): (False, 1), ("between", "d"): (False, 3), ("in_set", "d"): (False, 1),
         ("unique", "d"): (False, 1)},
        {("d", "min"): -0.5, ("d", "max"): 2.25, ("d", "mean"): 1.275, ("d", "stddev"): math.sqrt(1.270625),
         ("d", "count"): 4, ("d", "distinct_count"): 3},
    ),
    "compound key with partial nulls": (
        pa.table({"a": pa.array([1, 1, None, None, 2, None], pa.int64()),
                  "b": pa.array(["x", "x", None, "y", None, "y"])}),
        """
        columns:
          a: {type: int64, metrics: [counts_per_label]}
          b: {type: string}
        checks: [{unique: [a, b]}, {row_count: {min: 1, max: 5, severity: warning}}]
        """,
        {("unique", "a, b"): (False, 2), ("row_count", None): (False, 6)},
        {("a", "counts_per_label", "1"): 2, ("a", "counts_per_label", "2"): 1},
    ),
    "booleans and dates": (
        pa.table({"f": pa.array([True, False, True, None]),
                  "day": pa.array([dt.date(2013, 1, 1), dt.date(2013, 1, 2), None, dt.date(2013, 1, 1)], pa.date32())}),
        """
        columns:
          f: {type: boolean, checks: [{in_set: [true]}, unique], metrics: [counts_per_label, distinct_count]}
          day: {type: date, checks: [{between: [2013-01-01, 2013-01-01]}], metrics: [counts_per_label, min, max]}
        """,
        {("in_set", "f"): (False, 1), ("unique", "f"): (False, 1), ("between", "day"): (False, 1)},
        {("f", "counts_per_label", "true"): 2, ("f", "counts_per_label", "false"): 1, ("f", "distinct_count"): 2,
         ("day", "counts_per_label", "2013-01-01"): 2, ("day", "min"): "2013-01-01", ("day", "max"): "2013-01-02"},
    ),
    "schema, casts and tolerance": (
        pa.table({"widened": pa.array([1, 2, 3] * 4 + [None], pa.int32()),
                  "lossy": pa.array([1.0, 2.5] + [3.0] * 11, pa.float64()),
                  "strict": pa.array(list(range(13)), pa.int32()),
                  "extra": pa.array(["x"] * 13)}),
        """
        extra_columns: warning
        columns:
          widened: {type: int64, cast: true, checks: [{less_than: {value: 3, tolerance: 0.4}},
                                                   {less_than: {value: 3, tolerance: 0.1}}]}
          lossy: {type: int64, cast: true}
          strict: {type: int64}
          missing: {type: string}
        """,
        {("type", "widened"): (True, 0), ("less_than", "widened"): [(True, 4), (False, 4)], ("type", "lossy"): (False, 1),
         ("type", "strict"): (False, "int32"),
         ("type", "missing"): (False, "missing"), ("extra_columns", None): (False, ["extra"])},
        {},
    ),
}


def _binding(tmp_path, text: str) -> ContractBinding:
    path = tmp_path / "contract.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    problems: list[str] = []
    contract = load_contract(path, problems)
    assert contract is not None, problems
    return ContractBinding("cases", "test", contract, MetricsSink("logging", Storage(S3Settings()), tmp_path))


def _spark_frame(spark, table: pa.Table):
    """The table as a Spark DataFrame; naive timestamps become TIMESTAMP_NTZ (createDataFrame would
    read them as instants), by way of their ISO text."""
    from pyspark.sql import functions as F

    naive = [f.name for f in table.schema if pa.types.is_timestamp(f.type) and f.type.tz is None]
    for name in naive:
        table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(pa.string()))
    from pyspark.sql.pandas.types import from_arrow_schema

    frame = compat.create_frame(spark, table, from_arrow_schema(table.schema))  # Spark Connect infers none from no rows
    return frame.withColumns({name: F.col(name).cast("timestamp_ntz") for name in naive}) if naive else frame


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)
    return a == b


@pytest.mark.parametrize("case", list(CASES))
def test_both_backends_give_the_expected_verdicts_and_metrics(case, spark_mode, tmp_path):
    table, contract_text, verdicts, metrics = CASES[case]
    binding = _binding(tmp_path, contract_text)

    arrow, _ = binding.run_arrow(table, "validate")
    session, remote = spark_mode  # classic, then Connect
    frame = _spark_frame(session, table)
    spark_report, _ = binding.run_spark(frame, "validate", deequ=False)
    reports = [arrow, spark_report]
    if remote is None and jvm.spark_line(session.version) in DEEQU_LINES:  # Deequ, the oracle, where the line has it
        deequ_report, _ = binding.run_spark(frame, "validate")
        assert deequ_report.backend == "deequ"
        assert session.sparkContext._gateway._callback_server is None  # no py4j callback server started
        reports.append(deequ_report)
    assert [r.backend for r in reports[:2]] == ["arrow", "spark"]

    for report in reports:
        found: dict = {}
        for r in report.results:
            found.setdefault((r.check, r.column), []).append((r.passed, r.observed))
        for key, expected in verdicts.items():
            expected = expected if isinstance(expected, list) else [expected]
            assert key in found, f"{report.backend}: no result for {key}; got {sorted(found)}"
            assert len(found[key]) == len(expected) and all(
                got[0] == want[0] and _same(got[1], want[1]) for got, want in zip(found[key], expected)), \
                f"{report.backend} {key}: got {found[key]}, expected {expected}"
        values = {(m.column, m.metric) + ((m.label,) if m.label else ()): m.value for m in report.metrics}
        for key, expected in metrics.items():
            assert _same(values[key], expected), f"{report.backend} {key}: got {values[key]!r}, expected {expected!r}"
        assert report.rows == table.num_rows
    # Beyond the listed expectations, the reports agree on everything.
    for other in reports[1:]:
        assert [(r.check, r.column, r.severity, r.passed, r.observed) for r in arrow.results] == \
               [(r.check, r.column, r.severity, r.passed, r.observed) for r in other.results], other.backend
        assert [(m.column, m.metric, m.label) for m in arrow.metrics] == \
               [(m.column, m.metric, m.label) for m in other.metrics], other.backend
        for a, s in zip(arrow.metrics, other.metrics):
            assert _same(a.value, s.value), (other.backend, a, s)


def _deequ_alone(spark, frame, *analyzers) -> dict:
    """Deequ's own successful metrics for ``analyzers`` on ``frame``, by (instance, name): what a
    user of Deequ alone reads (a failed metric is absent)."""
    from pydeequ import analyzers as A

    runner = A.AnalysisRunner(spark).onData(frame)
    for analyzer in analyzers:
        runner = runner.addAnalyzer(analyzer)
    rows = A.AnalyzerContext.successMetricsAsDataFrame(spark, runner.run()).collect()
    return {(row["instance"], row["name"]): row["value"] for row in rows}


@pytest.mark.deequ
def test_where_deequ_alone_differs_lakeios_semantics_stand(spark, tmp_path, monkeypatch):
    """Each row of docs/deequ.md's table of differences: Deequ's own answer, and lakeio's on the
    Deequ backend (the same as on the other backends, which the table above checks)."""
    monkeypatch.setenv("SPARK_VERSION", jvm.spark_line(spark.version))  # pydeequ reads it at import
    from pydeequ import analyzers as A

    from lakeio.spark import deequ

    assert deequ.available(spark)  # on a Deequ line, missing jars fail here rather than skip
    numbers = _spark_frame(spark, pa.table({
        "x": pa.array([1.0, NAN, 3.0], pa.float64()), "n": pa.array([1, 2, 2], pa.int64()),
        "label": pa.array(["a", None, "a"], pa.string())}))
    alone = _deequ_alone(spark, numbers, A.Mean("x"), A.StandardDeviation("x"), A.Minimum("n"),
                         A.Histogram("label"), A.Uniqueness(["n"]))
    assert math.isnan(alone[("x", "Mean")]) and math.isnan(alone[("x", "StandardDeviation")])
    assert alone[("n", "Minimum")] == 1.0 and isinstance(alone[("n", "Minimum")], float)
    assert ("label", "Histogram.abs.NullValue") in alone  # nulls become a label named NullValue
    assert alone[("n", "Uniqueness")] == pytest.approx(1 / 3)  # one value of three rows seen once
    report, _ = _binding(tmp_path, """
        columns:
          x: {type: float64, metrics: [mean, stddev]}
          n: {type: int64, checks: [unique], metrics: [min]}
          label: {type: string, metrics: [counts_per_label]}
        """).run_spark(numbers, "validate")
    assert report.backend == "deequ"
    assert report.metric("x", "mean") == 2.0 and report.metric("x", "stddev") == 1.0  # NaN left out
    assert report.metric("n", "min") == 1 and isinstance(report.metric("n", "min"), int)
    assert {m.label for m in report.metrics if m.metric == "counts_per_label"} == {"a"}
    assert [(r.passed, r.observed) for r in report.results if r.check == "unique"] == [(False, 1)]  # repeats

    empty = _spark_frame(spark, pa.table({"n": pa.array([], pa.int64())}))
    alone = _deequ_alone(spark, empty, A.Mean("n"), A.Compliance("positive", "n > 0"))
    assert ("n", "Mean") not in alone and ("*", "Compliance") not in alone  # "Empty state": no metric
    report, _ = _binding(tmp_path, """
        columns:
          n: {type: int64, checks: [not_null, {greater_than: 0}], metrics: [mean]}
        """).run_spark(empty, "validate")
    assert report.backend == "deequ" and report.metric("n", "mean") is None
    assert [(r.passed, r.observed) for r in report.results if r.check == "greater_than"] == [(True, 0)]
    for result in (r for r in report.results if r.check != "type"):  # Deequ's constraints fail on no rows
        assert result.passed and str(result.deequ).startswith("Failure") and "Empty state" in str(result.deequ)

    # Deequ's own constraints, where their verdict differs: lakeio's stands, the report shows both.
    report, _ = _binding(tmp_path, """
        columns:
          x: {type: float64, checks: [{greater_or_equal: 0}]}
          n: {type: int64}
          label: {type: string, checks: [{pattern: "^a$"}]}
        """).run_spark(numbers, "validate")
    said = {r.check: (r.passed, r.deequ) for r in report.results if r.check != "type"}
    assert said["greater_or_equal"][0] is False  # NaN fails a value check
    assert str(said["greater_or_equal"][1]).startswith("Success: MinimumConstraint")  # Spark's min passes NaN by
    assert said["pattern"][0] is True  # a null is an absent value
    assert str(said["pattern"][1]).startswith("Failure: PatternMatchConstraint")  # Deequ counts it as no match
    assert spark.sparkContext._gateway._callback_server is None


@pytest.mark.deequ
def test_one_contract_is_one_deequ_run_whose_constraints_reach_the_report(spark, tmp_path, monkeypatch):
    """One VerificationSuite run computes the checks' constraints and the metrics together (no
    AnalysisRunner beside it); each result carries Deequ's word, and no callback server runs after."""
    monkeypatch.setenv("SPARK_VERSION", jvm.spark_line(spark.version))  # pydeequ reads it at import
    from pydeequ.analyzers import AnalysisRunBuilder
    from pydeequ.verification import VerificationRunBuilder

    runs: list[VerificationRunBuilder] = []
    real_run = VerificationRunBuilder.run

    def counted(builder):  # a spy: the real run, counted
        runs.append(builder)
        return real_run(builder)

    def refused(builder):
        raise AssertionError("an AnalysisRunner run beside the suite")

    monkeypatch.setattr(VerificationRunBuilder, "run", counted)
    monkeypatch.setattr(AnalysisRunBuilder, "run", refused)
    frame = _spark_frame(spark, pa.table({"n": pa.array([1, 2, 2, None], pa.int64()),
                                          "s": pa.array(["a", "b", "zz", None], pa.string())}))
    report, _ = _binding(tmp_path, """
        columns:
          n: {type: int64, checks: [not_null, unique, {between: {min: 1, max: 5}}], metrics: [mean, stddev]}
          s: {type: string, checks: [{in_set: {values: [a, b], severity: warning}}]}
        checks:
          - {row_count: {min: 1, max: 10}}
        """).run_spark(frame, "validate")
    assert len(runs) == 1 and report.backend == "deequ"
    said = {(r.check, r.column): r for r in report.results if r.check != "type"}
    assert {key: (r.passed, str(r.deequ).split(":")[0]) for key, r in said.items()} == {
        ("not_null", "n"): (False, "Failure"), ("unique", "n"): (False, "Failure"), ("between", "n"): (True, "Success"),
        ("in_set", "s"): (False, "Failure"), ("row_count", None): (True, "Success")}
    assert said[("not_null", "n")].deequ == ("Failure: CompletenessConstraint(Completeness(n,None,None)): "
                                             "Value: 0.75 does not meet the constraint requirement!")
    assert "Compliance(s contained in a,b" in str(said[("in_set", "s")].deequ)
    assert [w.check for w in report.warnings] == ["in_set"]
    assert report.metric("n", "mean") == pytest.approx(5 / 3) and report.metric("n", "stddev") == pytest.approx(
        math.sqrt(2 / 9))  # the metrics of the same run
    assert "(deequ: Failure: CompletenessConstraint(Completeness(n,None,None))" in str(report)
    assert spark.sparkContext._gateway._callback_server is None

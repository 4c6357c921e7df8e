"""The semantics of a contract, defined once: which measures a contract needs, and how measures
become verdicts and metrics. A backend (Arrow, Spark) only computes measures.

Rules both backends follow:

* Nulls are absent values. Value checks (in_set, comparisons, between, pattern) look at non-null
  values only; ``not_null`` and ``max_null_fraction`` are about the nulls.
* NaN is a value, not a null (as in Spark and Deequ): it counts as present and in ``count`` and
  ``distinct_count``, fails every value check, and is left out of min, max, mean, stddev, variance.
* ``unique`` ignores nulls; a compound key ignores rows whose key columns are all null.
* stddev and variance are population figures (as Deequ's StandardDeviation), computed in float64.
* A value check passes when failing rows <= floor(tolerance * rows).
* A history check (``row_count: {max_change: 0.5}``, ``mean: {max_delta: 3}``) compares this run's
  metric, computed as the metric itself is, with the same metric of earlier runs
  (:func:`judge_history`); with fewer earlier runs than it needs it passes, saying so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lakeio.validation.contract import (
    Between,
    Check,
    Comparison,
    Contract,
    HistoryBounds,
    InSet,
    LogicalType,
    MaxNullFraction,
    MetricHistory,
    NotNull,
    Pattern,
    RowCount,
    Unique,
    UniqueKey,
    ValueCheck,
)
from lakeio.validation.report import CheckResult, MetricValue, SkippedCheck

# -- rules: what a value check tests, as both backends evaluate it ------------------------------


@dataclass(frozen=True)
class Compare:
    operator: str  # ">", ">=", "<", "<="
    value: Any


@dataclass(frozen=True)
class Range:
    low: Any
    high: Any
    include_low: bool
    include_high: bool


@dataclass(frozen=True)
class Member:
    values: tuple


@dataclass(frozen=True)
class Matches:
    regex: str


Rule = Compare | Range | Member | Matches

# -- measures: what a backend computes ------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """Number of rows -> int."""


@dataclass(frozen=True)
class Nulls:
    """Null values of a column -> int."""

    column: str


@dataclass(frozen=True)
class Failing:
    """Non-null values of a column that break a rule -> :class:`FailingValues`."""

    column: str
    rule: Rule


@dataclass(frozen=True)
class FailingValues:
    count: int
    lowest: Any = None  # the smallest and largest failing value other than NaN
    highest: Any = None
    nans: int = 0  # how many failing values are NaN (they have no place in that range)


@dataclass(frozen=True)
class Present:
    """Which of ``values`` occur in a column -> frozenset."""

    column: str
    values: tuple


@dataclass(frozen=True)
class Distinct:
    """(rows whose key is not all null, distinct keys among them) for a key of one or more columns."""

    columns: tuple[str, ...]


@dataclass(frozen=True)
class Stat:
    """min, max, mean, stddev or variance of a column's numbers -> value or None."""

    column: str
    name: str


@dataclass(frozen=True)
class Labels:
    """Non-null values of a column and how often each occurs -> {label text: count}."""

    column: str


@dataclass(frozen=True)
class CastFailures:
    """Non-null values that do not survive the cast to the contract's type -> int."""

    column: str
    target: LogicalType


Measure = Rows | Nulls | Failing | Present | Distinct | Stat | Labels | CastFailures


def rule_of(check: Check) -> Rule | None:
    """The rule a value check tests, or None for checks that are not value checks."""
    if isinstance(check, Comparison):
        return Compare(check.operator, check.value)
    if isinstance(check, Between):
        return Range(check.min, check.max, check.include_min, check.include_max)
    if isinstance(check, InSet):
        return Member(check.values)
    if isinstance(check, Pattern):
        return Matches(check.regex)
    return None


# -- schema: types, missing and extra columns, casts ----------------------------------------------

CASTABLE = ("integer", "float", "decimal")


def _family(logical: LogicalType) -> str:
    if logical.is_integer:
        return "integer"
    if logical.is_float:
        return "float"
    return logical.name


@dataclass(frozen=True)
class SchemaOutcome:
    """The schema check of some data against a contract."""

    results: tuple[CheckResult, ...]
    casts: Mapping[str, LogicalType]  # columns to cast, to the contract's type
    usable: frozenset[str]  # contract columns whose values can be checked


def check_schema(contract: Contract, actual: Mapping[str, LogicalType | str], *, partial: bool) -> SchemaOutcome:
    """Compares the data's columns (name -> logical type, or a text for types lakeio has no name for)
    with the contract. ``partial`` (a column-subset read) excuses contract columns not read.
    """
    results, casts, usable = [], {}, set()
    for name, column in contract.columns.items():
        declared = str(column.type)
        if name not in actual:
            if not partial:
                results.append(CheckResult("type", name, "error", False, "missing", declared,
                                           f"column {name!r} ({declared}) is missing"))
            continue
        found = actual[name]
        if found == column.type:
            results.append(CheckResult("type", name, "error", True, declared, declared, f"{declared} as declared"))
            usable.add(name)
            continue
        castable = (isinstance(found, LogicalType) and _family(found) in CASTABLE
                    and _family(column.type) in CASTABLE)
        if column.cast and castable:
            casts[name] = column.type
            usable.add(name)
            continue
        hint = (" (allow it with 'cast: true')" if castable else
                " (only numeric types are cast, and only with 'cast: true')")
        results.append(CheckResult("type", name, "error", False, str(found), declared,
                                   f"column {name!r} is {found}, the contract says {declared}{hint}"))
    extra = sorted(set(actual) - set(contract.columns))
    if extra and contract.extra_columns != "allow":
        results.append(CheckResult("extra_columns", None, contract.extra_columns, False, extra, [],
                                   f"columns not in the contract: {', '.join(extra)}"))
    return SchemaOutcome(tuple(results), casts, frozenset(usable))


# -- the plan: which checks run on this data, and the measures they need --------------------------


@dataclass(frozen=True)
class Planned:
    check: Check
    column: str | None  # None for table checks


@dataclass(frozen=True)
class Plan:
    """The checks and metrics a run answers. ``measures`` are taken on the data at hand; on a
    write, ``table_measures`` (those of table checks) are taken on the table as it will be after
    the write, and are empty when the contract has no table checks."""

    checks: tuple[Planned, ...]
    metrics: tuple[tuple[str, str], ...]  # (column, metric)
    skipped: tuple[SkippedCheck, ...]
    measures: frozenset
    types: Mapping[str, LogicalType]  # the contract type of each usable column
    table_measures: frozenset = frozenset()

    @property
    def table_columns(self) -> tuple[str, ...]:
        """The columns the table measures read, in the contract's order."""
        wanted = {c for m in self.table_measures for c in _columns_of(m)}
        return tuple(c for c in self.types if c in wanted)

    def of_table(self) -> Plan:
        """The plan a backend runs over the table after a write: the table measures, and its rows."""
        return Plan((), (), (), self.table_measures, self.types)


def _columns_of(measure) -> tuple[str, ...]:
    if isinstance(measure, Distinct):
        return measure.columns
    column = getattr(measure, "column", None)
    return () if column is None else (column,)


def is_table_check(check: Check) -> bool:
    """Checks about the whole table (row count, uniqueness, null fraction, all values present):
    on a write they judge the table as it will be after it, the rows already there included."""
    return (isinstance(check, RowCount) and check.has_bounds) or \
        isinstance(check, (UniqueKey, Unique, MaxNullFraction)) or (isinstance(check, InSet) and check.all_present)


def plan(contract: Contract, schema: SchemaOutcome, *, filtered: bool, write: bool = False) -> Plan:
    """Chooses the checks and metrics this data can answer and lists the measures they need.

    On a filtered read, checks about the whole dataset (row_count, max_null_fraction,
    in_set with all_present) are skipped: a part cannot answer them. On a ``write``, their
    measures are the plan's ``table_measures``, for the table after the write.
    """
    checks: list[Planned] = []
    skipped: list[SkippedCheck] = []
    metrics: list[tuple[str, str]] = []
    measures: set = {Rows()}
    table_measures: set = set()

    def needs(check: Check, columns: tuple[str, ...]) -> None:
        if write and is_table_check(check):
            table_measures.add(Rows())
        for item in _measures_of(check, columns):
            (table_measures if write and is_table_check(check) and not isinstance(item, Failing) else measures).add(item)
    for name, column in contract.columns.items():
        if name not in schema.usable:
            skipped.extend(SkippedCheck(c.name, name, "column not read" if _unread(name, schema) else
                                        "column type does not match the contract") for c in column.checks)
            continue
        if name in schema.casts:
            measures.add(CastFailures(name, schema.casts[name]))
        for check in column.checks:
            if filtered and not check.is_subset_safe():
                skipped.append(SkippedCheck(check.name, name, "about the whole dataset; this read is filtered"))
                continue
            checks.append(Planned(check, name))
            needs(check, (name,))
        history = [c.metric for c in column.checks if isinstance(c, MetricHistory)]
        # a metric a history check watches is recorded on every run, so the next run has it to compare with
        for metric in dict.fromkeys([*column.metrics, *history]):
            metrics.append((name, metric))
            measures.update(_metric_measures(name, metric))
    for check in contract.checks:
        columns = tuple(getattr(check, "columns", ()))
        missing = [c for c in columns if c not in schema.usable]
        if missing:
            skipped.append(SkippedCheck(check.name, ", ".join(columns), f"column(s) {', '.join(missing)} "
                                        "not read or of another type"))
        elif filtered and not check.is_subset_safe():
            skipped.append(SkippedCheck(check.name, None, "about the whole dataset; this read is filtered"))
        else:
            checks.append(Planned(check, None))
            needs(check, columns)
    types = {name: contract.columns[name].type for name in contract.columns if name in schema.usable}
    return Plan(tuple(checks), tuple(metrics), tuple(skipped), frozenset(measures), types, frozenset(table_measures))


def _unread(name: str, schema: SchemaOutcome) -> bool:
    return not any(r.column == name and r.check == "type" for r in schema.results)


def _measures_of(check: Check, columns: tuple[str, ...]) -> list:
    if isinstance(check, MetricHistory):
        return _metric_measures(columns[0], check.metric)
    if isinstance(check, (Unique, UniqueKey)):
        return [Distinct(columns)]
    if not columns:  # row_count: the rows, always measured
        return []
    column = columns[0]
    if isinstance(check, (NotNull, MaxNullFraction)):
        return [Nulls(column)]
    rule = rule_of(check)
    if rule is None:
        return []
    if isinstance(check, InSet) and check.all_present:
        return [Failing(column, rule), Present(column, check.values)]
    return [Failing(column, rule)]


def _metric_measures(column: str, metric: str) -> list:
    if metric == "count":
        return [Nulls(column)]
    if metric == "distinct_count":
        return [Distinct((column,))]
    if metric == "counts_per_label":
        return [Labels(column)]
    return [Stat(column, metric)]


# -- evaluation: measures -> verdicts and metrics ---------------------------------------------------


# The earlier runs' values of a metric: (column or None for the table, metric, runs) -> oldest first.
History = Callable[[str | None, str, int], list[float] | None]


def evaluate(plan: Plan, measured: Mapping, schema: SchemaOutcome, table: Mapping | None = None, *,
             history: History | None = None,
             deequ: Mapping[int, str] | None = None) -> tuple[list[CheckResult], list[MetricValue]]:
    """Turns a backend's measures into check results and metric values (the one place of semantics).
    ``table``: on a write, the measures of the table after it (``plan.of_table()``), which table
    checks judge; row checks, metrics and history checks judge ``measured``, the rows written.
    ``history`` gives earlier runs' metrics to history checks; None: there is no history kept.
    ``deequ``: what Deequ's constraints said of planned checks (by index in ``plan.checks``), put on
    their results beside lakeio's verdict, which stands."""
    rows = measured[Rows()]
    table = measured if table is None else table
    results = list(schema.results)
    for column, target in schema.casts.items():
        failures = measured[CastFailures(column, target)]
        results.append(CheckResult(
            "type", column, "error", failures == 0, failures, 0,
            f"cast to {target}: {failures} value(s) do not fit" if failures else f"cast to {target}, all values fit"))
    said = deequ or {}
    for index, planned in enumerate(plan.checks):
        check = planned.check
        if not isinstance(check, (RowCount, MetricHistory)) or (isinstance(check, RowCount) and check.has_bounds):
            verdict = _verdict(planned, measured, rows, table)
            results.append(dataclasses.replace(verdict, deequ=said[index]) if index in said else verdict)
        if isinstance(check, (RowCount, MetricHistory)) and check.has_history_bounds:
            metric = check.metric if isinstance(check, MetricHistory) else "row_count"
            current = rows if isinstance(check, RowCount) else _metric_value(planned.column, metric, measured, rows)
            results.append(_history_verdict(planned, metric, current, history))
    metrics = [MetricValue(None, "row_count", rows)]
    for column, metric in plan.metrics:
        if metric == "counts_per_label":
            labels = measured[Labels(column)]
            metrics.extend(MetricValue(column, metric, count, label) for label, count in sorted(labels.items()))
        else:
            metrics.append(MetricValue(column, metric, _metric_value(column, metric, measured, rows)))
    return results, metrics


def _metric_value(column: str | None, metric: str, measured: Mapping, rows: int) -> Any:
    assert column is not None, "column metrics only: row_count is the rows"
    if metric == "count":
        return rows - measured[Nulls(column)]
    if metric == "distinct_count":
        return measured[Distinct((column,))][1]
    return plain(measured[Stat(column, metric)])


def _history_verdict(planned: Planned, metric: str, current: Any, history: History | None) -> CheckResult:
    check = planned.check
    assert isinstance(check, HistoryBounds)
    runs = check.window
    past = history(planned.column, metric, runs) if history is not None else None
    passed, observed, threshold, message = judge_history(check, current, past)
    return CheckResult(check.name, planned.column, check.severity, passed, observed, threshold, message)


def judge_history(bounds: HistoryBounds, current: Any, past: list[float] | None) -> tuple[bool, Any, Any, str]:
    """(passed, observed, threshold, message) of a metric's value against earlier runs' (oldest
    first; None when no history is kept). The reference is the mean of the last ``window`` runs.

    Example:
        >>> from lakeio.validation.contract import HistoryBounds
        >>> judge_history(HistoryBounds(max_change=0.5), 1600, [1000.0])[0]
        False
        >>> judge_history(HistoryBounds(max_change=0.5), 1200, [])[3]
        'no earlier run to compare with: passes (the first run of this history)'
    """
    threshold = {k: v for k, v in (("max_change", bounds.max_change), ("max_delta", bounds.max_delta),
                                   ("max_deviations", bounds.max_deviations), ("window", bounds.window))
                 if v is not None}
    if past is None:
        return True, {"value": current}, threshold, \
            "no metrics history to compare with (the logging sink keeps none; an unreadable one is logged): passes"
    needed = 2 if bounds.max_deviations is not None else 1
    if current is None or (isinstance(current, float) and math.isnan(current)):
        return False, {"value": None}, threshold, "no value to compare with earlier runs (no non-null numbers)"
    if len(past) < needed:
        what = "no earlier run" if not past else f"only {len(past)} earlier run"
        return True, {"value": current, "history": past}, threshold, \
            f"{what} to compare with: passes (the first run{'s' if past else ''} of this history)"
    value = float(current)
    window = past[-bounds.window:]
    reference = sum(window) / len(window)
    observed: dict[str, Any] = {"value": current, "reference": reference, "runs": len(window)}
    failures, parts = [], []
    delta = value - reference
    if bounds.max_change is not None:
        relative = delta / abs(reference) if reference else math.copysign(math.inf, delta) if delta else 0.0
        observed["change"] = relative if math.isfinite(relative) else None  # from 0: no rate (plain JSON)
        parts.append(f"change {relative:+.1%} (at most {bounds.max_change:.0%})")
        if abs(relative) > bounds.max_change:
            failures.append("max_change")
    if bounds.max_delta is not None:
        observed["delta"] = delta
        parts.append(f"delta {delta:+.6g} (at most {bounds.max_delta:g})")
        if abs(delta) > bounds.max_delta:
            failures.append("max_delta")
    if bounds.max_deviations is not None:
        stddev = math.sqrt(sum((x - reference) ** 2 for x in window) / len(window))
        deviations = abs(delta) / stddev if stddev else (0.0 if not delta else math.inf)
        observed["deviations"] = deviations if math.isfinite(deviations) else None
        observed["stddev"] = stddev
        parts.append(f"{deviations:.3g} standard deviations from the mean {reference:.6g} "
                     f"(stddev {stddev:.6g}; at most {bounds.max_deviations:g})")
        if deviations > bounds.max_deviations:
            failures.append("max_deviations")
    against = "the previous run" if len(window) == 1 else f"the mean of the last {len(window)} runs"
    message = f"{_show(current)} against {reference:.6g}, {against}: " + "; ".join(parts)
    return not failures, observed, threshold, message


def _verdict(planned: Planned, measured: Mapping, rows: int, table: Mapping) -> CheckResult:
    check, column = planned.check, planned.column
    table_rows = table[Rows()]
    name, severity = check.name, check.severity

    def result(passed: bool, observed: Any, threshold: Any, message: str) -> CheckResult:
        return CheckResult(name, column if column is not None else _key_name(check), severity, passed,
                           observed, threshold, message)

    if isinstance(check, RowCount):
        bounds = f"{check.min if check.min is not None else 0}..{check.max if check.max is not None else 'any'}"
        passed = (check.min is None or table_rows >= check.min) and (check.max is None or table_rows <= check.max)
        return result(passed, table_rows, bounds, f"{table_rows} rows (expected {bounds})")
    if isinstance(check, UniqueKey):
        return _uniqueness(result, check.columns, table)
    assert column is not None, "every other check is a column's"
    if isinstance(check, Unique):
        return _uniqueness(result, (column,), table)
    if isinstance(check, NotNull):
        nulls = measured[Nulls(column)]
        return result(nulls == 0, nulls, 0, f"{nulls} null value(s) of {rows} rows")
    if isinstance(check, MaxNullFraction):
        fraction = table[Nulls(column)] / table_rows if table_rows else 0.0
        return result(fraction <= check.fraction, fraction, check.fraction,
                      f"null fraction {fraction:.6g} (at most {check.fraction:g} allowed)")
    rule = rule_of(check)
    assert isinstance(check, ValueCheck) and rule is not None, "the rest are value checks"
    failing: FailingValues = measured[Failing(column, rule)]
    allowed = math.floor(check.tolerance * rows + 1e-9)
    passed = failing.count <= allowed
    message = f"{failing.count} of {rows} rows {_describe_rule(rule)} fail"
    if failing.count:
        message += f" ({_failing_values(failing)})"
    if check.tolerance:
        message += f"; tolerance {check.tolerance:g} allows {allowed}"
    observed: Any = failing.count
    if isinstance(check, InSet) and check.all_present:
        absent = [v for v in check.values if v not in table[Present(column, check.values)]]
        if absent:
            passed = False
            message += f"; listed values that never occur: {', '.join(_show(v) for v in absent)}"
            observed = {"failing_rows": failing.count, "absent_values": [plain(v) for v in absent]}
    return result(passed, observed, allowed, message)


def _uniqueness(result, columns: tuple[str, ...], measured: Mapping) -> CheckResult:
    keyed, distinct = measured[Distinct(columns)]
    duplicates = keyed - distinct
    what = "value" if len(columns) == 1 else f"key ({', '.join(columns)})"
    return result(duplicates == 0, duplicates, 0,
                  f"{duplicates} row(s) repeat a {what} seen before ({distinct} distinct of {keyed})"
                  if duplicates else f"{distinct} distinct of {keyed}, none repeated")


def _key_name(check: Check) -> str | None:
    columns = getattr(check, "columns", None)
    return ", ".join(columns) if columns else None


def _describe_rule(rule: Rule) -> str:
    if isinstance(rule, Compare):
        return f"(each value {rule.operator} {_show(rule.value)})"
    if isinstance(rule, Range):
        return (f"(each value in {'[' if rule.include_low else '('}{_show(rule.low)}, "
                f"{_show(rule.high)}{']' if rule.include_high else ')'})")
    if isinstance(rule, Member):
        shown = ", ".join(_show(v) for v in rule.values[:10]) + (", ..." if len(rule.values) > 10 else "")
        return f"(each value in {{{shown}}})"
    return f"(each value matching /{rule.regex}/)"


def _failing_values(failing: FailingValues) -> str:
    """``failing values from 1 to 5``, ``failing values: NaN (3)`` or both, never "from None"."""
    parts = []
    if failing.lowest is not None or failing.highest is not None:
        parts.append(f"failing values from {_show(failing.lowest)} to {_show(failing.highest)}")
    if failing.nans:
        parts.append(f"{'and' if parts else 'failing values:'} NaN ({failing.nans})")
    return " ".join(parts) or "failing values not shown"


def _show(value: Any) -> str:
    return repr(plain(value))


def plain(value: Any) -> Any:
    """A measured value as plain JSON: Decimal -> float, instants -> ISO 8601 in UTC, dates -> ISO."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def label_text(value: Any) -> str:
    """A label of ``counts_per_label`` as text, the same on both backends."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def merge_moments(parts: Iterable[tuple[int, float, float]]) -> tuple[int, float | None, float | None]:
    """Merges (count, mean, M2) of parts (Chan et al.) into (count, mean, population variance)."""
    n, mean, m2 = 0, 0.0, 0.0
    for count, part_mean, part_m2 in parts:
        if not count:
            continue
        total = n + count
        delta = part_mean - mean
        mean += delta * count / total
        m2 += part_m2 + delta * delta * n * count / total
        n = total
    return n, (mean if n else None), (m2 / n if n else None)

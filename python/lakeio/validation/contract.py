"""The validation contract: what a dataset must look like, read from one YAML file per dataset.

A contract names each column's logical type and nullability, per-column checks, table checks and
metrics. Loading validates all of it and collects every problem (file, column, key, and the closest
valid name) into one :class:`~lakeio.errors.ConfigError`; nothing is left to fail at run time.

Example:
    >>> from pathlib import Path
    >>> problems = []
    >>> contract = load_contract(Path("conf/schemas/flights.yaml"), problems)
    >>> ", ".join(check.name for check in contract.columns["carrier"].checks)
    'not_null, pattern, in_set'
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from lakeio.config import FrozenModel, read_yaml, validate_model
from lakeio.errors import ConfigError

Severity = Literal["error", "warning"]
OnFail = Literal["refuse", "quarantine"]
METRICS = ("min", "max", "mean", "stddev", "variance", "count", "distinct_count", "counts_per_label")

# -- logical types -------------------------------------------------------------------------------

INTEGER_TYPES = ("int8", "int16", "int32", "int64")
FLOAT_TYPES = ("float32", "float64")
SIMPLE_TYPES = ("string", "boolean", *INTEGER_TYPES, *FLOAT_TYPES, "date", "timestamp", "timestamp_ntz")
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_INTEGER_RANGE = {name: (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
                  for name, bits in zip(INTEGER_TYPES, (8, 16, 32, 64))}


@dataclass(frozen=True)
class LogicalType:
    """A column type both engines agree on: ``int64``, ``decimal(10,2)``, ``timestamp`` (an instant,
    stored with a time zone) or ``timestamp_ntz`` (a wall-clock time without one), and so on.

    Example:
        >>> LogicalType.parse("decimal(10, 2)")
        LogicalType(name='decimal', precision=10, scale=2)
        >>> str(LogicalType.parse("decimal(10, 2)")), LogicalType.parse("int32").is_numeric
        ('decimal(10,2)', True)
    """

    name: str
    precision: int | None = None
    scale: int | None = None

    @classmethod
    def parse(cls, text: str) -> LogicalType:
        """Parses a type name; raises ``ValueError`` naming the closest valid one."""
        text = str(text).strip().lower()
        if text in SIMPLE_TYPES:
            return cls(text)
        match = _DECIMAL.match(text)
        if match:
            precision, scale = int(match.group(1)), int(match.group(2))
            if not 1 <= precision <= 76 or scale > precision:
                raise ValueError(f"decimal({precision},{scale}) needs 1 <= precision <= 76 and scale <= precision")
            return cls("decimal", precision, scale)
        choices = [*SIMPLE_TYPES, "decimal(p,s)"]
        hint = difflib.get_close_matches(text, choices, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"unknown type {text!r}{suggestion} (types: {', '.join(choices)})")

    def __str__(self) -> str:
        return f"decimal({self.precision},{self.scale})" if self.name == "decimal" else self.name

    @property
    def is_integer(self) -> bool:
        return self.name in INTEGER_TYPES

    @property
    def is_float(self) -> bool:
        return self.name in FLOAT_TYPES

    @property
    def is_numeric(self) -> bool:
        return self.is_integer or self.is_float or self.name == "decimal"

    @property
    def is_ordered(self) -> bool:
        """Comparisons and ranges make sense (everything but booleans)."""
        return self.name != "boolean"

    @property
    def is_label(self) -> bool:
        """Values that read well as labels of ``counts_per_label``."""
        return self.name in ("string", "boolean", "date", *INTEGER_TYPES)

    def coerce(self, value: Any) -> Any:
        """A bound or set member from YAML as a value of this type; ``ValueError`` if it is not one."""
        if self.is_integer:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{value!r} is not an integer")
            low, high = _INTEGER_RANGE[self.name]
            if not low <= value <= high:
                raise ValueError(f"{value} does not fit {self.name}")
            return value
        if self.is_float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{value!r} is not a number")
            if math.isnan(value):
                raise ValueError("NaN is not a usable bound or set member (a NaN fails every value check)")
            return float(value)
        if self.name == "decimal":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(f"{value!r} is not a number")
            try:
                number = decimal.Decimal(str(value))
            except decimal.InvalidOperation:
                raise ValueError(f"{value!r} is not a number") from None
            if not number.is_finite():
                raise ValueError(f"{value!r} is not a finite number")
            exponent = number.as_tuple().exponent
            assert isinstance(exponent, int)  # a finite Decimal's exponent is a whole number
            if self.scale is not None and -exponent > self.scale:
                raise ValueError(f"{value} has more than {self.scale} decimal places")
            if self.scale is not None and self.precision is not None and \
                    len(number.quantize(decimal.Decimal(1).scaleb(-self.scale)).as_tuple().digits) > self.precision:
                raise ValueError(f"{value} does not fit {self}")
            return number
        if self.name == "string":
            if not isinstance(value, str):
                raise ValueError(f"{value!r} is not a string (quote it in YAML)")
            return value
        if self.name == "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"{value!r} is not true or false")
            return value
        if self.name == "date":
            if isinstance(value, str):
                value = _parse_iso(value, dt.date.fromisoformat)
            if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
                raise ValueError(f"{value!r} is not a date (write 2024-01-31)")
            return value
        if isinstance(value, str):
            value = _parse_iso(value, dt.datetime.fromisoformat)
        if not isinstance(value, dt.datetime):
            raise ValueError(f"{value!r} is not a date-time (write 2024-01-31T08:00:00Z)")
        if self.name == "timestamp" and value.tzinfo is None:
            raise ValueError(f"{value.isoformat()} has no time zone; a timestamp column holds instants "
                             "(write 2024-01-31T08:00:00Z or +01:00)")
        if self.name == "timestamp_ntz" and value.tzinfo is not None:
            raise ValueError(f"{value.isoformat()} has a time zone; a timestamp_ntz column holds wall-clock "
                             "times (write 2024-01-31T08:00:00)")
        return value


def _parse_iso(text: str, parse) -> Any:
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or date-time") from None


# -- checks --------------------------------------------------------------------------------------

class Check(FrozenModel):
    """One check of a contract. ``severity: warning`` logs a failure instead of raising."""

    severity: Severity = "error"
    #: What failing rows do: refuse the write, or go to the quarantine dataset (row-level checks
    #: only). None: the contract's ``on_fail``.
    on_fail: OnFail | None = None

    name: ClassVar[str]
    #: The parameter a scalar stands for in the short form, e.g. ``greater_than: 0``.
    shorthand: ClassVar[str | None] = None
    #: Still meaningful on a filtered read (a statement about each row, or implied by the whole).
    subset_safe: ClassVar[bool] = True

    def is_subset_safe(self) -> bool:
        return self.subset_safe


class NotNull(Check):
    """No null values. ``nullable: false`` on a column adds this check with severity error."""

    name: ClassVar[str] = "not_null"


class MaxNullFraction(Check):
    """At most ``fraction`` (0..1) of the rows are null."""

    name: ClassVar[str] = "max_null_fraction"
    shorthand: ClassVar[str] = "fraction"
    subset_safe: ClassVar[bool] = False
    fraction: float = Field(ge=0, le=1)


class Unique(Check):
    """No non-null value appears twice (nulls are ignored, as in Deequ's isUnique)."""

    name: ClassVar[str] = "unique"


class ValueCheck(Check):
    """A check of each non-null value. ``tolerance`` is the fraction of rows allowed to fail."""

    tolerance: float = Field(0.0, ge=0, le=1)


class InSet(ValueCheck):
    """Every non-null value is one of ``values``; with ``all_present``, every listed value also occurs."""

    name: ClassVar[str] = "in_set"
    shorthand: ClassVar[str] = "values"
    values: tuple[Any, ...] = Field(min_length=1)
    all_present: bool = False

    def is_subset_safe(self) -> bool:
        return not self.all_present


class Comparison(ValueCheck):
    shorthand: ClassVar[str] = "value"
    operator: ClassVar[str]
    value: Any


class GreaterThan(Comparison):
    """Every non-null value is > ``value``."""

    name: ClassVar[str] = "greater_than"
    operator: ClassVar[str] = ">"


class GreaterOrEqual(Comparison):
    """Every non-null value is >= ``value``."""

    name: ClassVar[str] = "greater_or_equal"
    operator: ClassVar[str] = ">="


class LessThan(Comparison):
    """Every non-null value is < ``value``."""

    name: ClassVar[str] = "less_than"
    operator: ClassVar[str] = "<"


class LessOrEqual(Comparison):
    """Every non-null value is <= ``value``."""

    name: ClassVar[str] = "less_or_equal"
    operator: ClassVar[str] = "<="


class Between(ValueCheck):
    """Every non-null value is within [min, max]; each bound is included unless told otherwise."""

    name: ClassVar[str] = "between"
    min: Any
    max: Any
    include_min: bool = True
    include_max: bool = True

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, data: Any) -> Any:
        """``between: [0, 10]`` is short for ``between: {min: 0, max: 10}``."""
        if isinstance(data, (list, tuple)) and len(data) == 2:
            return {"min": data[0], "max": data[1]}
        return data


class Pattern(ValueCheck):
    """Every non-null string contains a match of ``regex`` (anchor it with ^...$ for a full match)."""

    name: ClassVar[str] = "pattern"
    shorthand: ClassVar[str] = "regex"
    regex: str


class HistoryBounds(FrozenModel):
    """How far a metric may move from earlier runs' values (read from the metrics sink's history),
    as Deequ's anomaly strategies judge it. Each bound given is applied; a run with too little
    history passes with a note.

    * ``max_change``: relative rate of change, ``|value - reference| / |reference|``;
    * ``max_delta``: absolute change, ``|value - reference|``;
    * ``max_deviations``: a z-score over the window (an online normal strategy),
      ``|value - mean| / stddev`` of the ``window`` earlier runs (population stddev; needs 2 runs).

    The reference is the mean of the last ``window`` runs (1: the previous run).
    """

    max_change: float | None = Field(None, ge=0)
    max_delta: float | None = Field(None, ge=0)
    max_deviations: float | None = Field(None, gt=0)
    window: int = Field(1, ge=1, le=1000)

    @property
    def has_history_bounds(self) -> bool:
        return any(b is not None for b in (self.max_change, self.max_delta, self.max_deviations))


class RowCount(Check, HistoryBounds):
    """The number of rows is within [min, max] (either may be left out), and/or moves from earlier
    runs by at most ``max_change``, ``max_delta`` or ``max_deviations`` (see :class:`HistoryBounds`)."""

    name: ClassVar[str] = "row_count"
    subset_safe: ClassVar[bool] = False
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @property
    def has_bounds(self) -> bool:
        return self.min is not None or self.max is not None


class MetricHistory(Check, HistoryBounds):
    """A column metric (``mean: {max_change: 0.2}``) compared with earlier runs' (see
    :class:`HistoryBounds`); the metric is computed and recorded whether or not it is listed."""

    metric: ClassVar[str]
    subset_safe: ClassVar[bool] = False
    numeric_only: ClassVar[bool] = True


def _history_check(metric: str, numeric_only: bool = True) -> type[MetricHistory]:
    doc = f"The column's {metric} moves from earlier runs' by at most the bounds given (max_change, max_delta, " \
          "max_deviations over a window)."
    return type(f"{metric.title().replace('_', '')}History", (MetricHistory,),
                {"__doc__": doc, "__module__": __name__, "__annotations__": {"name": ClassVar[str]},
                 "name": metric, "metric": metric, "numeric_only": numeric_only})


class UniqueKey(Check):
    """No key (the values of ``columns`` together) appears twice; rows whose key columns are all null
    are ignored, and a null in part of a key is a value like any other (Deequ's semantics)."""

    name: ClassVar[str] = "unique"
    shorthand: ClassVar[str] = "columns"
    columns: tuple[str, ...] = Field(min_length=1)


HISTORY_CHECKS: tuple[type[MetricHistory], ...] = (
    *(_history_check(m) for m in ("min", "max", "mean", "stddev", "variance")),
    *(_history_check(m, numeric_only=False) for m in ("count", "distinct_count")))
_DATA_CHECKS: tuple[type[Check], ...] = (
    NotNull, MaxNullFraction, Unique, InSet, GreaterThan, GreaterOrEqual, LessThan, LessOrEqual, Between, Pattern)
COLUMN_CHECKS: dict[str, type[Check]] = {c.name: c for c in (*_DATA_CHECKS, *HISTORY_CHECKS)}
TABLE_CHECKS: dict[str, type[Check]] = {c.name: c for c in (RowCount, UniqueKey)}
NUMERIC_METRICS = ("mean", "stddev", "variance")


# -- the contract --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnContract:
    """One column: its logical type, whether an engine-side cast to it is allowed, checks, metrics."""

    name: str
    type: LogicalType
    nullable: bool
    cast: bool
    checks: tuple[Check, ...]
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Contract:
    """A dataset's validation contract, as loaded from ``path``."""

    path: str
    columns: Mapping[str, ColumnContract]
    checks: tuple[Check, ...]
    extra_columns: Literal["error", "warning", "allow"]
    on_fail: OnFail = "refuse"

    @property
    def quarantined(self) -> tuple[tuple[str, Check], ...]:
        """(column, check) of the row-level checks whose failing rows are quarantined."""
        return tuple((column.name, check) for column in self.columns.values() for check in column.checks
                     if check.severity == "error" and (check.on_fail or self.on_fail) == "quarantine"
                     and is_row_check(check))


def is_row_check(check: Check) -> bool:
    """A check each row passes or fails on its own (not_null and value checks): it can quarantine."""
    return isinstance(check, NotNull) or (isinstance(check, ValueCheck) and not getattr(check, "all_present", False))


class ColumnSpec(FrozenModel):
    type: str
    nullable: bool = True
    cast: bool = False
    description: str = ""
    checks: list[Any] = Field(default_factory=list)
    metrics: list[Any] = Field(default_factory=list)  # checked one by one, next to the checks


class ContractSpec(FrozenModel):
    description: str = ""
    on_fail: OnFail = "refuse"
    extra_columns: Literal["error", "warning", "allow"] = "error"
    columns: dict[str, Any]  # each validated on its own, so one bad column hides nothing else
    checks: list[Any] = Field(default_factory=list)


def load_contract(path: Path, problems: list[str]) -> Contract | None:
    """Reads and validates one contract file, appending every problem found to ``problems``.

    Returns:
        The contract, or None when any problem was found.
    """
    before = len(problems)
    try:
        document = read_yaml(path)
    except ConfigError as error:
        problems.append(str(error))
        return None
    except OSError as error:
        problems.append(f"{path}: cannot read the contract: {error.strerror or error}")
        return None
    spec = validate_model(ContractSpec, document, path, (), problems)
    if spec is None:
        return None
    columns: dict[str, ColumnContract] = {}
    for column, raw in spec.columns.items():
        where = ("columns", column)
        body = validate_model(ColumnSpec, raw, path, where, problems)
        if body is None:
            continue
        try:
            logical = LogicalType.parse(body.type)
        except ValueError as error:
            problems.append(f"{path}: {_key(where + ('type',))}: {error}")
            continue
        checks: list[Check] = [NotNull()] if not body.nullable else []
        for index, check in _parse_checks(body.checks, COLUMN_CHECKS, path, where + ("checks",), problems):
            key = where + ("checks", index, check.name)
            if isinstance(check, NotNull) and not body.nullable:
                problems.append(f"{path}: {_key(key)}: repeats 'nullable: false', which already requires it")
                continue
            checked = _typed(check, logical, path, key, problems)
            if check.on_fail == "quarantine" and not is_row_check(check):
                problems.append(f"{path}: {_key(key)}.on_fail: only row-level checks (not_null, in_set, comparisons, "
                                f"between, pattern) can quarantine rows; {check.name} is about the whole table")
                continue
            if checked is not None:
                checks.append(checked)
        for index, metric in enumerate(body.metrics):
            metric_key = _key(where + ("metrics", index))
            if metric not in METRICS:
                hint = difflib.get_close_matches(str(metric), METRICS, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                problems.append(f"{path}: {metric_key}: unknown metric {metric!r}{suggestion} (metrics: {', '.join(METRICS)})")
            elif metric in NUMERIC_METRICS and not logical.is_numeric:
                problems.append(f"{path}: {metric_key}: {metric} needs a numeric column; {column!r} is {logical}")
            elif metric == "counts_per_label" and not logical.is_label:
                problems.append(f"{path}: {metric_key}: counts_per_label needs a string, integer, boolean or date "
                                f"column; {column!r} is {logical}")
        if len(set(body.metrics)) != len(body.metrics):
            problems.append(f"{path}: {_key(where + ('metrics',))}: a metric is listed twice")
        columns[column] = ColumnContract(column, logical, body.nullable, body.cast, tuple(checks), tuple(body.metrics))
    table_checks = []
    for index, check in _parse_checks(spec.checks, TABLE_CHECKS, path, ("checks",), problems):
        table_key = _key(("checks", index, check.name))
        if check.on_fail == "quarantine":
            problems.append(f"{path}: {table_key}.on_fail: a table check cannot quarantine rows; it refuses the write")
        if isinstance(check, UniqueKey):
            unknown = [c for c in check.columns if c not in spec.columns]
            for name in unknown:
                hint = difflib.get_close_matches(name, list(spec.columns), n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                problems.append(f"{path}: {table_key}.columns: {name!r} is not a column of the contract{suggestion}")
            if len(set(check.columns)) != len(check.columns):
                problems.append(f"{path}: {table_key}.columns: a column is listed twice")
        if isinstance(check, RowCount):
            if not check.has_bounds and not check.has_history_bounds:
                problems.append(f"{path}: {table_key}: give min, max, or a history bound "
                                "(max_change, max_delta, max_deviations)")
            elif check.max_deviations is not None and check.window < 2:
                problems.append(f"{path}: {table_key}: max_deviations needs a window of 2 runs or more")
            elif check.min is not None and check.max is not None and check.min > check.max:
                problems.append(f"{path}: {table_key}: min {check.min} is above max {check.max}")
        table_checks.append(check)
    if len(problems) > before:
        return None
    return Contract(str(path), columns, tuple(table_checks), spec.extra_columns, spec.on_fail)


def _parse_checks(entries: list[Any], registry: Mapping[str, type[Check]], path: Path, prefix: tuple,
                  problems: list[str]):
    """Yields (index, check) for each valid entry: ``name`` or ``{name: parameters}``."""
    for index, entry in enumerate(entries):
        where = prefix + (index,)
        params: Any
        if isinstance(entry, str):
            name, params = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            name, params = next(iter(entry.items()))
        else:
            problems.append(f"{path}: {_key(where)}: a check is a name or a one-key mapping "
                            f"{{name: parameters}}, got {entry!r}")
            continue
        if name not in registry:
            hint = difflib.get_close_matches(str(name), list(registry), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            problems.append(f"{path}: {_key(where)}: unknown check {name!r}{suggestion} "
                            f"(checks here: {', '.join(registry)})")
            continue
        model = registry[name]
        if params is None:
            params = {}
        if not isinstance(params, dict) and not (model is Between and isinstance(params, list)):
            if model.shorthand is None:
                problems.append(f"{path}: {_key(where + (name,))}: takes a mapping of parameters, got {params!r}")
                continue
            params = {model.shorthand: params}
        check = validate_model(model, params, path, where + (name,), problems)
        if check is not None:
            yield index, check


def _typed(check: Check, logical: LogicalType, path: Path, key: tuple, problems: list[str]) -> Check | None:
    """The check with its bounds or members as values of the column's type, or None after a problem."""
    where = f"{path}: {_key(key)}"
    if isinstance(check, MetricHistory):
        if not check.has_history_bounds:
            problems.append(f"{where}: give max_change, max_delta or max_deviations")
            return None
        if check.max_deviations is not None and check.window < 2:
            problems.append(f"{where}: max_deviations needs a window of 2 runs or more")
            return None
        if check.numeric_only and not logical.is_numeric:
            problems.append(f"{where}: a history of {check.metric} needs a numeric column; {key[1]!r} is {logical}")
            return None
        return check
    if isinstance(check, (Comparison, Between)) and not logical.is_ordered:
        problems.append(f"{where}: needs an ordered column; {key[1]!r} is {logical}")
        return None
    if isinstance(check, Pattern):
        if logical.name != "string":
            problems.append(f"{where}: needs a string column; {key[1]!r} is {logical}")
            return None
        return check if _check_regex(check.regex, f"{where}.regex", problems) else None
    update: dict[str, Any] = {}
    failed = False
    for field in ("value", "min", "max", "values"):
        if field not in type(check).model_fields:
            continue
        raw = getattr(check, field)
        try:
            if field == "values":
                update[field] = tuple(dict.fromkeys(logical.coerce(member) for member in raw))
            else:
                update[field] = logical.coerce(raw)
        except ValueError as error:
            problems.append(f"{where}.{field}: {error}")
            failed = True
    if failed:
        return None
    if isinstance(check, Between) and update["min"] > update["max"]:
        problems.append(f"{where}: min {update['min']} is above max {update['max']}")
        return None
    return check.model_copy(update=update) if update else check


# The regex subset both backends read alike (RE2 on Arrow, java.util.regex on Spark): literals and
# escaped punctuation, . ^ $ |, groups ( ) and (?: ), classes [...] of characters, ranges and \d \w \s
# (their negations too), quantifiers * + ? {n} {n,} {n,m} with an optional lazy ?. Everything else
# (inline flags, named groups, lookaround, backreferences, POSIX classes, \b, \p{..}, \A \z ...) is
# refused at contract load. A few of these differ in Java: java_regex rewrites them for Spark.
_CLASS_ESCAPES = frozenset("dDwWsS")
_CONTROL_ESCAPES = frozenset("tnrf")
_PUNCTUATION = frozenset("\\.^$|?*+()[]{}/-_:,;=<>!#&%@'\"~` ")
_QUANTIFIER = re.compile(r"\{(\d+)(,(\d*))?\}\??")
# What Java reads differently: its . and $ also treat \r and other line ends as line ends, its \s
# also matches a vertical tab; these spellings are RE2's meaning in Java's syntax.
_JAVA_FORMS = {".": "[^\\n]", "$": "\\z", "\\s": "[\\t\\n\\f\\r ]", "\\S": "[^\\t\\n\\f\\r ]"}
_JAVA_CLASS_FORMS = {"\\s": "\\t\\n\\f\\r "}


def portable_regex(regex: str) -> str:
    """``regex`` as java.util.regex (Spark) reads it with RE2's (the Arrow engine's) meaning.

    Raises:
        ValueError: ``regex`` uses something outside the subset both read alike, named.

    Example:
        >>> portable_regex("^[A-Z0-9]{2}$")
        '^[A-Z0-9]{2}\\\\z'
    """
    out, i, depth, quantifiable = [], 0, 0, False

    def refuse(what: str) -> ValueError:
        return ValueError(f"{regex!r} uses {what} at position {i}, which the Arrow engine (RE2) and Spark "
                          "(java.util.regex) do not read alike or not at all; see the docs' regex subset")

    while i < len(regex):
        c = regex[i]
        if c == "\\":
            escaped = regex[i + 1:i + 2]
            if escaped in _CLASS_ESCAPES or escaped in _CONTROL_ESCAPES or (escaped in _PUNCTUATION and escaped):
                out.append(_JAVA_FORMS.get(c + escaped, c + escaped))
                i, quantifiable = i + 2, True
                continue
            raise refuse(f"the escape \\{escaped}" if escaped else "a trailing backslash")
        if c == "[":
            end, body = _class(regex, i, refuse)
            out.append(body)
            i, quantifiable = end, True
            continue
        if c == "(":
            if regex.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif regex.startswith("(?", i):
                raise refuse("a group flag or name '(?...'")
            else:
                out.append("(")
                i += 1
            depth, quantifiable = depth + 1, False
            continue
        if c == ")":
            if not depth:
                raise refuse("an unbalanced ')'")
            depth, quantifiable = depth - 1, True
        elif c in "*+?" or c == "{":
            quantifier = _QUANTIFIER.match(regex, i) if c == "{" else None
            if c == "{" and quantifier is None:
                raise refuse("a '{' that is not a quantifier {n}, {n,} or {n,m} (escape it: \\{)")
            if not quantifiable:
                raise refuse("a quantifier with nothing to repeat")
            token = quantifier.group(0) if quantifier else c + ("?" if regex[i + 1:i + 2] == "?" else "")
            if regex[i + len(token):i + len(token) + 1] in ("+", "*", "?", "{"):
                raise refuse("a quantifier of a quantifier (possessive or nested)")
            out.append(token)
            i, quantifiable = i + len(token), False
            continue
        elif c in "^|":
            quantifiable = False
        elif c in "]}":
            raise refuse(f"an unescaped {c!r} (escape it: \\{c})")
        else:
            quantifiable = c != "$"
        out.append(_JAVA_FORMS.get(c, c))
        i += 1
    if depth:
        raise refuse("an unclosed '('")
    return "".join(out)


def _class(regex: str, start: int, refuse) -> tuple[int, str]:
    """The character class starting at ``regex[start]`` ('['): (the index after it, its Java form)."""
    i, out = start + 1, ["["]
    if regex[i:i + 1] == "^":
        out.append("^")
        i += 1
    first = True
    while i < len(regex):
        c = regex[i]
        if c == "]" and not first:
            return i + 1, "".join(out) + "]"
        if c == "[" or regex.startswith("&&", i):
            raise refuse("a nested class, '[:name:]' or '&&' inside [...]")
        if c == "\\":
            escaped = regex[i + 1:i + 2]
            if not (escaped in _CLASS_ESCAPES or escaped in _CONTROL_ESCAPES or (escaped and escaped in _PUNCTUATION)):
                raise refuse(f"the escape \\{escaped} inside [...]")
            out.append(_JAVA_CLASS_FORMS.get(c + escaped, c + escaped))
            i += 2
        else:
            out.append(c)
            i += 1
        first = False
    raise refuse("an unclosed '['")


def _check_regex(regex: str, where: str, problems: list[str]) -> bool:
    try:
        with warnings.catch_warnings():  # Python's re warns of [[ and &&, which the subset refuses anyway
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(regex)
    except re.error as error:
        problems.append(f"{where}: not a valid regular expression: {error}")
        return False
    try:
        portable_regex(regex)
    except ValueError as error:
        problems.append(f"{where}: {error}")
        return False
    return True


def _key(parts: tuple) -> str:
    return ".".join(str(part) for part in parts)

"""The Spark backend: computes a contract's measures with Spark SQL aggregates.

Every check and metric of a contract is one or a few aggregate expressions of ONE ``agg`` over the
DataFrame, so one Spark job (one scan) answers them all, except distinct keys: a key is unique when
the rows with a key number as many as its distinct values, which one ``groupBy`` of the key counts
(as Deequ's ``CountDistinct`` runs). Beside the other aggregates, ``count(DISTINCT key)`` would make
Spark group every row's aggregate buffers by the key. The only other jobs: one ``groupBy`` for all
``counts_per_label`` metrics together, when the contract has any, and, only when a value check
failed, one ``agg`` for the range of the failing values shown in the report. No Python UDF and no py4j callback
server are involved: everything runs in the JVM.

This stands where the design put Deequ: no Deequ build for Spark 4 / Scala 2.13 exists on the Maven
Central reachable here (see the README), so lakeio computes what Deequ's analyzers compute
(completeness, compliance, uniqueness, pattern match, min, max, mean, population stddev) itself,
with the same semantics where Deequ documents them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lakeio.predicate import quote_name
from lakeio.spark import compat
from lakeio.validation.contract import LogicalType, portable_regex
from lakeio.validation.semantics import (
    CastFailures,
    Compare,
    Distinct,
    Failing,
    FailingValues,
    Labels,
    Matches,
    Member,
    Nulls,
    Plan,
    Present,
    Range,
    Rows,
    Stat,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from lakeio.validation.after import TableAfter

_SPARK_NAMES = {"string": "string", "boolean": "boolean", "int8": "tinyint", "int16": "smallint", "int32": "int",
                "int64": "bigint", "float32": "float", "float64": "double", "date": "date",
                "timestamp": "timestamp", "timestamp_ntz": "timestamp_ntz"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NTZ_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"


def logical_schema(frame: DataFrame) -> dict[str, LogicalType | str]:
    """Each column's logical type, or the Spark type's text when lakeio has no logical name for it."""
    from pyspark.sql import types as T

    simple = {T.StringType: "string", T.VarcharType: "string", T.CharType: "string", T.BooleanType: "boolean",
              T.ByteType: "int8", T.ShortType: "int16", T.IntegerType: "int32", T.LongType: "int64",
              T.FloatType: "float32", T.DoubleType: "float64", T.DateType: "date",
              T.TimestampType: "timestamp", T.TimestampNTZType: "timestamp_ntz"}
    found: dict[str, LogicalType | str] = {}
    for field in frame.schema.fields:
        kind = field.dataType
        if type(kind) in simple:
            found[field.name] = LogicalType(simple[type(kind)])
        elif isinstance(kind, T.DecimalType):
            found[field.name] = LogicalType("decimal", kind.precision, kind.scale)
        else:
            found[field.name] = kind.simpleString()
    return found


def spark_type(logical: LogicalType) -> str:
    return str(logical) if logical.name == "decimal" else _SPARK_NAMES[logical.name]


def cast_frame(frame: DataFrame, casts: Mapping[str, LogicalType]) -> DataFrame:
    """The frame with columns cast to the contract's types (lazy; nothing runs)."""
    from pyspark.sql import functions as F

    if not casts:
        return frame
    return frame.withColumns({name: compat.try_cast(F.col(quote_name(name)), spark_type(t)) for name, t in casts.items()})


def measure(frame: DataFrame, plan: Plan, casts: Mapping[str, LogicalType]) -> dict:
    """Computes ``plan.measures``: one ``agg`` job, plus one per distinct count and one for label counts."""
    from pyspark.sql import functions as F

    def column(name: str) -> Column:
        source = F.col(quote_name(name))
        return compat.try_cast(source, spark_type(casts[name])) if name in casts else source

    expressions: list = []
    decoders: list[tuple[Any, int, int, Callable[[list], Any]]] = []
    source_types = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
    labels = [m for m in plan.measures if isinstance(m, Labels)]
    distinct = [m for m in plan.measures if isinstance(m, Distinct)]
    for item in plan.measures:
        if isinstance(item, Labels | Distinct):
            continue
        built, decode = _expressions(item, column, plan.types, source_types)
        decoders.append((item, len(expressions), len(built), decode))
        expressions.extend(built)
    row = frame.agg(*[e.alias(f"m{i}") for i, e in enumerate(expressions)]).collect()[0]
    measured = {item: decode(list(row[start:start + size])) for item, start, size, decode in decoders}
    measured.update({item: _distinct_keys(frame, item, column) for item in distinct})
    failed = [m for m in plan.measures if isinstance(m, Failing) and measured[m].count]
    if failed:
        measured.update(failing_extremes(frame, failed, column, plan.types, measured))
    if labels:
        measured.update(_label_counts(frame, labels, column))
    return measured


def has_key(item: Distinct, column: Callable[[str], Column]) -> Column:
    """A row has a key of ``item``'s columns when any of them is not null."""
    import functools
    import operator

    return functools.reduce(operator.or_, [column(c).isNotNull() for c in item.columns])


def _distinct_keys(frame: DataFrame, item: Distinct, column: Callable[[str], Column]) -> tuple[int, int]:
    """(rows with a key, distinct keys) of ``item``'s columns, by one ``groupBy`` of them (nulls
    within a key compare equal, as in SQL's ``DISTINCT``)."""
    from pyspark.sql import functions as F

    values = [column(c).alias(f"k{i}") for i, c in enumerate(item.columns)]
    groups = frame.where(has_key(item, column)).groupBy(*values).count()
    row = groups.agg(F.sum("count"), F.count(F.lit(1))).collect()[0]
    return int(row[0] or 0), int(row[1])


def _expressions(item, column: Callable[[str], Column], types: Mapping[str, LogicalType],
                 source_types: Mapping[str, str]):
    """The aggregate expressions of one measure and how to read their values back."""
    from pyspark.sql import functions as F

    if isinstance(item, Rows):
        return [F.count(F.lit(1))], lambda v: v[0]
    if isinstance(item, Nulls):
        return [F.count_if(column(item.column).isNull())], lambda v: v[0]
    if isinstance(item, CastFailures):
        source = F.col(quote_name(item.column))
        cast = compat.try_cast(source, spark_type(item.target))
        lost = cast.isNull() | (cast.cast(source_types[item.column]) != source)  # the round trip must hold
        return [F.count_if(source.isNotNull() & lost)], lambda v: v[0]
    logical = types[getattr(item, "column", None) or item.columns[0]]
    if isinstance(item, Failing):
        return [F.count_if(failing(item, column, logical))], lambda v: FailingValues(v[0])
    if isinstance(item, Present):
        value = column(item.column)
        read = _reader(logical)
        member = value.isin(*[_literal(v, logical) for v in item.values])
        return ([F.collect_set(F.when(member, _out(value, logical)))],
                lambda v: frozenset(read(x) for x in v[0]))
    if isinstance(item, Stat):
        value = column(item.column)
        if logical.is_float:
            value = F.when(~F.isnan(value), value)
        if item.name in ("min", "max"):
            read = _reader(logical)
            return [_out((F.min if item.name == "min" else F.max)(value), logical)], lambda v: read(v[0])
        number = value.cast("double")
        aggregate = {"mean": F.avg, "stddev": F.stddev_pop, "variance": F.var_pop}[item.name]
        return [aggregate(number)], lambda v: None if v[0] is None else float(v[0])
    raise TypeError(f"no Spark expression for {item!r}")


def failing(item: Failing, column: Callable[[str], Column], logical: LogicalType) -> Column:
    """True where a row's value is non-null and breaks the measure's rule."""
    value = column(item.column)
    return value.isNotNull() & ~_passing(value, item.rule, logical)


def failing_extremes(frame, failed: list, column, types, measured) -> dict:
    """The smallest and largest failing value of each failed value check, in one more job: only
    when a check failed, so valid data costs one aggregate job with no extra buffers."""
    from pyspark.sql import functions as F

    expressions = []
    for item in failed:
        logical, value = types[item.column], column(item.column)
        broken = failing(item, column, logical)
        number = broken & ~F.isnan(value) if logical.is_float else broken
        nans = F.count_if(broken & F.isnan(value)) if logical.is_float else F.lit(0)
        expressions += [_out(F.min(F.when(number, value)), logical), _out(F.max(F.when(number, value)), logical), nans]
    row = frame.agg(*[e.alias(f"x{i}") for i, e in enumerate(expressions)]).collect()[0]
    found = {}
    for index, item in enumerate(failed):
        read = _reader(types[item.column])
        found[item] = FailingValues(measured[item].count, read(row[3 * index]), read(row[3 * index + 1]),
                                    int(row[3 * index + 2]))
    return found


def _passing(value: Column, rule, logical: LogicalType) -> Column:
    """True where a non-null value satisfies the rule; NaN never does (Spark orders NaN above all)."""
    from pyspark.sql import functions as F

    if isinstance(rule, Compare):
        bound = _literal(rule.value, logical)
        passing = {">": value > bound, ">=": value >= bound, "<": value < bound, "<=": value <= bound}[rule.operator]
    elif isinstance(rule, Range):
        low, high = _literal(rule.low, logical), _literal(rule.high, logical)
        passing = ((value >= low) if rule.include_low else (value > low)) & \
                  ((value <= high) if rule.include_high else (value < high))
    elif isinstance(rule, Member):
        passing = value.isin(*[_literal(v, logical) for v in rule.values])
    elif isinstance(rule, Matches):
        passing = value.rlike(portable_regex(rule.regex))  # RE2's meaning, as the Arrow backend reads it
    else:
        raise TypeError(f"unknown rule {rule!r}")
    return passing & ~F.isnan(value) if logical.is_float else passing


def _literal(value: Any, logical: LogicalType) -> Column:
    from pyspark.sql import functions as F

    if logical.name == "timestamp":
        return F.lit(value.astimezone(dt.UTC).isoformat()).cast("timestamp")
    if logical.name == "timestamp_ntz":
        return F.lit(value.isoformat()).cast("timestamp_ntz")
    return F.lit(value)


def _out(value: Column, logical: LogicalType) -> Column:
    """Timestamps leave the JVM as numbers or text: a collected TimestampType would be turned into a
    naive datetime in the Python process's local time zone."""
    from pyspark.sql import functions as F

    if logical.name == "timestamp":
        return F.unix_micros(value)
    if logical.name == "timestamp_ntz":
        return F.date_format(value, _NTZ_FORMAT)
    return value


def _reader(logical: LogicalType) -> Callable[[Any], Any]:
    if logical.name == "timestamp":
        return lambda v: None if v is None else _EPOCH + dt.timedelta(microseconds=v)
    if logical.name == "timestamp_ntz":
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    return lambda v: v


def _label_counts(frame: DataFrame, labels: list[Labels], column: Callable[[str], Column]) -> dict:
    """All ``counts_per_label`` in one groupBy job: (column, label as text) -> count."""
    from pyspark.sql import functions as F

    pairs = F.array(*[F.struct(F.lit(m.column).alias("c"), column(m.column).cast("string").alias("l"))
                      for m in labels])
    rows = (frame.select(F.explode(pairs).alias("p"))
            .where(F.col("p.l").isNotNull())
            .groupBy(F.col("p.c").alias("c"), F.col("p.l").alias("l")).count().collect())
    counts: dict = {m: {} for m in labels}
    by_column = {m.column: m for m in labels}
    for row in rows:
        counts[by_column[row["c"]]][row["l"]] = row["count"]
    return counts


def table_after(after: TableAfter, current: DataFrame | None, incoming: DataFrame, columns: tuple[str, ...]) -> DataFrame:
    """The table after a write (see :mod:`lakeio.validation.after`) as one lazy DataFrame of ``columns``:
    the current table's rows that stay, unioned with the incoming rows that land."""
    import functools
    import operator

    from pyspark.sql import functions as F

    from lakeio.spark.engine import is_not_true, to_column

    picked = [quote_name(c) for c in columns]
    merge = after.merge
    landing = incoming
    if merge is not None and merge.delete_when is not None:
        landing = incoming.where(is_not_true(to_column(merge.delete_when)))
    if current is None:
        return landing.select(*picked)
    types = dict(incoming.dtypes)
    current = current.select(*[F.col(quote_name(c)) if c in current.columns else F.lit(None).cast(types[c]).alias(c)
                               for c in after.columns(columns)])
    if after.replace_where is not None:
        current = current.where(is_not_true(to_column(after.replace_where)))
    elif after.mode == "overwrite_partitions":
        written = incoming.select(*[quote_name(c) for c in after.target.partition_by]).distinct()
        same = functools.reduce(operator.and_, [F.col(f"c.{quote_name(c)}").eqNullSafe(F.col(f"w.{quote_name(c)}"))
                                                for c in after.target.partition_by])
        current = current.alias("c").join(written.alias("w"), same, "left_anti")
    elif merge is not None:
        keys = list(merge.on)
        update, insert = merge.when_matched == "update", merge.when_not_matched == "insert"
        deletes = incoming.where(F.coalesce(to_column(merge.delete_when), F.lit(False))) \
            if merge.delete_when is not None else incoming.limit(0)
        affected = landing if update else deletes
        if update != insert:  # only the matched rows land, or only the new ones
            landing = landing.join(current.select(*keys), keys, "left_semi" if update else "left_anti")
        elif not update:
            landing = landing.limit(0)
        current = current.join(affected.select(*keys).unionByName(deletes.select(*keys)), keys, "left_anti")
    return current.select(*picked).unionByName(landing.select(*picked))


def split(frame: DataFrame, checks: tuple[tuple[str, Any], ...], types: Mapping[str, LogicalType], column: str,
          run: tuple[str, str], keep: Column | None = None, as_text: bool = False) -> tuple[DataFrame, DataFrame, int]:
    """The rows passing the quarantining ``checks`` (or for which ``keep`` is true), the others
    with ``column`` (the checks each failed; with ``as_text`` as JSON text, as
    :func:`lakeio.engines.text.json_lists` writes it) and the run column ``run`` (name, value),
    and how many those are (one job)."""
    from pyspark.sql import functions as F

    quarantined = F.size(column) > 0
    if keep is not None:
        quarantined = quarantined & ~F.coalesce(keep, F.lit(False))
    marked = frame.withColumn(column, failed_checks(checks, types))
    failing = marked.where(quarantined).withColumn(run[0], F.lit(run[1]))
    if as_text:
        failing = failing.withColumn(column, F.to_json(F.col(quote_name(column))))
    return marked.where(~quarantined).drop(column), failing, failing.count()


def failed_checks(checks: tuple[tuple[str, Any], ...], types: Mapping[str, LogicalType]) -> Column:
    """For each row, the names (``between [v]``) of the row-level ``checks`` (column, check) it
    fails, as an array<string> column: empty for a row that passes them all."""
    from pyspark.sql import functions as F

    from lakeio.validation.semantics import rule_of

    names = []
    for column, check in checks:
        value = F.col(quote_name(column))
        rule = rule_of(check)
        fails = value.isNull() if rule is None else value.isNotNull() & ~F.coalesce(
            _passing(value, rule, types[column]), F.lit(False))
        names.append(F.when(fails, F.lit(f"{check.name} [{column}]")))
    return F.filter(F.array(*names), lambda name: name.isNotNull())

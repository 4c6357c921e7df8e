"""The Arrow backend: computes a contract's measures with ``pyarrow.compute``, one pass over a stream
of record batches, so data larger than memory is validated batch by batch.

Memory: every measure keeps a few numbers, except two. ``unique``, compound ``unique`` and
``distinct_count`` keep the key columns of every row (after nulls are dropped) until the end, then
sort or hash them: plan on about three times the key columns' size (20M int64 keys: ~160 MB kept,
~480 MB at the peak). ``counts_per_label`` keeps one count per distinct label.

Speed: measures of one batch run in a thread pool (Arrow kernels release the GIL); integer-like keys
(integers, dates, timestamps, booleans, floats) are counted by a SIMD numpy sort, other keys by Arrow's
hash kernels, which are several times slower on millions of distinct keys.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lakeio.validation.contract import LogicalType
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
    label_text,
    merge_moments,
)

if TYPE_CHECKING:
    import pyarrow as pa

_COMPARE = {">": "greater", ">=": "greater_equal", "<": "less", "<=": "less_equal"}


def logical_schema(schema: pa.Schema) -> dict[str, LogicalType | str]:
    """Each column's logical type, or the Arrow type's text when lakeio has no logical name for it."""
    return {field.name: logical_type(field.type) for field in schema}


def logical_type(arrow_type: pa.DataType) -> LogicalType | str:
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        return logical_type(arrow_type.value_type)
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return LogicalType("string")
    if t.is_boolean(arrow_type):
        return LogicalType("boolean")
    for name in ("int8", "int16", "int32", "int64", "float32", "float64"):
        if arrow_type == pa.type_for_alias(name):
            return LogicalType(name)
    if t.is_decimal(arrow_type):
        return LogicalType("decimal", arrow_type.precision, arrow_type.scale)
    if t.is_date(arrow_type):
        return LogicalType("date")
    if t.is_timestamp(arrow_type):
        return LogicalType("timestamp" if arrow_type.tz else "timestamp_ntz")
    return str(arrow_type)


def arrow_type(logical: LogicalType) -> pa.DataType:
    """The Arrow type of a logical type: what numeric casts go to, and what text formats (CSV,
    JSON) are read as when a contract declares their columns."""
    import pyarrow as pa

    if logical.name == "decimal":
        assert logical.precision is not None and logical.scale is not None  # a decimal type has both
        return pa.decimal128(logical.precision, logical.scale) if logical.precision <= 38 else \
            pa.decimal256(logical.precision, logical.scale)
    special = {"date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"), "timestamp_ntz": pa.timestamp("us")}
    return special.get(logical.name) or pa.type_for_alias(logical.name)


def measure(batches: Iterable[pa.RecordBatch], plan: Plan, casts: Mapping[str, LogicalType],
            on_batch: Callable[[pa.RecordBatch], None] | None = None) -> dict:
    """Computes ``plan.measures`` in one pass over ``batches``.

    Args:
        batches: the data, as record batches (a Table's ``to_batches()``, a reader, a scanner).
        plan: what to measure.
        casts: columns to cast to the contract's type before measuring.
        on_batch: receives each batch after the casts (for a write to pass the data on).
    """
    measurer = Measurer(plan, casts)
    for batch in batches:
        batch = measurer.add(batch)
        if on_batch is not None:
            on_batch(batch)
    return measurer.result()


class Measurer:
    """The measures of ``plan``, taken batch by batch as the data passes (:meth:`add`)."""

    def __init__(self, plan: Plan, casts: Mapping[str, LogicalType]):
        self.plan, self.casts = plan, casts
        self.accumulators = [_accumulator(m, plan.types) for m in plan.measures if not isinstance(m, CastFailures)]
        self.cast_failures = {column: 0 for column in casts}

    def add(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Measures one batch; returns it after the casts."""
        if self.casts:
            batch = _cast(batch, self.casts, self.cast_failures)
        columns = {name: _decoded(batch.column(i)) for i, name in enumerate(batch.schema.names)
                   if name in self.plan.types}
        list(_pool().map(lambda acc: acc.update(batch.num_rows, columns), self.accumulators))
        return batch

    def result(self) -> dict:
        measured = dict(zip((acc.measure for acc in self.accumulators),
                            _pool().map(lambda acc: acc.result(), self.accumulators)))
        measured.update({CastFailures(column, target): self.cast_failures[column]
                         for column, target in self.casts.items()})
        return measured


def cast_table(table: pa.Table, casts: Mapping[str, LogicalType]) -> pa.Table:
    """``table`` with columns cast to the contract's types (values that do not fit become null)."""
    import pyarrow as pa

    failures = {column: 0 for column in casts}
    batches = [_cast(batch, casts, failures) for batch in table.to_batches()]
    schema = pa.schema([f.with_type(arrow_type(casts[f.name])) if f.name in casts else f for f in table.schema])
    return pa.Table.from_batches(batches, schema=schema)


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                                 thread_name_prefix="lakeio-validation")


def _decoded(array):
    import pyarrow.types as t

    return array.dictionary_decode() if t.is_dictionary(array.type) else array


def _cast(batch, casts: Mapping[str, LogicalType], failures: dict[str, int]):
    """Casts columns to the contract's types; a value whose round trip differs did not fit."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for name, array in zip(batch.schema.names, batch.columns):
        if name in casts:
            source = _decoded(array)
            target = arrow_type(casts[name])
            cast = pc.cast(source, target, safe=False)
            back = pc.cast(cast, source.type, safe=False)
            kept = pc.and_(pc.equal(back, source), pc.is_valid(cast))
            failures[name] += (len(source) - source.null_count) - (pc.sum(kept).as_py() or 0)
            array = cast
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _accumulator(measure, types: Mapping[str, LogicalType]):
    if isinstance(measure, Rows):
        return _Rows(measure)
    if isinstance(measure, Nulls):
        return _Nulls(measure)
    if isinstance(measure, Failing):
        return _Failing(measure)
    if isinstance(measure, Present):
        return _Present(measure)
    if isinstance(measure, Distinct):
        return _Distinct(measure, types)
    if isinstance(measure, Stat):
        return _MinMax(measure, types) if measure.name in ("min", "max") else _Moments(measure, types)
    if isinstance(measure, Labels):
        return _Labels(measure)
    raise TypeError(f"no Arrow accumulator for {measure!r}")


class _Rows:
    def __init__(self, measure):
        self.measure, self.rows = measure, 0

    def update(self, rows: int, columns: dict) -> None:
        self.rows += rows

    def result(self) -> int:
        return self.rows


class _Nulls:
    def __init__(self, measure):
        self.measure, self.nulls = measure, 0

    def update(self, rows: int, columns: dict) -> None:
        self.nulls += columns[self.measure.column].null_count

    def result(self) -> int:
        return self.nulls


def _typed_scalar(value: Any, arrow_type):
    import pyarrow as pa

    return pa.scalar(value, type=arrow_type)


def _passing(array, rule):
    """A boolean array: true where a non-null value satisfies the rule (NaN never does)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(rule, Compare):
        return getattr(pc, _COMPARE[rule.operator])(array, _typed_scalar(rule.value, array.type))
    if isinstance(rule, Range):
        low = (pc.greater_equal if rule.include_low else pc.greater)(array, _typed_scalar(rule.low, array.type))
        high = (pc.less_equal if rule.include_high else pc.less)(array, _typed_scalar(rule.high, array.type))
        return pc.and_(low, high)
    if isinstance(rule, Member):
        if pa.types.is_floating(array.type):  # is_in hashes -0.0 apart from 0.0; adding 0.0 makes them one
            array = pc.add(array, pa.scalar(0.0, type=array.type))
        return pc.is_in(array, value_set=pa.array(rule.values, type=array.type))
    if isinstance(rule, Matches):
        return pc.match_substring_regex(array, rule.regex)
    raise TypeError(f"unknown rule {rule!r}")


class _Failing:
    def __init__(self, measure):
        self.measure, self.count, self.lowest, self.highest, self.nans = measure, 0, None, None, 0

    def update(self, rows: int, columns: dict) -> None:
        import pyarrow.compute as pc
        from pyarrow import types as pa_types

        array = columns[self.measure.column]
        valid = len(array) - array.null_count
        if not valid:
            return
        passing = _passing(array, self.measure.rule)
        failing = valid - (pc.sum(passing).as_py() or 0)
        if not failing:
            return
        self.count += failing
        failed = pc.filter(array, pc.invert(passing))
        if pa_types.is_floating(failed.type):
            self.nans += pc.sum(pc.is_nan(failed)).as_py() or 0
        low, high = _extremes(failed)
        self.lowest = low if self.lowest is None or (low is not None and low < self.lowest) else self.lowest
        self.highest = high if self.highest is None or (high is not None and high > self.highest) else self.highest

    def result(self) -> FailingValues:
        return FailingValues(self.count, self.lowest, self.highest, self.nans)


def _extremes(array) -> tuple[Any, Any]:
    """(min, max) of an array's values, leaving out nulls and NaN; (None, None) when none are left."""
    import math

    import pyarrow.compute as pc

    if len(array) == array.null_count:
        return None, None
    found = pc.min_max(array)
    low, high = found["min"].as_py(), found["max"].as_py()
    if isinstance(low, float) and math.isnan(low):  # min_max skips NaN unless nothing else is there
        return None, None
    return low, high


class _Present:
    def __init__(self, measure):
        self.measure, self.found = measure, set()

    def update(self, rows: int, columns: dict) -> None:
        import pyarrow.compute as pc

        array = columns[self.measure.column]
        if len(self.found) < len(self.measure.values):
            members = pc.filter(array, _passing(array, Member(self.measure.values)))
            self.found.update(pc.unique(members).to_pylist())

    def result(self) -> frozenset:
        return frozenset(self.found)


class _MinMax:
    def __init__(self, measure, types):
        self.measure, self.value = measure, None

    def update(self, rows: int, columns: dict) -> None:
        low, high = _extremes(columns[self.measure.column])
        found = low if self.measure.name == "min" else high
        if found is None:
            return
        if self.value is None or (found < self.value if self.measure.name == "min" else found > self.value):
            self.value = found

    def result(self) -> Any:
        return self.value


class _Moments:
    """mean, stddev and variance from per-batch (count, mean, M2), merged exactly (Chan et al.)."""

    def __init__(self, measure, types):
        self.measure, self.parts = measure, []
        self.is_float = types[measure.column].is_float

    def update(self, rows: int, columns: dict) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.cast(columns[self.measure.column], pa.float64())
        if self.is_float and pc.any(pc.is_nan(values)).as_py():
            values = pc.filter(values, pc.invert(pc.is_nan(values)))
        count = len(values) - values.null_count
        if count:
            variance = pc.variance(values, ddof=0).as_py()
            self.parts.append((count, pc.mean(values).as_py(), variance * count))

    def result(self) -> float | None:
        count, mean, variance = merge_moments(self.parts)
        if self.measure.name == "mean":
            return mean
        if variance is None:
            return None
        return variance if self.measure.name == "variance" else variance ** 0.5


class _Labels:
    def __init__(self, measure):
        self.measure, self.parts = measure, []

    def update(self, rows: int, columns: dict) -> None:
        import pyarrow.compute as pc

        array = columns[self.measure.column]
        if len(array) > array.null_count:
            self.parts.append(pc.value_counts(pc.drop_null(array)))

    def result(self) -> dict[str, int]:
        import pyarrow as pa

        if not self.parts:
            return {}
        counts = pa.concat_arrays(self.parts)
        table = pa.table({"label": counts.field("values"), "n": counts.field("counts")})
        summed = table.group_by("label").aggregate([("n", "sum")])
        return {label_text(label): count
                for label, count in zip(summed["label"].to_pylist(), summed["n_sum"].to_pylist())}


class _Distinct:
    """(rows whose key is not all null, distinct keys among them); keeps the key columns to the end."""

    def __init__(self, measure, types):
        self.measure, self.types = measure, types
        self.chunks: dict[str, list] = {column: [] for column in measure.columns}

    def update(self, rows: int, columns: dict) -> None:
        for column in self.measure.columns:
            self.chunks[column].append(columns[column])

    def result(self) -> tuple[int, int]:
        import pyarrow as pa

        arrays = {c: pa.chunked_array(chunks, type=chunks[0].type if chunks else None).combine_chunks()
                  if chunks else None for c, chunks in self.chunks.items()}
        self.chunks = {}
        if any(array is None for array in arrays.values()):
            return 0, 0
        if len(arrays) == 1:
            return _distinct_values(next(iter(arrays.values())))
        return _distinct_keys(arrays)


def _sortable(array) -> bool:
    import pyarrow.types as t

    kind = array.type
    return t.is_integer(kind) or t.is_floating(kind) or t.is_date(kind) or t.is_timestamp(kind) or t.is_boolean(kind)


def _as_numpy(array):
    """A null-free array as numpy, dates and timestamps as their integer counts."""
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_date(array.type) or t.is_timestamp(array.type):
        array = array.cast(pa.int64() if not t.is_date32(array.type) else pa.int32())
    return array.to_numpy(zero_copy_only=False)


def _distinct_values(array) -> tuple[int, int]:
    import numpy as np
    import pyarrow.compute as pc

    values = pc.drop_null(array)
    keyed = len(values)
    if not keyed:
        return 0, 0
    if not _sortable(values):
        return keyed, len(pc.unique(values))
    ordered = np.sort(_as_numpy(values))
    if ordered.dtype.kind == "f":
        nans = int(np.isnan(ordered).sum())  # np.sort puts NaN last; they count as one value
        numbers = ordered[:keyed - nans]
        distinct = (1 + int(np.count_nonzero(numbers[1:] != numbers[:-1])) if len(numbers) else 0) + (1 if nans else 0)
        return keyed, distinct
    return keyed, 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1]))


def _distinct_keys(arrays: dict) -> tuple[int, int]:
    """Distinct compound keys: packed into one int64 per row and sorted when the key ranges allow,
    else grouped by Arrow's hash aggregation."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = list(arrays.values())
    keyed_mask = functools.reduce(pc.or_, [pc.is_valid(a) for a in columns])
    columns = [pc.filter(a, keyed_mask) for a in columns]
    keyed = len(columns[0]) if columns else 0
    if not keyed:
        return 0, 0
    codes, span = [], 1
    for array in columns:
        code, size = _codes(array)
        codes.append((code, span))
        span *= size
    if span < 2 ** 62:
        packed = np.zeros(keyed, dtype=np.int64)
        for code, multiplier in codes:
            packed += code * multiplier
        packed.sort()
        return keyed, 1 + int(np.count_nonzero(packed[1:] != packed[:-1]))
    table = pa.table({f"k{i}": a for i, a in enumerate(columns)})
    return keyed, table.group_by(table.column_names).aggregate([]).num_rows


def _codes(array):
    """Dense non-negative int64 codes for one key column (0 stands for null) and how many there are."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    if _sortable(array) and not t.is_floating(array.type):
        valid = pc.drop_null(array)
        if not len(valid):
            return np.zeros(len(array), dtype=np.int64), 1
        numbers = _as_numpy(valid).astype(np.int64)
        low, high = int(numbers.min()), int(numbers.max())
        filled = _as_numpy(pc.fill_null(array, _typed_scalar(_min_value(valid), array.type))).astype(np.int64)
        codes = filled - low + 1
        codes[~np.asarray(pc.is_valid(array))] = 0
        return codes, high - low + 2
    if t.is_floating(array.type):
        array = pc.add(array, pa.scalar(0.0, type=array.type))  # -0.0 + 0.0 is 0.0: one zero, as in Spark
    encoded = pc.dictionary_encode(array)
    indices = pc.fill_null(pc.add(encoded.indices.cast(pa.int64()), 1), 0)
    return indices.to_numpy(zero_copy_only=False), len(encoded.dictionary) + 1


def _min_value(array):
    import pyarrow.compute as pc

    return pc.min(array).as_py()


def failed_checks(table: pa.Table, checks: tuple[tuple[str, Any], ...]) -> pa.Array:
    """For each row, the names (``between [v]``) of the row-level ``checks`` (column, check) it
    fails, as a list<string> array: empty for a row that passes them all."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakeio.validation.semantics import rule_of

    masks = []
    for column, check in checks:
        array = _decoded(table[column].combine_chunks())
        rule = rule_of(check)
        if rule is None:  # not_null
            fails = pc.is_null(array)
        else:
            fails = pc.and_(pc.is_valid(array), pc.invert(pc.fill_null(_passing(array, rule), False)))
        masks.append(np.asarray(fails.to_numpy(zero_copy_only=False), dtype=bool))
    labels = np.array([f"{check.name} [{column}]" for column, check in checks], dtype=object)
    failing = np.stack(masks) if masks else np.zeros((0, table.num_rows), dtype=bool)
    rows, which = np.nonzero(failing.T)  # row-major: each row's failed checks in the contract's order
    offsets = np.concatenate([[0], np.cumsum(failing.sum(axis=0))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(labels[which].tolist(), pa.string()))

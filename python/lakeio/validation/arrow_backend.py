"""The Arrow backend: computes a contract's measures with ``pyarrow.compute`` and numpy, one pass
over a stream of record batches, so data larger than memory is validated batch by batch.

Memory: every measure keeps a few numbers, except these. ``unique`` and ``distinct_count`` of one
integer-like column (integers, booleans, dates, timestamps, floats) keep a byte map over the range
of the keys while that range is dense (at most 4 bytes per key, or 64 MiB whatever the count; the
OS maps only the pages keys touch), else the keys as 8-byte words, spilled past 256 MiB to
temporary files in 16 hash partitions and counted one partition at a time. Compound keys and
string or decimal keys are hashed to 64 bits per slice and each slice's repeats dropped; the rest are
kept as (hash, key columns), spilled past the same 256 MiB to temporary Arrow files in 16 hash
partitions, and counted one partition at a time, the rows of one hash compared by value.
``counts_per_label`` keeps one count per distinct label.

Speed: a batch is cut into slices of ``SLICE_ROWS`` rows, measured in a thread pool (Arrow and numpy
kernels release the GIL). A numeric column's statistics and range checks share one pass per slice,
and a range check whose bounds hold the slice's min and max passes without a comparison per value.
Dense integer keys are counted without a sort or a hash (one byte store per key); sparse keys are
sorted, per spilled partition when they spill.
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

# Rows per slice a thread measures: big enough that a kernel call's overhead vanishes, small enough
# that two cores share a batch and each kernel's output stays in cache.
SLICE_ROWS = 1 << 20
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
    """The measures of ``plan``, taken batch by batch as the data passes (:meth:`add`).

    A batch is cut into slices of ``SLICE_ROWS``; each accumulator measures each slice in a thread
    (Arrow and numpy kernels release the GIL), and the parts are merged in order in this thread.
    """

    def __init__(self, plan: Plan, casts: Mapping[str, LogicalType]):
        self.plan, self.casts = plan, casts
        self.accumulators = _accumulators([m for m in plan.measures if not isinstance(m, CastFailures)], plan.types)
        self.cast_failures = {column: 0 for column in casts}

    def add(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Measures one batch; returns it after the casts."""
        if self.casts:
            batch = _cast(batch, self.casts, self.cast_failures)
        names = [name for name in batch.schema.names if name in self.plan.types]
        jobs = []
        for start in range(0, max(batch.num_rows, 1), SLICE_ROWS):
            piece = batch.slice(start, SLICE_ROWS)
            columns = {name: _decoded(piece.column(name)) for name in names}
            jobs += [(accumulator, piece.num_rows, columns) for accumulator in self.accumulators]
        for (accumulator, _, _), part in zip(jobs, _pool().map(lambda job: job[0].part(job[1], job[2]), jobs)):
            accumulator.merge(part)
        return batch

    def result(self) -> dict:
        measured: dict = {}
        for found in _pool().map(lambda accumulator: accumulator.results(), self.accumulators):
            measured.update(found)
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


def _accumulators(measures: list, types: Mapping[str, LogicalType]) -> list:
    """One accumulator per measure, except that a numeric column's statistics and range checks
    share one (:class:`_Numbers`: one pass gives them all)."""
    numbers: dict[str, list] = {}
    others = []
    for item in measures:
        column = getattr(item, "column", None)
        shared = isinstance(item, Stat) or (isinstance(item, Failing) and isinstance(item.rule, (Compare, Range)))
        if shared and column is not None and types[column].name in _NUMPY_TYPES:
            numbers.setdefault(column, []).append(item)
        else:
            others.append(_accumulator(item, types))
    return others + [_Numbers(column, items, types[column]) for column, items in numbers.items()]


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
        integral = len(measure.columns) == 1 and types[measure.columns[0]].name not in ("string", "decimal")
        return _Distinct(measure) if integral else _HashedDistinct(measure)
    if isinstance(measure, Stat):
        return _MinMax(measure, types) if measure.name in ("min", "max") else _Moments(measure, types)
    if isinstance(measure, Labels):
        return _Labels(measure)
    raise TypeError(f"no Arrow accumulator for {measure!r}")


class _Accumulator:
    """One measure: :meth:`part` measures a slice (in any thread, touching no state), :meth:`merge`
    adds a slice's part (in order, in one thread), :meth:`result` is the measure's value."""

    def __init__(self, measure):
        self.measure = measure

    def part(self, rows: int, columns: dict) -> Any:
        raise NotImplementedError

    def merge(self, part: Any) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def results(self) -> dict:
        return {self.measure: self.result()}


class _Rows(_Accumulator):
    def __init__(self, measure):
        super().__init__(measure)
        self.rows = 0

    def part(self, rows: int, columns: dict) -> int:
        return rows

    def merge(self, part: int) -> None:
        self.rows += part

    def result(self) -> int:
        return self.rows


class _Nulls(_Rows):
    def part(self, rows: int, columns: dict) -> int:
        return columns[self.measure.column].null_count


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


def _failing_part(array, rule) -> FailingValues | None:
    """How many non-null values of ``array`` fail ``rule``, their extremes and NaNs; None if none fail."""
    import pyarrow.compute as pc
    from pyarrow import types as pa_types

    valid = len(array) - array.null_count
    if not valid:
        return None
    passing = _passing(array, rule)
    failing = valid - (pc.sum(passing).as_py() or 0)
    if not failing:
        return None
    failed = pc.filter(array, pc.invert(passing))
    nans = (pc.sum(pc.is_nan(failed)).as_py() or 0) if pa_types.is_floating(failed.type) else 0
    low, high = _extremes(failed)
    return FailingValues(failing, low, high, nans)


def _merge_failing(total: FailingValues, part: FailingValues | None) -> FailingValues:
    if part is None:
        return total
    low = part.lowest if total.lowest is None or (part.lowest is not None and part.lowest < total.lowest) \
        else total.lowest
    high = part.highest if total.highest is None or (part.highest is not None and part.highest > total.highest) \
        else total.highest
    return FailingValues(total.count + part.count, low, high, total.nans + part.nans)


class _Failing(_Accumulator):
    def __init__(self, measure):
        super().__init__(measure)
        self.found = FailingValues(0)

    def part(self, rows: int, columns: dict) -> FailingValues | None:
        return _failing_part(columns[self.measure.column], self.measure.rule)

    def merge(self, part: FailingValues | None) -> None:
        self.found = _merge_failing(self.found, part)

    def result(self) -> FailingValues:
        return self.found


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


class _Present(_Accumulator):
    def __init__(self, measure):
        super().__init__(measure)
        self.found: set = set()

    def part(self, rows: int, columns: dict) -> list:
        import pyarrow.compute as pc

        array = columns[self.measure.column]
        if len(self.found) == len(self.measure.values):  # all found already (a racy read only skips work)
            return []
        members = pc.filter(array, _passing(array, Member(self.measure.values)))
        return pc.unique(members).to_pylist()

    def merge(self, part: list) -> None:
        self.found.update(part)

    def result(self) -> frozenset:
        return frozenset(self.found)


class _MinMax(_Accumulator):
    def __init__(self, measure, types):
        super().__init__(measure)
        self.value = None

    def part(self, rows: int, columns: dict) -> Any:
        low, high = _extremes(columns[self.measure.column])
        return low if self.measure.name == "min" else high

    def merge(self, found: Any) -> None:
        if found is None:
            return
        if self.value is None or (found < self.value if self.measure.name == "min" else found > self.value):
            self.value = found

    def result(self) -> Any:
        return self.value


def _moment_value(name: str, parts: list) -> float | None:
    """mean, stddev or variance from per-slice (count, mean, M2), merged exactly (Chan et al.)."""
    count, mean, variance = merge_moments(parts)
    if name == "mean":
        return mean
    if variance is None:
        return None
    return variance if name == "variance" else variance ** 0.5


class _Moments(_Accumulator):
    """mean, stddev or variance of a column numpy does not hold (decimals, float32)."""

    def __init__(self, measure, types):
        super().__init__(measure)
        self.parts: list = []
        self.is_float = types[measure.column].is_float

    def part(self, rows: int, columns: dict) -> tuple | None:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.cast(columns[self.measure.column], pa.float64())
        if self.is_float and pc.any(pc.is_nan(values)).as_py():
            values = pc.filter(values, pc.invert(pc.is_nan(values)))
        count = len(values) - values.null_count
        if not count:
            return None
        return count, pc.mean(values).as_py(), pc.variance(values, ddof=0).as_py() * count

    def merge(self, part: tuple | None) -> None:
        if part is not None:
            self.parts.append(part)

    def result(self) -> float | None:
        return _moment_value(self.measure.name, self.parts)


# Logical types whose non-null values numpy holds without a copy, and compares as Arrow does.
_NUMPY_TYPES = frozenset({"int8", "int16", "int32", "int64", "float64"})


class _Numbers(_Accumulator):
    """Every statistic (min, max, mean, stddev, variance) and range check (greater/less than,
    between) of one integer or float64 column, from one numpy pass per slice: a range check
    whose bounds hold the slice's min and max (and no NaN) passes without looking at a value,
    else it is counted as :class:`_Failing` counts it."""

    def __init__(self, column: str, measures: list, logical: LogicalType):
        super().__init__(None)
        self.column, self.is_float = column, logical.is_float
        self.stats = [m for m in measures if isinstance(m, Stat)]
        self.checks = [m for m in measures if isinstance(m, Failing)]
        self.spread = any(m.name in ("stddev", "variance") for m in self.stats)
        self.moments = self.spread or any(m.name == "mean" for m in self.stats)
        self.low = self.high = None
        self.parts: list = []
        self.failing = {m: FailingValues(0) for m in self.checks}

    def part(self, rows: int, columns: dict) -> tuple:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        array = columns[self.column]
        values = (pc.drop_null(array) if array.null_count else array).to_numpy(zero_copy_only=False)
        if not len(values):
            return None, None, None, {}
        low, high, nans, numbers = values.min(), values.max(), 0, array
        if self.is_float and (np.isnan(low) or np.isnan(high)):  # numpy's min and max propagate NaN
            is_nan = np.isnan(values)
            nans, values = int(is_nan.sum()), values[~is_nan]
            low, high = (values.min(), values.max()) if len(values) else (None, None)
            numbers = pa.array(values)
        low, high = (None, None) if low is None else (low.item(), high.item())
        failing = {item: _failing_part(array, item.rule) for item in self.checks
                   if nans or low is None or not self._holds(item.rule, low, high)}
        moments = None
        if self.moments and len(values):  # Arrow's kernels skip nulls (numpy's would need a copy without them)
            numbers = pc.cast(numbers, pa.float64())
            spread = pc.variance(numbers, ddof=0).as_py() * len(values) if self.spread else 0.0
            moments = (len(values), pc.mean(numbers).as_py(), spread)
        return low, high, moments, failing

    def _holds(self, rule, low, high) -> bool:
        """Whether every value between ``low`` and ``high`` satisfies ``rule``, with its bounds typed as
        Arrow types them (a bound that is no plain number of the column's kind: never assumed)."""
        def bound(value):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (not self.is_float and not isinstance(value, int)):
                return None
            return float(value) if self.is_float else value

        if isinstance(rule, Compare):
            value = bound(rule.value)
            if value is None:
                return False
            return {">": low > value, ">=": low >= value, "<": high < value, "<=": high <= value}[rule.operator]
        lowest, highest = bound(rule.low), bound(rule.high)
        if lowest is None or highest is None:
            return False
        return (low >= lowest if rule.include_low else low > lowest) and \
            (high <= highest if rule.include_high else high < highest)

    def merge(self, part: tuple) -> None:
        low, high, moments, failing = part
        if low is not None:
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)
        if moments is not None:
            self.parts.append(moments)
        for item, found in failing.items():
            self.failing[item] = _merge_failing(self.failing[item], found)

    def results(self) -> dict:
        found: dict = dict(self.failing)
        for item in self.stats:
            found[item] = self.low if item.name == "min" else self.high if item.name == "max" else \
                _moment_value(item.name, self.parts)
        return found


class _Labels(_Accumulator):
    def __init__(self, measure):
        super().__init__(measure)
        self.parts: list = []

    def part(self, rows: int, columns: dict) -> Any:
        import pyarrow.compute as pc

        array = columns[self.measure.column]
        return pc.value_counts(pc.drop_null(array)) if len(array) > array.null_count else None

    def merge(self, part: Any) -> None:
        if part is not None:
            self.parts.append(part)

    def result(self) -> dict[str, int]:
        import pyarrow as pa

        if not self.parts:
            return {}
        counts = pa.concat_arrays(self.parts)
        table = pa.table({"label": counts.field("values"), "n": counts.field("counts")})
        summed = table.group_by("label").aggregate([("n", "sum")])
        return {label_text(label): count
                for label, count in zip(summed["label"].to_pylist(), summed["n_sum"].to_pylist())}


# A byte map over the keys' range is kept while it takes at most this many bytes per key seen (an
# int64 key kept takes 8), or at most _DENSE_FLOOR bytes whatever the count: the OS maps a page of
# it only when a key marks it, so a few keys over a wide range cost a page each.
_DENSE_BYTES_PER_KEY = 4
_DENSE_FLOOR = 64 << 20
# Integer words, or hashed keys, kept past this many bytes are spilled to files, in _PARTITIONS hash partitions.
_SPILL_BYTES = 256 << 20
_PARTITIONS = 16


class _Distinct(_Accumulator):
    """(rows whose key is not null, distinct keys among them) of one integer-like key (integers,
    booleans, dates, timestamps, floats), counted as it streams, without sorting while its keys are
    dense: each value marks one byte of a map over the range of the values seen (ids, dates,
    counters), as long as that range is small next to the number of keys
    (``_DENSE_BYTES_PER_KEY``). Sparse keys are kept as int64 words, past ``_SPILL_BYTES`` spilled
    to temporary files in hash partitions, and counted partition by partition at the end, so
    memory stays bounded. Other keys are :class:`_HashedDistinct`'s.
    """

    def __init__(self, measure):
        super().__init__(measure)
        self.sparse = False  # the keys seen span too wide a range for a byte map: kept as words
        self.keyed = 0
        self.base, self.marks = 0, None  # the byte map, marks[v - base] for each value v seen
        self.spill = _Spill()  # the words kept, once the keys are sparse

    def part(self, rows: int, columns: dict) -> Any:
        import pyarrow.compute as pc

        array = columns[self.measure.columns[0]]
        return _words(pc.drop_null(array) if array.null_count else array)

    def merge(self, part: Any) -> None:
        if not len(part):
            return
        self.keyed += len(part)
        if not self.sparse and self._mark_range(int(part.min()), int(part.max())):
            self.marks[part - self.base] = True
        else:
            self._keep(part)

    def _mark_range(self, low: int, high: int) -> bool:
        """Makes the byte map span ``low``..``high``; False when that range is too wide for the keys
        seen (the marks then become words, and every later key is kept as a word)."""
        import numpy as np

        start = low if self.marks is None else min(low, self.base)
        end = high if self.marks is None else max(high, self.base + len(self.marks) - 1)
        span, allowed = end - start + 1, max(_DENSE_FLOOR, _DENSE_BYTES_PER_KEY * self.keyed)
        if span > allowed:
            self.sparse = True
            if self.marks is not None:
                marked = np.flatnonzero(self.marks).astype(np.int64) + self.base
                self.marks = None
                self._keep(marked)
            return False
        if self.marks is None:
            self.base, self.marks = start, np.zeros(span, dtype=np.bool_)
        elif span > len(self.marks):  # grow by half again at least, so a rising key reallocates rarely
            grown = min(max(span, len(self.marks) * 3 // 2), allowed)
            start = end - grown + 1 if low < self.base else start  # the room goes where the keys went
            marks = np.zeros(grown, dtype=np.bool_)
            marks[self.base - start:self.base - start + len(self.marks)] = self.marks
            self.base, self.marks = start, marks
        return True

    def _keep(self, words) -> None:
        import pyarrow as pa

        self.spill.add(pa.table({"hash": pa.array(words)}))  # a word is its own hash

    def result(self) -> tuple[int, int]:
        import numpy as np

        if self.marks is not None:
            return self.keyed, int(np.count_nonzero(self.marks))
        return self.keyed, self.spill.count(lambda table: _distinct_words(table.column("hash").to_numpy()))


# The bits of a key's hash kept (all 64; a test keeps a few to make keys collide).
_HASH_BITS = 64
_MULTIPLIER = 0x9E3779B97F4A7C15  # odd, so multiplying by it mod 2**64 loses nothing
_NULL_HASH = 0x5BD1E9955BD1E995  # a null key column's hash


class _HashedDistinct(_Accumulator):
    """(rows whose key is not all null, distinct keys among them) of any other key: strings,
    decimals, several columns.

    Each slice's rows are hashed to 64 bits (:func:`_row_hashes`: numpy over the Arrow buffers)
    and its duplicate keys dropped (:func:`_distinct_rows`); the rows left are held as (hash, key
    columns), past ``_SPILL_BYTES`` written to temporary Arrow files in ``_PARTITIONS`` hash
    partitions, and counted partition by partition at the end, so memory stays bounded. Exact: rows
    of one hash are compared by their values, so keys whose hashes collide still count apart.
    """

    def __init__(self, measure):
        super().__init__(measure)
        self.keyed = 0
        self.spill = _Spill()  # the (hash, key columns) rows kept

    def part(self, rows: int, columns: dict) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        arrays = [columns[column] for column in self.measure.columns]
        if len(arrays) == 1:  # one column: its nulls are no key
            arrays = [pc.drop_null(arrays[0]) if arrays[0].null_count else arrays[0]]
        elif any(array.null_count for array in arrays):  # several: a row is keyed when one of them is not null
            keyed = functools.reduce(pc.or_, [pc.is_valid(array) for array in arrays])
            arrays = [pc.filter(array, keyed) for array in arrays] if keyed.false_count else arrays
        if not len(arrays[0]):
            return 0, None
        table = pa.table({"hash": _row_hashes(arrays), **{f"k{i}": _comparable(a) for i, a in enumerate(arrays)}})
        return len(arrays[0]), table.take(_distinct_rows(table))

    def merge(self, part: Any) -> None:
        keyed, table = part
        if table is None:
            return
        self.keyed += keyed
        self.spill.add(table)

    def result(self) -> tuple[int, int]:
        return self.keyed, self.spill.count(lambda table: len(_distinct_rows(table)))


class _Spill:
    """Keys kept to be counted, in bounded memory: tables whose ``hash`` column holds each row's
    hash, held until they pass ``_SPILL_BYTES``, then appended to temporary Arrow files in
    ``_PARTITIONS`` partitions by the top bits of that hash, so that the rows of one key all land in
    one partition and the partitions are counted one by one (:meth:`count`)."""

    def __init__(self):
        self.tables: list = []
        self.held = 0
        self.folder: Any = None  # a TemporaryDirectory of partition files, once keys spill
        self.writers: list = []

    def add(self, table) -> None:
        self.tables.append(table)
        self.held += table.nbytes
        if self.held > _SPILL_BYTES:
            self._write()

    def _write(self) -> None:
        """Appends the rows held to the partition files."""
        import tempfile

        import pyarrow as pa

        if self.folder is None:
            self.folder = tempfile.TemporaryDirectory(prefix="lakeio-distinct-")
        if not self.tables:
            return
        table = pa.concat_tables(self.tables)
        partition = _partition_of(table.column("hash").to_numpy())
        if not self.writers:
            self.writers = [pa.ipc.new_stream(f"{self.folder.name}/{index}.arrow", table.schema)
                            for index in range(_PARTITIONS)]
        for index, writer in enumerate(self.writers):
            writer.write_table(table.filter(pa.array(partition == index)))
        self.tables, self.held = [], 0

    def count(self, distinct: Callable[[Any], int]) -> int:
        """The sum of ``distinct`` (the distinct keys of a table of rows kept) over the partitions;
        the files are removed."""
        import pyarrow as pa

        if self.folder is None:
            if not self.tables:
                return 0
            table, self.tables = pa.concat_tables(self.tables), []
            return distinct(table)
        self._write()
        try:
            for writer in self.writers:
                writer.close()
            total = 0
            for index in range(_PARTITIONS):
                with pa.memory_map(f"{self.folder.name}/{index}.arrow") as file:
                    total += distinct(pa.ipc.open_stream(file).read_all())
            return total
        finally:
            self.folder.cleanup()


def _partition_of(words):
    """Each word's partition, 0 to _PARTITIONS - 1: the top bits of a Fibonacci hash."""
    import numpy as np

    shift = np.uint64(64 - _PARTITIONS.bit_length() + 1)
    return ((words.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> shift).astype(np.intp)


def _distinct_words(words) -> int:
    import numpy as np

    if not len(words):
        return 0
    words = np.sort(words)
    return 1 + int(np.count_nonzero(words[1:] != words[:-1]))


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


def _words(values):
    """A null-free integer-like array as int64 words, equal exactly when the values are one value:
    floats by their bits, with 0.0 and -0.0 one word and every NaN one word."""
    import numpy as np

    numbers = _as_numpy(values)
    if numbers.dtype.kind == "f":
        numbers = np.where(np.isnan(numbers), np.nan, numbers + 0.0).astype(np.float64)
        return numbers.view(np.int64)
    return numbers.astype(np.int64, copy=False)


def _comparable(array):
    """A key column whose values are equal exactly when the keys are one key: floats as their
    words (0.0 and -0.0 one, every NaN one), nulls kept."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    if not t.is_floating(array.type):
        return array
    return pa.array(_filled_words(array), mask=np.asarray(pc.is_null(array)) if array.null_count else None)


def _filled_words(array):
    """:func:`_words` of an integer-like array whose nulls are taken for zeros."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    if t.is_boolean(array.type):
        array = array.cast(pa.int8())
    elif t.is_date32(array.type):
        array = array.cast(pa.int32())
    elif t.is_date(array.type) or t.is_timestamp(array.type):
        array = array.cast(pa.int64())
    return _words(pc.fill_null(array, pa.scalar(0, array.type)) if array.null_count else array)


def _row_hashes(arrays: list):
    """A 64-bit hash (uint64, ``_HASH_BITS`` of it kept) of each row's key: the columns' hashes
    (:func:`_column_hashes`) combined in order."""
    import numpy as np

    hashes = np.zeros(len(arrays[0]), dtype=np.uint64)
    for array in arrays:
        hashes = _mixed(hashes * np.uint64(_MULTIPLIER) + _column_hashes(array))
    if _HASH_BITS < 64:
        hashes &= np.uint64((1 << _HASH_BITS) - 1)
    return hashes


def _column_hashes(array):
    """Each value's hash (uint64): text and bytes by their bytes (:func:`_bytes_hashes`),
    integer-like values by their words, other values (decimals) by their text; a null by
    ``_NULL_HASH``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    kind = array.type
    if t.is_string(kind) or t.is_large_string(kind) or t.is_binary(kind) or t.is_large_binary(kind):
        hashes = _bytes_hashes(array)
    elif _sortable(array):
        hashes = _mixed(_filled_words(array).view(np.uint64))
    else:
        hashes = _bytes_hashes(pc.cast(array, pa.string()))
    if array.null_count:
        hashes[~np.asarray(pc.is_valid(array))] = np.uint64(_NULL_HASH)
    return hashes


# Rows of text hashed at once: the numpy temporaries are 8 bytes per byte of their text.
_HASH_ROWS = 1 << 16


def _bytes_hashes(array):
    """Each string's hash (uint64), from its bytes in the Arrow buffers: the sum of each byte
    (plus one) times ``_MULTIPLIER`` to the power of its position in the string, mixed with the
    string's length."""
    import numpy as np
    import pyarrow.types as t

    offsets_type = np.dtype(np.int64 if t.is_large_string(array.type) or t.is_large_binary(array.type) else np.int32)
    hashes = np.empty(len(array), dtype=np.uint64)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offsets_type, count=len(array) + 1,
                            offset=array.offset * offsets_type.itemsize).astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, dtype=np.uint8)
    lengths = np.diff(offsets)
    longest = int(lengths.max()) if len(lengths) else 0
    powers = np.cumprod(np.full(longest, _MULTIPLIER, dtype=np.uint64)) if longest else np.zeros(0, dtype=np.uint64)
    for start in range(0, len(array), _HASH_ROWS):
        ends = offsets[start + 1:start + _HASH_ROWS + 1]
        starts = offsets[start:start + len(ends)]
        sizes = lengths[start:start + len(ends)]
        first, last = int(starts[0]), int(ends[-1])
        sums = np.zeros(len(ends), dtype=np.uint64)
        if last > first:
            position = np.arange(last - first, dtype=np.int64) - np.repeat(starts - first, sizes)
            weighted = powers[position] * (data[first:last].astype(np.uint64) + np.uint64(1))
            filled = sizes > 0
            sums[filled] = np.add.reduceat(weighted, (starts - first)[filled])
        hashes[start:start + len(ends)] = _mixed(sums ^ sizes.astype(np.uint64))
    return hashes


def _mixed(words):
    """A 64-bit finalizer (MurmurHash3's): each bit of a word moves about half the bits of its hash."""
    import numpy as np

    words = words ^ (words >> np.uint64(33))
    words *= np.uint64(0xFF51AFD7ED558CCD)
    words ^= words >> np.uint64(33)
    words *= np.uint64(0xC4CEB9FE1A85EC53)
    return words ^ (words >> np.uint64(33))


def _distinct_rows(table):
    """The positions of one row of each distinct key of ``table`` (a ``hash`` column and the key
    columns): one row of each hash, except that the rows of a hash that holds more than one key
    (they are compared by value) are grouped by their keys."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    hashes = table.column("hash").to_numpy()
    ordered = np.sort(hashes)
    if not np.any(ordered[1:] == ordered[:-1]):  # no hash twice (a unique key): every row is a key
        return np.arange(len(hashes))
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    first = np.empty(len(ordered), dtype=bool)
    first[:1], first[1:] = True, ordered[1:] != ordered[:-1]
    leading = np.maximum.accumulate(np.where(first, np.arange(len(ordered)), 0))  # each row's group's first row
    later = np.flatnonzero(~first)
    left, right = pa.array(order[later]), pa.array(order[leading[later]])
    same = np.ones(len(later), dtype=bool)
    for name in table.column_names[1:]:
        column = table.column(name)
        a, b = column.take(left), column.take(right)
        equal = pc.or_kleene(pc.equal(a, b), pc.and_(pc.is_null(a), pc.is_null(b)))
        same &= np.asarray(pc.fill_null(equal, False))
    if same.all():
        return order[first]
    clashing = np.isin(hashes, ordered[later[~same]])  # rows of the hashes that hold several keys
    rows = np.flatnonzero(clashing)
    keys = table.filter(pa.array(clashing)).drop_columns(["hash"]).append_column("row", pa.array(rows))
    grouped = keys.group_by(keys.column_names[:-1]).aggregate([("row", "min")]).column("row_min").to_numpy()
    return np.concatenate([order[first & ~clashing[order]], grouped])


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

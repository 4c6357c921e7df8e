"""The Arrow backend's streamed measures against plain Python over the same values: distinct keys
through each of their paths (the byte map, its growth, sparse words, words spilled to hash
partitions; text, decimal and compound keys hashed, their hashes made to collide, spilled), and a
numeric column's statistics and range checks from one pass per slice."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import statistics

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeio.validation import arrow_backend
from lakeio.validation.contract import LogicalType
from lakeio.validation.semantics import Compare, Distinct, Failing, FailingValues, Plan, Range, Stat


def measured(batches: list[pa.RecordBatch], measures: set, types: dict) -> dict:
    plan = Plan((), (), (), frozenset(measures), {c: LogicalType.parse(t) for c, t in types.items()})
    return arrow_backend.measure(batches, plan, {})


def batches_of(values: list, arrow_type: pa.DataType, size: int) -> list[pa.RecordBatch]:
    array = pa.array(values, type=arrow_type)
    return [pa.record_batch({"k": array.slice(start, size)}) for start in range(0, len(values), size)]


def expected(values: list) -> tuple[int, int]:
    present = [v for v in values if v is not None]
    canonical = {("nan" if isinstance(v, float) and math.isnan(v) else v + 0.0 if isinstance(v, float) else v)
                 for v in present}
    return len(present), len(canonical)


rng = np.random.default_rng(15)
CASES = {
    "dense ids, shuffled": ([int(v) for v in rng.permutation(60_000)], pa.int64(), "int64"),
    "rising ids with repeats and nulls": ([None if i % 97 == 0 else i // 3 for i in range(60_000)], pa.int64(), "int64"),
    "falling ids": (list(range(40_000, 0, -1)), pa.int32(), "int32"),
    "sparse 64-bit keys with repeats": ([int(v) for v in rng.integers(-2**62, 2**62, 50_000)] * 2, pa.int64(), "int64"),
    "dense first, then a far key": ([*range(10_000), 2**60, 5], pa.int64(), "int64"),
    "floats: NaN once, 0.0 and -0.0 one value": ([0.0, -0.0, math.nan, math.nan, 1.5, None, 1.5, -2.0], pa.float64(),
                                                 "float64"),
    "dates": ([dt.date(2020, 1, 1) + dt.timedelta(days=i % 400) for i in range(5_000)], pa.date32(), "date"),
    "booleans": ([True, None, False, True], pa.bool_(), "boolean"),
    "strings": (["a", "b", None, "a", "é"], pa.string(), "string"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", [7_001, 1_000_000])
def test_distinct_keys_match_a_python_set(case, size):
    values, arrow_type, logical = CASES[case]
    found = measured(batches_of(values, arrow_type, size), {Distinct(("k",))}, {"k": logical})
    assert found[Distinct(("k",))] == expected(values)


def test_sparse_keys_past_the_memory_budget_spill_to_partitions_and_count_the_same(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.setattr(arrow_backend, "_SPILL_BYTES", 64 * 1024)  # a small budget, so 80k keys spill
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    values = [int(v) for v in rng.integers(-2**62, 2**62, 40_000)] * 2
    plan = Plan((), (), (), frozenset({Distinct(("k",))}), {"k": LogicalType("int64")})
    measurer = arrow_backend.Measurer(plan, {})
    (distinct,) = measurer.accumulators
    for batch in batches_of(values, pa.int64(), 10_000):
        measurer.add(batch)
        assert distinct.spill.held <= 64 * 1024  # never more kept than the budget
    assert distinct.spill.folder is not None and len(list(tmp_path.iterdir())) == 1
    assert measurer.result()[Distinct(("k",))] == (80_000, 40_000)
    assert not list(tmp_path.iterdir())  # the partition files are gone


def canonical(value):
    return "nan" if isinstance(value, float) and math.isnan(value) else value + 0.0 if isinstance(value, float) else value


def expected_rows(rows: list[tuple]) -> tuple[int, int]:
    """(rows whose key is not all null, distinct keys among them, a null one value)."""
    keyed = [row for row in rows if any(value is not None for value in row)]
    return len(keyed), len({tuple(canonical(value) for value in row) for row in keyed})


def measured_rows(rows: list[tuple], arrow_types: list, logical: list[str], size: int) -> tuple[int, int]:
    names = [f"c{i}" for i in range(len(arrow_types))]
    table = pa.table({name: pa.array([row[i] for row in rows], type=arrow_types[i]) for i, name in enumerate(names)})
    batches = [batch for start in range(0, max(len(rows), 1), size) for batch in table.slice(start, size).to_batches()]
    found = measured(batches, {Distinct(tuple(names))}, dict(zip(names, logical, strict=True)))
    return found[Distinct(tuple(names))]


words = [f"id-{int(v)}" for v in rng.permutation(30_000)]
HASHED = {
    "text ids, shuffled": ([(w,) for w in words], [pa.string()], ["string"]),
    "text with repeats, nulls, '' and non-ASCII": ([(None if i % 89 == 0 else "" if i % 13 == 0 else f"é{i % 700}",)
                                                    for i in range(20_000)], [pa.string()], ["string"]),
    "large strings": ([(w * (1 + i % 3),) for i, w in enumerate(words[:5_000])] * 2, [pa.large_string()], ["string"]),
    "decimals": ([(None if i % 7 == 0 else decimal.Decimal(i % 900) / 100,) for i in range(9_000)],
                 [pa.decimal128(10, 2)], ["decimal(10,2)"]),
    "text and int, nulls a value": ([(None if i % 5 == 0 else f"c{i % 40}", None if i % 3 == 0 else i % 11)
                                     for i in range(30_000)], [pa.string(), pa.int64()], ["string", "int64"]),
    "int and float: NaN one, 0.0 and -0.0 one": ([(i % 4, [0.0, -0.0, math.nan, 1.5, None][i % 5]) for i in range(5_000)],
                                                 [pa.int32(), pa.float64()], ["int32", "float64"]),
    "date, timestamp and boolean": ([(dt.date(2020, 1, 1 + i % 28), dt.datetime(2020, 1, 1, i % 24), i % 2 == 0)
                                     for i in range(6_000)], [pa.date32(), pa.timestamp("us"), pa.bool_()],
                                    ["date", "timestamp_ntz", "boolean"]),
    "all null": ([(None, None)] * 50, [pa.string(), pa.int64()], ["string", "int64"]),
}


@pytest.mark.parametrize("case", list(HASHED))
@pytest.mark.parametrize("size", [997, 1_000_000])
@pytest.mark.parametrize("bits", [64, 3], ids=["64-bit hashes", "3-bit hashes: keys collide"])
def test_hashed_keys_match_a_python_set(monkeypatch, case, size, bits):
    monkeypatch.setattr(arrow_backend, "_HASH_BITS", bits)
    rows, arrow_types, logical = HASHED[case]
    assert measured_rows(rows, arrow_types, logical, size) == expected_rows(rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.text(max_size=4)), st.one_of(st.none(), st.integers(-3, 3))),
                max_size=60), st.integers(1, 64), st.sampled_from([1, 2, 64]))
def test_hashed_keys_count_as_arrows_grouping(rows, size, bits):
    """The answer of the path before hashing: every key kept, grouped by Arrow's hash kernels."""
    table = pa.table({"c0": pa.array([row[0] for row in rows], pa.string()),
                      "c1": pa.array([row[1] for row in rows], pa.int64())})
    keyed = table.filter(pc.or_(table["c0"].is_valid(), table["c1"].is_valid()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(arrow_backend, "_HASH_BITS", bits)
        found = measured_rows(rows, [pa.string(), pa.int64()], ["string", "int64"], size)
    assert found == (keyed.num_rows, keyed.group_by(["c0", "c1"]).aggregate([]).num_rows)


def test_hashed_keys_past_the_memory_budget_spill_to_partitions_and_count_the_same(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.setattr(arrow_backend, "_SPILL_BYTES", 64 * 1024)  # a small budget, so 60k keys spill
    monkeypatch.setattr(arrow_backend, "_HASH_BITS", 12)  # and collide, in and across partitions
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rows = [(f"k{i % 30_000}", i % 2) for i in range(60_000)]
    plan = Plan((), (), (), frozenset({Distinct(("a", "b"))}), {"a": LogicalType("string"), "b": LogicalType("int64")})
    measurer = arrow_backend.Measurer(plan, {})
    (distinct,) = measurer.accumulators
    table = pa.table({"a": [a for a, _ in rows], "b": [b for _, b in rows]})
    for batch in table.to_batches(max_chunksize=5_000):
        measurer.add(batch)
        assert distinct.spill.held <= 64 * 1024  # never more kept than the budget
    assert distinct.spill.folder is not None and len(list(tmp_path.iterdir())) == 1
    assert measurer.result()[Distinct(("a", "b"))] == expected_rows(rows) == (60_000, 30_000)
    assert not list(tmp_path.iterdir())  # the partition files are gone


def numbers_case(values: list, rule) -> dict:
    types = {"k": "float64" if any(isinstance(v, float) for v in values) else "int64"}
    stats = {Stat("k", name) for name in ("min", "max", "mean", "stddev", "variance")}
    return measured(batches_of(values, pa.float64() if types["k"] == "float64" else pa.int64(), 3), {*stats, Failing("k", rule)},
                    types)


@pytest.mark.parametrize("values, rule, failing", [
    ([1, 5, None, 3, 9, 2, 7], Range(0, 10, True, True), FailingValues(0)),
    ([1, 5, None, 3, 9, 2, 7], Range(1, 9, False, True), FailingValues(1, 1, 1)),
    ([1, 5, None, 3, 9, 2, 7], Compare(">=", 3), FailingValues(2, 1, 2)),
    ([0.5, math.nan, None, 2.5, -1.0, 2.0], Compare("<", 3), FailingValues(1, None, None, 1)),
    ([0.5, math.nan, None, 2.5, -1.0, 2.0], Range(-2, 2, True, True), FailingValues(2, 2.5, 2.5, 1)),
    ([math.nan, math.nan, None], Compare(">", 0), FailingValues(2, None, None, 2)),
])
def test_numeric_statistics_and_range_checks_from_one_pass(values, rule, failing):
    found = numbers_case(values, rule)
    numbers = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    assert found[Failing("k", rule)] == failing
    assert found[Stat("k", "min")] == (min(numbers) if numbers else None)
    assert found[Stat("k", "max")] == (max(numbers) if numbers else None)
    if numbers:
        assert found[Stat("k", "mean")] == pytest.approx(statistics.fmean(numbers), rel=1e-12)
        assert found[Stat("k", "variance")] == pytest.approx(statistics.pvariance(numbers), rel=1e-12)
        assert found[Stat("k", "stddev")] == pytest.approx(statistics.pstdev(numbers), rel=1e-12)
    else:
        assert found[Stat("k", "mean")] is None and found[Stat("k", "stddev")] is None

"""The Arrow backend's streamed measures against plain Python over the same values: distinct keys
through each of their paths (the byte map, its growth, sparse words, words spilled to hash
partitions), and a numeric column's statistics and range checks from one pass per slice."""

from __future__ import annotations

import datetime as dt
import math
import statistics

import numpy as np
import pyarrow as pa
import pytest

from lakeio.validation import arrow_backend
from lakeio.validation.contract import LogicalType
from lakeio.validation.semantics import Compare, Distinct, Failing, FailingValues, Plan, Range, Stat


def measured(batches: list[pa.RecordBatch], measures: set, types: dict) -> dict:
    plan = Plan((), (), (), frozenset(measures), {c: LogicalType(t) for c, t in types.items()})
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
        assert distinct.held <= 64 * 1024  # never more kept than the budget
    assert distinct.spill is not None and len(list(tmp_path.iterdir())) == 1
    assert measurer.result()[Distinct(("k",))] == (80_000, 40_000)
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

"""Which reads are pruned, and the predicate as the JVM helper receives it (no JVM needed here)."""

from __future__ import annotations

import json

import pytest

from lakeio.predicate import parse_filter
from lakeio.requests import ResolvedDataset, ScanPlan
from lakeio.spark.pruning import applies, helper_predicate
from lakeio.storage import Location


def plan(fmt: str = "parquet", partition_by=("year", "month"), where: str | None = "year = 2013") -> ScanPlan:
    target = ResolvedDataset("flights", "local", fmt, Location("file", "/data/flights"), tuple(partition_by))
    return ScanPlan(target, predicate=parse_filter(where))


@pytest.mark.parametrize("kwargs, helped", [
    ({}, True),
    ({"where": "carrier = 'UA' OR month IN (1, 2)"}, True),
    ({"where": None}, True),  # nothing to prune, but the helper's listing still spares Spark its own
    ({"where": "carrier = 'UA'"}, True),
    ({"fmt": "delta"}, False),  # Spark's Delta reader prunes from the log; lakeio never lists Delta
    ({"partition_by": ()}, False),
])
def test_every_spark_read_of_partitioned_parquet_goes_through_the_helper(kwargs, helped):
    assert applies(plan(**kwargs)) is helped


def test_partition_conditions_keep_their_typed_literals_and_the_rest_is_opaque():
    predicate = parse_filter(
        "(year BETWEEN 2013 AND 2014 OR month IN (1, '2')) AND NOT (carrier = 'UA') "
        "AND day >= DATE '2013-01-05' AND month IS NOT NULL AND year < 2.5e3 AND month != TRUE "
        "AND day < TIMESTAMP '2013-01-09 10:00:00'")
    converted = helper_predicate(predicate, {"year", "month", "day"})
    assert converted == {"and": [
        {"or": [
            {"and": [{"column": "year", "op": ">=", "value": {"int": "2013"}},
                     {"column": "year", "op": "<=", "value": {"int": "2014"}}]},
            {"column": "month", "in": [{"int": "1"}, {"string": "2"}]},
        ]},
        {"not": {"opaque": "carrier"}},
        {"column": "day", "op": ">=", "value": {"date": "2013-01-05"}},
        {"not": {"column": "month", "isNull": True}},
        {"column": "year", "op": "<", "value": {"float": "2500.0"}},
        {"column": "month", "op": "!=", "value": {"bool": True}},
        {"column": "day", "op": "<", "value": {"timestamp": "2013-01-09T10:00:00"}},
    ]}
    json.dumps(converted)  # what jvm.call sends


def test_the_largest_integers_a_filter_takes_travel_exactly():
    # Filters refuse integers beyond 64 bits and non-finite floats (test_predicate.py); the edges pass intact.
    converted = helper_predicate(parse_filter([("year", "in", [2 ** 63 - 1, -(2 ** 63)])]), {"year"})
    assert converted == {"column": "year", "in": [{"int": str(2 ** 63 - 1)}, {"int": str(-(2 ** 63))}]}


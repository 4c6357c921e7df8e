"""Contract files: loaded and checked with the catalog; every problem named by file, column and key."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from lakeio import Catalog, ConfigError
from lakeio.validation.contract import Between, InSet, LogicalType, NotNull, Pattern, RowCount, UniqueKey

RESOURCES = """
flights:
  format: delta
  schema: schemas/flights.yaml
  environments:
    local: {uri: data/flights}
plain:
  format: parquet
  environments:
    local: {uri: data/plain}
"""

GOOD = """
columns:
  id:      {type: int64, nullable: false, checks: [unique]}
  carrier: {type: string, checks: [{in_set: [AA, UA]}, {pattern: "^[A-Z]{2}$"}], metrics: [counts_per_label]}
  delay:   {type: float64, checks: [{max_null_fraction: 0.1}, {between: [-60, 600]}], metrics: [mean, stddev]}
  price:   {type: "decimal(10, 2)", cast: true, checks: [{greater_or_equal: 0.5}]}
  day:     {type: date, checks: [{less_than: 2030-01-01}]}
  at:      {type: timestamp, checks: [{between: {min: "2013-01-01T00:00:00Z", max: 2014-01-01T00:00:00+01:00}}]}
  local:   {type: timestamp_ntz, checks: [{greater_than: "2013-01-01T08:00:00"}]}
checks:
  - row_count: {min: 1, severity: warning}
  - unique: [carrier, day]
"""


def load(tmp_path, write_yaml, contract: str):
    write_yaml("conf/datasets.yaml", RESOURCES)
    write_yaml("conf/schemas/flights.yaml", contract)
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)


def problems(error: ConfigError) -> list[str]:
    lines = str(error).splitlines()
    assert lines[0] == "invalid contract:"
    return [line.strip() for line in lines[1:]]


def test_a_valid_contract_loads_typed(tmp_path, write_yaml):
    lake = load(tmp_path, write_yaml, GOOD)
    contract = lake._contracts["flights"].contract
    assert "plain" not in lake._contracts
    assert contract.path == str(tmp_path / "conf" / "schemas" / "flights.yaml")
    columns = contract.columns
    assert [type(c) for c in columns["id"].checks] == [NotNull, type(columns["id"].checks[1])]
    assert columns["id"].checks[1].name == "unique"
    in_set, pattern = columns["carrier"].checks
    assert isinstance(in_set, InSet) and in_set.values == ("AA", "UA") and in_set.severity == "error"
    assert isinstance(pattern, Pattern) and pattern.regex == "^[A-Z]{2}$"
    assert columns["price"].type == LogicalType("decimal", 10, 2) and columns["price"].cast
    assert columns["price"].checks[0].value == decimal.Decimal("0.5")
    assert columns["day"].checks[0].value == dt.date(2030, 1, 1)
    between = columns["at"].checks[0]
    assert isinstance(between, Between)
    assert between.min == dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
    assert between.max == dt.datetime(2013, 12, 31, 23, tzinfo=dt.UTC)
    assert columns["local"].checks[0].value == dt.datetime(2013, 1, 1, 8)
    assert columns["delay"].metrics == ("mean", "stddev")
    row_count, unique = contract.checks
    assert isinstance(row_count, RowCount) and row_count.min == 1 and row_count.severity == "warning"
    assert isinstance(unique, UniqueKey) and unique.columns == ("carrier", "day")


def test_every_problem_is_reported_together_with_file_column_and_key(tmp_path, write_yaml):
    bad = """
columns:
  id:      {type: int46, checks: [uniq]}
  carrier: {type: string, checks: [{in_set: {valuez: [AA]}}, {greater_than: 5}], metrics: [mean, cuonts]}
  delay:   {type: float64, nulable: true, checks: [{between: {min: 10, max: 1}}, {max_null_fraction: 1.5}]}
  flag:    {type: boolean, checks: [{less_than: true}]}
  small:   {type: int8, checks: [{less_or_equal: 300}, {in_set: [1, "2"]}], metrics: [counts_per_label]}
  when:    {type: timestamp, checks: [{greater_than: "2013-01-01T00:00:00"}]}
  price:   {type: "decimal(5,2)", checks: [{greater_than: 1.234}]}
  name:    {type: string, nullable: false, checks: [not_null, {pattern: "(?<=a)b"}, {pattern: "[a-"}]}
checks:
  - row_count: {}
  - unique: [carrier, carier]
  - unique: {columns: [id], severity: fatal}
  - not_null
"""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, write_yaml, bad)
    found = problems(caught.value)
    path = tmp_path / "conf" / "schemas" / "flights.yaml"
    assert all(line.startswith(f"{path}: ") for line in found), found
    text = "\n".join(found)
    expected = [
        "columns.id.type: unknown type 'int46'; did you mean 'int64'?",
        "columns.carrier.checks.0.in_set.valuez: unknown key; did you mean 'values'?",
        "columns.carrier.checks.1.greater_than.value: 5 is not a string (quote it in YAML)",
        "columns.carrier.metrics.0: mean needs a numeric column; 'carrier' is string",
        "columns.carrier.metrics.1: unknown metric 'cuonts'; did you mean 'count'?",
        "columns.delay.nulable: unknown key; did you mean 'nullable'?",
        "columns.flag.checks.0.less_than: needs an ordered column; 'flag' is boolean",
        "columns.small.checks.0.less_or_equal.value: 300 does not fit int8",
        "columns.small.checks.1.in_set.values: '2' is not an integer",
        "columns.when.checks.0.greater_than.value: 2013-01-01T00:00:00 has no time zone",
        "columns.price.checks.0.greater_than.value: 1.234 has more than 2 decimal places",
        "columns.name.checks.0.not_null: repeats 'nullable: false'",
        "columns.name.checks.1.pattern.regex: '(?<=a)b' uses a group flag or name",
        "columns.name.checks.2.pattern.regex: not a valid regular expression",
        "checks.0.row_count: give min, max, or a history bound (max_change, max_delta, max_deviations)",
        "checks.1.unique.columns: 'carier' is not a column of the contract; did you mean 'carrier'?",
        "checks.2.unique.severity: 'fatal' is not one of error, warning",
        "checks.3: unknown check 'not_null'",
    ]
    for item in expected:
        assert item in text, f"missing: {item}\nin:\n{text}"
    # The unknown check 'uniq' is in a column whose type is already wrong: reported once for the type.
    assert "columns.id.type" in text


def test_unknown_check_suggests_the_closest_name(tmp_path, write_yaml):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, write_yaml, "columns:\n  a: {type: int64, checks: [{betwen: [1, 2]}, uniqe]}\n")
    text = "\n".join(problems(caught.value))
    assert "columns.a.checks.0: unknown check 'betwen'; did you mean 'between'?" in text
    assert "columns.a.checks.1: unknown check 'uniqe'; did you mean 'unique'?" in text


def test_between_with_min_above_max_and_out_of_range_fraction(tmp_path, write_yaml):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, write_yaml, "columns:\n  a: {type: float64, checks: [{between: [10, 1]}, "
                                   "{max_null_fraction: 1.5}, {in_set: []}]}\n")
    text = "\n".join(problems(caught.value))
    assert "columns.a.checks.0.between: min 10.0 is above max 1.0" in text
    assert "columns.a.checks.1.max_null_fraction.fraction: Input should be less than or equal to 1" in text
    assert "columns.a.checks.2.in_set.values: Tuple should have at least 1 item" in text


def test_missing_contract_file_and_broken_yaml_are_config_errors(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", RESOURCES)
    with pytest.raises(ConfigError, match=r"datasets.yaml: flights.schema: no contract file .*schemas/flights.yaml"):
        Catalog.load(tmp_path / "conf", env="local")
    write_yaml("conf/schemas/flights.yaml", "columns: [unclosed\n")
    with pytest.raises(ConfigError, match=r"flights.yaml: not valid YAML at line 2"):
        Catalog.load(tmp_path / "conf", env="local")


def test_resource_schema_key_is_suggested_when_misspelled(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", "d:\n  format: parquet\n  shema: x.yaml\n  environments: {local: {uri: d}}\n")
    with pytest.raises(ConfigError, match=r"d.shema: unknown key; did you mean 'schema'\?"):
        Catalog.load(tmp_path / "conf", env="local")


@pytest.mark.parametrize("text, expected", [
    ("int64", "int64"), ("Decimal(12, 3)", "decimal(12,3)"), ("timestamp_ntz", "timestamp_ntz"),
    ("string", "string"), ("boolean", "boolean"), ("date", "date"), ("float32", "float32"),
])
def test_logical_type_names(text, expected):
    assert str(LogicalType.parse(text)) == expected


@pytest.mark.parametrize("text, message", [
    ("bool", "did you mean 'boolean'?"), ("decimal(80,2)", "precision <= 76"), ("decimal(5,6)", "scale <= precision"),
])
def test_logical_type_errors(text, message):
    with pytest.raises(ValueError, match=message):
        LogicalType.parse(text)


def test_the_demo_contract_loads(conf_folder):
    lake = Catalog.load(conf_folder, env="local")
    contract = lake._contracts["flights"].contract
    assert set(contract.columns) >= {"carrier", "dep_delay", "time_hour"}
    assert contract.columns["time_hour"].type == LogicalType("timestamp")


@pytest.fixture
def conf_folder():
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "conf"

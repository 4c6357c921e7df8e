"""The JSON Schemas of the YAML files: checked in as generated, the shipped configuration passes them,
and they refuse what the catalog refuses (unknown keys, misspelled checks, values of the wrong shape)."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

import lakeio
from lakeio import schemas as lakeio_schemas

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
CONF = REPO / "conf"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def as_editor_sees_it(value):
    """YAML as JSON: dates and timestamps written unquoted are strings to an editor's schema check."""
    if isinstance(value, dict):
        return {str(k): as_editor_sees_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_editor_sees_it(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def errors(name: str, text: str) -> list[str]:
    document = as_editor_sees_it(yaml.safe_load(textwrap.dedent(text)))
    validator = jsonschema.Draft7Validator(schema(name))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_checked_in_schemas_are_what_the_module_generates():
    generated = lakeio_schemas.schemas()
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(generated)
    for name, body in generated.items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == lakeio_schemas.dumps(body), (
            f"schemas/{name} is stale: run `python -m lakeio.schemas --write schemas`")


def test_the_command_writes_the_files(tmp_path):
    assert lakeio_schemas.main(["--write", str(tmp_path / "out")]) == 0
    for name in lakeio_schemas.schemas():
        assert (tmp_path / "out" / name).read_text(encoding="utf-8") == (SCHEMAS / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["resources", "lakeio", "contract"])
def test_schemas_are_valid_draft_7(name):
    jsonschema.Draft7Validator.check_schema(schema(name))


@pytest.mark.parametrize(("path", "name"), [
    ("conf/resources.yaml", "resources"),
    ("conf/lakeio.yaml", "lakeio"),
    ("conf/schemas/flights.yaml", "contract"),
])
def test_the_shipped_configuration_validates(path, name):
    text = (REPO / path).read_text(encoding="utf-8")
    assert errors(name, text) == []
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={_relative_schema(path, name)}"


def _relative_schema(path: str, name: str) -> str:
    depth = len(Path(path).parts) - 1
    return "../" * depth + f"schemas/{name}.schema.json"


# -- the schemas refuse what the catalog refuses, and accept what it accepts ------------------------

RESOURCE = """
flights:
  format: delta
  schema: schemas/flights.yaml
  environments:
    local: {uri: data/flights}
"""

CONTRACT = """
columns:
  id: {type: int64}
  carrier: {type: string}
  delay: {type: float64}
"""


def contract_with(column_checks: str = "", table_checks: str = "", metrics: str = "") -> str:
    text = "columns:\n  id: {type: int64}\n  carrier: {type: string}\n"
    text += "  delay:\n    type: float64\n"
    if column_checks:
        text += f"    checks: {column_checks}\n"
    if metrics:
        text += f"    metrics: {metrics}\n"
    if table_checks:
        text += f"checks: {table_checks}\n"
    return text


def loads(tmp_path: Path, resources: str = RESOURCE, contract: str = CONTRACT, settings: str | None = None) -> bool:
    """Whether the catalog loads this configuration."""
    conf = tmp_path / "conf"
    (conf / "schemas").mkdir(parents=True, exist_ok=True)
    (conf / "resources.yaml").write_text(textwrap.dedent(resources), encoding="utf-8")
    (conf / "schemas" / "flights.yaml").write_text(textwrap.dedent(contract), encoding="utf-8")
    if settings is not None:
        (conf / "lakeio.yaml").write_text(textwrap.dedent(settings), encoding="utf-8")
    try:
        lakeio.Catalog.load(conf, env="local")
    except lakeio.ConfigError:
        return False
    return True


CONTRACTS = {  # id: (contract text, accepted)
    "plain": (CONTRACT, True),
    "every check form": (contract_with(
        "[not_null, unique, {unique: null}, {max_null_fraction: 0.1}, {max_null_fraction: {fraction: 0.1}},"
        " {greater_than: 0}, {less_or_equal: {value: 10, severity: warning, tolerance: 0.01}},"
        " {between: [0, 10]}, {between: {min: 0, max: 10, include_max: false}},"
        " {in_set: [1.5, 2]}, {in_set: {values: [1.5], all_present: true}}]",
        "[{row_count: {min: 1}}, {row_count: {max: 5, severity: warning}}, {unique: [id, carrier]},"
        " {unique: {columns: [id]}}]",
        "[min, max, mean, stddev, variance, count, distinct_count]"), True),
    "pattern on a string": (("columns:\n  carrier: {type: string, checks: [{pattern: '^[A-Z]+$'}, "
                            "{pattern: {regex: '^A', tolerance: 0.5}}]}\n"), True),
    "types in any case": ("columns:\n  a: {type: INT64}\n  b: {type: ' decimal(10, 2) '}\n  c: {type: Timestamp_NTZ}\n",
                          True),
    "misspelled column check": (contract_with("[{greater_then: 0}]"), False),
    "misspelled bare check": (contract_with("[not_nul]"), False),
    "table check in a column": (contract_with("[{row_count: {min: 1}}]"), False),
    "column check in the table": (contract_with(table_checks="[not_null]"), False),
    "check without its parameter": (contract_with("[greater_than]"), False),
    "two checks in one mapping": (contract_with("[{greater_than: 0, less_than: 5}]"), False),
    "unknown check parameter": (contract_with("[{between: {min: 0, max: 1, inclusive: true}}]"), False),
    "between with three bounds": (contract_with("[{between: [0, 1, 2]}]"), False),
    "between as a scalar": (contract_with("[{between: 5}]"), False),
    "fraction above one": (contract_with("[{max_null_fraction: 1.5}]"), False),
    "tolerance above one": (contract_with("[{greater_than: {value: 0, tolerance: 2}}]"), False),
    "bad severity": (contract_with("[{greater_than: {value: 0, severity: fatal}}]"), False),
    "empty in_set": (contract_with("[{in_set: []}]"), False),
    "row_count without bounds": (contract_with(table_checks="[row_count]"), False),
    "row_count with no bound": (contract_with(table_checks="[{row_count: {severity: warning}}]"), False),
    "compound unique as a string": (contract_with(table_checks="[{unique: id}]"), False),
    "history checks": (contract_with(
        "[{mean: {max_change: 0.2}}, {stddev: {max_deviations: 3, window: 10}}, {count: {max_delta: 5}}]",
        "[{row_count: {max_change: 0.5}}, {row_count: {min: 1, max_delta: 100, window: 3}}]"), True),
    "history check without a bound": (contract_with("[{mean: {window: 3}}]"), False),
    "history check as a bare name": (contract_with("[mean]"), False),
    "negative history bound": (contract_with("[{max: {max_change: -1}}]"), False),
    "misspelled metric": (contract_with(metrics="[mean, stdev]"), False),
    "metric twice": (contract_with(metrics="[mean, mean]"), False),
    "misspelled type": ("columns:\n  a: {type: integer}\n", False),
    "column without a type": ("columns:\n  a: {nullable: false}\n", False),
    "unknown column key": ("columns:\n  a: {type: int64, nulable: false}\n", False),
    "unknown top-level key": (CONTRACT + "extra_column: allow\n", False),
    "bad extra_columns": (CONTRACT.replace("columns:", "extra_columns: ignore\ncolumns:", 1), False),
    "no columns": ("checks: [{row_count: {min: 1}}]\n", False),
}


@pytest.mark.parametrize("case", list(CONTRACTS))
def test_contract_schema_agrees_with_the_loader(case, tmp_path):
    text, accepted = CONTRACTS[case]
    assert loads(tmp_path, contract=text) is accepted, "the case itself is wrong"
    problems = errors("contract", text)
    assert (problems == []) is accepted, problems


RESOURCES = {
    "the demo's": ((CONF / "resources.yaml").read_text(encoding="utf-8"), True),
    "options that fit": ("""
        events:
          format: csv
          options: {delimiter: ";", header: false, null_values: ["", NA], target_file_size: 64MB}
          environments:
            local: {uri: data/events, engine: arrow}
            lake: {uri: "s3://b/events", format: parquet, options: {compression: zstd, schema_mode: merge}}
        """, True),
    "misspelled format": ("x:\n  format: detla\n  environments: {local: {uri: a}}\n", False),
    "misspelled engine": ("x:\n  format: delta\n  environments: {local: {uri: a, engine: sparks}}\n", False),
    "unknown resource key": ("x:\n  format: delta\n  partition: [a]\n  environments: {local: {uri: a}}\n", False),
    "unknown binding key": ("x:\n  format: delta\n  environments: {local: {url: a}}\n", False),
    "missing uri": ("x:\n  format: delta\n  environments: {local: {engine: arrow}}\n", False),
    "missing environments": ("x:\n  format: delta\n", False),
    "misspelled option": (("x:\n  format: delta\n  options: {target_filesize: 1MB}\n"
                          "  environments: {local: {uri: a}}\n"), False),
    "option of another format": (("x:\n  format: delta\n  options: {delimiter: ';'}\n"
                                 "  environments: {local: {uri: a}}\n"), False),
    "binding option of the resource's other format": (
        "x:\n  format: parquet\n  environments: {local: {uri: a, options: {header: false}}}\n", False),
    "binding option of its own format": (
        "x:\n  format: parquet\n  environments: {local: {uri: a, format: csv, options: {header: false}}}\n", True),
    "binding option not of its own format": (
        "x:\n  format: csv\n  environments: {local: {uri: a, format: json, options: {delimiter: ';'}}}\n", False),
    "delimiter of two characters": (("x:\n  format: csv\n  options: {delimiter: ';;'}\n"
                                    "  environments: {local: {uri: a}}\n"), False),
}


@pytest.mark.parametrize("case", list(RESOURCES))
def test_resources_schema_agrees_with_the_loader(case, tmp_path):
    text, accepted = RESOURCES[case]
    assert loads(tmp_path, resources=text) is accepted, "the case itself is wrong"
    problems = errors("resources", text)
    assert (problems == []) is accepted, problems


SETTINGS = {
    "the demo's": ((CONF / "lakeio.yaml").read_text(encoding="utf-8"), True),
    "empty": ("", True),
    "everything": ("""
        environments:
          local:
            engine: arrow
            arrow_max_bytes: 2GiB
            metrics_sink: metrics/
            s3: {endpoint_url: "http://127.0.0.1:9000", region: us-east-1, access_key_id: a,
                 secret_access_key: b, session_token: c}
            spark: {master: "local[2]", app_name: x, conf: {spark.sql.shuffle.partitions: "8"},
                    scratch_uri: "s3://b/tmp"}
        """, True),
    "metrics history and lineage": ("""
        environments:
          local:
            metrics_sink: {uri: "s3://b/_metrics", format: delta, dataset: history, on_error: raise}
            lineage: {transport: http, url: "http://127.0.0.1:5000", endpoint: api/v1/lineage, api_key: k,
                      namespace: ns, job: step, timeout: 2, retries: 1}
        """, True),
    "misspelled sink format": ("environments:\n  local: {metrics_sink: {uri: m, format: detla}}\n", False),
    "unknown lineage transport": ("environments:\n  local: {lineage: {transport: kafka}}\n", False),
    "unknown environment key": ("environments:\n  local: {engin: arrow}\n", False),
    "misspelled s3 key": ("environments:\n  local: {s3: {endpoint: x}}\n", False),
    "unquoted spark conf number": ("environments:\n  local: {spark: {conf: {spark.sql.shuffle.partitions: 8}}}\n",
                                   False),
    "unknown top-level key": ("environment:\n  local: {engine: arrow}\n", False),
}


@pytest.mark.parametrize("case", list(SETTINGS))
def test_settings_schema_agrees_with_the_loader(case, tmp_path):
    text, accepted = SETTINGS[case]
    assert loads(tmp_path, settings=text) is accepted, "the case itself is wrong"
    problems = errors("lakeio", text)
    assert (problems == []) is accepted, problems


def test_a_misspelled_check_is_named_in_the_error():
    problems = errors("contract", contract_with("[{greater_then: 0}]"))
    assert any("greater_then" in p for p in problems), problems

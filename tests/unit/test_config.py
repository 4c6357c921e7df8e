"""lakeio.config and Catalog.load: YAML validation, collected errors, variables, environments."""

from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest

from lakeio import Catalog, ConfigError
from lakeio.config import Binding, EnvironmentSettings, Resource, Settings, load_config

SETTINGS = """
environments:
  local: {engine: auto}
  test:
    engine: arrow
    s3: {region: us-east-1, endpoint_url: "http://localhost:9000"}
  prod:
    engine: spark
    spark: {master: "local[2]", app_name: nightly, conf: {spark.sql.shuffle.partitions: "8"}}
"""

RESOURCES = """
# a comment
flights:
  description: every flight
  format: delta
  partition_by: [year, month]
  environments:
    local: {uri: data/flights}
    prod: {uri: "s3://acme/flights", engine: spark}
runs:
  format: parquet
  environments:
    local: {uri: "data/runs/{day}"}
"""


def problem_lines(error: ConfigError, folder: Path) -> list[str]:
    """The message is 'invalid configuration:' then one indented line per problem, each starting
    with the file's path (a YAML parser error may continue on further lines)."""
    lines = str(error).splitlines()
    assert lines[0] == "invalid configuration:"
    return [line.strip() for line in lines[1:] if line.startswith(f"  {folder}{os.sep}")]


# -- a valid folder ------------------------------------------------------------------------------

def test_load_config_valid_folder(tmp_path, write_yaml):
    settings_path = write_yaml("conf/lakeio.yaml", SETTINGS)
    resources_path = write_yaml("conf/datasets.yaml", RESOURCES)
    more_path = write_yaml("conf/more.yml", "extra: {format: parquet, environments: {test: {uri: x}}}")
    write_yaml("conf/empty.yaml", "# nothing here\n")
    write_yaml("conf/notes.txt", "not: [yaml")  # other suffixes are ignored

    settings, resources, origins = load_config(tmp_path / "conf")

    assert isinstance(settings, Settings)
    assert set(settings.environments) == {"local", "test", "prod"}
    assert settings.environments["local"] == EnvironmentSettings()
    assert settings.environments["test"].engine == "arrow"
    assert settings.environments["test"].s3.endpoint_url == "http://localhost:9000"
    assert settings.environments["test"].s3.access_key_id is None
    assert settings.environments["prod"].spark.master == "local[2]"
    assert settings.environments["prod"].spark.app_name == "nightly"
    assert settings.environments["prod"].spark.conf == {"spark.sql.shuffle.partitions": "8"}
    assert settings.environments["local"].spark.master == "local[*]"

    assert set(resources) == {"flights", "runs", "extra"}
    flights = resources["flights"]
    assert isinstance(flights, Resource)
    assert flights.format == "delta"
    assert flights.partition_by == ("year", "month")
    assert flights.description == "every flight"
    assert flights.environments["local"] == Binding(uri="data/flights")
    assert flights.environments["local"].engine is None
    assert flights.environments["prod"] == Binding(uri="s3://acme/flights", engine="spark")
    assert resources["runs"].partition_by == ()
    assert resources["runs"].description == ""

    assert origins == {"flights": resources_path, "runs": resources_path, "extra": more_path}
    assert settings_path.exists()


def test_models_are_frozen(tmp_path, write_yaml):
    write_yaml("conf/d.yaml", RESOURCES)
    _, resources, _ = load_config(tmp_path / "conf")
    with pytest.raises(pydantic.ValidationError):
        resources["flights"].format = "parquet"


def test_settings_file_is_optional(tmp_path, write_yaml):
    write_yaml("conf/d.yaml", RESOURCES)
    settings, resources, _ = load_config(tmp_path / "conf")
    assert settings == Settings()
    assert set(resources) == {"flights", "runs"}


def test_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration folder") as caught:
        load_config(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(caught.value)


# -- every problem, collected into one ConfigError --------------------------------------------------

def test_every_problem_is_reported_together(tmp_path, write_yaml):
    settings = write_yaml("conf/lakeio.yaml", """
        environments:
          local:
            engine: arow
            s3: {endpointurl: "http://x"}
          prod: {engnie: spark}
    """)
    a = write_yaml("conf/a.yaml", """
        flights:
          format: delta
          partiton_by: [year]
          environments:
            local: {uri: data/flights}
        runs:
          format: parquett
          environments:
            local: {}
        typed:
          format: delta
          partition_by: 5
          environments:
            local: {uri: 7, engine: sparc}
        scalar: 5
        noformat:
          environments: {local: {uri: x}}
    """)
    b = write_yaml("conf/b.yaml", """
        good:
          format: parquet
          environments: {local: {uri: data/good}}
        good2:
          format: parquet
          environments: {local: {uri: data/good2}}
    """)
    c = write_yaml("conf/c.yaml", """
        good:
          format: delta
          environments: {local: {uri: data/other}}
    """)
    dup = write_yaml("conf/dup.yaml", """
        twice:
          format: delta
          environments: {local: {uri: x}}
        twice:
          format: parquet
          environments: {local: {uri: y}}
    """)
    broken = write_yaml("conf/broken.yaml", "x: [1, 2\n")
    listed = write_yaml("conf/listed.yml", "- a\n- b\n")

    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "conf")
    problems = problem_lines(caught.value, tmp_path / "conf")

    def has(path: Path, text: str) -> bool:
        return any(p.startswith(f"{path}: ") and text in p for p in problems)

    # Unknown keys, with the closest valid key and the list of valid keys.
    assert has(a, "flights.partiton_by: unknown key; did you mean 'partition_by'? "
                  "(valid keys: format, partition_by, description, options, schema, environments, quarantine)")
    assert has(settings, "environments.local.s3.endpointurl: unknown key; did you mean 'endpoint_url'?")
    assert has(settings, "environments.prod.engnie: unknown key; did you mean 'engine'?")
    # Bad literals, with a suggestion.
    assert has(a, "runs.format: 'parquett' is not one of delta, parquet, csv, json; did you mean 'parquet'?")
    assert has(a, "typed.environments.local.engine: 'sparc' is not one of auto, arrow, spark; did you mean 'spark'?")
    assert has(settings, "environments.local.engine: 'arow' is not one of auto, arrow, spark; did you mean 'arrow'?")
    # Missing keys.
    assert has(a, "runs.environments.local.uri: required key is missing")
    assert has(a, "noformat.format: required key is missing")
    # Wrong types: pydantic's message, then what the file held.
    assert has(a, "typed.partition_by: Input should be a valid tuple (got 5)")
    assert has(a, "typed.environments.local.uri: Input should be a valid string (got 7)")
    assert has(a, "scalar: Input should be a valid dictionary or instance of Resource (got 5)")
    # A dataset defined in two files names both.
    assert has(c, f"good: dataset already defined in {b}")
    # A duplicate YAML key, with both line numbers.
    assert has(dup, "key 'twice' appears twice (lines 1 and 4)")
    # Invalid YAML and a document that is not a mapping.
    assert has(broken, "not valid YAML")
    assert has(listed, "expected a mapping of dataset names to resources")

    # One line per problem, every one naming its file.
    assert len(problems) == 15, "\n".join(problems)
    assert str(caught.value).count(str(tmp_path / "conf")) == 16  # c.yaml's line names b.yaml too
    assert all(p.split(": ")[0] in {str(f) for f in (settings, a, b, c, dup, broken, listed)} for p in problems)
    assert isinstance(caught.value, ValueError)


def test_a_single_problem_still_raises(tmp_path, write_yaml):
    path = write_yaml("conf/a.yaml", "x: {format: delta, environments: {local: {url: data/x}}}")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "conf")
    problems = problem_lines(caught.value, tmp_path / "conf")
    assert sorted(problems) == [
        f"{path}: x.environments.local.uri: required key is missing",
        f"{path}: x.environments.local.url: unknown key; did you mean 'uri'? (valid keys: uri, engine, format, options)",
    ]


def test_unknown_key_without_a_close_match_has_no_suggestion(tmp_path, write_yaml):
    write_yaml("conf/a.yaml", "x: {format: delta, zzzzzz: 1, environments: {local: {uri: d}}}")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "conf")
    (problem,) = problem_lines(caught.value, tmp_path / "conf")
    assert "x.zzzzzz: unknown key (valid keys:" in problem
    assert "did you mean" not in problem


def test_duplicate_key_inside_a_dataset_gives_both_lines(tmp_path, write_yaml):
    path = write_yaml("conf/a.yaml", """
        flights:
          format: delta
          environments:
            local:
              uri: data/a
              uri: data/b
    """)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "conf")
    (problem,) = problem_lines(caught.value, tmp_path / "conf")
    assert problem == f"{path}: key 'uri' appears twice (lines 5 and 6)"


def test_settings_document_that_is_not_a_mapping(tmp_path, write_yaml):
    path = write_yaml("conf/lakeio.yaml", "- local\n- prod\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "conf")
    (problem,) = problem_lines(caught.value, tmp_path / "conf")
    assert problem.startswith(f"{path}: (top level): ")


def test_invalid_yaml_names_the_file_and_line(tmp_path, write_yaml):
    path = write_yaml("conf/a.yaml", "flights:\n  format: delta\n   bad indent: [\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "conf")
    message = str(caught.value)
    assert f"{path}: not valid YAML" in message
    assert "line " in message


def test_unhashable_yaml_key_is_a_config_error(tmp_path, write_yaml):
    write_yaml("conf/a.yaml", "? [a, b]\n: 1\n")
    with pytest.raises(ConfigError):
        load_config(tmp_path / "conf")


# -- environments and ${VAR} expansion -----------------------------------------------------------

VARIABLE_SETTINGS = """
environments:
  local: {engine: auto}
  prod:
    engine: spark
    s3:
      region: "${LAKEIO_UT_REGION}"
      endpoint_url: "${LAKEIO_UT_ENDPOINT:-http://localhost:9000}"
"""

VARIABLE_RESOURCES = """
ds:
  format: parquet
  environments:
    local: {uri: "data/${LAKEIO_UT_SUB:-default}/ds"}
    prod: {uri: "s3://${LAKEIO_UT_BUCKET}/ds"}
    staging: {uri: "s3://staging/ds"}
"""


@pytest.fixture
def variable_conf(tmp_path, write_yaml, monkeypatch):
    for name in ("LAKEIO_UT_REGION", "LAKEIO_UT_ENDPOINT", "LAKEIO_UT_SUB", "LAKEIO_UT_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    write_yaml("conf/lakeio.yaml", VARIABLE_SETTINGS)
    write_yaml("conf/datasets.yaml", VARIABLE_RESOURCES)
    return tmp_path / "conf"


def test_missing_variable_in_an_inactive_environment_is_fine(variable_conf, tmp_path):
    lake = Catalog.load(variable_conf, env="local", base_dir=tmp_path)
    assert lake.env == "local"
    assert lake.location("ds").path == str(tmp_path / "data" / "default" / "ds")


def test_default_and_value_of_a_variable(variable_conf, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEIO_UT_SUB", "mine")
    lake = Catalog.load(variable_conf, env="local", base_dir=tmp_path)
    assert lake.location("ds").path == str(tmp_path / "data" / "mine" / "ds")


def test_missing_variable_in_the_active_environment_settings(variable_conf):
    with pytest.raises(ConfigError) as caught:
        Catalog.load(variable_conf, env="prod")
    message = str(caught.value)
    assert "LAKEIO_UT_REGION" in message
    assert "lakeio.yaml" in message
    assert "environments.prod.s3.region" in message
    assert "${LAKEIO_UT_REGION:-default}" in message


def test_active_environment_settings_are_expanded(variable_conf, monkeypatch):
    monkeypatch.setenv("LAKEIO_UT_REGION", "eu-west-3")
    monkeypatch.setenv("LAKEIO_UT_BUCKET", "my-bucket")
    lake = Catalog.load(variable_conf, env="prod")
    settings = lake._settings
    assert settings.s3.region == "eu-west-3"
    assert settings.s3.endpoint_url == "http://localhost:9000"
    assert settings.engine == "spark"
    monkeypatch.setenv("LAKEIO_UT_ENDPOINT", "https://s3.example")
    assert Catalog.load(variable_conf, env="prod")._settings.s3.endpoint_url == "https://s3.example"


def test_missing_variable_in_the_active_binding_fails_at_load(variable_conf, monkeypatch):
    monkeypatch.setenv("LAKEIO_UT_REGION", "eu-west-3")
    with pytest.raises(ConfigError) as caught:
        Catalog.load(variable_conf, env="prod")
    message = str(caught.value)
    assert "LAKEIO_UT_BUCKET" in message
    assert "datasets.yaml: ds.environments.prod.uri" in message
    monkeypatch.setenv("LAKEIO_UT_BUCKET", "my-bucket")
    assert Catalog.load(variable_conf, env="prod").location("ds").uri == "s3://my-bucket/ds"


def test_undefined_environment_suggests_the_closest(variable_conf):
    with pytest.raises(ConfigError) as caught:
        Catalog.load(variable_conf, env="prd")
    message = str(caught.value)
    assert "environment 'prd' is not defined; did you mean 'prod'?" in message
    assert "(defined: local, prod, staging)" in message  # 'staging' comes from a binding only


def test_undefined_environment_without_a_close_match(variable_conf):
    with pytest.raises(ConfigError) as caught:
        Catalog.load(variable_conf, env="zzz")
    assert "did you mean" not in str(caught.value)
    assert "environment 'zzz' is not defined" in str(caught.value)


def test_environment_defined_only_by_a_binding(variable_conf):
    lake = Catalog.load(variable_conf, env="staging")
    assert lake.env == "staging"
    assert lake._settings == EnvironmentSettings()
    assert lake.location("ds").uri == "s3://staging/ds"


def test_lakeio_env_selects_the_environment(variable_conf, monkeypatch):
    monkeypatch.setenv("LAKEIO_ENV", "staging")
    assert Catalog.load(variable_conf).env == "staging"
    assert Catalog.load(variable_conf, env="local").env == "local"  # the argument wins
    monkeypatch.setenv("LAKEIO_ENV", "stagin")
    with pytest.raises(ConfigError, match="did you mean 'staging'"):
        Catalog.load(variable_conf)


def test_default_environment_is_local(variable_conf, monkeypatch):
    monkeypatch.delenv("LAKEIO_ENV", raising=False)
    assert Catalog.load(variable_conf).env == "local"


def test_catalog_load_reports_config_errors(tmp_path, write_yaml):
    write_yaml("conf/a.yaml", "x: {format: orc, environments: {local: {uri: d}}}")
    with pytest.raises(ConfigError, match="x.format: 'orc' is not one of delta, parquet, csv, json"):
        Catalog.load(tmp_path / "conf", env="local")


def test_project_configuration_loads():
    """The shipped conf/ folder is valid and defines the demo's datasets."""
    conf = Path(__file__).resolve().parents[2] / "conf"
    settings, resources, _ = load_config(conf)
    assert set(settings.environments) == {"local", "test", "prod"}
    assert {"flights", "delay_by_carrier"} <= set(resources)
    assert resources["flights"].partition_by == ("year", "month")
    lake = Catalog.load(conf, env="local", base_dir="/somewhere")
    assert lake.location("flights").path == "/somewhere/data/flights"


def test_invalid_yaml_problem_is_one_line_naming_the_file(tmp_path, write_yaml):
    write_yaml("conf/a.yaml", "x: [1, 2\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "conf")
    assert "<unicode string>" not in str(caught.value)
    assert len(str(caught.value).splitlines()) == 2

"""The ``lakeio`` command, run through click's CliRunner against the checked-in ``sample``
environment (conf/) and small catalogs in a temporary folder; every subcommand and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import lakeio
from lakeio.cli import EXIT_CODES, cli, exit_code
from lakeio.errors import (
    ConfigError,
    DataQualityError,
    EngineUnavailableError,
    InvalidArgumentError,
    ResourceNotFoundError,
    SchemaMismatchError,
    StorageError,
)
from lakeio.validation.contract import load_contract

REPO = Path(__file__).resolve().parents[2]
CONF = str(REPO / "conf")


def lakeio_command(*args: str, conf: str = CONF, env: str = "sample"):
    return CliRunner().invoke(cli, ["--conf", conf, "--env", env, *args], catch_exceptions=False)


@pytest.fixture
def scores(tmp_path, write_yaml, monkeypatch):
    """A catalog in tmp_path: ``scores`` (Parquet, values 0..10 by contract) and ``empty`` (no data)."""
    write_yaml("conf/lakeio.yaml", "environments: {dev: {engine: arrow}}\n")
    write_yaml("conf/resources.yaml", """
        scores:
          format: parquet
          schema: schemas/scores.yaml
          environments: {dev: {uri: "out/scores"}}
        empty:
          format: parquet
          schema: schemas/scores.yaml
          environments: {dev: {uri: "out/empty"}}
        """)
    write_yaml("conf/schemas/scores.yaml", """
        columns:
          value: {type: int64, nullable: false, checks: [{between: [0, 10]}]}
        """)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_exit_codes_map_every_kind_of_error_in_one_place():
    assert EXIT_CODES[0] == (DataQualityError, 1)
    assert [exit_code(e("x")) for e in (ConfigError, InvalidArgumentError, ResourceNotFoundError)] == [2, 2, 2]
    assert [exit_code(e("x")) for e in (StorageError, EngineUnavailableError, SchemaMismatchError)] == [3, 3, 3]


def test_python_dash_m_lakeio_prints_the_help():
    run = subprocess.run([sys.executable, "-m", "lakeio", "--help"], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO / "python")}, timeout=60)
    assert run.returncode == 0, run.stderr
    for command in ("datasets", "describe", "explain", "head", "validate", "contract", "submit", "k8s", "run"):
        assert command in run.stdout


def test_datasets_lists_each_binding_in_the_environment():
    result = lakeio_command("datasets")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "environment sample (2 datasets)"
    assert lines[2].split() == ["delay_by_carrier", "parquet", "sample-output/delay_by_carrier/{period}", "auto"]
    assert lines[3].split() == ["flights", "csv", f"{CONF}/samples/flights.csv", "auto"]


def test_describe_shows_format_location_partitions_schema_and_contract():
    result = lakeio_command("describe", "flights")
    assert result.exit_code == 0
    assert "format:      csv" in result.output
    assert f"location:    {CONF}/samples/flights.csv" in result.output
    assert "partitions:  year, month" in result.output
    assert "  time_hour: timestamp[us, tz=UTC]" in result.output
    assert f"contract:    {CONF}/schemas/flights.yaml (19 columns" in result.output


def test_describe_of_a_templated_dataset_names_the_missing_placeholder_and_takes_it_with_param():
    missing = lakeio_command("describe", "delay_by_carrier")
    given = lakeio_command("describe", "delay_by_carrier", "-p", "period=2013-01")
    assert missing.exit_code == 0 and "needs a value for period" in missing.output
    assert given.exit_code == 0 and "delay_by_carrier/2013-01" in given.output
    assert "schema:      (no data here yet)" in given.output


def test_explain_shows_the_filter_and_the_engine():
    result = lakeio_command("explain", "flights", "--where", "month = 1", "-c", "carrier")
    assert result.exit_code == 0
    assert "filter:   `month` = 1" in result.output
    assert "columns:  carrier" in result.output
    assert "engine:   arrow" in result.output


def test_head_shows_the_first_rows():
    result = lakeio_command("head", "flights", "-n", "2", "-c", "carrier,flight")
    assert result.exit_code == 0
    assert [line.split() for line in result.output.splitlines()] == [["carrier", "flight"], ["UA", "1545"], ["B6", "79"]]


def test_validate_passes_with_exit_0_as_text_and_as_json():
    text = lakeio_command("validate", "flights")
    as_json = lakeio_command("validate", "flights", "--json")
    assert text.exit_code == 0 and "0 errors" in text.output and "425 rows" in text.output
    report = json.loads(as_json.output)
    assert as_json.exit_code == 0 and report["passed"] is True and report["rows"] == 425


def test_validate_exits_1_when_an_error_level_check_fails(scores):
    lakeio.Catalog.load("conf", env="dev").write("scores", pa.table({"value": [1, 11]}), validate=False)
    result = CliRunner().invoke(cli, ["--env", "dev", "validate", "scores", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["passed"] is False
    assert [(r["check"], r["column"]) for r in report["results"] if not r["passed"]] == [("between", "value")]


def test_usage_and_config_errors_exit_2(scores):
    unknown_env = CliRunner().invoke(cli, ["--env", "nowhere", "datasets"])
    unknown_dataset = CliRunner().invoke(cli, ["--env", "dev", "describe", "scorez"])
    no_conf = CliRunner().invoke(cli, ["--conf", "missing", "datasets"])
    bad_option = CliRunner().invoke(cli, ["--env", "dev", "head", "scores", "-n", "-1"])
    assert [r.exit_code for r in (unknown_env, unknown_dataset, no_conf, bad_option)] == [2, 2, 2, 2]
    assert "environment 'nowhere' is not defined" in unknown_env.output
    assert "did you mean 'scores'?" in unknown_dataset.output
    assert "configuration folder 'missing' does not exist" in no_conf.output


def test_storage_errors_exit_3(scores):
    result = CliRunner().invoke(cli, ["--env", "dev", "validate", "empty"])
    assert result.exit_code == 3
    assert "cannot open parquet data" in result.output and "out/empty" in result.output


def test_recover_exits_0_with_nothing_to_do_and_2_for_an_unknown_dataset(scores):
    lakeio.Catalog.load("conf", env="dev").write("scores", pa.table({"value": [1, 2]}))
    done = CliRunner().invoke(cli, ["--env", "dev", "recover", "scores"])
    unknown = CliRunner().invoke(cli, ["--env", "dev", "recover", "scorez"])
    assert (done.exit_code, done.output) == (0, "scores: no interrupted commit\n")
    assert unknown.exit_code == 2 and "did you mean 'scores'?" in unknown.output


def test_contract_init_writes_a_skeleton_that_loads_back_and_passes_on_its_data(tmp_path):
    output = tmp_path / "flights.yaml"
    result = lakeio_command("contract", "init", "flights", "-o", str(output))
    assert result.exit_code == 0, result.output
    problems: list[str] = []
    contract = load_contract(output, problems)
    assert problems == []
    assert str(contract.columns["time_hour"].type) == "timestamp"
    assert {c.name for c in contract.columns["carrier"].checks} == {"not_null", "in_set"}
    assert [c.name for c in contract.columns["dep_delay"].checks] == ["between"]  # has nulls: nullable
    origins = next(c for c in contract.columns["origin"].checks if c.name == "in_set")
    assert sorted(origins.values) == ["EWR", "JFK", "LGA"]
    again = lakeio_command("contract", "init", "flights", "-o", str(output))
    assert again.exit_code == 2 and "exists" in again.output


def test_contract_init_skeleton_validates_the_data_it_came_from(scores):
    lakeio.Catalog.load("conf", env="dev").write("scores", pa.table({"value": [1, 7, 3]}))
    skeleton = CliRunner().invoke(cli, ["--env", "dev", "contract", "init", "scores"])
    assert skeleton.exit_code == 0
    Path("conf/schemas/scores.yaml").write_text(skeleton.output)
    assert "between: [1, 7]" in skeleton.output
    assert CliRunner().invoke(cli, ["--env", "dev", "validate", "scores"]).exit_code == 0


def test_submit_dry_run_prints_the_spark_submit_command(jars, tmp_path):
    dist = tmp_path / "dist"
    driver = REPO / "deploy" / "demo_driver.py"
    result = lakeio_command("submit", str(driver), "--master", "spark://127.0.0.1:7077", "--dist", str(dist),
                            "--spark-conf", "spark.executor.memory=2g", "--dry-run", "--", "--engine", "spark",
                            env="prod")
    assert result.exit_code == 0, result.output
    words = result.output.split()
    assert words[:2] == ["LAKEIO_ENV=prod", f"LAKEIO_CONF={CONF}"]
    assert words[2].endswith("pyspark/bin/spark-submit")
    assert words[words.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert words[words.index("--jars") + 1].split(",") == [str(jars / "lakeio-helper-0.1.0.jar"),
                                                             str(jars / "third-party" / "delta-spark_4.1_2.13-4.4.0.jar")]
    assert words[words.index("--py-files") + 1] == str(dist / "lakeio.zip")
    conf = [words[i + 1] for i, word in enumerate(words) if word == "--conf"]
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in conf
    assert "spark.executor.memory=2g" in conf
    assert "spark.ui.showConsoleProgress=false" in conf  # no progress bar in the job's log
    assert words[-3:] == [str(driver), "--engine", "spark"]
    names = zipfile.ZipFile(dist / "lakeio.zip").namelist()
    assert "lakeio/cli.py" in names and "lakeio/spark/session.py" in names
    assert not any("__pycache__" in name for name in names)


def test_submit_never_prints_credentials(jars, tmp_path, conf_with_credentials):
    result = lakeio_command("submit", str(REPO / "deploy" / "demo_driver.py"), "--dist", str(tmp_path / "d"),
                            "--dry-run", conf=str(conf_with_credentials), env="prod")
    assert result.exit_code == 0
    assert "very-secret-value" not in result.output and "AKIAEXAMPLE" not in result.output


def test_submit_without_the_jars_exits_3(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEIO_JARS_DIR", str(tmp_path / "nothing"))
    result = lakeio_command("submit", str(REPO / "deploy" / "demo_driver.py"), "--dry-run", env="prod")
    assert result.exit_code == 3
    assert "JVM helper" in result.output and "make setup" in result.output


def test_run_calls_the_step_with_the_catalog_of_the_environment(tmp_path, monkeypatch):
    (tmp_path / "steps.py").write_text(textwrap.dedent("""
        def aggregate(lake, period):
            flights = lake.read("flights", columns=["carrier", "dep_delay"]).to_arrow()
            lake.write("delay_by_carrier", flights.group_by("carrier").aggregate([("dep_delay", "mean")]),
                       period=period)
        """))
    monkeypatch.chdir(tmp_path)
    result = lakeio_command("run", "steps:aggregate", "2013-01")
    assert result.exit_code == 0, result.output
    written = pq.read_table(tmp_path / "sample-output" / "delay_by_carrier" / "2013-01")
    assert written.num_rows == 13  # the carriers of the sample


def test_run_exits_1_when_the_step_writes_data_that_fails_its_contract(scores):
    Path("bad_steps.py").write_text("import pyarrow as pa\n\n"
                                "def bad(lake):\n    lake.write('scores', pa.table({'value': [42]}))\n")
    result = CliRunner().invoke(cli, ["--env", "dev", "run", "bad_steps:bad"])
    assert result.exit_code == 1
    assert "failed its contract" in result.output
    assert not Path("out/scores").exists()


def test_run_refuses_a_bad_step_with_exit_2(scores):
    Path("constants.py").write_text("VALUE = 1\n")
    results = [CliRunner().invoke(cli, ["--env", "dev", "run", step]) for step in ("constants", "nomodule:f", "constants:VALUE")]
    assert [r.exit_code for r in results] == [2, 2, 2]
    assert "is not MODULE:FUNCTION" in results[0].output
    assert "cannot import 'nomodule'" in results[1].output
    assert "constants has no function 'VALUE'" in results[2].output

"""Hostile configuration and placeholder values: every one is a short, clear lakeio error, found
at load (YAML) or when the call is made (placeholders), and no value leaves its dataset's location."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeio import Catalog, ConfigError, InvalidArgumentError
from lakeio.catalog import fill_placeholders
from lakeio.config import MAX_YAML_DEPTH, S3Settings, load_config
from lakeio.storage import Storage, resolve_location

GOOD = "ok: {format: delta, environments: {local: {uri: data/ok}}}\n"


def problems(folder: Path) -> str:
    start = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    assert time.perf_counter() - start < 5, "a hostile file must be refused quickly"
    message = str(caught.value)
    assert len(message) < 2_000, f"a hostile file gets a short message, not {len(message):,} characters"
    return message


@pytest.fixture
def conf(tmp_path) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir()
    return folder


def alias_bomb(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [9, 10])
def test_an_alias_bomb_is_refused_fast_with_a_small_message(conf, levels):
    (conf / "bomb.yaml").write_text(alias_bomb(levels))
    assert "alias bomb" in problems(conf)


def test_aliases_a_configuration_uses_still_work(conf):
    (conf / "r.yaml").write_text('a: {format: csv, options: &opts {delimiter: ";"}, environments: {local: {uri: d/a}}}\n'
                                 'b: {format: csv, options: *opts, environments: {local: {uri: d/b}}}\n')
    _, resources, _ = load_config(conf)
    assert resources["b"].options.delimiter == ";"


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}")])
def test_twenty_thousand_nested_brackets_are_a_config_error(conf, opening, closing):
    (conf / "deep.yaml").write_text("x: " + opening * 20_000 + closing * 20_000 + "\n")
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in problems(conf)


def test_non_utf8_bytes_name_the_file_and_the_byte_offset(conf):
    path = conf / "latin1.yaml"
    path.write_bytes(b"x:\n  format: delta\n  description: caf\xe9\n")
    message = problems(conf)
    assert str(path) in message and "offset 37" in message and "line 3" in message and "UTF-8" in message


def test_a_dataset_name_that_is_not_text_is_named_beside_the_others(conf):
    (conf / "r.yaml").write_text("1: {format: delta, environments: {local: {uri: data/one}}}\n" + GOOD
                                 + "2024-01-31: {format: delta, environments: {local: {uri: data/day}}}\n")
    message = problems(conf)
    assert "1: a dataset name is text, not int" in message
    assert "2024-01-31: a dataset name is text, not date" in message


def test_a_typo_at_a_higher_level_hides_no_error_below_it(conf):
    (conf / "r.yaml").write_text(
        "x: {format: delta, enviroments: {local: {uri: a, engin: spark, format: xml, options: {delimter: ';'}}}}\n")
    message = problems(conf)
    assert "x.enviroments: unknown key; did you mean 'environments'?" in message
    assert "x.enviroments.local.engin: unknown key; did you mean 'engine'?" in message
    assert "x.enviroments.local.format: 'xml' is not one of delta, parquet, csv, json" in message
    assert "x.enviroments.local.options.delimter: unknown key; did you mean 'delimiter'?" in message


def test_a_typo_in_the_settings_hides_nothing_below_it(conf):
    (conf / "lakeio.yaml").write_text("environments: {prod: {engine: spark, spakr: {mastr: x}}}\n")
    message = problems(conf)
    assert "environments.prod.spakr.mastr: unknown key; did you mean 'master'?" in message


@pytest.mark.parametrize("size", [0, "0B", 1, "1000B"])
def test_target_file_size_below_one_kib_is_refused(conf, size):
    (conf / "r.yaml").write_text(yaml.safe_dump(
        {"x": {"format": "parquet", "options": {"target_file_size": size}, "environments": {"local": {"uri": "a"}}}}))
    assert "x.options.target_file_size: Input should be greater than or equal to 1024" in problems(conf)


@pytest.mark.parametrize("uri", ["gs://bucket/x", "hdfs://nn/x", "abfs://c@a/x", "http://host/x"])
def test_unsupported_schemes_are_refused_at_load(conf, uri):
    (conf / "r.yaml").write_text(yaml.safe_dump(
        {"x": {"format": "parquet", "environments": {"local": {"uri": "a"}, "prod": {"uri": uri}}}}))
    assert "x.environments.prod.uri:" in problems(conf) and "unsupported URI scheme" in problems(conf)


def test_a_scheme_from_a_variable_is_checked_when_expanded(conf, monkeypatch):
    monkeypatch.setenv("LAKE", "gs://bucket")
    (conf / "r.yaml").write_text('x: {format: parquet, environments: {local: {uri: "${LAKE}/x"}}}\n')
    with pytest.raises(ConfigError, match="unsupported URI scheme 'gs'"):
        Catalog.load(conf, env="local")


@pytest.mark.parametrize("outer, inner", [
    ("data/a", "data/a/b"), ("s3://bkt/lake", "s3://bkt/lake/deep/er"), ("data/runs/{run}", "data/runs/x/y"),
])
def test_a_dataset_inside_another_is_refused_at_load(conf, outer, inner):
    (conf / "r.yaml").write_text(yaml.safe_dump({
        "outer": {"format": "parquet", "environments": {"local": {"uri": outer}}},
        "inner": {"format": "delta", "environments": {"local": {"uri": inner}}}}))
    with pytest.raises(ConfigError, match=r"inner.environments.local.uri: .* is inside dataset 'outer'"):
        Catalog.load(conf, env="local")


def test_datasets_beside_each_other_or_at_one_location_load(conf):
    (conf / "r.yaml").write_text(yaml.safe_dump({
        "a": {"format": "parquet", "environments": {"local": {"uri": "data/a"}}},
        "ab": {"format": "parquet", "environments": {"local": {"uri": "data/ab/x"}}},
        "a_checked": {"format": "parquet", "environments": {"local": {"uri": "data/a"}}},
        "runs": {"format": "parquet", "environments": {"local": {"uri": "data/runs/{run}/out"}}},
        "other_runs": {"format": "parquet", "environments": {"local": {"uri": "data/runs/{run}/log"}}}}))
    assert Catalog.load(conf, env="local").names == ["a", "a_checked", "ab", "other_runs", "runs"]


@pytest.mark.parametrize("uri", ["data/${RUN:-}", "data/${RUN:-}/", "${ROOT:-}", "s3://bkt/lake/${RUN:-}"])
def test_an_empty_variable_that_would_name_the_parent_folder_is_refused(conf, uri):
    (conf / "r.yaml").write_text(yaml.safe_dump({"x": {"format": "parquet", "environments": {"local": {"uri": uri}}}}))
    with pytest.raises(ConfigError, match="is empty, so the URI .* would name the folder above the dataset"):
        Catalog.load(conf, env="local")


def test_an_empty_variable_inside_a_folder_name_is_fine(conf):
    (conf / "r.yaml").write_text('x: {format: parquet, environments: {local: {uri: "data/x${SUFFIX:-}"}}}\n')
    assert Catalog.load(conf, env="local", base_dir="/b").location("x").path == "/b/data/x"


# -- placeholders --------------------------------------------------------------------------------

HOSTILE_PLACEHOLDERS = ["%2e%2e", "..%2F..", "%2F", "*", "{a,b}", "[12]", "?", "~", "~root", None, "", " ", "x ",
                        "a" * 5_000, "a:b", "a\nb", "a\tb", ".", "..", "a/b", "a\\b", "\0", "#x", "$HOME", "x|y"]


@pytest.mark.parametrize("value", HOSTILE_PLACEHOLDERS)
def test_hostile_placeholder_values_are_refused_with_a_clear_error(value):
    with pytest.raises(InvalidArgumentError, match="placeholder run=.* must be one non-empty path segment") as caught:
        fill_placeholders("s3://bkt/runs/{run}", {"run": value}, "dataset 'runs'")
    assert len(str(caught.value)) < 500


@pytest.mark.parametrize("value", ["2024-01-31", "run_42", "Zürich", "a=b", "v1.2.3", "...", 7, "a b", "x" * 255])
def test_plain_placeholder_values_are_filled(value):
    assert fill_placeholders("data/runs/{run}", {"run": value}, "w") == f"data/runs/{value}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=300), st.integers(), st.none(), st.floats()))
def test_any_placeholder_value_stays_one_folder_under_the_dataset(value):
    """Whatever the value, the call is refused or its location is one folder below the template's
    prefix, on local paths and S3 alike (no decoding, globbing or home expansion can change that)."""
    for template, base in (("s3://bkt/runs/{run}", "bkt/runs"), ("data/runs/{run}", "/base/data/runs")):
        try:
            uri = fill_placeholders(template, {"run": value}, "w")
        except InvalidArgumentError:
            continue
        location = resolve_location(uri, Path("/base"))
        parent, _, segment = location.path.rpartition("/")
        assert parent == base and segment == str(value)
        assert not set(segment) & set("%*?[]{}~/\\:") and segment not in (".", "..")


# -- secrets -------------------------------------------------------------------------------------

def test_s3_secrets_never_print(conf, monkeypatch):
    monkeypatch.setenv("MY_SECRET", "s3cr3t-from-env")
    (conf / "lakeio.yaml").write_text(yaml.safe_dump({"environments": {"local": {"s3": {
        "access_key_id": "AKIA", "secret_access_key": "${MY_SECRET}", "session_token": "t0ken-in-yaml"}}}}))
    (conf / "r.yaml").write_text(GOOD)
    lake = Catalog.load(conf, env="local")
    storage = Storage(lake.settings.s3)
    shown = " ".join([repr(lake), repr(lake.settings), str(lake.settings), repr(storage), repr(storage.s3),
                      str(lake.settings.model_dump()), lake.settings.model_dump_json(), storage.hadoop_conf().__repr__()])
    assert "s3cr3t-from-env" not in shown and "t0ken-in-yaml" not in shown
    assert storage.s3.credentials()["AWS_SECRET_ACCESS_KEY"] == "s3cr3t-from-env"  # the clients still get it
    assert storage.hadoop_credentials()["fs.s3a.session.token"] == "t0ken-in-yaml"


def test_credentials_reach_a_new_jvm_through_its_environment_only_while_it_starts(monkeypatch):
    import os

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "outer")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    storage = Storage(S3Settings(access_key_id="k", secret_access_key="inner", session_token="tok"))
    with storage.credentials_in_environment():
        assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                os.environ["AWS_SESSION_TOKEN"]) == ("k", "inner", "tok")
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "outer" and "AWS_SESSION_TOKEN" not in os.environ


# -- regexes of contracts ------------------------------------------------------------------------

@pytest.mark.parametrize("regex", ["[[:alpha:]]", "(?i)abc", "(?P<name>a)", "(?<name>a)", "(?=a)", "(?<!a)b",
                                   r"(a)\1", r"\p{L}", r"\bword", "a++", "a{", "]", "(a", "a)", "*a", r"\A", r"\Z",
                                   "[a&&b]", r"\Qx\E", "[a-z", "\\"])
def test_regexes_outside_the_common_subset_are_refused_at_contract_load(tmp_path, regex):
    from lakeio.validation.contract import load_contract

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"columns": {"s": {"type": "string", "checks": [{"pattern": regex}]}}}))
    problems: list[str] = []
    assert load_contract(path, problems) is None
    assert len(problems) == 1 and "columns.s.checks.0.pattern.regex:" in problems[0], problems


@pytest.mark.parametrize("regex, java", [
    ("^[A-Z0-9]{2}$", r"^[A-Z0-9]{2}\z"), ("a.b", r"a[^\n]b"), (r"^\s+$", r"^[\t\n\f\r ]+\z"),
    (r"[\s-]", r"[\t\n\f\r -]"), ("(?:ab)+?|x{2,3}", "(?:ab)+?|x{2,3}"), (r"\$\.\d\w\D\W\S", r"\$\.\d\w\D\W[^\t\n\f\r ]"),
])
def test_portable_regexes_are_spelled_for_java_with_re2s_meaning(regex, java):
    from lakeio.validation.contract import portable_regex

    assert portable_regex(regex) == java


_ATOMS = st.sampled_from(["a", "b", "Z", "0", "-", " ", ".", r"\d", r"\w", r"\s", r"\.", "[a-c]", "[^b]", "[ab\\d]"])


@st.composite
def _bodies(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        atom = f"(?:{draw(_bodies(depth + 1))})" if depth < 2 and draw(st.booleans()) else draw(_ATOMS)
        parts.append(atom + draw(st.sampled_from(["", "*", "+", "?", "{1,2}", "*?"])))
    return "".join(parts)


@st.composite
def _subset_regexes(draw):
    return draw(st.sampled_from(["{}", "^{}", "{}$", "^{}$", "{}|b"])).format(draw(_bodies()))


@settings(max_examples=200, deadline=None)
@given(regex=_subset_regexes(), value=st.text(alphabet="abZ0- .\n\r\t\x0b", max_size=8))
def test_the_java_form_matches_what_the_regex_matches(regex, value):
    """Python's re (ASCII) stands in for both readers on the subset: the Java spelling, with Java's
    \\z as Python's \\Z, matches exactly what the regex matches with RE2's meaning (its $ the end of
    the value, its \\s without the vertical tab); Spark itself is tested in test_hostile_input."""
    import re

    from lakeio.validation.contract import portable_regex

    java = portable_regex(regex).replace(r"\z", r"\Z")
    re2_meaning = regex.replace("$", r"\Z").replace(r"\s", r"[\t\n\f\r ]")
    assert bool(re.search(java, value, re.ASCII)) == bool(re.search(re2_meaning, value, re.ASCII))


def test_the_spark_conf_lakeio_starts_a_session_with_holds_no_credential():
    from lakeio.config import EnvironmentSettings
    from lakeio.spark.session import session_conf

    settings = EnvironmentSettings(s3=S3Settings(access_key_id="AKID", secret_access_key="s3cr3t", session_token="tok"))
    conf = session_conf(settings, Storage(settings.s3))
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("TemporaryAWSCredentialsProvider")
    assert not {"s3cr3t", "tok", "AKID"} & set(conf.values())
    assert not any(key.endswith(("secret.key", "session.token", "access.key")) for key in conf)


def test_sessions_lakeio_starts_print_no_console_progress_bar_unless_the_user_asks():
    from lakeio.config import EnvironmentSettings, SparkSettings
    from lakeio.spark.session import session_conf

    settings = EnvironmentSettings()
    assert session_conf(settings, Storage(settings.s3))["spark.ui.showConsoleProgress"] == "false"
    asked = EnvironmentSettings(spark=SparkSettings(conf={"spark.ui.showConsoleProgress": "true"}))
    assert session_conf(asked, Storage(asked.s3))["spark.ui.showConsoleProgress"] == "true"


def test_result_too_large_says_sizes_a_person_reads(conf):
    from lakeio import ResultTooLargeError
    from lakeio.requests import ScanPlan
    from lakeio.spark.handoff import check_fits_in_memory

    (conf / "r.yaml").write_text(GOOD)
    plan = ScanPlan(Catalog.load(conf, env="local").resolve("ok"))
    with pytest.raises(ResultTooLargeError, match=r"about 50.0 MiB in memory and 40.0 MiB is available"):
        check_fits_in_memory(plan, 50 * 2**20, 40 * 2**20)

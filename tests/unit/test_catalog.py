"""lakeio.catalog without moving data: names, bindings, placeholders, URIs, argument errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakeio import (
    Catalog,
    ConfigError,
    InvalidArgumentError,
    LakeioError,
    ResourceNotFoundError,
)
from lakeio.catalog import fill_placeholders
from lakeio.config import S3Settings
from lakeio.dispatch import choose_engine
from lakeio.predicate import Compare
from lakeio.storage import Location, Storage, resolve_location

RESOURCES = """
flights:
  format: delta
  partition_by: [year, month]
  environments:
    local: {uri: data/flights}
    prod: {uri: "s3://acme-lake/flights/"}
delay_by_carrier:
  format: parquet
  environments:
    local: {uri: "data/delay_by_carrier/{period}"}
    prod: {uri: "s3a://acme-lake/models/delay_by_carrier/{period}"}
local_only:
  format: parquet
  environments:
    local: {uri: /abs/local_only}
absolute_file:
  format: parquet
  environments:
    local: {uri: "file:///abs/file/uri"}
bucket_only:
  format: parquet
  environments:
    local: {uri: "s3://just-a-bucket/only"}
"""


@pytest.fixture
def lake(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", RESOURCES)
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path / "base")


@pytest.fixture
def prod(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", RESOURCES)
    return Catalog.load(tmp_path / "conf", env="prod", base_dir=tmp_path / "base")


# -- fill_placeholders ---------------------------------------------------------------------------

@pytest.mark.parametrize("template, values, expected", [
    ("data/runs/{run_date}", {"run_date": "2024-01-31"}, "data/runs/2024-01-31"),
    ("data/{a}/{b}", {"a": "x", "b": 7}, "data/x/7"),
    ("data/{a}/{a}", {"a": "x"}, "data/x/x"),
    ("data/plain", {}, "data/plain"),
    ("data/{{literal}}", {}, "data/{literal}"),
    ("s3://b/{p}/x", {"p": "..."}, "s3://b/.../x"),      # three dots is an ordinary name
    ("data/{p}", {"p": ".hidden"}, "data/.hidden"),
    ("data/{p}", {"p": "with space"}, "data/with space"),
    ("data/{p}", {"p": "été"}, "data/été"),
])
def test_fill_placeholders_fills_good_values(template, values, expected):
    assert fill_placeholders(template, values, "dataset 'x'") == expected


def test_fill_placeholders_missing_value():
    with pytest.raises(InvalidArgumentError) as caught:
        fill_placeholders("data/{period}/{part}", {"part": "1"}, "dataset 'runs'")
    message = str(caught.value)
    assert "dataset 'runs'" in message
    assert "needs a value for period" in message
    assert "'data/{period}/{part}'" in message
    assert isinstance(caught.value, ValueError)


def test_fill_placeholders_lists_every_missing_value():
    with pytest.raises(InvalidArgumentError, match="needs a value for a, b"):
        fill_placeholders("data/{b}/{a}", {}, "dataset 'x'")


def test_fill_placeholders_unknown_placeholder():
    with pytest.raises(InvalidArgumentError) as caught:
        fill_placeholders("data/{period}", {"period": "p", "peroid": "q"}, "dataset 'runs'")
    assert "has no placeholder peroid" in str(caught.value)
    assert "dataset 'runs'" in str(caught.value)


@pytest.mark.parametrize("value", ["..", ".", "", "a/b", "a\\b", "/abs", "../up", "a\0b"])
def test_fill_placeholders_rejects_values_that_are_not_one_segment(value):
    with pytest.raises(InvalidArgumentError) as caught:
        fill_placeholders("data/{period}/out", {"period": value}, "dataset 'runs'")
    message = str(caught.value)
    assert f"placeholder period={value!r}" in message
    assert "dataset 'runs'" in message
    assert "one non-empty path segment" in message


@pytest.mark.parametrize("template", ["data/{}", "data/{0}", "data/{a.b}", "data/{a[0]}"])
def test_fill_placeholders_malformed_placeholder_is_a_config_error(template):
    with pytest.raises(ConfigError, match="malformed placeholder"):
        fill_placeholders(template, {}, "dataset 'x'")


# -- names, resources, errors on lookup ---------------------------------------------------------

def test_names_env_and_resource(lake):
    assert lake.env == "local"
    assert lake.names == sorted(["flights", "delay_by_carrier", "local_only", "absolute_file", "bucket_only"])
    assert lake.resource("flights").format == "delta"
    assert lake.resource("flights").partition_by == ("year", "month")


def test_unknown_dataset(lake):
    with pytest.raises(ResourceNotFoundError) as caught:
        lake.read("flihgts")
    error = caught.value
    assert isinstance(error, KeyError)
    assert isinstance(error, LakeioError)
    message = str(error)
    assert message == error.args[0]  # the plain message, not KeyError's repr of it
    assert not message.startswith(("'", '"'))
    assert message.startswith("no dataset 'flihgts' in the catalog; did you mean 'flights'?")
    assert "(datasets: absolute_file, bucket_only, delay_by_carrier, flights, local_only)" in message


def test_unknown_dataset_is_a_key_error_everywhere(lake):
    for call in (lambda: lake.resource("nope"), lambda: lake.location("nope"), lambda: lake.exists("nope"),
                 lambda: lake.write("nope", None)):
        with pytest.raises(KeyError) as caught:
            call()
        assert "no dataset 'nope'" in str(caught.value)
        assert "did you mean" not in str(caught.value)


def test_dataset_without_a_binding_for_the_environment(prod):
    with pytest.raises(ResourceNotFoundError) as caught:
        prod.read("local_only")
    message = str(caught.value)
    assert "dataset 'local_only'" in message
    assert "no binding for environment 'prod'" in message
    assert "(it has: local)" in message
    assert "datasets.yaml" in message
    assert isinstance(caught.value, KeyError)


@pytest.mark.parametrize("mode", ["overwrite_all", "Overwrite", "", "ignore", None])
def test_bad_write_mode(lake, tmp_path, mode):
    with pytest.raises(InvalidArgumentError) as caught:
        lake.write("local_only", [1, 2], mode=mode)
    assert isinstance(caught.value, ValueError)
    assert f"write mode {mode!r} is not one of error, append, overwrite" in str(caught.value)
    assert not (tmp_path / "base").exists()


def test_columns_must_be_a_list_not_a_string(lake):
    with pytest.raises(InvalidArgumentError, match="columns must be a list of names"):
        lake.read("flights", columns="carrier")


def test_read_is_lazy_and_parses_the_filter(lake, tmp_path):
    frame = lake.read("flights", columns=("carrier", "dep_delay"), where="year = 2013")
    assert frame.engine == "arrow"
    assert frame.plan.columns == ("carrier", "dep_delay")
    assert frame.plan.predicate == Compare("year", "=", 2013)
    assert frame.plan.location == Location("file", str(tmp_path / "base" / "data" / "flights"))
    assert frame.plan.partition_by == ("year", "month")
    assert repr(frame) == "LakeFrame('flights', engine='arrow')"
    assert not (tmp_path / "base").exists()  # nothing was read or created


def test_read_rejects_a_bad_filter_before_touching_storage(lake):
    with pytest.raises(InvalidArgumentError, match="filter 'year ='"):
        lake.read("flights", where="year =")


def test_read_needs_the_placeholders(lake):
    with pytest.raises(InvalidArgumentError, match="needs a value for period"):
        lake.read("delay_by_carrier")
    with pytest.raises(InvalidArgumentError, match="placeholder period='..'"):
        lake.read("delay_by_carrier", period="..")
    with pytest.raises(InvalidArgumentError, match="has no placeholder perid"):
        lake.read("flights", perid="2013-01")


# -- locations -----------------------------------------------------------------------------------

def test_relative_local_uris_resolve_against_base_dir(lake, tmp_path):
    base = tmp_path / "base"
    assert lake.location("flights") == Location("file", str(base / "data" / "flights"))
    assert lake.location("delay_by_carrier", period="2013-01") == Location(
        "file", str(base / "data" / "delay_by_carrier" / "2013-01"))
    assert lake.location("local_only") == Location("file", "/abs/local_only")
    assert lake.location("absolute_file") == Location("file", "/abs/file/uri")


def test_base_dir_defaults_to_the_current_directory(tmp_path, write_yaml, monkeypatch):
    write_yaml("conf/datasets.yaml", RESOURCES)
    monkeypatch.chdir(tmp_path)
    lake = Catalog.load("conf", env="local")
    assert lake.location("flights").path == str(tmp_path.resolve() / "data" / "flights")


def test_s3_uris(prod, lake):
    flights = prod.location("flights")
    assert flights == Location("s3", "acme-lake/flights")
    assert flights.uri == "s3://acme-lake/flights"
    assert flights.spark_path == "s3a://acme-lake/flights"
    assert prod.location("delay_by_carrier", period="2013-01") == Location(
        "s3", "acme-lake/models/delay_by_carrier/2013-01")
    assert lake.location("bucket_only") == Location("s3", "just-a-bucket/only")


def test_unsupported_scheme_is_a_config_error_at_load_in_every_environment(tmp_path, write_yaml):
    write_yaml("conf/d.yaml", "d: {format: parquet, environments: {local: {uri: a}, prod: {uri: 'gs://acme/nope'}}}")
    with pytest.raises(ConfigError, match=r"d.environments.prod.uri: 'gs://acme/nope': unsupported URI scheme 'gs'"):
        Catalog.load(tmp_path / "conf", env="local")


@pytest.mark.parametrize("uri", ["s3:///no-bucket", "s3://just-a-bucket", "s3://b/", "/", "s3://b/a/../c"])
def test_a_uri_naming_no_folder_of_its_own_is_a_config_error_at_load(tmp_path, write_yaml, uri):
    write_yaml("conf/d.yaml", f"d: {{format: parquet, environments: {{local: {{uri: '{uri}'}}}}}}")
    with pytest.raises(ConfigError, match=r"d.environments.local.uri: .*(bucket|root|'\.\.')"):
        Catalog.load(tmp_path / "conf", env="local")


@pytest.mark.parametrize("uri, expected", [
    ("data/x", Location("file", "/base/data/x")),
    ("./data/../y", Location("file", "/base/y")),
    ("/abs/p", Location("file", "/abs/p")),
    ("/abs/p/", Location("file", "/abs/p")),
    ("file:///abs/p", Location("file", "/abs/p")),
    ("s3://bucket/key", Location("s3", "bucket/key")),
    ("s3://bucket/key/", Location("s3", "bucket/key")),
    ("s3://bucket/a/b/c", Location("s3", "bucket/a/b/c")),
    ("s3a://bucket/key", Location("s3", "bucket/key")),
])
def test_resolve_location(uri, expected):
    assert resolve_location(uri, Path("/base")) == expected


def test_resolve_location_expands_home(monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    assert resolve_location("~/lake", Path("/base")) == Location("file", "/home/someone/lake")


@pytest.mark.parametrize("uri", ["gs://b/k", "http://host/p", "hdfs://nn/p", "abfs://c@a/p"])
def test_resolve_location_unsupported_schemes(uri):
    with pytest.raises(ConfigError) as caught:
        resolve_location(uri, Path("/base"))
    assert repr(uri) in str(caught.value)
    assert "unsupported URI scheme" in str(caught.value)


def test_location_uri_and_spark_path_for_files():
    location = Location("file", "/abs/dir")
    assert location.uri == "/abs/dir"
    assert location.spark_path == "file:/abs/dir"


def test_file_uri_with_a_host_part_is_not_silently_truncated():
    try:
        location = resolve_location("file://data/flights", Path("/base"))
    except ConfigError as error:  # refusing it is fine too
        assert "file://data/flights" in str(error)
    else:
        assert location.path.endswith("data/flights"), location


@pytest.mark.parametrize("env, value", [("local", "#"), ("local", "?x"), ("prod", "#"), ("prod", "a?b")])
def test_placeholder_value_cannot_escape_the_prefix_through_url_syntax(tmp_path, write_yaml, env, value):
    write_yaml("conf/runs.yaml", """
        runs:
          format: parquet
          environments:
            local: {uri: "file:///lake/runs/{day}/out"}
            prod: {uri: "s3://bucket/runs/{day}/out"}
    """)
    lake = Catalog.load(tmp_path / "conf", env=env)
    try:
        location = lake.location("runs", day=value)
    except InvalidArgumentError as error:  # refusing the value is a fix
        assert f"placeholder day={value!r}" in str(error)
    else:
        assert location.path.endswith(f"/{value}/out"), location


# -- engine choice and storage settings (pure functions) ----------------------------------------

@pytest.mark.parametrize("requested, bound, environment, expected", [
    (None, None, "auto", ("arrow", "auto: not Spark data, in-process")),
    ("auto", "auto", "auto", ("arrow", "auto: not Spark data, in-process")),
    ("arrow", "spark", "spark", ("arrow", "argument: engine=arrow")),
    (None, "spark", "arrow", ("spark", "binding: engine=spark")),
    ("auto", "arrow", "spark", ("arrow", "binding: engine=arrow")),
    (None, None, "spark", ("spark", "environment: engine=spark")),
])
def test_choose_engine_precedence(requested, bound, environment, expected):
    assert choose_engine(requested, bound, environment) == expected


def test_choose_engine_sends_spark_data_to_spark_without_importing_pyspark():
    DataFrame = type("DataFrame", (), {"__module__": "pyspark.sql.dataframe"})
    assert choose_engine(None, None, "auto", DataFrame()) == ("spark", "auto: the data is a Spark DataFrame")
    assert choose_engine(None, None, "auto", [1]) == ("arrow", "auto: not Spark data, in-process")


@pytest.fixture
def no_aws_env(monkeypatch):
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_storage_options_for_local_files(no_aws_env):
    storage = Storage(S3Settings())
    assert storage.delta_options(Location("file", "/x")) == {}
    assert storage.s3.region == "us-east-1"


def test_storage_settings_win_over_aws_variables(no_aws_env, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://env.example")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    from_env = Storage(S3Settings())
    assert from_env.delta_options(Location("s3", "b/k")) == {
        "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "https://env.example",
        "AWS_ACCESS_KEY_ID": "env-key", "AWS_SECRET_ACCESS_KEY": "env-secret",
    }
    from_yaml = Storage(S3Settings(region="us-west-2", endpoint_url="http://localhost:9000",
                                   access_key_id="k", secret_access_key="s", session_token="t"))
    assert from_yaml.delta_options(Location("s3", "b/k")) == {
        "AWS_REGION": "us-west-2", "AWS_ENDPOINT_URL": "http://localhost:9000", "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
    }


# s3a retries transient faults to the bound pyarrow's and boto3's clients have.
RETRIES = {"spark.hadoop.fs.s3a.attempts.maximum": "10", "spark.hadoop.fs.s3a.retry.limit": "10",
           "spark.hadoop.fs.s3a.retry.interval": "100ms", "spark.hadoop.fs.s3a.retry.throttle.limit": "10",
           "spark.hadoop.fs.s3a.retry.throttle.interval": "100ms"}


def test_hadoop_conf_matches_the_same_endpoint(no_aws_env):
    conf = Storage(S3Settings(region="us-west-2", endpoint_url="http://localhost:9000",
                              access_key_id="k", secret_access_key="s")).hadoop_conf()
    assert conf == {
        **RETRIES,
        "spark.hadoop.fs.s3a.endpoint.region": "us-west-2",
        "spark.hadoop.fs.s3a.endpoint": "http://localhost:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    }
    with_token = Storage(S3Settings(access_key_id="k", secret_access_key="s", session_token="t"))
    assert with_token.hadoop_conf()["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith(
        "TemporaryAWSCredentialsProvider")
    assert with_token.hadoop_credentials() == {"fs.s3a.access.key": "k", "fs.s3a.secret.key": "s",
                                               "fs.s3a.session.token": "t"}
    assert Storage(S3Settings()).hadoop_conf() == {**RETRIES, "spark.hadoop.fs.s3a.endpoint.region": "us-east-1"}


def test_catalog_storage_uses_the_environment_s3_settings(tmp_path, write_yaml, no_aws_env):
    write_yaml("conf/lakeio.yaml", """
        environments:
          test: {s3: {region: ap-south-1, endpoint_url: "http://127.0.0.1:5000"}}
    """)
    write_yaml("conf/d.yaml", "d: {format: delta, environments: {test: {uri: 's3://bkt/d'}}}")
    lake = Catalog.load(tmp_path / "conf", env="test")
    options = lake._storage.delta_options(lake.location("d"))
    assert options["AWS_REGION"] == "ap-south-1"
    assert options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert options["AWS_ALLOW_HTTP"] == "true"
    assert os.environ.get("AWS_ENDPOINT_URL") is None


@pytest.mark.parametrize("template", ["data/{p!r}", "data/{p:>5}"])
def test_placeholders_take_no_format_syntax(template):
    with pytest.raises(ConfigError, match="malformed placeholder"):
        fill_placeholders(template, {"p": "x"}, "dataset 'd'")

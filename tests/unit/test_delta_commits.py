"""s3.delta_commits: the one arbitration every Delta writer of an S3 environment takes part in, in
the Spark conf lakeio starts sessions with and in the options delta-rs commits with (no JVM here;
tests/integration/test_delta_race.py races real writers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeio import ConfigError, EngineUnavailableError
from lakeio.config import EnvironmentSettings, S3Settings
from lakeio.spark.session import S3_LOG_STORE, S3_LOG_STORE_CONF, session_conf
from lakeio.storage import Storage, resolve_location

TABLE = resolve_location("s3://bucket/events", Path("/"))
LOCAL = resolve_location("/tmp/events", Path("/"))


def test_conditional_put_is_the_default_and_spark_sessions_get_its_log_store():
    settings = EnvironmentSettings()
    assert settings.s3.delta_commits == "conditional_put"
    assert session_conf(settings, Storage(settings.s3))[S3_LOG_STORE_CONF] == S3_LOG_STORE


def test_single_writer_keeps_deltas_default_log_store():
    settings = EnvironmentSettings(s3=S3Settings(delta_commits="single_writer"))
    assert S3_LOG_STORE_CONF not in session_conf(settings, Storage(settings.s3))


def test_an_unknown_arbitration_is_a_config_error_naming_the_choices(tmp_path, write_yaml):
    from lakeio import Catalog

    write_yaml("conf/lakeio.yaml", "environments: {prod: {s3: {delta_commits: dynamodb}}}")
    with pytest.raises(ConfigError, match="s3.delta_commits: 'dynamodb' is not one of conditional_put, single_writer"):
        Catalog.load(tmp_path / "conf", env="prod")


@pytest.mark.parametrize("variable, value", [("AWS_S3_LOCKING_PROVIDER", "dynamodb"), ("aws_copy_if_not_exists", "multipart"),
                                             ("AWS_CONDITIONAL_PUT", "disabled")])
def test_a_delta_rs_writer_set_to_another_arbitration_is_refused(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    storage = Storage(S3Settings())
    with pytest.raises(EngineUnavailableError, match=f"{variable.upper()}={value} makes delta-rs commit by another"):
        storage.delta_write_options(TABLE)
    assert storage.delta_write_options(LOCAL) == {}  # a local table needs no arbitration
    assert "AWS_REGION" in Storage(S3Settings(delta_commits="single_writer")).delta_write_options(TABLE)


def test_delta_rs_with_its_own_conditional_put_takes_part(monkeypatch):
    monkeypatch.setenv("AWS_CONDITIONAL_PUT", "etag")
    assert Storage(S3Settings()).delta_write_options(TABLE)["AWS_REGION"]

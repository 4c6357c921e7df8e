"""Fixtures for the fast unit tests: no JVM, no Spark, no network, local files under tmp_path only."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

import lakeio

IO_LOGGER = "lakeio.io"


@pytest.fixture(autouse=True)
def _no_ambient_lakeio_env(monkeypatch):
    """Unit tests choose their environment explicitly; a LAKEIO_ENV in the shell must not leak in."""
    monkeypatch.delenv("LAKEIO_ENV", raising=False)


@pytest.fixture
def write_yaml(tmp_path):
    """write_yaml("conf/a.yaml", text) writes dedented YAML under tmp_path and returns its path."""

    def write(relative: str, text: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def io_records(caplog):
    """Returns a function giving the ``record.lakeio`` dicts logged to ``lakeio.io`` so far."""
    caplog.set_level(logging.INFO, logger=IO_LOGGER)

    def records(operation: str | None = None, dataset: str | None = None) -> list[dict]:
        found = [r.lakeio for r in caplog.records if r.name == IO_LOGGER and hasattr(r, "lakeio")]
        return [r for r in found
                if (operation is None or r["operation"] == operation)
                and (dataset is None or r["dataset"] == dataset)]

    records.clear = caplog.clear  # type: ignore[attr-defined]
    records.caplog = caplog  # type: ignore[attr-defined]
    return records


@pytest.fixture
def jars(tmp_path, monkeypatch):
    """A jars folder laid out as `make setup` lays it out (submit and k8s manifest only list it)."""
    folder = tmp_path / "jars"
    (folder / "third-party").mkdir(parents=True)
    (folder / f"lakeio-helper-{lakeio.__version__}.jar").write_bytes(b"")
    (folder / "third-party" / "delta-spark_4.1_2.13-4.4.0.jar").write_bytes(b"")
    monkeypatch.setenv("LAKEIO_JARS_DIR", str(folder))
    monkeypatch.delenv("SPARK_HOME", raising=False)
    return folder


@pytest.fixture
def conf_with_credentials(write_yaml, monkeypatch):
    """A conf folder whose ``prod`` environment holds an access key written in ``lakeio.yaml`` and a
    secret from ``$SECRET_FOR_TEST`` (``very-secret-value``): neither may appear in what a command prints."""
    write_yaml("keys/lakeio.yaml", """
        environments:
          prod: {s3: {access_key_id: AKIAEXAMPLE, secret_access_key: "${SECRET_FOR_TEST}"}}
        """)
    resources = write_yaml("keys/resources.yaml", "t: {format: parquet, environments: {prod: {uri: s3://b/t}}}\n")
    monkeypatch.setenv("SECRET_FOR_TEST", "very-secret-value")
    return resources.parent

"""``idempotency_key`` on the Arrow engine and local Delta (no JVM): an Airflow-style retry of an
append lands once; the key is refused where it cannot be kept. Spark and S3: tests/integration/test_retries.py."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakeio import Catalog, InvalidArgumentError


@pytest.fixture
def lake(tmp_path, write_yaml):
    write_yaml("conf/datasets.yaml", """
        events: {format: delta, environments: {local: {uri: data/events}}}
        files: {format: parquet, environments: {local: {uri: data/files}}}
        """)
    return Catalog.load(tmp_path / "conf", env="local", base_dir=tmp_path)


def test_a_retried_append_lands_once_and_its_record_says_it_was_skipped(lake, tmp_path):
    data = pa.table({"id": [1, 2]})
    first = lake.write("events", data, mode="append", idempotency_key="run-1")
    retry = lake.write("events", data, mode="append", idempotency_key="run-1")
    other = lake.write("events", pa.table({"id": [3]}), mode="append", idempotency_key="run-2")

    assert sorted(lake.read("events").to_arrow()["id"].to_pylist()) == [1, 2, 3]
    assert first.rows == 2 and "idempotent_skip" not in first.extra
    assert retry.rows == 0 and retry.extra == {**retry.extra, "idempotent_skip": True, "idempotency_key": "run-1"}
    assert other.rows == 1
    table = DeltaTable(str(tmp_path / "data" / "events"))
    assert table.version() == 1  # the retry made no commit
    assert table.transaction_version("lakeio:events:run-1") == 0
    assert table.transaction_version("lakeio:events:run-2") == 0


@pytest.mark.parametrize("name, mode, key, message", [
    ("files", "append", "run-1", "plain parquet files cannot tell a repeated append from a new one"),
    ("events", "overwrite", "run-1", "idempotency_key needs mode='append', not 'overwrite'"),
    ("events", "append", "", "idempotency_key must be a non-empty string"),
])
def test_the_key_is_refused_where_it_cannot_be_kept(lake, tmp_path, name, mode, key, message):
    with pytest.raises(InvalidArgumentError, match=message):
        lake.write(name, pa.table({"id": [1]}), mode=mode, idempotency_key=key)
    assert not (tmp_path / "data" / name).exists()

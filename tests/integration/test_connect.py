"""What only Spark Connect has: how the engine is chosen, settings only the server takes, and a
result over the server's result-size limit. (The parity, validation and pruning suites run on
Connect too: their ``connect`` cases.)"""

from __future__ import annotations

import pyarrow as pa
import pytest

import lakeio


@pytest.fixture
def remote_lake(tmp_path, on_connect):
    """A catalog of one CSV dataset whose environment names the test's Connect server."""
    def make(**spark) -> lakeio.Catalog:
        conf = tmp_path / "conf"
        conf.mkdir(exist_ok=True)
        settings = {"remote": on_connect, **spark}
        (conf / "lakeio.yaml").write_text(f"environments: {{local: {{spark: {settings!r}}}}}\n")
        (conf / "data.yaml").write_text(f"notes: {{format: csv, environments: {{local: {{uri: '{tmp_path}/notes'}}}}}}\n")
        return lakeio.Catalog.load(conf, env="local")

    return make


def test_an_environment_with_a_remote_runs_spark_on_connect(remote_lake):
    lake = remote_lake()
    lake.write("notes", pa.table({"id": [1, 2], "note": ["a", "b"]}), engine="spark")
    frame = lake.read("notes", engine="spark")
    assert type(lake.spark()).__module__ == "pyspark.sql.connect.session"
    assert type(frame.to_spark()).__module__ == "pyspark.sql.connect.dataframe"
    assert frame.to_arrow().column("id").to_pylist() == [1, 2]


def test_a_setting_only_the_server_takes_is_refused_by_name_without_its_value(remote_lake):
    lake = remote_lake(conf={"spark.driver.memory": "s3cr3t-8g"})
    with pytest.raises(lakeio.EngineUnavailableError, match="spark.driver.memory.*server's own conf") as raised:
        lake.spark()
    assert "s3cr3t" not in str(raised.value)


def test_a_result_over_the_servers_limit_says_to_stream_it(remote_lake, monkeypatch):
    from pyspark.errors import PySparkException
    from pyspark.sql.connect.dataframe import DataFrame

    lake = remote_lake()
    lake.write("notes", pa.table({"id": [1, 2], "note": ["a", "b"]}), engine="spark")

    def too_large(self):  # the fault: what the server says past spark.driver.maxResultSize
        raise PySparkException("Total size of serialized results of 2 tasks (1100.0 MiB) is bigger than "
                               "spark.driver.maxResultSize (1024.0 MiB)")

    monkeypatch.setattr(DataFrame, "toArrow", too_large)
    with pytest.raises(lakeio.ResultTooLargeError, match=r"dataset 'notes'.*maxResultSize.*\.to_batches\(\)"):
        lake.read("notes", engine="spark").to_arrow()
    assert lake.read("notes", engine="spark").to_batches().read_all().num_rows == 2

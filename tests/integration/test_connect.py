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


# -- results over the server's spark.driver.maxResultSize (the test server's: conftest's 4 MiB) ----------

ROWS = 200_000  # some 7 MiB as Arrow, past the limit; the columns alone (or a write's 50,000-row sample) within it


@pytest.fixture(scope="module")
def large_csv(tmp_path_factory) -> tuple[str, pa.Table]:
    """A CSV file whose rows Spark must parse (so the Connect engine collects them rather than
    Arrow reading files), larger than the server's result-size limit; its folder and its rows."""
    import numpy as np
    import pyarrow.csv as pcsv

    hex = np.random.default_rng(5).bytes(12 * ROWS).hex()  # 24 random hex digits a row: they compress poorly
    rows = pa.table({"id": np.arange(ROWS), "tag": [hex[24 * i:24 * (i + 1)] for i in range(ROWS)]})
    folder = tmp_path_factory.mktemp("large") / "big"
    folder.mkdir()
    pcsv.write_csv(rows, folder / "part-0.csv")
    return str(folder), rows


@pytest.fixture
def large_lake(tmp_path, on_connect, large_csv):
    """A catalog on the test's Connect server with the large CSV (``big``), a Parquet dataset to
    write (``copy``) and a scratch folder of its own (spark.scratch_uri), which the server shares."""
    import yaml

    conf = tmp_path / "conf"
    conf.mkdir()
    scratch = tmp_path / "scratch"
    (conf / "lakeio.yaml").write_text(yaml.safe_dump({"environments": {"local": {
        "engine": "spark", "spark": {"remote": on_connect, "scratch_uri": str(scratch)}}}}))
    (conf / "data.yaml").write_text(yaml.safe_dump({
        "big": {"format": "csv", "environments": {"local": {"uri": large_csv[0]}}},
        "copy": {"format": "parquet", "environments": {"local": {"uri": str(tmp_path / "copy")}}}}))
    return lakeio.Catalog.load(conf, env="local"), scratch


def last_read_record(caplog) -> dict:
    return [r.lakeio for r in caplog.records if r.name == "lakeio.io" and r.lakeio["operation"] == "read"][-1]


def test_a_result_over_the_servers_limit_comes_back_through_the_shared_scratch_folder(large_lake, large_csv,
                                                                                       caplog, monkeypatch):
    from lakeio.spark import handoff

    lake, scratch = large_lake
    expected = large_csv[1]
    caplog.set_level("INFO", logger="lakeio.io")
    probes = []
    probed = handoff._probed_scratch
    monkeypatch.setattr(handoff, "_probed_scratch", lambda *args: probes.append(args) or probed(*args))

    table = lake.read("big").to_arrow()
    assert table.sort_by("id").equals(expected)
    assert last_read_record(caplog)["extra"]["path"] == "spark connect: parquet hand-off"

    streamed = lake.read("big").to_batches().read_all()
    assert streamed.sort_by("id").equals(expected)
    assert last_read_record(caplog)["extra"]["path"] == "spark connect: parquet hand-off"

    # a Connect frame written on the Arrow engine goes through the same folder
    lake.write("copy", lake.read("big").to_spark(), mode="overwrite", engine="arrow")
    assert lake.read("copy", engine="arrow").to_arrow().sort_by("id").equals(expected)
    lake.write("copy", lake.read("big").to_spark(), mode="overwrite", engine="arrow")
    # the server was asked once, for the session and its scratch folder, not per read or write
    assert len(probes) == 1
    # the probe and the staged files are gone
    assert list(scratch.iterdir()) == []


def test_without_a_shared_scratch_a_result_over_the_limit_says_what_works(large_lake, large_csv, monkeypatch):
    from lakeio.spark import handoff

    lake, _ = large_lake
    monkeypatch.setattr(handoff, "shared_scratch", lambda *args: None)  # the fault: the probe says not shared
    advice = (r"dataset 'big' \[local\] at .*big: the result is larger than the Spark Connect server's "
              r"spark.driver.maxResultSize, and the server and this process do not share the scratch folder .*scratch.*"
              r"set spark.scratch_uri .* narrow the read with columns=/where=, or write the data to another "
              r"dataset with lake.write\(\)")
    with pytest.raises(lakeio.ResultTooLargeError, match=advice) as raised:
        lake.read("big").to_arrow()
    assert "maxResultSize" in str(raised.value.__cause__)  # the server's own error, not a stand-in
    with pytest.raises(lakeio.ResultTooLargeError, match=advice):
        lake.read("big").to_batches().read_all()

    # The advice holds: the columns alone fit; a write stays in the server, and its Parquet is read by Arrow.
    ids = lake.read("big", columns=["id"]).to_arrow()
    assert sorted(ids["id"].to_pylist()) == large_csv[1]["id"].to_pylist()
    lake.write("copy", lake.read("big").to_spark(), mode="overwrite")
    assert lake.read("copy").to_arrow().sort_by("id").equals(large_csv[1])

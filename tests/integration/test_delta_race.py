"""Racing writers of one Delta table on the S3 server, of both engines, in separate processes: two
Arrow writers (delta_race_writer.py) and the Spark writer of this process. Every operation lakeio
said succeeded is in the table, exactly once, as one commit of its own; every other got a lakeio
error and left nothing. On the landed main, without an arbitration both engines take part in,
appends from both engines lost commits silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from delta_race_writer import MERGED_KEYS, ROWS, key_base, rows, run

from lakeio.errors import EngineUnavailableError

WRITER = Path(__file__).with_name("delta_race_writer.py")
ARROW_WRITERS = (1, 2)
SPARK_WRITER = 3


@pytest.fixture
def lake(catalog_on, spark):
    lake = catalog_on("s3", "race", events={"format": "delta"})
    lake.write("events", rows(0, "append", 0), mode="overwrite", engine="arrow")  # the table, at version 0
    return lake


def race(lake, tmp_path: Path, arrow_operations: list[str], spark_operations: list[str]) -> list[dict]:
    """Every writer runs its operations at once; the outcome of each operation."""
    lake.read("events", engine="spark").count()  # Spark warmed up, so that its writes overlap the others'
    start = tmp_path / f"start-{uuid.uuid4().hex[:6]}"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "python"),
                                                                os.environ.get("PYTHONPATH", "")])}
    writers = [subprocess.Popen([sys.executable, str(WRITER), str(tmp_path / "conf"), "s3", "events", str(writer),
                                 "arrow", str(start), *arrow_operations],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
               for writer in ARROW_WRITERS]
    try:
        for writer in writers:
            assert json.loads(writer.stdout.readline() or "{}") == {"ready": True}, writer.stderr.read()
        start.touch()
        outcomes = [run(lake, "events", SPARK_WRITER, "spark", operation, n) for n, operation in enumerate(spark_operations)]
        for writer in writers:
            out, err = writer.communicate(timeout=300)
            assert writer.returncode == 0, err
            outcomes += [json.loads(line) for line in out.splitlines()]
    finally:
        for writer in writers:
            writer.kill()
    for outcome in outcomes:  # a writer that lost was told so, in words that say what to do
        assert outcome["ok"] or outcome["error"].startswith("ConcurrentWriteError"), outcome
    return outcomes


def table(lake) -> pa.Table:
    return lake.read("events", engine="arrow").to_arrow().sort_by("key")


def commits(lake) -> int:
    from deltalake import DeltaTable

    from lakeio.config import S3Settings
    from lakeio.storage import Storage

    location = lake.resolve("events").location
    return len(DeltaTable(location.uri, storage_options=Storage(S3Settings()).delta_options(location)).history())


def keys_of(data: pa.Table) -> list[int]:
    return sorted(data["key"].to_pylist())


def test_racing_appends_merges_and_overwrites_of_both_engines_lose_nothing(lake, tmp_path):
    # Appends: blind appends of both engines never conflict, so every one succeeds and lands once.
    appends = race(lake, tmp_path, ["append"] * 4, ["append"] * 2)
    assert all(outcome["ok"] for outcome in appends), [o for o in appends if not o["ok"]]
    expected = [rows(0, "append", 0)] + [rows(o["writer"], "append", o["n"]) for o in appends]
    assert keys_of(table(lake)) == keys_of(pa.concat_tables(expected))
    assert commits(lake) == 1 + len(appends)

    # Merges into the whole table conflict with each other: the losers are refused, the winners land.
    merges = race(lake, tmp_path, ["merge"] * 2, ["merge"] * 1)
    won = [o for o in merges if o["ok"]]
    assert won and commits(lake) == 1 + len(appends) + len(won)
    after = table(lake)
    for writer in (*ARROW_WRITERS, SPARK_WRITER):
        mine = [o["n"] for o in won if o["writer"] == writer]
        updated = after.filter(pc.is_in(after["key"], pa.array([key_base(writer) + k for k in MERGED_KEYS])))
        assert set(updated["value"].to_pylist()) == {100 + max(mine) if mine else 0}, (writer, mine)
    inserted = [rows(o["writer"], "merge", o["n"]).slice(len(MERGED_KEYS)) for o in won]
    assert keys_of(after) == sorted(keys_of(pa.concat_tables(expected + inserted)))
    assert after.num_rows == (1 + len(appends) + len(won)) * ROWS

    # Overwrites: the table is exactly one successful overwrite's rows, never a mix.
    overwrites = race(lake, tmp_path, ["overwrite"] * 2, ["overwrite"] * 1)
    won_overwrites = [o for o in overwrites if o["ok"]]
    assert won_overwrites and commits(lake) == 1 + len(appends) + len(won) + len(won_overwrites)
    final = table(lake).select(["writer", "key", "value", "op"])
    assert any(final.equals(rows(o["writer"], "overwrite", o["n"])) for o in won_overwrites), final.slice(0, 3)


def test_a_delta_rs_writer_with_another_arbitration_is_refused(lake, monkeypatch):
    monkeypatch.setenv("AWS_S3_LOCKING_PROVIDER", "dynamodb")
    with pytest.raises(EngineUnavailableError, match="AWS_S3_LOCKING_PROVIDER=dynamodb .* conditional put"):
        lake.write("events", rows(1, "append", 1), mode="append", engine="arrow")
    with pytest.raises(EngineUnavailableError, match="AWS_S3_LOCKING_PROVIDER"):
        lake.merge("events", rows(1, "merge", 0), on="key", engine="arrow")
    assert keys_of(table(lake)) == keys_of(rows(0, "append", 0))


def test_a_spark_session_without_the_log_store_is_refused(lake, spark, monkeypatch):
    from lakeio.spark.session import S3_LOG_STORE_CONF

    # The fault: a session started without lakeio's conf (a notebook's, a bare spark-submit).
    conf_get = spark.conf.get
    monkeypatch.setattr(spark.conf, "get", lambda key, *default: default[0] if default and key == S3_LOG_STORE_CONF
                        else conf_get(key, *default))
    with pytest.raises(EngineUnavailableError, match=f"single-driver log store.*--conf {S3_LOG_STORE_CONF}="):
        lake.write("events", rows(3, "append", 1), mode="append", engine="spark")
    with pytest.raises(EngineUnavailableError, match=S3_LOG_STORE_CONF):
        lake.merge("events", rows(3, "merge", 0), on="key", engine="spark")
    assert keys_of(table(lake)) == keys_of(rows(0, "append", 0))

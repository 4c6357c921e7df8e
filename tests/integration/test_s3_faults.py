"""Plain-file writes and reads with a proxy in front of the S3 server answering requests 503
SlowDown. Transient faults are retried (docs/guide/reliability.md states the bound); a write that
still fails changed nothing, one that reports success committed once."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest
import yaml

import lakeio
from lakeio.errors import StorageError
from lakeio.storage import S3_ATTEMPTS


@pytest.fixture
def through_proxy(tmp_path, faulty):
    """A catalog whose S3 endpoint is the fault proxy."""

    def make(**datasets: dict) -> lakeio.Catalog:
        root = f"s3://lakeio-test/faults/{uuid.uuid4().hex[:10]}"
        conf = tmp_path / "conf"
        conf.mkdir(exist_ok=True)
        (conf / "lakeio.yaml").write_text(yaml.safe_dump(
            {"environments": {"s3": {"engine": "arrow", "s3": {"endpoint_url": faulty.endpoint}}}}))
        (conf / "faults.yaml").write_text(yaml.safe_dump(
            {name: {**spec, "environments": {"s3": {"uri": f"{root}/{name}"}}} for name, spec in datasets.items()}))
        return lakeio.Catalog.load(conf, env="s3")

    return make


def rows(ids, parts="ab") -> pa.Table:
    ids = list(ids)
    return pa.table({"id": pa.array(ids, pa.int64()), "part": [parts[i % len(parts)] for i in ids]})


def ids(lake, name="events") -> list[int]:
    return sorted(lake.read(name, validate=False).to_arrow()["id"].to_pylist())


def test_arrow_writes_and_reads_ride_out_a_quarter_of_requests_failing(through_proxy, faulty):
    format = "parquet"
    lake = through_proxy(events={"format": format, "partition_by": ["part"]})
    trials = {"writes": 0, "reads": 0}
    faulty.fail_fraction(0.25)
    for trial in range(2):
        lake.write("events", rows(range(trial * 10, trial * 10 + 6)), mode="overwrite")
        trials["writes"] += 1
        assert ids(lake) == list(range(trial * 10, trial * 10 + 6))
        trials["reads"] += 1
    print(f"faults {format}: {faulty.faults} of {faulty.requests} requests answered 503, {trials} all succeeded")
    assert faulty.faults > 0


# Targeted faults in the commit: the nth of one operation, once (retried) or from there on (a
# fault that outlasts every retry).
# (S3_ATTEMPTS in a row: one request's every try.)
TARGETS = [("DeleteObject", 1, 1), ("CopyObject", 3, S3_ATTEMPTS)]


@pytest.mark.parametrize("operation, nth, times", TARGETS, ids=[f"{o}-{n}x{t}" for o, n, t in TARGETS])
def test_a_write_under_targeted_faults_changed_nothing_or_committed(through_proxy, faulty, operation, nth, times):
    lake = through_proxy(events={"format": "parquet", "partition_by": ["part"]})
    lake.write("events", rows(range(6)), mode="overwrite")
    faulty.fail(operation, nth=nth, times=times)
    try:
        lake.write("events", rows(range(100, 106), parts="bc"), mode="overwrite")
        failed = None
    except StorageError as error:
        failed = error
    faulty.clear()
    lake.recover("events")  # nothing to do unless the undo itself met the fault
    after = ids(lake)
    if failed is None:
        assert after == list(range(100, 106))
    else:
        assert after == list(range(6)), failed  # a write that reports failure changed nothing
    print(f"targeted {operation} #{nth} x{times}: {'failed cleanly' if failed else 'committed'}")


@pytest.mark.parametrize("format", ["parquet", "csv"])
def test_spark_plain_writes_under_a_quarter_of_requests_failing_commit_or_change_nothing(faulty, spark, tmp_path,
                                                                                     format):
    """Spark stages the files through s3a (retrying), lakeio's commit moves them; each write either
    committed or failed with a lakeio error and left the last committed data, never a mix. The
    data is in a bucket of its own, first reached here, so Spark's s3a client for it is made with
    this catalog's endpoint, the proxy (s3a keeps one client per bucket)."""
    import boto3

    bucket = f"lakeio-faults-{format}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "lakeio.yaml").write_text(yaml.safe_dump(
        {"environments": {"s3": {"engine": "spark", "s3": {"endpoint_url": faulty.endpoint}}}}))
    (conf / "faults.yaml").write_text(yaml.safe_dump(
        {"events": {"format": format, "partition_by": ["part"],
                    "environments": {"s3": {"uri": f"s3://{bucket}/events"}}}}))
    lake = lakeio.Catalog.load(conf, env="s3")
    lake.write("events", rows(range(6)), mode="overwrite")
    committed, outcomes = list(range(6)), []
    faulty.fail_fraction(0.25)
    for trial in range(1, 4):
        wanted = list(range(trial * 10, trial * 10 + 6))
        try:
            lake.write("events", rows(wanted), mode="overwrite")
            committed = wanted
            outcomes.append("committed")
        except lakeio.LakeioError as error:
            outcomes.append(f"failed: {type(error).__name__}")
    faults, requests = faulty.faults, faulty.requests
    faulty.clear()
    lake.recover("events")
    print(f"spark {format} under 25% faults: {faults} of {requests} requests answered 503, {outcomes}")
    assert faults > 0
    assert ids(lake) == committed  # the last write that said it committed, whole


def test_the_proxy_delays_every_request_and_forwards_it_unchanged(s3_endpoint, faulty):
    import time

    import boto3

    key = f"faults/delay/{uuid.uuid4().hex[:10]}"
    direct, proxied = boto3.client("s3"), boto3.client("s3", endpoint_url=faulty.endpoint)
    direct.put_object(Bucket="lakeio-test", Key=key, Body=b"payload")
    faulty.delay = 0.05
    started = time.perf_counter()
    answers = [proxied.get_object(Bucket="lakeio-test", Key=key)["Body"].read() for _ in range(4)]
    elapsed = time.perf_counter() - started
    listed = proxied.list_objects_v2(Bucket="lakeio-test", Prefix=key)["KeyCount"]
    assert answers == [b"payload"] * 4 and listed == 1
    assert elapsed >= 4 * 0.05, f"4 requests held {faulty.delay} s each took only {elapsed:.3f} s"
    assert faulty.requests == 5 and faulty.faults == 0

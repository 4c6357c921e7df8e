"""Contracts with the Spark engine, on the S3 server: failing data never lands, one aggregate job per
contract, no py4j callback server, reads validate, and metrics reach an S3 JSON-lines sink."""

from __future__ import annotations

import json
import textwrap
import uuid
from dataclasses import replace

import boto3
import pandas as pd
import pytest
from lines import S3_COMMITS

from lakeio import Catalog, DataQualityError
from lakeio.spark import deequ

TEST_BUCKET = "lakeio-test"  # created by the s3_endpoint fixture

CONTRACT = """
columns:
  id:      {type: int64, nullable: false, checks: [unique]}
  carrier: {type: string, checks: [{in_set: [AA, UA]}], metrics: [counts_per_label]}
  delay:   {type: float64, checks: [{between: [-60, 600]}], metrics: [mean]}
checks: [{row_count: {min: 2}}]
"""


@pytest.fixture
def lake(tmp_path, s3_endpoint):
    prefix = f"validation-{uuid.uuid4().hex[:8]}"
    conf = tmp_path / "conf"
    (conf / "schemas").mkdir(parents=True)
    (conf / "schemas" / "flights.yaml").write_text(CONTRACT)
    (conf / "datasets.yaml").write_text(textwrap.dedent(f"""
        delta_flights:
          format: delta
          schema: schemas/flights.yaml
          environments: {{test: {{uri: "s3://{TEST_BUCKET}/{prefix}/delta"}}}}
        parquet_flights:
          format: parquet
          schema: schemas/flights.yaml
          environments: {{test: {{uri: "s3://{TEST_BUCKET}/{prefix}/parquet"}}}}
        """))
    (conf / "lakeio.yaml").write_text(f"environments:\n  test: {{engine: spark, s3: {{delta_commits: {S3_COMMITS}}}, "
                                      f"metrics_sink: 's3://{TEST_BUCKET}/{prefix}/_metrics'}}\n")
    lake = Catalog.load(conf, env="test")
    lake.prefix = prefix
    return lake


GOOD = pd.DataFrame({"id": [1, 2, 3], "carrier": ["AA", "UA", "AA"], "delay": [1.0, None, 5.0]})
BAD = pd.DataFrame({"id": [1, 1, 3], "carrier": ["AA", "XX", "AA"], "delay": [1.0, 900.0, 5.0]})


@pytest.mark.parametrize("dataset", ["delta_flights", "parquet_flights"])
def test_spark_writes_validate_before_commit_and_keep_the_previous_version(lake, spark, dataset):
    lake.write(dataset, spark.createDataFrame(GOOD), mode="error")
    before = lake.read(dataset, engine="arrow", validate=False).to_pandas().sort_values("id", ignore_index=True)

    for data in (spark.createDataFrame(BAD), BAD):  # a Spark DataFrame (Spark backend) and pandas (Arrow backend)
        with pytest.raises(DataQualityError) as caught:
            lake.write(dataset, data, mode="overwrite")
        report = caught.value.report
        assert {(r.check, r.column, r.observed) for r in report.errors} == {
            ("unique", "id", 1), ("in_set", "carrier", 1), ("between", "delay", 1)}
        if report.backend == "deequ":  # a write's table checks judge the table after it, not Deequ's rows
            said = {r.check: str(r.deequ).split(":")[0] for r in report.results if r.check != "type"}
            assert said == {"not_null": "Success", "unique": "None", "in_set": "Failure", "between": "Failure",
                            "row_count": "None"}

    after = lake.read(dataset, engine="arrow", validate=False).to_pandas().sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(after, before)
    if dataset == "delta_flights":
        from delta.tables import DeltaTable

        location = lake.location(dataset).spark_path
        assert DeltaTable.forPath(spark, location).history().count() == 1


def test_one_aggregate_job_per_contract_beside_one_grouping_per_key_and_no_callback_server(lake, spark):
    contract = lake._contracts["delta_flights"]
    frame = spark.createDataFrame(GOOD)
    tracker = spark.sparkContext.statusTracker()

    def jobs_of(run) -> tuple[int, object]:
        """Spark jobs the run started. Adaptive execution is off here because it submits each
        shuffle stage of one query as a job of its own; without it one query is one job."""
        group = f"lakeio-{uuid.uuid4().hex}"
        spark.sparkContext.setJobGroup(group, "validation")
        spark.conf.set("spark.sql.adaptive.enabled", "false")
        try:
            result = run()
        finally:
            spark.conf.unset("spark.sql.adaptive.enabled")
            spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        return len(tracker.getJobIdsForGroup(group)), result

    jobs, (report, _) = jobs_of(lambda: contract.run_spark(frame, "validate", deequ=False))
    assert report.passed and report.backend == "spark"
    assert jobs == 3  # the aggregate job, the groupBy of the unique key, the one groupBy of counts_per_label
    assert report.metric("carrier", "counts_per_label", "AA") == 2 and report.metric("delay", "mean") == 3.0

    columns = contract.contract.columns
    slim = replace(contract, contract=replace(contract.contract, columns={
        **columns, "carrier": replace(columns["carrier"], metrics=())}))
    jobs, (report, _) = jobs_of(lambda: slim.run_spark(frame, "validate", deequ=False))
    assert jobs == 2 and report.passed
    assert spark.sparkContext._gateway._callback_server is None


def test_spark_reads_validate_and_can_skip_it(lake, spark):
    lake.write("delta_flights", BAD, mode="error", validate=False)
    with pytest.raises(DataQualityError) as caught:
        lake.read("delta_flights").to_spark()
    # Deequ where the session has it (the 3.5 line), else the one-job backend; the report says which
    expected = "deequ" if deequ.available(spark) else "spark"
    assert caught.value.report.backend == expected and caught.value.report.operation == "read"
    with pytest.raises(DataQualityError) as caught:
        lake.read("delta_flights").to_pandas()  # collected, then checked in-process by the Arrow backend
    assert caught.value.report.backend == "arrow"
    assert lake.read("delta_flights", validate=False).to_spark().count() == 3
    report = lake.validate("delta_flights")
    assert report.backend == expected and not report.passed and report.rows == 3


def test_metrics_reach_the_s3_sink_as_json_lines(lake, spark):
    record = lake.write("parquet_flights", spark.createDataFrame(GOOD), mode="error")
    run_id = record.extra["validation"]["run_id"]
    client = boto3.client("s3")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=TEST_BUCKET, Prefix=f"{lake.prefix}/_metrics/")
            .get("Contents", [])]
    (key,) = [k for k in keys if k.endswith(f"-{run_id}.jsonl")]
    assert key.startswith(f"{lake.prefix}/_metrics/dataset=parquet_flights/")
    body = client.get_object(Bucket=TEST_BUCKET, Key=key)["Body"].read().decode()
    records = [json.loads(line) for line in body.splitlines()]
    assert {(r["column"], r["metric"], r["label"]): r["value"] for r in records} == {
        (None, "row_count", None): 3, ("carrier", "counts_per_label", "AA"): 2,
        ("carrier", "counts_per_label", "UA"): 1, ("delay", "mean", None): 3.0}
    assert {r["env"] for r in records} == {"test"} and {r["operation"] for r in records} == {"write"}

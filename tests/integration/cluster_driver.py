"""The parity subset, as one spark-submit driver run on the standalone cluster (one start-up for
many cases): every format, every write mode, MERGE, pruning, validation, and the hand-off of Spark
data to Arrow, all on the S3 server through s3a. It prints one JSON object per case on lines that
start with ``case:`` (with its time); the test compares them with what the Arrow engine reads of the same data.

    spark-submit --master spark://... --py-files lakeio.zip --jars ... cluster_driver.py CONF_DIR
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import pyarrow as pa

import lakeio
from lakeio.config import EnvironmentSettings
from lakeio.spark import handoff

FORMATS = ("delta", "parquet", "csv", "json")


def day_rows(day: str, ids: list[int], value: str) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "value": [value] * len(ids), "day": [day] * len(ids)})


def rows(table: pa.Table) -> list[list]:
    return sorted([row["id"], row["value"], row["day"]] for row in table.to_pylist())


def formats(lake: lakeio.Catalog) -> dict:
    """Each format written and read back by Spark (CSV and JSON reach Arrow through the S3 scratch)."""
    data = pa.concat_tables([day_rows("d1", [1, 2], "a"), day_rows("d2", [3], "b")])
    got = {}
    for format in FORMATS:
        lake.write(f"fmt_{format}", data)
        frame = lake.read(f"fmt_{format}")
        got[format] = {"engine": frame.engine, "rows": rows(frame.to_arrow()), "count": frame.count()}
    return got


def write_modes(lake: lakeio.Catalog) -> dict:
    """The write modes in turn on partitioned Delta and Parquet, and what each leaves."""
    got = {}
    for name in ("events", "events_parquet"):
        lake.write(name, pa.concat_tables([day_rows("d1", [1, 2], "a"), day_rows("d2", [3], "a")]))
        try:
            lake.write(name, day_rows("d1", [1], "a"))
            refused = None
        except lakeio.StorageError as error:
            refused = type(error).__name__
        lake.write(name, day_rows("d3", [4], "b"), mode="append")
        lake.write(name, day_rows("d2", [5, 6], "c"), mode="overwrite_partitions")
        lake.write(name, day_rows("d1", [7], "d"), mode="overwrite", replace_where="day = 'd1'")
        after_modes = rows(lake.read(name).to_arrow())
        lake.write(name, day_rows("d9", [9], "e"), mode="overwrite")
        got[name] = {"refused": refused, "after_modes": after_modes, "after_overwrite": rows(lake.read(name).to_arrow())}
    retried = [lake.write("events", day_rows("d4", [10], "r"), mode="append", idempotency_key="run-1").extra
               for _ in range(2)]
    got["idempotent_retry"] = {"skipped": [bool(extra.get("idempotent_skip")) for extra in retried],
                               "rows": rows(lake.read("events").to_arrow())}
    return got


def merge(lake: lakeio.Catalog) -> dict:
    lake.write("merged", pa.concat_tables([day_rows("d1", [1, 2, 3], "old"), day_rows("d2", [4], "old")]))
    changes = pa.table({"id": pa.array([2, 3, 5, 6], pa.int64()), "value": ["new", "gone", "new", "gone"],
                        "day": ["d1", "d1", "d2", "d2"]})
    record = lake.merge("merged", changes, on=["id"], delete_when="value = 'gone'")
    return {"engine": record.engine, "counts": record.extra, "rows": rows(lake.read("merged").to_arrow())}


def pruning(lake: lakeio.Catalog) -> dict:
    """Partition pruning by the helper jar on the driver, over the S3 listing."""
    lake.write("pruned", pa.concat_tables([day_rows(f"d{i}", [i], "p") for i in range(6)]))
    frame = lake.read("pruned", where="day = 'd2' OR day = 'd4'")
    return {"explain": frame.explain(), "rows": rows(frame.to_arrow())}


def validation(lake: lakeio.Catalog) -> dict:
    """A write that breaks the contract lands nothing; the stored data still validates."""
    lake.write("checked", day_rows("d1", [1, 2], "ok"))
    try:
        lake.write("checked", day_rows("d1", [3, 3], "bad"), mode="append")
        failures: list = []
    except lakeio.DataQualityError as error:
        failures = sorted({failure.check for failure in error.report.errors})
    report = lake.validate("checked")
    return {"failures": failures, "rows": rows(lake.read("checked").to_arrow()), "stored_passes": report.passed,
            "backend": report.backend}


def handoff_to_arrow(lake: lakeio.Catalog) -> dict:
    """Spark-computed data written on the Arrow engine goes through the S3 scratch, never the driver;
    a local scratch folder is refused on a cluster."""
    spark = lake.spark()
    computed = spark.range(0, 1000, numPartitions=4).selectExpr("id", "cast(id % 7 as string) as value",
                                                                 "'d1' as day")
    record = lake.write("handed", computed, engine="arrow")
    settings: EnvironmentSettings = lake.settings
    local = settings.model_copy(update={"spark": settings.spark.model_copy(update={"scratch_uri": "/tmp/lakeio-x"})})
    try:
        handoff.scratch_location(local, spark)
        refused = ""
    except lakeio.InvalidArgumentError as error:
        refused = str(error)
    return {"engine": record.engine, "rows": record.rows, "local_scratch_refused": refused,
            "master": spark.sparkContext.master}


CASES: dict[str, Callable[[lakeio.Catalog], dict]] = {
    "formats": formats, "write_modes": write_modes, "merge": merge, "pruning": pruning,
    "validation": validation, "handoff": handoff_to_arrow,
}

if __name__ == "__main__":
    catalog = lakeio.Catalog.load(sys.argv[1], env="cluster")
    for case, run in CASES.items():
        started = time.monotonic()
        result = run(catalog)
        print("case:" + json.dumps({"case": case, "seconds": round(time.monotonic() - started, 1), "result": result},
                                   default=str), flush=True)

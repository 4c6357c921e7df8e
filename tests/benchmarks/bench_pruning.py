"""Partition pruning on Spark: lakeio's read of 10 daily partitions against Spark's plain read and a
read of hand-listed partition paths, locally and on a moto S3 server behind a proxy that holds every
request 20 ms (the order of an in-region S3 request; moto on 127.0.0.1 answers a small one in a few
milliseconds, so without the delay a listing costs next to nothing), at 365, 3,650 and 36,500
partitions.

    python tests/benchmarks/bench_pruning.py [--quick] [--max-partitions {365,3650,36500}] [--latency-ms 20]

Each table is written once, locally (one small pyarrow-written Parquet file per partition), and
moto's server starts with a bucket per table holding the same files (``moto_server(preload=...)``:
a few seconds, where 36,500 puts over HTTP took moto nearly 4 minutes here); every read goes through
the proxy (``fault_proxy.FaultProxy`` with its ``delay``). Progress goes to stderr; the last stdout
line is one JSON object of ratios, each measured in this one run (medians of repeated, interleaved
runs):

- ``speedup_vs_plain_local``: ``spark.read.parquet(root).where(...)`` time over lakeio's read time,
  on a local table of 3,650 daily partitions.
- ``speedup_vs_plain_s3_latency_<partitions>``: the same on S3 through the proxy, for each table
  size (365, 3,650, 36,500). Spark 4.1 lists an s3a root with one flat recursive listing
  (``spark.sql.sources.useListFilesFileSystemList`` defaults to ``s3a``): paged requests, a page
  per 5,000 keys, not one per partition (at 36,500 partitions on moto it still takes about a
  minute, so it runs once there). ``speedup_vs_plain_s3_per_directory_listing_365`` repeats the
  plain read of the 365-partition S3 table with that setting emptied, i.e. with the per-directory
  listing Spark does on other file systems (a request per partition: some 150 s at 3,650).
- ``overhead_vs_hand_listed``: lakeio's read time over the hand-listed read's (Spark reading the ten
  partition directories, named by hand, with ``basePath``), the worst of four ratios, each also
  reported: on the local and the 3,650-partition S3 table, and for lakeio's read handed to Arrow
  (``to_arrow()``: the helper lists the partitions' files, Arrow reads them) and kept in Spark
  (``to_spark().toArrow()``: Spark reads the files the helper listed).
- ``listing_growth_36500_over_365``: the helper's listing time for the same 10 matching partitions
  on local tables of 36,500 and of 365 partitions. The same on S3 through the proxy, in seconds
  (``listing_growth_s3_latency_36500_over_365``) and in the requests the helper made
  (``listing_requests_s3_36500_over_365``), and lakeio's whole read
  (``read_growth_s3_latency_36500_over_365``). moto scans every key of a bucket on each listing
  (real S3 indexes by prefix; each table has a bucket of its own), so on S3 the seconds include a
  cost of moto's that grows with the table: ``moto_listing_growth_36500_over_365`` is that growth,
  moto's own answer to one directory's listing, asked directly.
- ``speedup_vs_plain_local_connect``, ``speedup_vs_plain_s3_connect``, ``overhead_vs_hand_listed_connect``:
  the same reads of the 3,650-partition tables on a local Spark Connect server (lakeio's plugin prunes
  in the server; the plain and hand-listed reads go through the same Connect session).

With ``--quick`` or a smaller ``--max-partitions`` the keys name the largest size measured (and the
local and Connect reads use it if under 3,650). Spark's file status cache is off
(``spark.sql.hive.filesourcePartitionFileCacheSize=0``) so that every read lists its files as a first
read in a job does, instead of a repeated read hitting the cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from connect_server import connect_server  # noqa: E402  (the test suite's Spark Connect server, shared)
from fault_proxy import S3_LATENCY, FaultProxy  # noqa: E402  (the test suite's S3 proxy, here only delaying)
from s3_server import moto_server  # noqa: E402  (the test suite's S3 server, shared)

BUCKET = "lakeio-bench"
SIZES = (365, 3_650, 36_500)  # daily partitions: one, ten and a hundred years
FIRST_DAY = dt.date(1950, 1, 1)
READ_FROM = dt.date(1950, 6, 1)  # ten days from here: inside every table size
SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.memory": "2g",
    "spark.log.level": "ERROR",
    "spark.sql.hive.filesourcePartitionFileCacheSize": "0",
}


def log(message: str) -> None:
    print(f"[bench_pruning {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parquet_bytes() -> bytes:
    """One small Parquet file; every partition holds a copy (the partition value is in the path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"flight": pa.array(range(24), pa.int64()),
                             "delay": pa.array([float(i % 7) for i in range(24)])}), sink)
    return sink.getvalue().to_pybytes()


def day_names(days: int) -> list[str]:
    return [f"dt={FIRST_DAY + dt.timedelta(days=i)}" for i in range(days)]


def write_local(root: Path, days: int, data: bytes) -> None:
    for name in day_names(days):
        (root / name).mkdir(parents=True)
        (root / name / "part-00000.parquet").write_bytes(data)


def write_conf(folder: Path, roots: dict[str, str], remote: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    datasets = "\n".join(f"""
{name}:
  format: parquet
  partition_by: [dt]
  environments:
    bench: {{uri: "{uri}"}}
    bench_connect: {{uri: "{uri}"}}""" for name, uri in roots.items())
    (folder / "resources.yaml").write_text(datasets)
    conf = "\n".join(f"        {key}: \"{value}\"" for key, value in SPARK_CONF.items())
    connect = f"""
  bench_connect:
    engine: spark
    spark: {{remote: "{remote}"}}
""" if remote else ""
    (folder / "lakeio.yaml").write_text(f"""
environments:
  bench:
    engine: spark
    spark:
      master: "local[2]"
      conf:
{conf}{connect}
""")


def median_seconds(runs: dict[str, list[float]], name: str) -> float:
    return statistics.median(runs[name])


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def compare_reads(lake, spark, dataset: str, where: str, repeats: int, plain_repeats: int,
                  per_directory: bool = False) -> dict[str, float]:
    """Median seconds of lakeio's read, the hand-listed read and the plain read of ``where`` (and,
    with ``per_directory``, the plain read listing an S3 table directory by directory)."""
    location = lake.location(dataset)
    root = location.spark_path
    hand_paths = [f"{root}/dt={READ_FROM + dt.timedelta(days=i)}" for i in range(10)]
    variants = {
        "lakeio": lambda: lake.read(dataset, where=where).to_arrow(),
        "hand_listed": lambda: spark.read.option("basePath", root).parquet(*hand_paths).where(where).toArrow(),
        "lakeio_spark_frame": lambda: lake.read(dataset, where=where).to_spark().toArrow(),
        "plain": lambda: spark.read.parquet(root).where(where).toArrow(),
    }
    if per_directory:
        variants["plain_per_directory"] = lambda: per_directory_listing(
            spark, lambda: spark.read.parquet(root).where(where).toArrow())
    compared = ("lakeio", "hand_listed", "lakeio_spark_frame")
    rows = {name: variants[name]().num_rows for name in compared}  # warm-up, and a check
    if len(set(rows.values())) != 1:
        raise AssertionError(f"{dataset}: the reads disagree on the rows: {rows}")
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(repeats):  # interleaved, so drift on a shared machine hits all alike
        for name in compared:
            runs[name].append(timed(variants[name]))
        log(f"{dataset}: run {i + 1}/{repeats}: " + ", ".join(f"{name} {runs[name][-1]:.3f} s" for name in compared))
    for i in range(plain_repeats):
        for name in [n for n in variants if n.startswith("plain")]:
            runs[name].append(timed(variants[name]))
            log(f"{dataset}: {name} read {i + 1}/{plain_repeats}: {runs[name][-1]:.1f} s")
    return {name: median_seconds(runs, name) for name in runs}


def per_directory_listing(spark, read):
    """Runs ``read`` with Spark listing an s3a root directory by directory, as on other file systems."""
    key = "spark.sql.sources.useListFilesFileSystemList"
    spark.conf.set(key, "")
    try:
        return read()
    finally:
        spark.conf.unset(key)


def listing_times(lake, spark, datasets: list[str], where: str, repeats: int) -> dict[str, tuple[float, int]]:
    """Median seconds of the helper's listing, and its requests, for each dataset."""
    from lakeio.spark import pruning

    plans = {name: lake.read(name, where=where).plan for name in datasets}
    found = {name: pruning.select_partitions(spark, plan) for name, plan in plans.items()}  # warm-up
    for name, selection in found.items():
        if len(selection.paths) != 10:
            raise AssertionError(f"{name}: the helper selected {len(selection.paths)} partitions, not 10")
    runs: dict[str, list[float]] = {name: [] for name in datasets}
    for _ in range(repeats):
        for name in datasets:
            runs[name].append(timed(lambda: pruning.select_partitions(spark, plans[name])))
    for name in datasets:
        log(f"{name}: listing {median_seconds(runs, name) * 1000:.1f} ms, {found[name].requests} requests, "
            f"{'; '.join(found[name].steps)}")
    return {name: (median_seconds(runs, name), found[name].requests) for name in datasets}


def moto_listing_seconds(endpoint: str, bucket: str, repeats: int) -> float:
    """Median seconds of moto's answer to one partition directory's listing, asked directly (not
    through the proxy): the part of a listing's cost that is moto's scan of the bucket."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    prefix = f"daily/dt={READ_FROM}/"
    return statistics.median(timed(lambda: client.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/"))
                             for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tables of up to 3,650 partitions and fewer runs, for a smoke test")
    parser.add_argument("--max-partitions", type=int, choices=SIZES, default=SIZES[-1],
                        help="the largest table (default %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=S3_LATENCY * 1000,
                        help="the proxy's delay per S3 request (default %(default)s ms, an in-region request's order)")
    args = parser.parse_args()
    sizes = [days for days in SIZES if days <= (min(args.max_partitions, 3_650) if args.quick else args.max_partitions)]
    read_days = min(3_650, sizes[-1])  # the table of the local and the Connect comparisons
    repeats, plain_repeats, listing_repeats = (3, 1, 5) if args.quick else (7, 3, 15)
    where = f"dt BETWEEN DATE '{READ_FROM}' AND DATE '{READ_FROM + dt.timedelta(days=9)}'"

    import lakeio

    work = Path(tempfile.mkdtemp(prefix="bench_pruning-"))
    data = parquet_bytes()
    try:
        roots = {}
        for days in sizes:
            # A folder per table, the table under daily/: the local table, and the bucket moto holds.
            log(f"writing a local table of {days:,} daily partitions")
            write_local(work / f"{BUCKET}-{days}" / "daily", days, data)
            roots[f"local_{days}"] = str(work / f"{BUCKET}-{days}" / "daily")
            roots[f"s3_{days}"] = f"s3://{BUCKET}-{days}/daily"
        log("starting the S3 server, its buckets preloaded with the same tables")
        preload = {f"{BUCKET}-{days}": work / f"{BUCKET}-{days}" for days in sizes}
        with moto_server(timeout=600, preload=preload) as endpoint, \
                FaultProxy(endpoint, delay=args.latency_ms / 1000) as proxy:
            # Every client lakeio and Spark make goes through the proxy.
            os.environ.update({"AWS_ENDPOINT_URL": proxy.endpoint, "AWS_ACCESS_KEY_ID": "bench",
                               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"})
            log(f"S3 requests go through a proxy holding each {args.latency_ms:g} ms: {proxy.endpoint}")
            write_conf(work / "conf", roots)
            lake = lakeio.Catalog.load(work / "conf", env="bench")
            log("starting Spark")
            spark = lake.spark()

            results = {}
            log(f"reads on the local table of {read_days:,} partitions")
            results["local"] = compare_reads(lake, spark, f"local_{read_days}", where, repeats, plain_repeats)
            for days in sizes:
                log(f"reads on the S3 table of {days:,} partitions")
                # Spark's per-directory listing costs a request per partition, ~150 s at 3,650: at 365 only.
                # Spark's plain read of 36,500 partitions here takes ~100 s: once.
                results[f"s3_{days}"] = compare_reads(lake, spark, f"s3_{days}", where, repeats,
                                                      plain_repeats if days < 36_500 else 1,
                                                      per_directory=days == sizes[0])
            for name, times in results.items():
                log(f"{name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
            log("listing time as the table grows")
            local = listing_times(lake, spark, [f"local_{days}" for days in sizes], where, listing_repeats)
            s3 = listing_times(lake, spark, [f"s3_{days}" for days in sizes], where, listing_repeats)
            moto = {days: moto_listing_seconds(endpoint, f"{BUCKET}-{days}", listing_repeats) for days in sizes}
            log("moto's own answer to one directory's listing: " +
                ", ".join(f"{days:,} partitions {seconds * 1000:.1f} ms" for days, seconds in moto.items()))
            spark.stop()

            log("starting a Spark Connect server")
            from lakeio.config import EnvironmentSettings
            from lakeio.storage import Storage

            server_conf = {key: value for key, value in SPARK_CONF.items() if key != "spark.driver.memory"}
            server_conf.update(Storage(EnvironmentSettings().s3).hadoop_conf())
            with connect_server(server_conf, work / "connect.log", memory="2g") as remote:
                write_conf(work / "conf", roots, remote)
                lake = lakeio.Catalog.load(work / "conf", env="bench_connect")
                session = lake.spark()
                for where_name in ("local", "s3"):
                    log(f"reads on Spark Connect, the {where_name} table of {read_days:,} partitions")
                    results[f"{where_name}_connect"] = compare_reads(lake, session, f"{where_name}_{read_days}", where,
                                                                     repeats, plain_repeats)
                    log(f"{where_name} connect: " + ", ".join(f"{k} {v:.2f} s"
                                                              for k, v in results[f"{where_name}_connect"].items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    smallest, largest = sizes[0], sizes[-1]
    classic = {"local": "local", "s3": f"s3_{read_days}"}
    overhead = {f"{where}{suffix}": results[key][name] / results[key]["hand_listed"]
                for where, key in classic.items() for name, suffix in (("lakeio", ""), ("lakeio_spark_frame", "_spark_frame"))}
    overhead_connect = {f"{where}{suffix}_connect": results[f"{where}_connect"][name] / results[f"{where}_connect"]["hand_listed"]
                        for where in ("local", "s3") for name, suffix in (("lakeio", ""), ("lakeio_spark_frame", "_spark_frame"))}
    ratios = {
        "latency_ms": args.latency_ms,
        "speedup_vs_plain_local": results["local"]["plain"] / results["local"]["lakeio"],
        **{f"speedup_vs_plain_s3_latency_{days}": results[f"s3_{days}"]["plain"] / results[f"s3_{days}"]["lakeio"]
           for days in sizes},
        f"speedup_vs_plain_s3_per_directory_listing_{smallest}":
            results[f"s3_{smallest}"]["plain_per_directory"] / results[f"s3_{smallest}"]["lakeio"],
        "overhead_vs_hand_listed": max(overhead.values()),
        **{f"overhead_vs_hand_listed_{name}": value for name, value in overhead.items()},
        f"listing_growth_{largest}_over_{smallest}": local[f"local_{largest}"][0] / local[f"local_{smallest}"][0],
        f"listing_growth_s3_latency_{largest}_over_{smallest}": s3[f"s3_{largest}"][0] / s3[f"s3_{smallest}"][0],
        f"listing_requests_s3_{largest}_over_{smallest}": s3[f"s3_{largest}"][1] / s3[f"s3_{smallest}"][1],
        f"moto_listing_growth_{largest}_over_{smallest}": moto[largest] / moto[smallest],
        f"read_growth_s3_latency_{largest}_over_{smallest}":
            results[f"s3_{largest}"]["lakeio"] / results[f"s3_{smallest}"]["lakeio"],
        "speedup_vs_plain_local_connect": results["local_connect"]["plain"] / results["local_connect"]["lakeio"],
        "speedup_vs_plain_s3_connect": results["s3_connect"]["plain"] / results["s3_connect"]["lakeio"],
        "overhead_vs_hand_listed_connect": max(overhead_connect.values()),
        **{f"overhead_vs_hand_listed_{name}": value for name, value in overhead_connect.items()},
    }
    if args.quick:
        ratios["quick"] = True
    print(json.dumps({key: round(value, 3) if isinstance(value, float) else value for key, value in ratios.items()}))


if __name__ == "__main__":
    main()

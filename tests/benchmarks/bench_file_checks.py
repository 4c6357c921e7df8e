"""What a Parquet read pays for checking that its files read together (issue 14: a stray file with
other columns must be an error naming it, not a silent change of the dataset's schema).

A read of a plain Parquet dataset reads every file's footer (:func:`lakeio.files.check_parquet_files`,
in threads) and refuses files of different schemas. The dataset here has 1,000 files of 100 rows;
lakeio's read (``engine="arrow"``) is timed against the same read with the check switched off, in
this one process, alternately (best of the rounds), locally and on a moto S3 server (preloaded with
the files) behind the test suite's proxy holding every request 20 ms (the order of an in-region S3
request). Progress goes to stderr; the last stdout line is one JSON object of ratios:

- ``footer_check_local_1000_files``: checked read time over unchecked read time, local files.
- ``footer_check_s3_latency_1000_files``: the same on S3 through the proxy.
- ``utf8_check_spark_csv_64_mib``: a Spark read of a 64 MiB CSV dataset (8 files; every column
  parsed, the rows going to Spark's ``noop`` sink) with lakeio's check that its files are UTF-8
  (one Spark job over their lines, :meth:`lakeio.spark.engine.SparkEngine._check_utf8`) over the
  same read without it, local files, one ``local[2]`` session.

The machine may be shared: the figures are indicative.

Run: python tests/benchmarks/bench_file_checks.py [--files N] [--repeats N] [--csv-mib N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from common import best_of

import lakeio
from lakeio import files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from fault_proxy import FaultProxy  # noqa: E402  (the test suite's S3 proxy, here only delaying)
from s3_server import moto_server  # noqa: E402  (the test suite's S3 server, shared)

BUCKET = "lakeio-bench"


def log(message: str) -> None:
    print(f"[bench_file_checks] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def unchecked():
    """Reads without the footer check: the plain read it is measured against."""
    original = files.check_parquet_files
    files.check_parquet_files = lambda *args, **kwargs: None
    try:
        yield
    finally:
        files.check_parquet_files = original


def ratio(lake: lakeio.Catalog, repeats: int) -> float:
    def plain():
        with unchecked():
            return lake.read("data", engine="arrow").to_arrow()

    rows = lake.read("data", engine="arrow").to_arrow().num_rows  # warm: both sides read warm files
    checked_s, plain_s = best_of(repeats, lambda: lake.read("data", engine="arrow").to_arrow(), plain)
    log(f"{rows} rows: checked {checked_s:.3f} s, unchecked {plain_s:.3f} s")
    return round(checked_s / plain_s, 3)


def catalog(conf: Path, env: str, uri: str, settings: str = "", format: str = "parquet") -> lakeio.Catalog:
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "lakeio.yaml").write_text(f"environments: {{{env}: {{engine: arrow{settings}}}}}\n")
    (conf / "data.yaml").write_text(f"data: {{format: {format}, environments: {{{env}: {{uri: '{uri}'}}}}}}\n")
    return lakeio.Catalog.load(conf, env=env)


def utf8_check_ratio(work: Path, mib: int, repeats: int) -> float:
    """The Spark read of a CSV dataset of ``mib`` MiB with the UTF-8 check over the read without it."""
    from lakeio.spark.engine import SparkEngine

    folder = work / "csv"
    folder.mkdir()
    line = b"%d,2024-01-02T03:04:05Z,%d.25,caf\xc3\xa9 au lait %d\n"
    rows = mib * (1 << 20) // len(line % (10**6, 10**6, 10**6)) // 8
    for number in range(8):
        start = number * rows
        (folder / f"part-{number}.csv").write_bytes(
            b"id,at,amount,note\n" + b"".join(line % (i, i, i) for i in range(start, start + rows)))
    lake = catalog(work / "spark", "local", str(folder), format="csv", settings=(
        ", spark: {master: 'local[2]', conf: {spark.ui.enabled: 'false', spark.log.level: ERROR}}"))

    def read():
        lake.read("data", engine="spark").to_spark().write.format("noop").mode("overwrite").save()

    def plain():
        check, SparkEngine._check_utf8 = SparkEngine._check_utf8, lambda *args: None
        try:
            read()
        finally:
            SparkEngine._check_utf8 = check

    read()  # warm: the session, and both sides read warm files
    checked_s, plain_s = best_of(repeats, read, plain)
    log(f"{mib} MiB of CSV on Spark: checked {checked_s:.3f} s, unchecked {plain_s:.3f} s")
    return round(checked_s / plain_s, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--csv-mib", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        table = work / "bucket" / "data"
        table.mkdir(parents=True)
        for number in range(args.files):
            pq.write_table(pa.table({"id": pa.array(range(100), pa.int64()), "name": ["x"] * 100}),
                           table / f"part-{number:05d}.parquet")
        log(f"{args.files} files written")
        figures = {f"footer_check_local_{args.files}_files": ratio(catalog(work / "local", "local", str(table)),
                                                                   args.repeats)}
        with moto_server(timeout=600, preload={BUCKET: work / "bucket"}) as endpoint, \
                FaultProxy(endpoint, delay=0.02) as proxy:
            os.environ.update({"AWS_ENDPOINT_URL": proxy.endpoint, "AWS_ACCESS_KEY_ID": "bench",
                               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"})
            lake = catalog(work / "s3", "s3", f"s3://{BUCKET}/data")
            figures[f"footer_check_s3_latency_{args.files}_files"] = ratio(lake, args.repeats)
        figures[f"utf8_check_spark_csv_{args.csv_mib}_mib"] = utf8_check_ratio(work, args.csv_mib, args.repeats)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

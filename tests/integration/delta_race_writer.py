"""One racing writer of a Delta table, in a process of its own: waits for the start signal, runs its
operations back to back, and prints one JSON line per operation (what it was, and whether lakeio
said it succeeded). Used by test_delta_race.py; the rows of operation ``n`` of writer ``w`` are
made by :func:`rows`, so the test knows what every operation wrote.

    python delta_race_writer.py CONF ENV DATASET WRITER ENGINE START_FILE OPERATION...
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyarrow as pa

ROWS = 50
# Keys of the rows that phase "append" wrote first and every merge of the same writer updates.
MERGED_KEYS = range(ROWS)
# Tells which operation a row's value came from.
VALUE_BASE = {"append": 0, "merge": 100, "overwrite": 200}


def key_base(writer: int) -> int:
    return writer * 1_000_000


def rows(writer: int, operation: str, n: int) -> pa.Table:
    """The rows operation ``n`` (``append``, ``merge`` or ``overwrite``) of ``writer`` writes."""
    if operation == "merge":  # updates the writer's first rows, adds ROWS new ones
        keys = [key_base(writer) + k for k in MERGED_KEYS] + [key_base(writer) + 500_000 + n * ROWS + i for i in range(ROWS)]
    else:
        keys = [key_base(writer) + n * ROWS + i for i in range(ROWS)]
    return pa.table({"writer": pa.array([writer] * len(keys), pa.int64()), "key": pa.array(keys, pa.int64()),
                     "value": pa.array([VALUE_BASE[operation] + n] * len(keys), pa.int64()),
                     "op": pa.array([operation] * len(keys))})


def run(lake, dataset: str, writer: int, engine: str, operation: str, n: int) -> dict:
    """Runs one operation; its outcome as lakeio reported it."""
    from lakeio import LakeioError

    data = rows(writer, operation, n)
    started = time.monotonic()
    try:
        if operation == "merge":
            lake.merge(dataset, data, on="key", engine=engine)
        else:
            lake.write(dataset, data, mode=operation, engine=engine)
        outcome: dict = {"ok": True}
    except LakeioError as error:
        outcome = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return {"writer": writer, "operation": operation, "n": n, "seconds": round(time.monotonic() - started, 2), **outcome}


def main(argv: list[str]) -> int:
    import lakeio

    conf, env, dataset, writer, engine, start_file, *operations = argv
    lake = lakeio.Catalog.load(conf, env=env)
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + 600
    while not Path(start_file).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no start signal {start_file} within 600 s")
        time.sleep(0.02)
    for n, operation in enumerate(operations):
        print(json.dumps(run(lake, dataset, int(writer), engine, operation, n)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

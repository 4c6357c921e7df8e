"""A writer process for the commit tests: writes one dataset and, with ``--kill-at STEP``, is
SIGKILLed at that step of the plain-file commit or of a quarantining run (MODE ``merge``: an upsert on ``id``)
(:data:`lakeio.files.step_hook`), as a crash or an OOM kill would stop it. A step reached again
(a quarantining run makes two commits) is named ``STEP@N`` its Nth time.

    python commit_writer.py CONF ENV DATASET MODE DATA.parquet [--engine E] [--kill-at STEP] [--steps FILE]
        [--repeat N] [--idempotency-key KEY] [--pause-at STEP:SECONDS]
"""

from __future__ import annotations

import argparse
import os
import signal
import time

import pyarrow.compute as pc
import pyarrow.parquet as pq

import lakeio
from lakeio import files


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("conf", "env", "dataset", "mode", "data"):
        parser.add_argument(name)
    parser.add_argument("--engine", default="arrow")
    parser.add_argument("--kill-at")
    parser.add_argument("--steps", help="a file that gets each step's name as it is reached")
    parser.add_argument("--repeat", type=int, default=1, help="writes this often, ids shifted by 1000 every other time")
    parser.add_argument("--idempotency-key")
    parser.add_argument("--pause-at", help="STEP:SECONDS: sleeps that long at that step (another process meets it there)")
    arguments = parser.parse_args()
    reached: dict[str, int] = {}

    def step(name: str) -> None:
        reached[name] = reached.get(name, 0) + 1
        if reached[name] > 1:
            name = f"{name}@{reached[name]}"
        if arguments.steps:
            with open(arguments.steps, "a") as out:
                out.write(name + "\n")
        if name == arguments.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if arguments.pause_at and name == arguments.pause_at.split(":")[0]:
            time.sleep(float(arguments.pause_at.split(":")[1]))

    files.step_hook = step
    lake = lakeio.Catalog.load(arguments.conf, env=arguments.env)
    options = {"engine": arguments.engine}
    if arguments.idempotency_key:
        options["idempotency_key"] = arguments.idempotency_key
    data = pq.read_table(arguments.data)
    shifted = data.set_column(0, "id", pc.add(data["id"], 1000))
    for number in range(arguments.repeat):
        if arguments.mode == "merge":  # an upsert on id
            lake.merge(arguments.dataset, shifted if number % 2 else data, on="id", engine=arguments.engine)
        else:
            lake.write(arguments.dataset, shifted if number % 2 else data, mode=arguments.mode, **options)


if __name__ == "__main__":
    main()

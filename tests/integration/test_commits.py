"""The plain-file commit under kills, readers and racing writers, locally and on the S3 server.

Each writer runs in its own process (``commit_writer.py``); a kill is a SIGKILL at one step of the
commit, every step in turn. After it a read gives the old or the new rows, whole, or an error that
names the one command that finishes the commit; the next write cleans up after it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pyarrow import fs as pafs

import lakeio
from lakeio.cli import cli
from lakeio.errors import StorageError
from lakeio.storage import Storage

WRITER = Path(__file__).with_name("commit_writer.py")
SPEC = {"format": "parquet", "partition_by": ["part"]}
LEFTOVER = (".lakeio-staging-", ".lakeio-retired-")


def rows(ids, part: str) -> pa.Table:
    return pa.table({"id": pa.array(list(ids), pa.int64()), "part": [part] * len(ids)})


OLD = pa.concat_tables([rows(range(0, 3), "a"), rows(range(3, 6), "b")])
NEW = pa.concat_tables([rows(range(100, 103), "b"), rows(range(103, 106), "c")])
EXPECTED = {"overwrite": sorted(NEW["id"].to_pylist()),
            "overwrite_partitions": sorted([0, 1, 2, *NEW["id"].to_pylist()])}


def ids(lake: lakeio.Catalog, name: str = "events", engine: str = "arrow") -> list[int]:
    return sorted(lake.read(name, engine=engine, validate=False).to_arrow()["id"].to_pylist())


def leftovers(lake: lakeio.Catalog, name: str = "events") -> list[str]:
    """What commits leave beside the dataset besides its marker: staging, retired, a commit log."""
    location = lake.location(name)
    filesystem = Storage(lake.settings.s3).filesystem(location)
    parent, base = location.path.rsplit("/", 1)
    names = [info.base_name for info in filesystem.get_file_info(pafs.FileSelector(parent))]
    return sorted(n for n in names if n.startswith(base + ".") and
                  (any(mark in n for mark in LEFTOVER) or n.endswith(".lakeio-commit")))


def writer(lake_conf: Path, env: str, data: Path, mode: str, *, kill_at: str | None = None,
           steps: Path | None = None, engine: str = "arrow", repeat: int = 1) -> list[str]:
    command = [sys.executable, str(WRITER), str(lake_conf), env, "events", mode, str(data), "--engine", engine,
               "--repeat", str(repeat)]
    command += ["--kill-at", kill_at] if kill_at else []
    return command + (["--steps", str(steps)] if steps else [])


def run_writer(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(writer(*args, **kwargs), capture_output=True, text=True, timeout=300)


@pytest.fixture
def new_data(tmp_path) -> Path:
    path = tmp_path / "new.parquet"
    pq.write_table(NEW, path)
    return path


# The root swapped by renames (local), and partitions kept, replaced and added by object moves (S3),
# by either engine's writer (Spark stages its own files, then commits by the same protocol).
KILL_CASES = [("local", "overwrite", "arrow"), ("local", "overwrite", "spark"),
              ("s3", "overwrite_partitions", "arrow"), ("s3", "overwrite_partitions", "spark")]


def kill_points(steps: list[str], engine: str) -> list[str]:
    """The steps a writer is killed at: every one for the Arrow writer; a Spark writer (a Spark
    driver process per kill) commits its staging by the same protocol, so it is killed where its
    part ends (staged), in the middle of its moves and where the commit stands."""
    if engine == "arrow":
        return steps
    moved = [step for step in steps if step.startswith("moved-")]
    return [steps[0], moved[len(moved) // 2], "committed"]


@pytest.mark.parametrize("storage, mode, engine", KILL_CASES, ids=["-".join(case) for case in KILL_CASES])
def test_a_writer_killed_at_any_step_of_its_commit_loses_nothing(catalog_on, tmp_path, new_data, storage, mode,
                                                                 engine):
    lake = catalog_on(storage, "kills", events=SPEC)
    conf = tmp_path / "conf"
    lake.write("events", OLD, mode="overwrite")
    recorded = tmp_path / "steps.txt"
    assert run_writer(conf, storage, new_data, mode, steps=recorded, engine=engine).returncode == 0
    steps = recorded.read_text().split()
    assert steps[:2] == ["staged", "locked"] and steps[-3:] == ["committed", "cleaned", "marked"]
    assert any(s.startswith("moved-") for s in steps)
    command = f"lakeio --env {storage} recover events"
    outcomes = {"old": 0, "new": 0, "error naming the command": 0}
    for step in kill_points(steps, engine):
        lake.write("events", OLD, mode="overwrite")  # the next write: it finishes the killed commit and cleans up
        assert ids(lake) == sorted(OLD["id"].to_pylist()) and leftovers(lake) == []
        killed = run_writer(conf, storage, new_data, mode, kill_at=step, engine=engine)
        assert killed.returncode == -9, (step, killed.stderr)
        try:
            seen = ids(lake)
        except StorageError as error:
            assert step.startswith("moved-") and command in str(error), (step, error)
            outcomes["error naming the command"] += 1
            finished = CliRunner().invoke(cli, ["--conf", str(conf), *command.split()[1:]])  # the command it names
            assert finished.exit_code == 0 and "finished the interrupted commit" in finished.output, finished.output
            seen = ids(lake)
            assert seen == sorted(OLD["id"].to_pylist()), step  # rolled back
        else:
            assert seen in (sorted(OLD["id"].to_pylist()), EXPECTED[mode]), (step, seen)
            outcomes["old" if seen == sorted(OLD["id"].to_pylist()) else "new"] += 1
            # after its last move the commit stands; before its first, it never happened
            assert (seen == EXPECTED[mode]) == (step in ("committed", "cleaned", "marked")), step
        lake.write("events", pq.read_table(new_data), mode=mode, engine=engine)  # the killed write, retried
        assert ids(lake) == EXPECTED[mode] and leftovers(lake) == [], step  # it lands once, and cleans up
    lake.write("events", OLD, mode="overwrite")
    assert leftovers(lake) == [] and ids(lake) == sorted(OLD["id"].to_pylist())
    print(f"kills {engine} {storage} {mode}: {len(kill_points(steps, engine))} of {len(steps)} steps, {outcomes}")


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_readers_during_overwrites_see_one_whole_version_or_a_lakeio_error(catalog_on, tmp_path, new_data, storage):
    lake = catalog_on(storage, "readers", events=SPEC)
    lake.write("events", NEW, mode="overwrite")
    versions = [sorted(NEW["id"].to_pylist()), sorted(i + 1000 for i in NEW["id"].to_pylist())]
    process = subprocess.Popen(writer(tmp_path / "conf", storage, new_data, "overwrite", repeat=8),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {"version": 0, "lakeio error": 0}
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        try:
            read = ids(lake)
        except lakeio.LakeioError:
            seen["lakeio error"] += 1
            continue
        assert read in versions, read  # never a mix, never duplicates
        seen["version"] += 1
    assert process.wait(timeout=60) == 0, process.stderr.read()
    assert ids(lake) == versions[1] and seen["version"] > 0
    print(f"readers {storage}: {sum(seen.values())} reads during 8 overwrites, {seen}")


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_two_overwrites_racing_are_serialised_or_refused_never_interleaved(catalog_on, tmp_path, storage):
    lake = catalog_on(storage, "race", events=SPEC)
    lake.write("events", OLD, mode="overwrite")
    wide = [pa.concat_tables([rows(range(base + 10 * p, base + 10 * p + 5), part) for p, part in enumerate("abcd")])
            for base in (100, 200)]
    paths = []
    for number, table in enumerate(wide):
        paths.append(tmp_path / f"racer{number}.parquet")
        pq.write_table(table, paths[-1])
    racers = [subprocess.Popen(writer(tmp_path / "conf", storage, path, "overwrite"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for path in paths]
    results = [(racer.wait(timeout=240), racer.stderr.read()) for racer in racers]
    final = ids(lake)
    assert final in [sorted(t["id"].to_pylist()) for t in wide], final
    for code, stderr in results:
        assert code == 0 or "another write committed to the dataset" in stderr, stderr
    assert any(code == 0 for code, _ in results) and leftovers(lake) == []
    print(f"race {storage}: exit codes {[code for code, _ in results]}, dataset = one writer's rows")

"""A real multi-process Spark cluster for tests: a standalone master and workers on 127.0.0.1, each
its own JVM (pyspark's ``bin/spark-class``) with its own work and local folders, so nothing a job
does can rely on the driver's disk being the executors' disk."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark
from s3_server import free_port

SPARK_HOME = Path(pyspark.__file__).parent
# Two small workers on a 2-core machine: one core and 768 MiB each (an executor takes 512 MiB).
WORKER_CORES, WORKER_MEMORY = 1, "768m"


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster: its master URL and the folder each worker runs in."""

    master: str
    ui: str
    worker_dirs: tuple[Path, ...]

    def alive_workers(self) -> int:
        with urllib.request.urlopen(self.ui + "/json/", timeout=2) as answer:
            state = json.load(answer)
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    def applications(self) -> list[dict]:
        """The master's record of finished applications (name, state, cores), newest first."""
        with urllib.request.urlopen(self.ui + "/json/", timeout=2) as answer:
            return json.load(answer).get("completedapps", [])


@contextlib.contextmanager
def standalone_cluster(root: Path, workers: int = 2, timeout: float = 240) -> Iterator[Cluster]:
    """Runs a master and ``workers`` workers under ``root`` for the duration of the block."""
    port, ui_port = free_port(), free_port()
    master, ui = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    base = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_NO_DAEMONIZE": "1", "SPARK_DAEMON_MEMORY": "256m",
            # The REST submission server would take the fixed port 6066, shared by every cluster here.
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false"}
    processes: list[subprocess.Popen] = []
    logs = []

    def start(name: str, arguments: list[str], env: dict[str, str]) -> None:
        log = open(root / f"{name}.log", "w")  # noqa: SIM115 - closed when the cluster stops
        logs.append(log)
        processes.append(subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *arguments], env=env,
                                          stdout=log, stderr=subprocess.STDOUT))

    worker_dirs = []
    try:
        start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                         "--webui-port", str(ui_port)], base)
        for index in range(workers):
            folder = root / f"worker-{index}"
            (folder / "work").mkdir(parents=True)
            (folder / "local").mkdir()
            worker_dirs.append(folder)
            start(f"worker-{index}", [
                "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--port", str(free_port()),
                "--webui-port", str(free_port()), "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY,
                "--work-dir", str(folder / "work"), master,
            ], {**base, "SPARK_LOCAL_DIRS": str(folder / "local")})
        cluster = Cluster(master, ui, tuple(worker_dirs))
        _wait_for_workers(cluster, workers, processes, root, timeout)
        yield cluster
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def _wait_for_workers(cluster: Cluster, workers: int, processes: list[subprocess.Popen], root: Path,
                      seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        exited = [p for p in processes if p.poll() is not None]
        if exited:
            raise RuntimeError(f"a Spark cluster process exited with {exited[0].returncode}; see the logs in {root}")
        with contextlib.suppress(OSError, ValueError):
            if cluster.alive_workers() == workers:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the Spark master at {cluster.master} did not see {workers} workers within {seconds} s; "
                       f"see the logs in {root}")

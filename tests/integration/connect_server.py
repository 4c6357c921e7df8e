"""A real Spark Connect server for tests and benchmarks: pyspark's own SparkConnectServer, started by
spark-submit on a free port of 127.0.0.1, with Delta, s3a and lakeio's helper jar (whose Connect
plugin is registered) on its classpath."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

PLUGIN = "lakeio.helper.ConnectPlugin"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


@contextlib.contextmanager
def connect_server(conf: Mapping[str, str], log: Path, *, plugin: bool = True, memory: str = "1g",
                   timeout: float = 120) -> Iterator[str]:
    """Runs a Spark Connect server for the duration of the block; yields its ``sc://`` URL.

    ``conf``: server conf (Delta's extension and catalog, s3a, small shuffles); ``plugin``: register
    lakeio's relation plugin. The server's output goes to ``log``, which the error names if it fails.
    """
    import pyspark

    from lakeio.spark import jvm
    from lakeio.spark.session import DELTA_CATALOG, DELTA_EXTENSION, S3_LOG_STORE, S3_LOG_STORE_CONF

    port = _free_port()
    server_conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        S3_LOG_STORE_CONF: S3_LOG_STORE,
        **({"spark.connect.extensions.relation.classes": PLUGIN} if plugin else {}),
        **conf,
    }
    command = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--class", SERVER_CLASS,
               "--master", "local[2]", "--driver-memory", memory, "--jars", ",".join(jvm.jar_paths())]
    for key, value in server_conf.items():
        command += ["--conf", f"{key}={value}"]
    with open(log, "wb") as output:
        server = subprocess.Popen(command + ["spark-internal"], stdout=output, stderr=subprocess.STDOUT,
                                  env={**os.environ, "SPARK_NO_DAEMONIZE": "1"}, start_new_session=True)
    try:
        _wait_for(port, server, log, timeout)
        yield f"sc://127.0.0.1:{port}"
    finally:
        _close_clients(f"127.0.0.1:{port}")
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _close_clients(endpoint: str) -> None:
    """Closes this process's Connect clients of the server: each registers an exit hook that calls
    its server, and on a stopped server that call retries for minutes before it gives up."""
    import gc

    from pyspark.sql.connect.client.core import SparkConnectClient

    for client in [o for o in gc.get_objects() if isinstance(o, SparkConnectClient)]:
        if client._builder.endpoint == endpoint and not client.is_closed:
            client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, server: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Spark Connect server exited with {server.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the Spark Connect server did not listen on 127.0.0.1:{port} within {seconds} s; see {log}")

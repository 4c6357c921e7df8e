"""A real S3 HTTP endpoint for tests and benchmarks: moto's server, in its own process, on a free
port of 127.0.0.1 (in-process, delta-rs would wait on it while holding the GIL).

A benchmark that needs tens of thousands of objects has them ``preload``-ed: the server's process
stores every file of a local folder as an object through moto's own backend before it serves (a
few seconds), where one HTTP put each costs moto some 6 ms (minutes, for 36,500 objects).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def moto_server(timeout: float = 30, preload: dict[str, Path] | None = None) -> Iterator[str]:
    """Runs a moto S3 server for the duration of the block; yields its endpoint URL.

    Args:
        timeout: seconds the server has to answer (preloading included).
        preload: buckets the server holds from the start, each with every file under its folder
            (the key is the file's path relative to the folder).
    """
    port = free_port()
    command = ["-m", "moto.server"] if preload is None else \
        [__file__, json.dumps({bucket: str(folder) for bucket, folder in preload.items()})]
    server = subprocess.Popen([sys.executable, *command, "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for(endpoint, server, timeout)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def free_port() -> int:
    """A port of 127.0.0.1 no one listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(endpoint: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto server exited with {server.returncode} before serving {endpoint}")
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto server did not answer on {endpoint} within {seconds} s")


def _serve_preloaded(preload: dict[str, str], server_arguments: list[str]) -> None:
    """Stores the preloaded buckets in this process's moto backend, then serves it."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import main

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for bucket, folder in preload.items():
        backend.create_bucket(bucket, "us-east-1")
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                backend.put_object(bucket, path.relative_to(folder).as_posix(), path.read_bytes())
    main(server_arguments)


if __name__ == "__main__":
    _serve_preloaded(json.loads(sys.argv[1]), sys.argv[2:])

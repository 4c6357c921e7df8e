"""A real S3 HTTP endpoint for tests and benchmarks: moto's server, in its own process, on a free
port of 127.0.0.1 (in-process, delta-rs would wait on it while holding the GIL)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


@contextlib.contextmanager
def moto_server(timeout: float = 30) -> Iterator[str]:
    """Runs a moto S3 server for the duration of the block; yields its endpoint URL."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
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

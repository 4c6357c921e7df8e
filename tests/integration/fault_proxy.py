"""An HTTP proxy in front of the S3 server that answers some requests ``503 SlowDown`` instead of
forwarding them: a fraction of all requests (seeded), or targeted ones ("the 3rd DeleteObject and
the next 4"). Clients pointed at it see the faults a throttled S3 gives; the rest is moto's answer.
It can also hold every request for a fixed delay before forwarding it, so that a local S3 server
costs per request what S3 does (``S3_LATENCY``), and request counts show in timings.

    with FaultProxy(moto_endpoint) as proxy:
        proxy.fail_fraction(0.25)
        proxy.fail("DeleteObject", nth=3, times=1)
        proxy.clear()
    with FaultProxy(moto_endpoint, delay=S3_LATENCY) as proxy:
        ...
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")
# The order of one in-region S3 request's latency (a GET or LIST of a small object or page, from
# an instance in the bucket's region); moto on 127.0.0.1 answers a small one in a few milliseconds.
S3_LATENCY = 0.020
HOP_BY_HOP = {"expect", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Rule:
    operation: str  # an S3 operation name (see operation())
    nth: int  # the first of them answered 503 (1-based)
    times: int  # how many in a row from there


def operation(method: str, path: str, query: str, headers) -> str:
    """The S3 operation a request is, as far as the proxy's rules need to tell."""
    has_key = path.strip("/").count("/") >= 1
    if method == "PUT":
        return "CopyObject" if headers.get("x-amz-copy-source") else ("PutObject" if has_key else "CreateBucket")
    if method == "DELETE":
        return "DeleteObject" if has_key else "DeleteBucket"
    if method == "POST":
        return "DeleteObjects" if "delete" in query else "MultipartUpload"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    return "GetObject" if has_key else "ListObjects"


class FaultProxy:
    """The proxy, on a free port of 127.0.0.1, for as long as the ``with`` block runs.

    Args:
        upstream: the S3 server's endpoint URL.
        seed: the seed of :meth:`fail_fraction`'s draws.
        delay: seconds every request is held before it is forwarded (or failed); each request waits
            in its own thread, so concurrent requests overlap as they do on S3.
    """

    def __init__(self, upstream: str, seed: int = 14, delay: float = 0.0):
        self.upstream = urlparse(upstream)
        self.delay = delay
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.fraction = 0.0
        self.rules: list[Rule] = []
        self.seen: dict[str, int] = {}
        self.requests = self.faults = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: with Nagle's algorithm on, the body waits for
            # the client's delayed ACK of the headers, some 40 ms on every request.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:  # then trailers, if any, up to an empty line
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self):
                body = self._body()
                if proxy.delay:
                    time.sleep(proxy.delay)
                url = urlparse(self.path)
                if proxy.should_fail(operation(self.command, url.path, url.query, self.headers)):
                    self.send_response(503, "Slow Down")
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if self.headers.get("Transfer-Encoding"):
                    headers["Content-Length"] = str(len(body))
                try:
                    upstream.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST")
                                     else None, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP and (key.lower() != "content-length" or self.command == "HEAD"):
                        self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def should_fail(self, name: str) -> bool:
        with self.lock:
            self.requests += 1
            self.seen[name] = count = self.seen.get(name, 0) + 1
            failed = any(r.operation == name and r.nth <= count < r.nth + r.times for r in self.rules) \
                or self.random.random() < self.fraction
            self.faults += failed
            return failed

    def fail_fraction(self, fraction: float) -> None:
        """Answers this fraction of all requests 503, from now on."""
        with self.lock:
            self.fraction = fraction

    def fail(self, name: str, *, nth: int, times: int = 1) -> None:
        """Answers the ``nth`` request of operation ``name`` (counted from now) and ``times - 1``
        more after it 503."""
        with self.lock:
            self.seen[name] = 0
            self.rules.append(Rule(name, nth, times))

    def clear(self) -> None:
        """No faults and no delay from now on; the counts start again."""
        with self.lock:
            self.fraction, self.rules, self.seen, self.delay = 0.0, [], {}, 0.0
            self.requests = self.faults = 0

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

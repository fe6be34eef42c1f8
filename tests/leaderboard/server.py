"""A real leaderboard server for tests: `bench leaderboard serve` (uvicorn) as a subprocess on a free loopback port,
over a real database (an SQLite file, or PostgreSQL by URL)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running service: its base URL, database and process."""

    url: str
    db: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, as a crash or an OOM kill."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn shuts down gracefully)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    db: str,
    log: Path,
    *,
    rate_limit: int = 0,
    max_body_mb: int = 32,
    extra: list[str] | None = None,
    timeout_s: float = 60.0,
) -> Server:
    """Start `bench leaderboard serve` and wait until it answers /healthz."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "bench.cli",
        "leaderboard",
        "serve",
        "--db",
        db,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--rate-limit",
        str(rate_limit),
        "--max-body-mb",
        str(max_body_mb),
        *(extra or []),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    handle = log.open("ab")
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return Server(url=url, db=db, process=process, log=log)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the server did not answer within {timeout_s} s:\n{log.read_text()}")


@contextlib.contextmanager
def running(db: str, log: Path, **kwargs: Any) -> Iterator[Server]:
    """A server for the duration of a with-block."""
    server = start_server(db, log, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def post(server: Server, body: bytes, token: str | None, **kwargs: Any) -> httpx.Response:
    """POST a submission body as `bench submit` does."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(kwargs.pop("headers", {}))
    return httpx.post(server.url + "/api/v1/submissions", content=body, headers=headers, timeout=60, **kwargs)

"""Helpers for the reliability suite: free ports, and ``creditgraph serve`` as a real process
that a test may SIGKILL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx


def cli() -> str:
    """The ``creditgraph`` console script of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "creditgraph")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running ``creditgraph serve`` process and its URL."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no lifespan exit."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def serve(env: Mapping[str, str], log: Path, *, ready: str = "/healthz") -> Served:
    """Start ``creditgraph serve`` on a free port with ``env``; wait until ``ready`` is 200."""
    port = free_port()
    out = log.open("ab")
    proc = subprocess.Popen(
        [cli(), "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"creditgraph serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + ready, timeout=2).status_code == 200:
                return Served(proc, url, log)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"creditgraph serve did not answer {ready}:\n{log.read_text()}")
        time.sleep(0.1)

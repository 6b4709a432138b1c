"""A real server on small demo-like data, and headless Chromium driven by Playwright.

The network is synthesised, imported into the embedded store, trained with a fast config,
scored, and its rings detected, by the pipeline ``creditgraph demo`` runs, at a smaller size.
The server is ``creditgraph serve`` in a subprocess on a free loopback port. The browser is
the system's Chromium (Debian's ``chromium`` package, installed by ``scripts/bootstrap.sh
need_chromium``); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from creditgraph.api.keys import create_key
from tests.apitools import build_network

ARTIFACTS = Path(__file__).parent / "artifacts"
#: Large enough for the detector to find rings of several kinds, small enough for seconds.
ACCOUNTS = 5_000
#: The server's hub threshold: low enough that this network's busiest merchants are hubs.
HUB_DEGREE = 80
VIEWPORT: ViewportSize = {"width": 1600, "height": 1000}


def chromium_path() -> str:
    """The system's Chromium: ``CREDITGRAPH_CHROMIUM``, else Debian's binary or wrapper."""
    for candidate in (
        os.environ.get("CREDITGRAPH_CHROMIUM"),
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "no Chromium found: run `source scripts/bootstrap.sh && need_chromium` "
        "(Debian package `chromium`) or set CREDITGRAPH_CHROMIUM"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    base_url: str
    data_dir: Path
    investigator_key: str
    payment_key: str


# Package scope: torn down after the last e2e test, so the browser's sync Playwright loop
# (it stays "running" in the main thread while alive) never reaches later asyncio.run() calls.
@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e")
    network = build_network(root, accounts=ACCOUNTS, rings=True)
    report = network.report.rings
    assert report is not None
    assert report.detected >= 3, report
    settings = network.settings
    keys = {role: create_key(settings, role, f"e2e-{role}") for role in ("investigator", "payment")}
    port = free_port()
    env = {
        **os.environ,
        "CREDITGRAPH_STORE": "embedded",
        "CREDITGRAPH_DATA_DIR": str(settings.data_dir),
        "CREDITGRAPH_INVESTIGATE_HUB_DEGREE": str(HUB_DEGREE),
    }
    log = (root / "server.log").open("wb")
    cli = Path(sys.executable).with_name("creditgraph")
    proc = subprocess.Popen(
        [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: importing the app alone took 102 s on the shared 2-core machine at load 25.
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(base, settings.data_dir, keys["investigator"], keys["payment"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # Containers often have a small /dev/shm; Chromium then uses /tmp instead.
        b = p.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--disable-dev-shm-usage"]
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(15_000)
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"

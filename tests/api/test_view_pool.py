"""Heavy investigator views in worker processes (issue 15, defect 3: the payment path never
waits behind investigator work, also not behind its CPU and GIL).

The worker is held mid-view by stopping it (SIGSTOP): what is tested is that the answer is
computed outside the API process, while the payment path answers, and that the answer is the
one the API process computes itself."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from creditgraph.config import Settings
from tests.apitools import ApiClient, Network, api_client

A, B = "A0000001", "A0000002"
PURPOSE = {"X-Purpose": "case 15: view pool"}
HOLD_S = 60.0  # only reached when a test fails
VIEWS = [
    f"/v1/accounts/{A}/neighbourhood?hops=2&limit=10",
    f"/v1/accounts/{A}/neighbourhood?hops=3&limit=5&relations=TRANSFER",
    f"/v1/paths?from={A}&to={B}&max_hops=4",
]


def _copy(network: Network, tmp_path: Path, name: str) -> Path:
    data = tmp_path / name
    shutil.copytree(network.settings.data_dir, data)
    return data


def _views(api: ApiClient) -> Any:
    return api.client.app.state.api.views  # type: ignore[attr-defined]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_heavy_views_come_from_a_worker_process_with_the_same_answers(
    network: Network, tmp_path: Path
) -> None:
    local = Settings(data_dir=_copy(network, tmp_path, "local"), investigate_processes=0)
    with api_client(local) as api:
        assert _views(api) is None
        expected = [api.get(u, "investigator", headers=PURPOSE) for u in VIEWS]
    pooled = Settings(data_dir=_copy(network, tmp_path, "pooled"), investigate_processes=1)
    with api_client(pooled) as api:
        views = _views(api)
        got = [api.get(u, "investigator", headers=PURPOSE) for u in VIEWS]
        (pid,) = views.worker_pids()
        assert views.served == len(VIEWS)
        one_hop = api.get(f"/v1/accounts/{A}/neighbourhood?hops=1", "investigator", headers=PURPOSE)
        assert one_hop.status_code == 200
        assert views.served == len(VIEWS)  # a one-hop view stays in the API process
    assert pid != os.getpid()
    assert not _alive(pid)  # the lifespan's exit stopped the worker and waited for it
    for url, e, g in zip(VIEWS, expected, got, strict=True):
        assert (g.status_code, e.status_code) == (200, 200), url
        assert g.json() == e.json(), url
    assert len(got[0].json()["nodes"]) > 1


def test_the_payment_path_answers_while_a_heavy_view_is_held_in_its_worker(
    network: Network, tmp_path: Path
) -> None:
    settings = Settings(data_dir=_copy(network, tmp_path, "data"), investigate_processes=1)
    with api_client(settings) as api:
        url = VIEWS[1]
        first = api.get(url, "investigator", headers=PURPOSE)  # starts the worker
        assert first.status_code == 200
        (pid,) = _views(api).worker_pids()
        os.kill(pid, signal.SIGSTOP)
        out: list[Any] = []
        held = threading.Thread(
            target=lambda: out.append(api.get(url, "investigator", headers=PURPOSE)), daemon=True
        )
        try:
            held.start()
            risk = api.post("/v1/risk/transfer", "payment", json={"src": A, "dst": B, "amount": 5})
            score = api.get(f"/v1/accounts/{B}/score", "payment")
            assert held.is_alive()  # the view cannot finish: its worker is stopped
        finally:
            os.kill(pid, signal.SIGCONT)
        held.join(HOLD_S)
        assert risk.status_code == 200, risk.text
        assert score.status_code == 200, score.text
        assert out[0].status_code == 200
        assert out[0].json() == first.json()


def test_a_killed_worker_is_a_503_and_the_next_request_gets_a_new_one(
    network: Network, tmp_path: Path
) -> None:
    settings = Settings(data_dir=_copy(network, tmp_path, "data"), investigate_processes=1)
    with api_client(settings) as api:
        assert api.get(VIEWS[0], "investigator", headers=PURPOSE).status_code == 200
        (pid,) = _views(api).worker_pids()
        os.kill(pid, signal.SIGKILL)
        broken = api.get(VIEWS[0], "investigator", headers=PURPOSE)
        assert broken.status_code == 503, broken.text
        assert "worker process died" in broken.json()["error"]["message"]
        again = api.get(VIEWS[0], "investigator", headers=PURPOSE)
        assert again.status_code == 200, again.text
        assert _views(api).worker_pids() != [pid]


@pytest.mark.parametrize("processes", [0, 1])
def test_the_deadline_answers_422_naming_the_cap_in_either_place(
    network: Network, tmp_path: Path, processes: int
) -> None:
    settings = Settings(
        data_dir=_copy(network, tmp_path, "data"),
        investigate_processes=processes,
        investigate_deadline_s=1e-9,
    )
    with api_client(settings) as api:
        r = api.get(VIEWS[0], "investigator", headers=PURPOSE)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["cap"] == "investigate_deadline_s"


_ORPHAN = """
import sys, time
from pathlib import Path
from creditgraph.config import Settings
from creditgraph.errors import CreditGraphError
from creditgraph.services.viewpool import ViewPool

pool = ViewPool(Settings(store="embedded", data_dir=Path(sys.argv[1])), 1)
try:
    pool.call("neighbourhood", "no-such-account", hops=2)
except CreditGraphError:
    pass
print(pool.worker_pids()[0], flush=True)
time.sleep(600)
"""


def test_a_worker_does_not_outlive_a_killed_api_process(tmp_path: Path) -> None:
    # SIGKILL runs no shutdown: the worker must notice by itself that its parent is gone.
    import subprocess
    import sys
    import time

    api = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert api.stdout is not None
        worker = int(api.stdout.readline())
        os.kill(worker, 0)  # alive while its parent is
        api.kill()
        api.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail(f"worker {worker} outlived its SIGKILLed API process by 30 s")
    finally:
        if api.poll() is None:
            api.kill()

"""The decision log behind the API, and data-subject export/erase over HTTP and from another
process (the CLI) while the server runs."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditgraph.cli import app as cli
from creditgraph.config import Settings
from creditgraph.ledger import verify
from creditgraph.store.embedded import EmbeddedStore
from tests.apitools import ApiClient, api_client, audit_entries

RISK = "/v1/risk/transfer"
PURPOSE = {"X-Purpose": "DSR-2026-0042"}


def two_accounts(api: ApiClient) -> tuple[str, str]:
    store = EmbeddedStore(api.settings.embedded_path)
    try:
        a, b = (s.account_id for s in store.get_scores()[:2])
    finally:
        store.close()
    return a, b


def test_every_decision_and_credit_output_is_in_the_decision_log(api: ApiClient) -> None:
    a, b = two_accounts(api)
    answer = api.post(RISK, "payment", json={"src": a, "dst": b, "amount": 12.5}).json()
    score = api.get(f"/v1/accounts/{a}/score", "payment").json()
    path = api.settings.decision_log_path
    raw = path.read_text()
    assert a not in raw
    assert b not in raw
    risk, credit = audit_entries(api.settings, "decisions")[-2:]
    assert risk["kind"] == "risk.transfer"
    assert risk["subjects"] == [a, b]
    assert (risk["decision"], risk["risk"], risk["model_version"]) == (
        answer["decision"],
        answer["risk"],
        answer["model_version"],
    )
    assert risk["reasons"] == answer["reasons"]
    assert risk["thresholds"]["review"] == api.settings.risk.review_threshold
    assert risk["thresholds"]["block"] == api.settings.risk.block_threshold
    assert re.fullmatch(r"[0-9a-f]{64}", risk["input_hash"])
    assert risk["key_id"] == api.keys["payment"].split("_")[1]
    assert credit["kind"] == "credit.social"
    assert credit["subjects"] == [a]
    assert credit["output"]["social_credit"] == score["social_credit"]
    assert credit["reasons"] == score["reasons"]
    assert verify(path).ok


def test_subject_routes_are_admin_only_and_need_a_purpose(api: ApiClient) -> None:
    a, _ = two_accounts(api)
    for role in ("payment", "investigator"):
        r = api.client.get(f"/v1/subjects/{a}", headers={**api.as_role(role), **PURPOSE})
        assert r.status_code == 403
        r = api.client.delete(f"/v1/subjects/{a}", headers={**api.as_role(role), **PURPOSE})
        assert r.status_code == 403
    assert api.client.get(f"/v1/subjects/{a}").status_code == 401
    r = api.client.get(f"/v1/subjects/{a}", headers=api.as_role("admin"))
    assert r.status_code == 400
    assert "X-Purpose" in r.json()["error"]["message"]
    r = api.client.get("/v1/subjects/nobody", headers={**api.as_role("admin"), **PURPOSE})
    assert r.status_code == 404


def test_export_over_http_says_who_looked_and_why(api: ApiClient) -> None:
    a, _ = two_accounts(api)
    headers = {**api.as_role("investigator"), "X-Purpose": "case 7"}
    assert api.client.get(f"/v1/accounts/{a}", headers=headers).status_code == 200
    r = api.client.get(f"/v1/subjects/{a}", headers={**api.as_role("admin"), **PURPOSE})
    assert r.status_code == 200
    body = r.json()
    assert body["account_id"] == a
    assert body["scores"]
    looked = [e for e in body["lookups"] if e["action"] == "investigate.account"]
    assert [(e["target"], e["purpose"], e["role"]) for e in looked] == [
        (a, "case 7", "investigator")
    ]
    last = audit_entries(api.settings)[-1]
    assert (last["action"], last["target"], last["purpose"]) == (
        "subject.export",
        a,
        PURPOSE["X-Purpose"],
    )


def test_erase_over_http_forgets_the_person_at_once(api: ApiClient) -> None:
    a, _ = two_accounts(api)
    assert api.get(f"/v1/accounts/{a}/score", "payment").status_code == 200
    r = api.client.delete(f"/v1/subjects/{a}", headers={**api.as_role("admin"), **PURPOSE})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["in_memory_forgotten"]
    assert out["pseudonym_forgotten"]
    assert not out["already_erased"]
    # Neither the running server nor the store knows the person any more.
    assert api.get(f"/v1/accounts/{a}/score", "payment").status_code == 404
    r = api.client.get(f"/v1/subjects/{a}", headers={**api.as_role("admin"), **PURPOSE})
    assert r.status_code == 404
    again = api.client.delete(f"/v1/subjects/{a}", headers={**api.as_role("admin"), **PURPOSE})
    assert again.json()["already_erased"]
    for path in (api.settings.audit_log_path, api.settings.decision_log_path):
        assert verify(path).ok


def test_an_erasure_by_another_process_reaches_the_running_server(api: ApiClient) -> None:
    a, _ = two_accounts(api)
    assert api.get(f"/v1/accounts/{a}/score", "payment").status_code == 200
    env = {"CREDITGRAPH_DATA_DIR": str(api.settings.data_dir)}
    runner = CliRunner()
    exported = runner.invoke(cli, ["subject", "export", a, "--purpose", "DSR-9"], env=env)
    assert exported.exit_code == 0, exported.output
    assert f'"account_id": "{a}"' in exported.output
    # `creditgraph subject erase`, with its own store and ledger handles.
    erased = runner.invoke(cli, ["subject", "erase", a, "--yes", "--purpose", "DSR-9"], env=env)
    assert erased.exit_code == 0, erased.output
    assert '"already_erased":false' in erased.output
    deadline = time.monotonic() + 10
    status = 200
    while status != 404 and time.monotonic() < deadline:
        time.sleep(0.1)  # the probe loop (0.2 s here) reads erasures.log
        status = api.get(f"/v1/accounts/{a}/score", "payment").status_code
    assert status == 404
    state = api.client.app.state.api  # type: ignore[attr-defined]
    assert a not in state.serving.engine.index


def test_cli_audit_verify_names_a_tampered_line_and_export_filters(api: ApiClient) -> None:
    a, b = two_accounts(api)
    for _ in range(3):
        api.post(RISK, "payment", json={"src": a, "dst": b, "amount": 1.0})
    env = {"CREDITGRAPH_DATA_DIR": str(api.settings.data_dir)}
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert ok.output.count('"ok":true') == 2
    exported = runner.invoke(cli, ["audit", "export", "--account", a, "--since", "0"], env=env)
    assert exported.exit_code == 0, exported.output
    assert exported.output.count('"kind":"risk.transfer"') == 3
    empty = runner.invoke(cli, ["audit", "export", "--account", a, "--until", "1"], env=env)
    assert '"kind"' not in empty.output
    bad = runner.invoke(cli, ["audit", "export", "--account", a, "--since", "yesterday"], env=env)
    assert bad.exit_code == 2
    path = api.settings.decision_log_path
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"risk":', b'"risk": ', 1)  # one byte more, same meaning
    path.write_bytes(b"".join(lines))
    broken = runner.invoke(cli, ["audit", "verify", "--stream", "decisions"], env=env)
    assert broken.exit_code == 1
    assert f"{path}:2: the line's content does not match its hash" in broken.output


@pytest.mark.parametrize("stream", ["nonsense"])
def test_cli_audit_verify_refuses_an_unknown_log(api: ApiClient, stream: str) -> None:
    env = {"CREDITGRAPH_DATA_DIR": str(api.settings.data_dir)}
    r = CliRunner().invoke(cli, ["audit", "verify", "--stream", stream], env=env)
    assert r.exit_code == 2


def test_a_decision_that_cannot_be_logged_is_a_503_not_an_answer(
    api: ApiClient, tmp_path: Path
) -> None:
    a, b = two_accounts(api)
    body = {"src": a, "dst": b, "amount": 3.0}
    headers = {"Idempotency-Key": "k-1"}
    assert api.post(RISK, "payment", json=body).status_code == 200
    chain = api.client.app.state.api.decisions.chain  # type: ignore[attr-defined]
    good = chain.path
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    chain.path = blocker / "decisions.jsonl"  # the log's disk is gone
    try:
        r = api.post(RISK, "payment", json=body, headers=headers)
        assert r.status_code == 503
        assert "cannot" in r.json()["error"]["message"]
    finally:
        chain.path = good
    # Nothing was cached for the key: the retry is decided (and logged) afresh.
    r = api.post(RISK, "payment", json=body, headers=headers)
    assert r.status_code == 200
    assert "Idempotent-Replayed" not in r.headers
    assert verify(good).ok


def test_with_ack_fsync_the_answer_waits_for_the_disk(api_settings: Settings) -> None:
    s = api_settings.model_copy(update={"decision_ack": "fsync", "log_flush_ms": 1000.0})
    with api_client(s) as api:
        a, b = two_accounts(api)
        r = api.post(RISK, "payment", json={"src": a, "dst": b, "amount": 3.0})
        assert r.status_code == 200
        chain = api.client.app.state.api.decisions.chain  # type: ignore[attr-defined]
        # On disk when answered, though the writer's own window (1 s) had not come round.
        assert chain._synced == chain._written >= 1
        assert chain.fsyncs >= 1

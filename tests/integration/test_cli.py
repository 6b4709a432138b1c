"""The CLI as a user calls it: exit codes, messages, JSON output (embedded store)."""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from creditgraph.api.app import create_app
from creditgraph.api.keys import KeyRing
from creditgraph.cli import app
from creditgraph.config import Settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CREDITGRAPH_STORE", "embedded")
    monkeypatch.setenv("CREDITGRAPH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_synth_import_stats(tmp_path: Path) -> None:
    out = tmp_path / "net"
    result = runner.invoke(app, ["synth", "--accounts", "1000", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for kind in ("accounts", "transfers", "links", "labels"):
        result = runner.invoke(app, ["import", kind, str(out / f"{kind}.csv")])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.strip().splitlines()[-1])["changed"] > 0
    again = runner.invoke(app, ["import", "transfers", str(out / "transfers.csv")])
    assert json.loads(again.stdout.strip().splitlines()[-1])["changed"] == 0
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert stats["accounts"] == 1000
    assert {"transfers", "links", "labels"} <= stats.keys()
    assert stats["transfers"] == sum(1 for _ in (out / "transfers.csv").open()) - 1


def test_bad_file_exits_non_zero_with_location(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("account_id,label\nA,maybe\n")
    result = runner.invoke(app, ["import", "labels", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2: column 'label'" in result.stderr
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert stats["labels"] == 0


def test_unknown_kind_is_rejected(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "friends", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "unknown kind" in result.stderr


def test_demo_runs_the_main_job(data_dir: Path) -> None:
    result = runner.invoke(app, ["demo", "--accounts", "800", "--no-serve"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["accounts"] == 800
    assert counts["transfers"] > 0
    assert counts["labels"] > 0
    assert counts["scores"] == 800
    assert counts["model_version"] == "v0001"
    # The planted rings are found and stored for the investigator page's queue.
    assert counts["rings"] >= 1
    assert "detecting fraud rings" in result.stderr
    assert (data_dir / "creditgraph.sqlite").exists()
    assert "demo API key" in result.stderr
    assert "curl -s -X POST http://127.0.0.1:8000/v1/risk/transfer" in result.stderr
    # The key goes to an owner-only file, never to stderr (the server's log) or stdout.
    key_file = data_dir / "demo-admin.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert key.startswith("cg_")
    assert key not in result.stderr
    assert key not in result.stdout
    assert key.split("_", 2)[2] not in result.output
    assert f"export KEY=$(cat {key_file})" in result.stderr
    principal = KeyRing(data_dir / "api_keys.sqlite").verify(key)
    assert principal is not None
    assert principal.role == "admin"
    # Every command the demo prints works as printed (a new user pastes them).
    curls = [x.strip() for x in result.stderr.splitlines() if x.strip().startswith("curl ")]
    assert len(curls) >= 4
    with TestClient(create_app(Settings(data_dir=data_dir))) as client:
        for line in curls:
            method, url, headers, body = _curl(line.replace("$KEY", key))
            r = client.request(method, url, headers=headers, content=body)
            assert r.status_code == 200, (line, r.text)


def _curl(line: str) -> tuple[str, str, dict[str, str], bytes | None]:
    """The method, URL, headers and body of a printed ``curl`` command line."""
    words = shlex.split(line)[1:]
    method, url, headers, body = "GET", "", {}, None
    while words:
        w = words.pop(0)
        if w == "-s":
            continue
        if w == "-X":
            method = words.pop(0)
        elif w == "-H":
            name, _, value = words.pop(0).partition(":")
            headers[name.strip()] = value.strip()
        elif w == "-d":
            body = words.pop(0).encode()
            method = "POST" if method == "GET" else method
        else:
            url = w
    return method, url, headers, body


def test_keys_create_prints_the_key_alone(data_dir: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "--role", "payment", "--name", "psp"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("cg_")
    assert result.stdout == key + "\n"
    assert key.split("_", 2)[2].encode() not in (data_dir / "api_keys.sqlite").read_bytes()
    bad = runner.invoke(app, ["keys", "create", "--role", "root", "--name", "x"])
    assert bad.exit_code == 2


def test_train_score_models_commands(tmp_path: Path) -> None:
    net = tmp_path / "net"
    assert runner.invoke(app, ["synth", "--accounts", "1500", "--out", str(net)]).exit_code == 0
    for kind in ("accounts", "transfers", "links", "labels"):
        assert runner.invoke(app, ["import", kind, str(net / f"{kind}.csv")]).exit_code == 0
    assert runner.invoke(app, ["score"]).exit_code == 6  # no champion yet: model not ready
    job = tmp_path / "job.toml"
    job.write_text(
        "seed = 1\n[optim]\nmax_epochs = 40\npatience = 10\n[baseline]\nmax_rounds = 50\n"
    )
    trained = runner.invoke(app, ["train", "--config", str(job)])
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["version"] == "v0001"
    assert result["promoted"]
    assert {"champion", "social", "gnn", "baseline", "stacked"} <= result["metrics"].keys()
    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    header = out.read_text().splitlines()[0].replace('"', "").split(",")
    assert header[:4] == ["account_id", "fraud_probability", "social_credit", "model_version"]
    assert len(out.read_text().splitlines()) == 1501
    listed = [
        json.loads(line)
        for line in runner.invoke(app, ["models", "list"]).stdout.split("\n")
        if line
    ]
    assert [(m["version"], m["champion"]) for m in listed] == [("v0001", True)]
    shown = runner.invoke(app, ["models", "show", "v0001"])
    assert shown.exit_code == 0
    assert "Model card" in shown.stdout or "model card" in shown.stdout.lower()
    assert runner.invoke(app, ["models", "promote", "v0009"]).exit_code == 3
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nmax_epoch = 3\n")
    refused = runner.invoke(app, ["train", "--config", str(bad)])
    assert refused.exit_code == 2
    assert "max_epoch" in refused.stderr


def test_rings_detect_export_show_status(tmp_path: Path) -> None:
    from tests.ringnet import CYCLE, planted

    files = planted().write_csv(tmp_path / "net")
    for kind in ("accounts", "transfers", "links"):
        assert runner.invoke(app, ["import", kind, str(files[kind])]).exit_code == 0
    detected = runner.invoke(app, ["rings", "detect", "--no-scores"])
    assert detected.exit_code == 0, detected.output
    assert json.loads(detected.stdout)["detected"] == 5
    out = tmp_path / "rings.json"
    exported = runner.invoke(app, ["rings", "export", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    rings = json.loads(out.read_text())
    assert len(rings) == 5
    assert {"ring_id", "score", "kind", "members", "evidence", "status"} <= rings[0].keys()
    cycle = next(r for r in rings if r["kind"] == "cycle")
    assert cycle["members"] == CYCLE
    shown = runner.invoke(app, ["rings", "show", cycle["ring_id"]])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["evidence"]["cycles"] == [CYCLE]
    confirmed = runner.invoke(
        app, ["rings", "status", cycle["ring_id"], "--status", "confirmed", "--note", "seen"]
    )
    assert confirmed.exit_code == 0, confirmed.output
    assert json.loads(confirmed.stdout) == {
        "ring_id": cycle["ring_id"],
        "status": "confirmed",
        "note": "seen",
        "labels_written": 4,
    }
    bad = runner.invoke(app, ["rings", "status", cycle["ring_id"], "--status", "closed"])
    assert bad.exit_code == 2
    assert "unknown ring status" in bad.stderr
    missing = runner.invoke(app, ["rings", "show", "ring-nope"])
    assert missing.exit_code == 3
    assert "not found" in missing.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("CREDITGRAPH_RISK_REVIEW_THRESHOLD", "2"), ("CREDITGRAPH_STORE", "mongo")],
)
def test_a_bad_environment_value_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    for command in (["stats", "--json"], ["serve"], ["neo4j", "status"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert name in result.stderr
        assert repr(value) in result.stderr
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)

"""Model registry: versions, champion pointer, promotion gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.errors import Conflict, InvalidInput, NotFound
from creditgraph.registry import ModelRecord, ModelRegistry, gate


def record(version: str, auprc: float) -> ModelRecord:
    return ModelRecord(version=version, created_at=1.0, metrics={"auprc": auprc}, config={})


def test_versions_are_numbered_and_listed(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    v1, p1 = reg.new_version()
    v2, _ = reg.new_version()
    assert (v1, v2) == ("v0001", "v0002")
    assert p1.is_dir()
    reg.register(record(v1, 0.5))
    assert [r.version for r in reg.records()] == ["v0001"]  # v0002 has no record yet
    with pytest.raises(Conflict):
        reg.register(record(v1, 0.6))
    with pytest.raises(NotFound):
        reg.get("v0002")
    with pytest.raises(InvalidInput):
        reg.get("../etc")


def test_promotion_moves_the_pointer_and_keeps_history(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    assert reg.champion() is None
    for auprc in (0.5, 0.7):
        v, _ = reg.new_version()
        reg.register(record(v, auprc))
    reg.promote("v0001", "first")
    reg.promote("v0002", "better")
    champion = reg.champion()
    assert champion is not None
    assert champion.version == "v0002"
    assert [h["reason"] for h in reg.history()] == ["first", "better"]
    assert ModelRegistry(tmp_path).champion_version() == "v0002"  # survives a new process


def test_gate_refuses_a_worse_challenger() -> None:
    assert gate({"auprc": 0.5}, None).promote
    assert gate({"auprc": 0.695}, {"auprc": 0.70}, tolerance=0.01).promote
    refused = gate({"auprc": 0.60}, {"auprc": 0.70}, tolerance=0.01)
    assert not refused.promote
    assert "worse than the champion" in refused.reason
    with pytest.raises(InvalidInput):
        gate({"auroc": 0.9}, None)

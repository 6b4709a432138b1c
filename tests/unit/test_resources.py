"""Package data: the Cypher schema and the shipped retraining jobs come with the package
(``creditgraph.resources``), in place for an editable install and as copies in a wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from creditgraph.config import RiskSettings, Settings
from creditgraph.resources import schema_dir, training_job
from creditgraph.training_config import load_training_config

ROOT = Path(__file__).resolve().parents[2]


def test_schema_and_jobs_are_package_data() -> None:
    names = sorted(p.name for p in schema_dir().glob("*.cypher"))
    assert names == sorted(p.name for p in (ROOT / "graph_schema").glob("*.cypher"))
    assert names
    assert all("IF NOT EXISTS" in (schema_dir() / n).read_text() for n in names)
    assert Settings().schema_dir == schema_dir()
    demo = load_training_config(training_job("demo.toml"))
    assert demo == load_training_config(ROOT / "training" / "demo.toml")


def test_risk_settings_read_their_flat_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CREDITGRAPH_RISK_BLOCK_THRESHOLD", "0.7")
    monkeypatch.setenv("CREDITGRAPH_RISK_UNKNOWN_POLICY", "block")
    monkeypatch.setenv("CREDITGRAPH_STORE_PROBE_INTERVAL_S", "5")
    s = Settings()
    assert s.risk == RiskSettings(block_threshold=0.7, unknown_policy="block")
    assert s.store == "embedded"
    assert s.store_probe_interval_s == 5.0


@pytest.mark.slow
def test_a_wheel_carries_the_schema_and_the_jobs(tmp_path: Path) -> None:
    # What the Dockerfile copies, links kept as links, built outside the checkout.
    tree = tmp_path / "tree"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("src", "graph_schema", "training"):
        shutil.copytree(ROOT / name, tree / name, symlinks=True, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "-w", str(tmp_path), str(tree)], check=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("creditgraph-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern in (("graph_schema", "*.cypher"), ("training", "*.toml")):
        for path in (ROOT / folder).glob(pattern):
            assert f"creditgraph/resources/{folder}/{path.name}" in names

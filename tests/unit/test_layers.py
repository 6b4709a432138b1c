"""The layer rules of docs/architecture.md, checked on every module's imports (CI fails on a
break). Imports are read from the source (``ast``), also those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import creditgraph

PACKAGE = Path(creditgraph.__file__).parent


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parts = ["creditgraph", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    here = parts if path.name == "__init__.py" else parts[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                out.add(".".join([*base, node.module] if node.module else base))
            elif node.module is not None:
                out.add(node.module)
                out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


MODULES = {
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): imports(p)
    for p in sorted(PACKAGE.rglob("*.py"))
}


def _top(name: str) -> str:
    return name.split(".")[0]


def _layer(module: str) -> str:
    """``creditgraph.services.risk.engine`` -> ``services``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_walk_sees_the_package() -> None:
    assert "creditgraph.ml.model" in MODULES
    assert "torch" in MODULES["creditgraph.ml.model"]
    assert "neo4j" in MODULES["creditgraph.store.neo4j"]


@pytest.mark.parametrize("library", ["torch", "torch_geometric"])
def test_only_ml_imports_torch(library: str) -> None:
    offenders = sorted(
        m
        for m, names in MODULES.items()
        if _layer(m) != "ml" and any(_top(n) == library for n in names)
    )
    assert offenders == [], f"{library} imported outside creditgraph.ml: {offenders}"


def test_only_the_neo4j_store_imports_the_driver() -> None:
    offenders = sorted(
        m
        for m, names in MODULES.items()
        if not m.startswith("creditgraph.store.neo4j") and any(_top(n) == "neo4j" for n in names)
    )
    assert offenders == [], f"neo4j imported outside creditgraph.store.neo4j*: {offenders}"


# What each lower layer may not import (entry points sit on top; nothing imports them).
FORBIDDEN = {
    "ml": {"store", "services", "api", "cli", "devtools", "rings", "ingest"},
    "store": {"ml", "services", "api", "cli", "devtools", "rings", "ingest"},
    "rings": {"store", "services", "api", "cli", "devtools", "ml"},
    "services": {"api", "cli", "devtools"},
    "ledger": {"store", "services", "api", "cli", "devtools", "ml", "rings", "ingest"},
    "domain": {"store", "services", "api", "cli", "devtools", "ml", "rings", "ingest"},
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_point_one_way(layer: str) -> None:
    offenders = sorted(
        f"{m} -> {n}"
        for m, names in MODULES.items()
        if _layer(m) == layer
        for n in names
        if n.startswith("creditgraph.") and _layer(n) in FORBIDDEN[layer]
    )
    assert offenders == [], offenders

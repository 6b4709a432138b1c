"""Files the package ships: the Cypher schema and the retraining jobs.

The repository's top-level ``graph_schema/`` and ``training/`` are the sources; the two
entries here are links to them, so an editable install reads them in place and a wheel (the
Docker image) carries copies as package data (``pyproject.toml``). Read them through these
functions, never by a path relative to the source tree.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def _folder(name: str) -> Path:
    # Installed from a wheel or in place, the package is plain files: as_file is a no-op.
    with as_file(files(__package__) / name) as path:
        return Path(path)


def schema_dir() -> Path:
    """The numbered Cypher files (``graph_schema/``) applied when a Neo4j store opens."""
    return _folder("graph_schema")


def training_job(name: str) -> Path:
    """A shipped retraining job, e.g. ``training_job("demo.toml")``."""
    return _folder("training") / name

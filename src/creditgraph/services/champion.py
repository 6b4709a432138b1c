"""The champion model of a registry, loaded: the one way every service gets it."""

from __future__ import annotations

from dataclasses import dataclass

from creditgraph.errors import ModelNotReady
from creditgraph.ml.artifact import ModelArtifact, load_artifact
from creditgraph.registry import ModelRegistry


@dataclass(frozen=True)
class Champion:
    """The champion's registered version and its loaded artifact."""

    version: str
    artifact: ModelArtifact


def load_champion(registry: ModelRegistry) -> Champion:
    """The registry's champion, loaded; ``ModelNotReady`` when there is none."""
    version = registry.champion_version()
    if version is None:
        raise ModelNotReady("no champion model: train one first (creditgraph train)")
    return Champion(version, load_artifact(registry.path(version)))

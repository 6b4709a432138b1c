"""Fraud rings: candidate groups from suspicious structure, scoring, typing and evidence.

Pure array code on a ``Snapshot`` (numpy, scipy, igraph): no store, no torch.
"""

from creditgraph.rings.candidates import DetectConfig
from creditgraph.rings.detect import DetectedRing, Detection, detect

__all__ = ["DetectConfig", "DetectedRing", "Detection", "detect"]

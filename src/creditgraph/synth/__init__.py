"""Synthetic social-payment network with planted fraud rings, for demos, tests and benchmarks."""

from creditgraph.synth.generator import SynthSummary, generate

__all__ = ["SynthSummary", "generate"]

"""creditgraph: graph-based social-credit and fraud analysis."""

__version__ = "0.1.0"

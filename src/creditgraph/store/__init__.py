"""Graph stores: one contract (``base.GraphStore``), an embedded SQLite backend and Neo4j."""

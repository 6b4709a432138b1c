"""Development tools behind ``creditgraph neo4j ...``: the project's own local Neo4j server
(fetch, configure, start, stop, ``neo4j-admin``) and the offline bulk load into it. Not part
of the service: nothing in ``services`` or ``api`` imports this package."""

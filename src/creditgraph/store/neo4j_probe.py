"""Is a Neo4j server answering? One ``RETURN 1`` for the local server's process manager
(``devtools.neo4j_server``), which must not talk to the driver itself."""

from __future__ import annotations

import neo4j
from neo4j import exceptions as neo4j_errors

from creditgraph.errors import StoreUnavailable


class NotAnswering(StoreUnavailable):
    """No answer yet: not listening, or its databases still coming online."""


class AuthRejected(StoreUnavailable):
    """The server answered and refused the user / password."""


def server_version(uri: str, user: str, password: str, database: str) -> str:
    """Run ``RETURN 1`` (auto-commit, no driver retries) and return the server version.

    ``AuthRejected`` for a wrong password, ``NotAnswering`` while the server is not (yet)
    there, ``StoreUnavailable`` when it answers but refuses the query."""
    try:
        with (
            neo4j.GraphDatabase.driver(
                uri,
                auth=(user, password),
                connection_timeout=3.0,
                connection_acquisition_timeout=5.0,
            ) as driver,
            driver.session(database=database) as session,
        ):
            one = session.run("RETURN 1 AS one").single(strict=True)["one"]
            if one != 1:
                raise StoreUnavailable(f"RETURN 1 returned {one!r}")
            record = session.run(
                "CALL dbms.components() YIELD name, versions "
                "WHERE name = 'Neo4j Kernel' RETURN versions[0] AS version"
            ).single(strict=True)
            return str(record["version"])
    except neo4j_errors.AuthError as e:
        raise AuthRejected(f"{type(e).__name__}: {e}") from e
    except (neo4j_errors.DriverError, neo4j_errors.TransientError) as e:
        raise NotAnswering(f"{type(e).__name__}: {e}") from e
    except neo4j_errors.Neo4jError as e:
        raise StoreUnavailable(
            f"Neo4j at {uri} refused RETURN 1 on database {database!r}: {e}"
        ) from e

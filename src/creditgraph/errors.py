"""One exception family for library code; entry points map it to exit codes / HTTP status."""

from __future__ import annotations


class CreditGraphError(Exception):
    """Base of every error creditgraph raises on purpose."""

    exit_code = 1


class InvalidInput(CreditGraphError):
    """Input that breaks the data contract (a bad CSV row, a bad request field)."""

    exit_code = 2


class NotFound(CreditGraphError):
    """A referenced object (account, ring, model version) does not exist."""

    exit_code = 3


class Conflict(CreditGraphError):
    """The request contradicts stored state (e.g. a constraint violation)."""

    exit_code = 4


class StoreUnavailable(CreditGraphError):
    """The graph store cannot be reached or refused the operation for operational reasons."""

    exit_code = 5


class ModelNotReady(CreditGraphError):
    """No trained / promoted model is available for the requested operation."""

    exit_code = 6

"""One exception family for library code; entry points map it to exit codes / HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CreditGraphError(Exception):
    """Base of every error creditgraph raises on purpose."""

    exit_code = 1


class InvalidInput(CreditGraphError):
    """Input that breaks the data contract (a bad CSV row, a bad request field)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in an input file, located to the physical line."""

    file: str
    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: column {self.column!r}: {self.reason}"
            if self.column
            else f"{where}: {self.reason}"
        )


class ValidationFailed(InvalidInput):
    """A file (or an HTTP batch) broke the data contract; nothing from it was written."""

    def __init__(self, errors: Sequence[RowError], total: int | None = None) -> None:
        self.errors = list(errors)
        self.total = total if total is not None else len(errors)
        more = (
            f"\n... and {self.total - len(self.errors)} more"
            if self.total > len(self.errors)
            else ""
        )
        super().__init__("\n".join(str(e) for e in self.errors) + more)


class ConfigError(CreditGraphError):
    """A setting (an environment variable) has a value creditgraph cannot use."""

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


@dataclass(frozen=True, slots=True)
class ChangedTransfer:
    """A transfer sent again under a stored ``transfer_id`` with other content."""

    transfer_id: str
    fields: tuple[str, ...]
    #: The row's index in the batch written; once located, the file's line (``file`` set).
    row: int
    file: str | None = None

    def __str__(self) -> str:
        what = (
            f"transfer_id {self.transfer_id!r} is already stored with a different "
            f"{', '.join(self.fields)} (transfers are immutable: send a new id)"
        )
        return f"{self.file}:{self.row}: column 'transfer_id': {what}" if self.file else what


class TransferConflict(Conflict):
    """Transfers re-sent with other content; the write they came in was not applied."""

    SHOWN = 20

    def __init__(self, changed: Sequence[ChangedTransfer]) -> None:
        self.changed = list(changed)
        more = len(self.changed) - self.SHOWN
        super().__init__(
            "\n".join(str(c) for c in self.changed[: self.SHOWN])
            + (f"\n... and {more} more" if more > 0 else "")
        )


class TooExpensive(InvalidInput):
    """A query ran past a cost cap (a deadline); ``cap`` names the setting to read."""

    def __init__(self, message: str, cap: str) -> None:
        self.cap = cap
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ChangedAccount:
    """An existing account sent with other values for attributes it already has."""

    account_id: str
    fields: tuple[str, ...]
    #: The row's index in the batch written; once located, the file's line (``file`` set).
    row: int
    file: str | None = None

    def __str__(self) -> str:
        what = (
            f"account {self.account_id!r} already has a different {', '.join(self.fields)} "
            "(an account's recorded attributes are changed by an admin key only, and versioned)"
        )
        return f"{self.file}:{self.row}: column 'account_id': {what}" if self.file else what


class AccountConflict(Conflict):
    """Accounts sent with changes the writer may not make; nothing of the write applied."""

    SHOWN = 20

    def __init__(self, changed: Sequence[ChangedAccount]) -> None:
        self.changed = list(changed)
        more = len(self.changed) - self.SHOWN
        super().__init__(
            "\n".join(str(c) for c in self.changed[: self.SHOWN])
            + (f"\n... and {more} more" if more > 0 else "")
        )


@dataclass(frozen=True, slots=True)
class RefusedObligation:
    """An obligation row that would change stored terms or move a status backwards."""

    obligation_id: str
    reason: str
    #: The row's index in the batch written; once located, the file's line (``file`` set).
    row: int
    file: str | None = None

    def __str__(self) -> str:
        what = f"obligation_id {self.obligation_id!r}: {self.reason}"
        return f"{self.file}:{self.row}: column 'status': {what}" if self.file else what


class ObligationConflict(Conflict):
    """Obligations whose terms changed or whose status would move back; nothing written."""

    SHOWN = 20

    def __init__(self, refused: Sequence[RefusedObligation]) -> None:
        self.refused = list(refused)
        more = len(self.refused) - self.SHOWN
        super().__init__(
            "\n".join(str(c) for c in self.refused[: self.SHOWN])
            + (f"\n... and {more} more" if more > 0 else "")
        )

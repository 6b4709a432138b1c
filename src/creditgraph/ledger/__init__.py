"""The accountability logs: the audit log (who looked at or did what, and why) and the
decision log (every risk decision and credit output with its inputs' hash, model version,
thresholds and reasons), both hash-chained (``chain``), with account ids as pseudonyms
(``pseudonyms``) so that a data subject can be erased without rewriting the chain."""

from creditgraph.ledger.chain import ChainLog, LogUnavailable, verify
from creditgraph.ledger.core import Ledger

__all__ = ["ChainLog", "Ledger", "LogUnavailable", "verify"]

"""Consent to use relationships in credit outputs (``social_scoring`` on the account).

An account without a value has the default of the settings (``credit.consent_default``).
Withdrawn consent means no relationship of the account enters any of its credit outputs:
``services.credit`` reads consent through ``consent_of`` before it reads any neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditgraph.domain import (
    CONSENT_PROPERTY,
    CONSENT_VALUES,
    Account,
    AccountColumns,
    ConsentValue,
)
from creditgraph.errors import InvalidInput
from creditgraph.store.base import GraphStore


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """What a consent update did."""

    account_id: str
    social_scoring: ConsentValue
    previous: ConsentValue
    explicit: bool


def consent_value(text: str | None, default: ConsentValue) -> ConsentValue:
    """A stored ``social_scoring`` text as consent; missing or empty means ``default``."""
    for v in CONSENT_VALUES:
        if v == text:
            return v
    return default


def consent_of(account: Account, default: ConsentValue) -> ConsentValue:
    return consent_value(account.properties.get(CONSENT_PROPERTY), default)


def set_consent(
    store: GraphStore, account_id: str, value: str, default: ConsentValue
) -> ConsentChange:
    """Record ``value`` (granted | withdrawn) for a stored account; ``NotFound`` if absent."""
    new = consent_value(value, default)
    if new != value:
        raise InvalidInput(f"social_scoring must be one of {', '.join(CONSENT_VALUES)}")
    account = store.get_account(account_id)
    explicit = CONSENT_PROPERTY in account.properties
    previous = consent_of(account, default)
    store.upsert_accounts(AccountColumns([account_id], [None], [{}], [{CONSENT_PROPERTY: new}]))
    return ConsentChange(account_id, new, previous, explicit)

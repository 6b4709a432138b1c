"""A small typed client for the payment service (httpx, synchronous).

    with CreditGraphClient("http://127.0.0.1:8000", api_key) as cg:
        d = cg.check_transfer("A0000001", "A0000002", 120.0, idempotency_key="t-981")
        if d.decision == "block": ...

Errors come back as ``CreditGraphAPIError`` with the HTTP status, the error code and, for
invalid input, the field-level messages. The client imports nothing from the server side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

Decision = Literal["allow", "review", "block"]


class CreditGraphAPIError(Exception):
    """A non-2xx answer: ``status``, ``code`` (e.g. ``invalid_input``), ``fields``."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    weight: float | None = None


@dataclass(frozen=True)
class RiskAnswer:
    """The decision on one transfer."""

    decision: Decision
    risk: float
    reasons: list[Reason]
    model_version: str
    degraded: bool
    replayed: bool = False


@dataclass(frozen=True)
class AccountScore:
    account_id: str
    fraud_probability: float
    social_credit: float
    reasons: list[Reason]
    model_version: str
    source: str
    degraded: bool
    #: New ties of the account wait for the server's background rescorer.
    pending: bool = False


@dataclass(frozen=True)
class IngestResult:
    kind: str
    received: int
    changed: int
    created_accounts: int
    #: Accounts rescored before the answer (the server's ``rescore_mode=sync``).
    rescored: int
    model_version: str | None
    #: Accounts queued for the server's background rescorer (scored shortly after).
    queued: int = 0


def _reasons(items: Sequence[Mapping[str, Any]]) -> list[Reason]:
    return [
        Reason(r["code"], r["message"], dict(r.get("evidence") or {}), r.get("weight"))
        for r in items
    ]


class CreditGraphClient:
    """The payment service's view of the API (risk checks, scores, live ingest)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 2.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> CreditGraphClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, url, **kwargs)
        if response.is_success:
            return response
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "http_error", "message": response.text[:200]}
        raise CreditGraphAPIError(
            response.status_code,
            error.get("code", "http_error"),
            error.get("message", ""),
            error.get("fields"),
        )

    def check_transfer(
        self,
        src: str,
        dst: str,
        amount: float,
        *,
        currency: str | None = None,
        timestamp: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> RiskAnswer:
        """``POST /v1/risk/transfer``; the same ``idempotency_key`` gives the same answer."""
        body: dict[str, Any] = {"src": src, "dst": dst, "amount": amount}
        if currency is not None:
            body["currency"] = currency
        if timestamp is not None:
            body["timestamp"] = timestamp.isoformat()
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        r = self._call("POST", "/v1/risk/transfer", json=body, headers=headers)
        data = r.json()
        return RiskAnswer(
            decision=data["decision"],
            risk=float(data["risk"]),
            reasons=_reasons(data["reasons"]),
            model_version=data["model_version"],
            degraded=bool(data["degraded"]),
            replayed=r.headers.get("Idempotent-Replayed") == "true",
        )

    def account_score(self, account_id: str) -> AccountScore:
        """``GET /v1/accounts/{id}/score``."""
        data = self._call("GET", f"/v1/accounts/{quote(account_id, safe='')}/score").json()
        return AccountScore(
            account_id=data["account_id"],
            fraud_probability=float(data["fraud_probability"]),
            social_credit=float(data["social_credit"]),
            reasons=_reasons(data["reasons"]),
            model_version=data["model_version"],
            source=data["source"],
            degraded=bool(data["degraded"]),
            pending=bool(data.get("pending", False)),
        )

    def _ingest(
        self, kind: str, items: Sequence[Mapping[str, Any]], create_missing_accounts: bool
    ) -> IngestResult:
        params = {"create_missing_accounts": "true"} if create_missing_accounts else {}
        data = self._call("POST", f"/v1/{kind}", json={"items": list(items)}, params=params)
        known = IngestResult.__dataclass_fields__
        return IngestResult(**{k: v for k, v in data.json().items() if k in known})

    def add_transfers(
        self, items: Sequence[Mapping[str, Any]], *, create_missing_accounts: bool = False
    ) -> IngestResult:
        """``POST /v1/transfers`` (items as in transfers.csv; idempotent by transfer_id)."""
        return self._ingest("transfers", items, create_missing_accounts)

    def add_links(
        self, items: Sequence[Mapping[str, Any]], *, create_missing_accounts: bool = False
    ) -> IngestResult:
        """``POST /v1/links`` (items as in links.csv)."""
        return self._ingest("links", items, create_missing_accounts)

    def add_accounts(self, items: Sequence[Mapping[str, Any]]) -> IngestResult:
        """``POST /v1/accounts`` (``account_id``, ``created_at``, ``features``, ``properties``)."""
        return self._ingest("accounts", items, False)

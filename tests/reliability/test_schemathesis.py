"""Schemathesis against a real uvicorn server: at least 2,000 generated cases, each response
checked for server errors and for conformance to the OpenAPI schema (status code, content
type, body schema); then stateful sequences that follow the spec's links, with the same
checks. Zero failures allowed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from creditgraph.config import Settings
from tests.apitools import bearer, keys_for, running_server

pytestmark = pytest.mark.slow

#: Per operation; with the spec's operations this is well over 2,000 cases.
EXAMPLES = 110
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
HEADERS = {"X-Purpose": "schemathesis run"}


def _checks() -> list[Any]:
    load_all_checks()
    return list(CHECKS.get_by_names(list(CHECK_NAMES)))


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    api_settings: Settings,
) -> None:
    keys = keys_for(api_settings)
    checks = _checks()
    failures: list[str] = []
    seen: Counter[int] = Counter()
    stateful: Counter[str] = Counter()
    with running_server(api_settings) as url:
        spec = httpx.get(f"{url}/openapi.json").json()
        schema = schemathesis.openapi.from_dict(spec)
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operations.append(result.ok())
        assert len(operations) >= 15

        for operation in operations:

            @given(
                case=operation.as_strategy(),
                role=st.sampled_from(["admin", "investigator", "payment"]),
            )
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case[Any], role: str) -> None:
                headers = {**bearer(keys[role]), **HEADERS}
                response = case.call(base_url=url, headers=headers)
                seen[response.status_code] += 1
                try:
                    case.validate_response(response, checks=checks, headers=headers)
                except FailureGroup as e:
                    failures.append(f"{case.method} {case.formatted_path} ({role}): {e}"[:1500])

            run()

        # Stateful: sequences that follow the spec's links (a created account's score, ...).
        machine = schema.as_state_machine()

        class Calls(machine):  # type: ignore[misc, valid-type]
            def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
                return {"base_url": url, "headers": {**bearer(keys["admin"]), **HEADERS}}

            def validate_response(
                self, response: Any, case: schemathesis.Case[Any], **kwargs: Any
            ) -> None:
                seen[response.status_code] += 1
                stateful[f"{case.method} {case.path} {response.status_code}"] += 1
                try:
                    case.validate_response(response, checks=checks, transport_kwargs=kwargs)
                except FailureGroup as e:
                    failures.append(f"stateful {case.method} {case.formatted_path}: {e}"[:1500])

        Calls.run(
            settings=settings(
                max_examples=40,
                stateful_step_count=6,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
        )
        # The generated sequences reach a valid ingest only by chance (how often depends on
        # the server's answers); walk the ingest's links once by hand, so a broken link or a
        # linked view that breaks its schema fails deterministically.
        followed = _follow_account_links(schema, spec, url, keys["admin"], checks, failures)
    print(dict(seen), dict(stateful))
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:8])
    assert followed.get("GET /v1/accounts/{account_id}/score") == 200, followed
    assert len(followed) >= 4, followed
    assert set(followed.values()) == {200}, followed
    assert sum(stateful.values()) >= 100, stateful
    assert sum(seen.values()) >= 2_000, seen
    assert seen[200] > 0, seen
    assert seen[422] > 0, seen


def _follow_account_links(
    schema: Any,
    spec: dict[str, Any],
    url: str,
    key: str,
    checks: list[Any],
    failures: list[str],
) -> dict[str, int]:
    """Ingest one account, then call every operation its 200 answer links to, resolving each
    link's ``$request.body#/...`` pointer; returns ``"METHOD path" -> status``."""
    headers = {**bearer(key), **HEADERS}
    body = {"items": [{"account_id": "schemathesis-linked"}]}
    created = httpx.post(f"{url}/v1/accounts", json=body, headers=headers)
    assert created.status_code == 200, created.text
    by_id = {
        op["operationId"]: (method, path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }
    links = spec["paths"]["/v1/accounts"]["post"]["responses"]["200"]["links"]
    statuses: dict[str, int] = {}
    for link in links.values():
        method, path = by_id[link["operationId"]]
        params = {}
        for name, expr in link["parameters"].items():
            assert expr.startswith("$request.body#/"), expr
            value: Any = body
            for part in expr.removeprefix("$request.body#/").split("/"):
                value = value[int(part)] if isinstance(value, list) else value[part]
            params[name] = value
        case = schema[path][method.upper()].Case(path_parameters=params, headers=headers)
        response = case.call(base_url=url, headers=headers)
        statuses[f"{method.upper()} {path}"] = response.status_code
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as e:
            failures.append(f"linked {method.upper()} {path}: {e}"[:1500])
    return statuses

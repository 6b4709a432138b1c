"""The spec documents what the API really answers: the body guard's 400 / 413 on every
operation with a body, the 409 of a changed transfer, and links between operations."""

from __future__ import annotations

from pathlib import Path

from creditgraph.api.app import create_app
from creditgraph.config import Settings


def test_the_spec_documents_the_guard_the_conflict_and_the_links(tmp_path: Path) -> None:
    spec = create_app(Settings(data_dir=tmp_path)).openapi()
    paths = spec["paths"]
    with_body = [
        (path, method, op)
        for path, ops in paths.items()
        for method, op in ops.items()
        if "requestBody" in op
    ]
    assert len(with_body) >= 6
    for path, method, op in with_body:
        assert {"400", "413"} <= set(op["responses"]), (method, path)
    assert "409" in paths["/v1/transfers"]["post"]["responses"]
    links = paths["/v1/accounts"]["post"]["responses"]["200"]["links"]
    target = paths["/v1/accounts/{account_id}/score"]["get"]["operationId"]
    assert links["AccountScore"] == {
        "operationId": target,
        "parameters": {"account_id": "$request.body#/items/0/account_id"},
    }
    operation_ids = {op["operationId"] for ops in paths.values() for op in ops.values()}
    for ops in paths.values():
        for op in ops.values():
            for link in op["responses"].get("200", {}).get("links", {}).values():
                assert link["operationId"] in operation_ids

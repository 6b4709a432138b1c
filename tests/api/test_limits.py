"""Request bodies on a real server: the key is checked before a byte of the body is read, a
body over the route's limit is a 413 before it is read (declared) or at the limit (chunked),
deep JSON is a 400, and an account's features / properties are capped (422)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from creditgraph.api.keys import KeyRing, create_key
from creditgraph.api.limits import BodyGuard
from creditgraph.config import Settings
from tests.apitools import bearer, running_server

INGEST_LIMIT = 4096
#: The documented caps per account (README): features, properties, text length.
MAX_PROPERTIES, MAX_VALUE_LENGTH = 100, 1000
RISK_LIMIT = 16 * 1024  # the default


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A server over an empty store (no model needed), its URL and a payment and an
    investigator key."""
    s = Settings(
        data_dir=tmp_path_factory.mktemp("limits") / "data", max_body_ingest_bytes=INGEST_LIMIT
    )
    payment = create_key(s, "payment", "feeder")
    investigator = create_key(s, "investigator", "inv")
    with running_server(s) as url:
        yield url, payment, investigator


def exchange(url: str, head: str, parts: Sequence[bytes] = ()) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` and ``parts`` on a raw connection, then read the answer (the server
    closes the connection after a refusal). A server still waiting for the body times out."""
    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
        sock.sendall(head.encode())
        for part in parts:
            sock.sendall(part)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "the server closed without answering"
            data += chunk
        raw_head, _, body = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers, body


def post_head(path: str, key: str | None, extra: str) -> str:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}{extra}\r\n"


@pytest.mark.parametrize("path", ["/v1/transfers", "/v1/risk/transfer", "/v1/labels"])
def test_a_body_without_a_valid_key_is_refused_unread(
    server: tuple[str, str, str], path: str
) -> None:
    url, payment, _ = server
    declared = "Content-Length: 134217728\r\n"  # 128 MiB announced, none sent
    for key in (None, "cg_nothere_secret", payment[:-2] + "xx"):
        status, headers, body = exchange(url, post_head(path, key, declared))
        assert status == 401
        assert headers["www-authenticate"] == "Bearer"
        assert json.loads(body)["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("path", "limit"), [("/v1/transfers", INGEST_LIMIT), ("/v1/risk/transfer", RISK_LIMIT)]
)
def test_a_declared_body_over_the_route_limit_is_413_unread(
    server: tuple[str, str, str], path: str, limit: int
) -> None:
    url, payment, _ = server
    status, _, body = exchange(url, post_head(path, payment, f"Content-Length: {limit + 1}\r\n"))
    assert status == 413
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large"
    assert str(limit) in error["message"]


def chunked(data: bytes, size: int = 1000) -> list[bytes]:
    return [
        f"{len(data[i : i + size]):x}\r\n".encode() + data[i : i + size] + b"\r\n"
        for i in range(0, len(data), size)
    ]


def test_a_chunked_body_is_cut_off_at_the_limit(server: tuple[str, str, str]) -> None:
    url, payment, _ = server
    body = b'{"items": [' + b" " * INGEST_LIMIT + b"]}"
    # Only the chunks up to the limit: the server has read all of them when it answers.
    parts = chunked(body[: INGEST_LIMIT + 1])
    status, _, answer = exchange(
        url, post_head("/v1/accounts", payment, "Transfer-Encoding: chunked\r\n"), parts
    )
    assert status == 413
    assert json.loads(answer)["error"]["code"] == "payload_too_large"


def test_a_chunked_body_within_the_limit_is_served(server: tuple[str, str, str]) -> None:
    url, payment, _ = server
    body = json.dumps({"items": [{"account_id": f"c{i}"} for i in range(40)]}).encode()
    assert len(body) < INGEST_LIMIT
    status, _, answer = exchange(
        url,
        post_head("/v1/accounts", payment, "Transfer-Encoding: chunked\r\n"),
        [*chunked(body, 100), b"0\r\n\r\n"],
    )
    assert status == 200, answer
    assert json.loads(answer)["received"] == 40


def test_the_role_check_still_answers_403(server: tuple[str, str, str]) -> None:
    url, payment, _ = server
    r = httpx.post(
        f"{url}/v1/labels",
        json={"items": [{"account_id": "A", "label": "fraud"}]},
        headers=bearer(payment),
    )
    assert r.status_code == 403


@pytest.mark.parametrize("path", ["/v1/transfers", "/v1/risk/transfer"])
def test_deep_json_is_400(server: tuple[str, str, str], path: str) -> None:
    url, payment, _ = server
    deep = '{"items": ' + "[" * 40 + "]" * 40 + "}"
    r = httpx.post(
        f"{url}{path}",
        content=deep,
        headers={**bearer(payment), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "too_deep"


def test_brackets_inside_strings_do_not_count_as_depth(server: tuple[str, str, str]) -> None:
    url, payment, _ = server
    name = "[" * 30 + '\\"{' * 10
    r = httpx.post(
        f"{url}/v1/accounts",
        json={"items": [{"account_id": "deepname", "properties": {"nick": name}}]},
        headers=bearer(payment),
    )
    assert r.status_code == 200, r.text


def test_account_property_count_and_value_length_are_capped(
    server: tuple[str, str, str],
) -> None:
    url, payment, _ = server
    many = {f"f{i}": 1.0 for i in range(MAX_PROPERTIES + 1)}
    r = httpx.post(
        f"{url}/v1/accounts",
        json={"items": [{"account_id": "wide", "features": many}]},
        headers=bearer(payment),
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["loc"] == ["body", "items", 0, "features"]
    long = {"note": "x" * (MAX_VALUE_LENGTH + 1)}
    r = httpx.post(
        f"{url}/v1/accounts",
        json={"items": [{"account_id": "long", "properties": long}]},
        headers=bearer(payment),
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["loc"] == ["body", "items", 0, "properties", "note"]
    r = httpx.post(
        f"{url}/v1/accounts",
        json={"items": [{"account_id": "fine", "features": {"f": 1.0}, "properties": {"a": "b"}}]},
        headers=bearer(payment),
    )
    assert r.status_code == 200, r.text


def test_a_limit_is_a_setting(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "data", max_body_risk_bytes=300)
    key = create_key(s, "payment", "feeder")
    with running_server(s) as url:
        body = json.dumps({"src": "A" * 100, "dst": "B" * 100, "amount": 1, "currency": "EUR"})
        r = httpx.post(
            f"{url}/v1/risk/transfer",
            content=body + " " * 200,
            headers={**bearer(key), "Content-Type": "application/json"},
        )
        assert r.status_code == 413


def test_a_first_chunk_over_the_limit_is_413_without_waiting_for_more(tmp_path: Path) -> None:
    """In-process: the server may hand the guard everything received so far as one message
    that says more is coming; the guard must answer then, not wait."""
    s = Settings(data_dir=tmp_path / "data", max_body_ingest_bytes=INGEST_LIMIT)
    key = create_key(s, "payment", "feeder")
    ring = KeyRing(s.api_keys_path)
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the route must not be reached")

    async def receive() -> Message:
        if not sent and not received:
            received.append(1)
            return {"type": "http.request", "body": b"x" * (INGEST_LIMIT + 1), "more_body": True}
        await asyncio.sleep(3600)  # a client that never sends the rest
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    received: list[int] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/transfers",
        "app": SimpleNamespace(state=SimpleNamespace(api=SimpleNamespace(keys=ring))),
        "headers": [
            (b"authorization", f"Bearer {key}".encode()),
            (b"transfer-encoding", b"chunked"),
        ],
    }
    asyncio.run(asyncio.wait_for(BodyGuard(app, s)(scope, receive, send), timeout=5))
    assert sent[0]["status"] == 413

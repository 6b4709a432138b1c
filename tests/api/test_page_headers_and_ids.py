"""The investigator page is sent with CSP / frame / sniffing / referrer headers, and ids are
trimmed on look-up as they are on ingest."""

from __future__ import annotations

from urllib.parse import quote

from tests.apitools import ApiClient

A, B = "A0000001", "A0000002"


def test_the_page_is_sent_with_security_headers(api: ApiClient) -> None:
    for url in ("/ui/", "/ui/app.js", "/ui/vendor/cytoscape.min.js"):
        r = api.get(url)
        assert r.status_code == 200, url
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "default-src 'self'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    # The API's JSON is not a page: no CSP there.
    assert "content-security-policy" not in api.get("/healthz").headers


def test_ids_are_trimmed_on_look_up(api: ApiClient) -> None:
    plain = api.get(f"/v1/accounts/{A}/score", "payment")
    spaced = api.get(f"/v1/accounts/{quote(f' {A}  ')}/score", "payment")
    assert plain.status_code == 200
    assert spaced.status_code == 200, spaced.text
    assert spaced.json() == plain.json()
    assert api.get(f"/v1/accounts/{quote('   ')}/score", "payment").status_code == 422
    body = {"src": A, "dst": B, "amount": 12.5}
    plain = api.post("/v1/risk/transfer", "payment", json=body)
    spaced = api.post(
        "/v1/risk/transfer", "payment", json={**body, "src": f" {A}", "dst": f"{B}\t"}
    )
    assert plain.status_code == 200
    assert spaced.json() == plain.json()
    blank = api.post("/v1/risk/transfer", "payment", json={**body, "src": "  "})
    assert blank.status_code == 422

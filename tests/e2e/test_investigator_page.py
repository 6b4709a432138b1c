"""The investigator page in headless Chromium against a real server on demo-like data.

The walkthrough signs in, loads the ring queue, opens a ring, expands an account by clicking
it in the graph, finds a path, and confirms the ring; each step leaves a screenshot under
``tests/e2e/artifacts/``. With ``CREDITGRAPH_README_SCREENSHOT=1`` the walkthrough also
writes ``docs/img/investigator.png``, the README's picture.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTIFACTS, Server

pytestmark = pytest.mark.e2e

PURPOSE = "case 2024-117: e2e walkthrough"
README_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "img" / "investigator.png"


def shot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path


def sign_in(page: Page, server: Server, key: str) -> None:
    page.goto(server.base_url + "/")
    expect(page).to_have_url(server.base_url + "/ui/")
    page.get_by_test_id("signin-key").fill(key)
    page.get_by_test_id("signin-purpose").fill(PURPOSE)
    page.get_by_test_id("signin-submit").click()


def graph(page: Page, script: str) -> Any:
    """Evaluate ``script`` with the page's Cytoscape instance as ``cy``."""
    return page.evaluate(f"() => {{ const cy = window.cy; return {script}; }}")


def click_node(page: Page, account_id: str) -> None:
    """A real mouse click on the node's position on the canvas."""
    box = page.get_by_test_id("graph").bounding_box()
    assert box is not None
    pos = graph(page, f"cy.$id({orjson.dumps(account_id).decode()}).renderedPosition()")
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])


def api(server: Server, path: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {server.investigator_key}", "X-Purpose": PURPOSE}
    r = httpx.get(server.base_url + path, headers=headers, params=params, timeout=10)
    r.raise_for_status()
    return r.json()


def test_payment_key_is_refused(page: Page, server: Server) -> None:
    sign_in(page, server, server.payment_key)
    expect(page.locator("#signin-error")).to_contain_text("cannot use the investigator page")
    expect(page.locator("#app")).to_be_hidden()


def test_investigator_walkthrough(page: Page, server: Server) -> None:
    queue = api(server, "/v1/rings", status=["new", "investigating"], limit=25)
    assert queue["total"] >= 3

    # 1. Sign in and load the queue: highest score first, as the API orders it.
    sign_in(page, server, server.investigator_key)
    items = page.get_by_test_id("queue-item")
    expect(items).to_have_count(len(queue["items"]))
    expect(page.get_by_test_id("queue-total")).to_have_text(f"{queue['total']} rings")
    shown = [items.nth(i).get_attribute("data-ring-id") for i in range(items.count())]
    assert shown == [r["ring_id"] for r in queue["items"]]
    shot(page, "01-queue")

    # 2. Open the top ring: its members are drawn and marked, evidence edges highlighted.
    ring = api(server, f"/v1/rings/{queue['items'][0]['ring_id']}")
    items.first.click()
    expect(page.get_by_test_id("ring-id")).to_have_text(ring["ring_id"])
    expect(page.get_by_test_id("members").locator("tbody tr")).to_have_count(ring["size"])
    assert graph(page, "cy.nodes().length") == ring["size"]
    assert graph(page, "cy.nodes('.in-ring').length") == ring["size"]
    flagged = sum(1 for e in ring["edges"] if e["evidence"])
    assert graph(page, "cy.edges('.evidence').length") >= flagged > 0
    expect(page.get_by_test_id("evidence")).to_be_visible()
    shot(page, "02-ring")

    # 3. Click the riskiest member: its account view opens and its neighbours join the graph.
    member = max(ring["members"], key=lambda m: (m["fraud_probability"] or 0, m["id"]))["id"]
    neighbours = api(server, f"/v1/accounts/{member}/neighbourhood", limit=15)
    before = graph(page, "cy.nodes().length")
    click_node(page, member)
    expect(page.get_by_test_id("account-id")).to_have_text(member)
    expect(page.get_by_test_id("social-explanation")).to_contain_text("of 100")
    ties = api(server, f"/v1/accounts/{member}")["ties"]
    assert ties, "the serving model attributes the member's risk to some of its ties"
    expect(page.get_by_test_id("ties").locator("li")).to_have_count(len(ties))
    expected = len({n["id"] for n in neighbours["nodes"]} | {m["id"] for m in ring["members"]})
    page.wait_for_function(f"() => window.cy.nodes().length === {expected}")
    assert expected > before
    assert graph(page, f"cy.$id('{member}').hasClass('expanded')")
    expect(page.get_by_test_id("graph-status")).to_contain_text(f"{member}:")
    shot(page, "03-expanded")

    # The account's transfers, filtered by a counterparty.
    latest = api(server, f"/v1/accounts/{member}/transfers", limit=1)["items"][0]
    other = latest["dst"] if latest["src"] == member else latest["src"]
    with_other = api(server, f"/v1/accounts/{member}/transfers", counterparty=other, limit=10)
    page.get_by_test_id("transfers-counterparty").fill(other)
    page.get_by_test_id("transfers-counterparty").press("Enter")
    rows = page.get_by_test_id("transfers").locator("tbody tr")
    expect(rows).to_have_count(len(with_other["items"]))
    expect(page.get_by_test_id("transfers")).to_contain_text(f"of {with_other['total']}")

    # 4. Path finder: from the member to an account two hops away, found through a neighbour
    # outside the ring.
    inside = {m["id"] for m in ring["members"]}
    outside = [n["id"] for n in neighbours["nodes"] if n["id"] not in inside]
    two_hops = api(server, f"/v1/accounts/{outside[0]}/neighbourhood", limit=15)
    on_screen = {n["id"] for n in neighbours["nodes"]} | inside
    for candidate in (n["id"] for n in two_hops["nodes"] if n["id"] not in on_screen):
        paths = api(server, "/v1/paths", **{"from": member, "to": candidate, "max_hops": 4})
        if paths["length"] == 2:
            target = candidate
            break
    else:
        pytest.fail(f"no account two hops from {member} through {outside[0]}")
    page.get_by_test_id("tab-paths").click()
    page.get_by_test_id("path-from").fill(member)
    page.get_by_test_id("path-to").fill(target)
    page.get_by_test_id("path-submit").click()
    expect(page.get_by_test_id("path-card")).to_have_count(len(paths["paths"]))
    assert graph(page, "cy.nodes('.path').length") == len(paths["nodes"])
    assert graph(page, "cy.edges('.path').length") == len(paths["edges"])
    shot(page, "04-path")

    # The README's picture: ring, expansion and path in the graph, the account beside it.
    page.get_by_test_id("tab-account").click()
    readme = shot(page, "investigator")
    if os.environ.get("CREDITGRAPH_README_SCREENSHOT") == "1":
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(readme, README_IMAGE)

    # 5. Confirm the ring with a note: it leaves the open queue, its members become fraud.
    page.get_by_test_id("tab-ring").click()
    page.get_by_test_id("status-confirmed").click()
    page.get_by_test_id("ring-note").fill("round-tripping confirmed with the bank, case 117")
    page.get_by_test_id("ring-save").click()
    expect(page.get_by_test_id("ring-status")).to_have_text("confirmed")
    expect(page.locator("#toast")).to_contain_text("is now confirmed")
    expect(page.get_by_test_id("queue-total")).to_have_text(f"{queue['total'] - 1} rings")
    shot(page, "05-confirmed")
    after = api(server, f"/v1/rings/{ring['ring_id']}")
    assert (after["status"], after["note"]) == (
        "confirmed",
        "round-tripping confirmed with the bank, case 117",
    )
    assert api(server, f"/v1/accounts/{member}")["label"] == "fraud"

    # Every look-up the page made is in the audit log with the key id and the purpose.
    key_id = server.investigator_key.split("_")[1]
    audit = [
        orjson.loads(line)
        for line in (server.data_dir / "audit" / "audit.jsonl").read_bytes().splitlines()
    ]
    page_lookups = [e for e in audit if e["action"].startswith("investigate.")]
    assert {e["key_id"] for e in page_lookups} == {key_id}
    assert {e["purpose"] for e in page_lookups} == {PURPOSE}
    actions = {e["action"] for e in page_lookups}
    assert {
        "investigate.rings",
        "investigate.ring",
        "investigate.account",
        "investigate.neighbourhood",
        "investigate.paths",
        "investigate.transfers",
        "investigate.ring.status",
    } <= actions

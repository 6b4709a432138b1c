"""Pure helpers of the investigator views: risk bands and evidence edges."""

from __future__ import annotations

from creditgraph.services.investigate import evidence_edges, risk_band


def test_risk_bands() -> None:
    assert [risk_band(p) for p in (None, 0.0, 0.19, 0.2, 0.49, 0.5, 1.0)] == [
        "unscored",
        "low",
        "low",
        "elevated",
        "elevated",
        "high",
        "high",
    ]


def test_evidence_edges_from_the_detector_format() -> None:
    evidence = {
        "cycles": [["A", "B", "C"]],
        "transfers": [
            {"src": "A", "dst": "B", "count": 3, "amount": 10.0},
            {"src": "D", "dst": "A"},
        ],
        "shared_links": [{"a": "C", "b": "E", "type": "SHARES_DEVICE"}],
        "hubs": ["D"],
        "features": {"density": 0.5},
    }
    assert evidence_edges(evidence) == [
        {"source": "A", "target": "B", "relation": "TRANSFER"},
        {"source": "B", "target": "C", "relation": "TRANSFER"},
        {"source": "C", "target": "A", "relation": "TRANSFER"},
        {"source": "D", "target": "A", "relation": "TRANSFER"},
        {"source": "C", "target": "E", "relation": "SHARES_DEVICE"},
    ]


def test_evidence_edges_tolerate_other_shapes() -> None:
    evidence = {
        "edges": [["A", "B", "FRIEND"], ["B", "C"], {"source": "C", "target": "D"}, ["lonely"]],
        "links": [{"src": "E", "dst": "F", "relation": "SHARES_ADDRESS"}],
        "cycles": [["X"], "not a cycle", [1, 2]],
    }
    assert evidence_edges(evidence) == [
        {"source": "A", "target": "B", "relation": "FRIEND"},
        {"source": "B", "target": "C", "relation": "TRANSFER"},
        {"source": "C", "target": "D", "relation": "TRANSFER"},
        {"source": "E", "target": "F", "relation": "SHARES_ADDRESS"},
    ]
    assert evidence_edges({}) == []

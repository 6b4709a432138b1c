"""``ledger.core.pseudonymise``: the fast ways of replacing ids by pseudonyms give exactly
what walking the entry gives (``_map_text`` + ``scrub``, the reference), byte for byte."""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Any

import orjson

from creditgraph.ledger.chain import ChainLog, seal
from creditgraph.ledger.core import (
    _map_text,
    _merged,
    _scrub_text,
    pseudonymise,
    pseudonymised_json,
)
from creditgraph.ledger.pseudonyms import scrub

# Ids a store may hold (ingest accepts 1-128 characters of anything): ordinary ones, one a
# prefix of another, digits only (they could match a number outside any string), ones JSON
# escapes (quote, backslash, control character), non-ASCII, with underscores and dashes.
IDS = [
    "A0000001",
    "A00000012",
    "acc_1",
    "acc_12",
    "12345",
    "1.5",
    "true",
    'ac"c',
    "ac\\c",
    "tab\there",
    "konto-ü7",
    "x",
    "e",
    "p_1",
]
WORDS = ["the", "receiver", "sender", "in", "ring", "r_7", "-", "_", ":", "é", "\n", '"', "\\"]


class Code(StrEnum):
    RECEIVER_RISK = "RECEIVER_RISK"
    ACC = "acc_1"  # a code that happens to equal an id


def _text(rng: random.Random) -> str:
    parts = [rng.choice(IDS + WORDS) for _ in range(rng.randint(0, 5))]
    sep = rng.choice([" ", "", ",", "_", "a", "/", "é"])
    return sep.join(parts)


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.random()
    if depth > 3 or kind < 0.35:
        return rng.choice(
            [
                _text(rng),
                rng.choice(IDS),
                rng.uniform(-1e6, 1e6),
                rng.randint(-(10**6), 10**12),
                12345,
                1.5,
                True,
                False,
                None,
                Code.RECEIVER_RISK,
                Code.ACC,
            ]
        )
    if kind < 0.7:
        return {
            rng.choice([_text(rng), rng.choice(IDS), "account_id", "message"]): _value(
                rng, depth + 1
            )
            for _ in range(rng.randint(0, 4))
        }
    seq = [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return tuple(seq) if rng.random() < 0.3 else seq


def _reference(entry: dict[str, Any], mapping: dict[str, str]) -> Any:
    return _map_text(entry, lambda t: scrub(t, mapping))


def test_pseudonymise_is_byte_identical_to_walking_the_entry() -> None:
    rng = random.Random(13)
    by_text = walked = untouched = 0
    for _ in range(3000):
        accounts = rng.sample(IDS, rng.randint(1, 3))
        mapping = {a: f"p_{rng.getrandbits(96):024x}" for a in accounts}
        entry = {f"k{i}": _value(rng, 0) for i in range(rng.randint(1, 5))}
        got = pseudonymise(dict(entry), mapping)
        want = _reference(entry, mapping)
        assert orjson.dumps(got) == orjson.dumps(want), (entry, mapping)
        if got is not None and orjson.dumps(got) == orjson.dumps(entry):
            untouched += 1
        if _scrub_text(orjson.dumps(entry), mapping) is not None:
            by_text += 1
        else:
            walked += 1
        # The bytes the decision line is written from: the same as serialising the entry.
        extra = {"subjects": list(mapping.values()), "input_hash": "ab" * 32}
        assert _merged(pseudonymised_json(entry, mapping), extra) == orjson.dumps(
            {**want, **extra}
        ), (entry, mapping)
    # All three ways were taken, each many times.
    assert by_text > 150, by_text
    assert walked > 300, walked
    assert untouched > 100, untouched


def test_a_risk_decision_entry_keeps_no_account_id() -> None:
    src, dst = "A0000001", "A0000002"
    mapping = {src: "p_" + "a" * 24, dst: "p_" + "b" * 24}
    entry = {
        "kind": "risk.transfer",
        "decision": "review",
        "reasons": [
            {
                "code": Code.RECEIVER_RISK,
                "message": f"the receiver {dst} is new; {src}'s first transfer to {dst}",
                "evidence": {"account_id": dst, "fraud_probability": 0.25},
            },
            {"code": "SENDER_RISK", "message": "x", "evidence": {"account_id": src}},
        ],
        "risk": 0.25,
    }
    got = orjson.dumps(pseudonymise(entry, mapping))
    assert src.encode() not in got
    assert dst.encode() not in got
    assert got.count(b"p_" + b"a" * 24) == 2
    assert got.count(b"p_" + b"b" * 24) == 3
    assert got == orjson.dumps(_reference(entry, mapping))


def test_an_id_that_json_escapes_is_still_replaced() -> None:
    # Its bytes are not in the serialised entry as they are (the quote is escaped there),
    # which once let such an entry skip the walk and keep the id.
    odd = 'ac"c'
    entry = {"reasons": [{"evidence": {"account_id": odd}, "message": f"to {odd} today"}]}
    got = pseudonymise(entry, {odd: "p_" + "c" * 24})
    assert got == {
        "reasons": [
            {
                "evidence": {"account_id": "p_" + "c" * 24},
                "message": "to p_cccccccccccccccccccccccc today",
            }
        ]
    }


def test_a_chain_line_is_the_merged_object_byte_for_byte(tmp_path: Any) -> None:
    """``append_json`` splices seq, ts and prev in front of the payload's bytes: the line is
    what serialising the whole object gives (so readers and ``verify`` see no change)."""
    rng = random.Random(5)
    log = ChainLog(tmp_path / "d.jsonl", clock=lambda: 1_700_000_000.25)
    payloads = [{}, {"a": 1}] + [
        {f"k{i}": _value(rng, 0) for i in range(rng.randint(1, 5))} for _ in range(200)
    ]
    try:
        prev = "0" * 64
        for n, payload in enumerate(payloads, start=1):
            assert log.append(payload) == n
            body = orjson.dumps({"seq": n, "ts": 1_700_000_000.25, "prev": prev, **payload})
            want, prev = seal(body)
            assert log.path.read_bytes().splitlines()[-1] == want
    finally:
        log.close()

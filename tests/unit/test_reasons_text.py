"""``ml.reasons_text`` writes the very text ``orjson.dumps(Attribution.reasons(...))`` writes."""

from __future__ import annotations

import numpy as np
import orjson

from creditgraph.ml.attribution import Attribution
from creditgraph.ml.reasons_text import reasons_json


def attribution(seed: int, n: int = 400) -> Attribution:
    rng = np.random.default_rng(seed)
    names = ["amount", 'say "hi"', "100% sure", "ünïcode", "age"]
    inputs = [*names, "amount_missing", "age_missing"]
    features = rng.normal(size=(n, len(inputs))).astype(np.float32)
    features[rng.random(features.shape) < 0.2] = 0.0  # zero weights are left out
    features[: n // 10] = 0.0  # rows without any feature reason
    raw = rng.lognormal(size=(n, 5)).astype(np.float32) * 1e3
    raw[rng.random(raw.shape) < 0.2] = np.nan  # missing values are named so
    raw[:, 4] = np.float32(1e-7)  # tiny values: %g and orjson in exponent form
    relations = ["FRIEND", "TRANSFER_out", 'odd "rel" 5%']
    neighbours = rng.integers(0, 4, size=(n, len(relations)))
    neighbours[n // 10 : n // 5] = 0  # no relationships at all
    fraud = rng.normal(size=(n, len(relations)))
    fraud[rng.random(fraud.shape) < 0.1] = 0.0
    return Attribution(
        input_names=inputs,
        first_indicator=len(names),
        features=features,
        raw=raw,
        # "100% sure" has no raw column in this snapshot (-1): always missing
        raw_column=np.array([0, 1, -1, 3, 4, 0, 4], dtype=np.int64),
        relations=relations,
        fraud_relations=fraud,
        social_relations=rng.normal(size=(n, len(relations))) * 1e-9,
        neighbours=neighbours,
    )


def test_reasons_json_is_the_dict_path_byte_for_byte() -> None:
    for seed in range(3):
        att = attribution(seed)
        rows = np.random.default_rng(seed).permutation(len(att.raw))[:300]
        expected = [orjson.dumps(r).decode() for r in att.reasons(rows)]
        assert reasons_json(att, rows) == expected
    # The cases that must occur for the comparison to mean something.
    parsed = [orjson.loads(t) for t in reasons_json(att, range(len(att.raw)))]
    codes = {r["code"] for rs in parsed for r in rs}
    assert codes == {
        "FEATURE_RAISES_RISK",
        "FEATURE_LOWERS_RISK",
        "RELATION_RAISES_RISK",
        "RELATION_LOWERS_RISK",
        "NO_RELATIONSHIPS",
    }
    evidence = [r["evidence"] for rs in parsed for r in rs]
    assert any(e.get("missing") is True for e in evidence)
    assert any(e.get("value") is not None for e in evidence)
    assert any(e.get("feature") == 'say "hi"' for e in evidence)
    assert any(e.get("relation") == 'odd "rel" 5%' for e in evidence)


def test_reasons_json_with_other_caps_and_no_rows() -> None:
    att = attribution(7)
    rows = np.arange(50)
    assert reasons_json(att, rows, top_features=5, top_relations=3) == [
        orjson.dumps(r).decode() for r in att.reasons(rows, top_features=5, top_relations=3)
    ]
    assert reasons_json(att, []) == []

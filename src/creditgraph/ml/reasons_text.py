"""Batch reasons straight to their stored JSON text, without a dict per reason.

``Attribution.reasons`` builds ``{code, message, weight, evidence}`` dicts; batch scoring then
serialises them with orjson, one account at a time. At a million accounts those dicts and
their serialisation were half of ``creditgraph score``'s write-back. ``reasons_json`` writes
the same text (byte for byte: ``tests/unit/test_reasons_text.py`` compares it with
``orjson.dumps(attribution.reasons(rows))``): what is fixed per feature or relation and sign
(codes, names, messages) is a %-template built once, the numbers are formatted by one orjson
call per column, and a row is a handful of ``%`` substitutions and a join.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from creditgraph.domain import IntArray
from creditgraph.ml.attribution import _WHAT, Attribution
from creditgraph.ml.explain import (
    FEATURE_LOWERS,
    FEATURE_RAISES,
    NO_RELATIONSHIPS,
    RELATION_LOWERS,
    RELATION_RAISES,
)

_NO_RELATIONSHIPS = orjson.dumps(
    {
        "code": NO_RELATIONSHIPS,
        "message": "no relationships to judge the account by",
        "weight": 0.0,
        "evidence": {"target": "social"},
    }
).decode()


def _text(value: str) -> str:
    """``value`` as the inside of a JSON string, safe in a %-template."""
    return orjson.dumps(value).decode()[1:-1].replace("%", "%%")


def _numbers(values: npt.NDArray[np.floating[Any]]) -> list[str]:
    """orjson's text of each float (NaN and inf: ``null``), in one call."""
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    if not len(flat):
        return []
    return orjson.dumps(flat.tolist()).decode()[1:-1].split(",")


def _feature_templates(att: Attribution) -> list[str]:
    """Per input column j and sign (index ``2 j + raises``), the reason with slots for
    the shown value, the weight, the evidence value and the missing flag."""
    out = []
    for j, name in enumerate(att.input_names):
        feature = _text(name.removesuffix("_missing") if j >= att.first_indicator else name)
        for raises in (False, True):
            code = FEATURE_RAISES if raises else FEATURE_LOWERS
            verb = "raises" if raises else "lowers"
            out.append(
                f'{{"code":"{code.value}","message":"{feature} = %s {verb} the fraud risk",'
                f'"weight":%s,"evidence":{{"target":"fraud","feature":"{feature}",'
                f'"value":%s,"missing":%s}}}}'
            )
    return out


def _relation_templates(att: Attribution) -> list[str]:
    """Per target t (0 fraud, 1 social), relation k and sign (index ``2 (t R + k) + raises``),
    the reason with slots for the neighbour count, the weight and the count again."""
    out = []
    for target in ("fraud", "social"):
        for rel in att.relations:
            name = _text(rel)
            for raises in (False, True):
                code = RELATION_RAISES if raises else RELATION_LOWERS
                verb = "raises" if raises else "lowers"
                out.append(
                    f'{{"code":"{code.value}","message":"the {name} relation (%d neighbours) '
                    f'{verb} the {_WHAT[target]}","weight":%s,"evidence":{{"target":"{target}",'
                    f'"relation":"{name}","neighbours":%d}}}}'
                )
    return out


def reasons_json(
    att: Attribution,
    rows: Sequence[int] | IntArray,
    *,
    top_features: int = 3,
    top_relations: int = 2,
) -> list[str]:
    """``orjson.dumps(att.reasons(rows, ...)).decode()`` of every row, computed in columns."""
    idx = np.asarray(rows, dtype=np.int64)
    m = len(idx)
    if m == 0:
        return []
    contrib = att.features[idx]
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :top_features]
    weights = np.take_along_axis(contrib, order, axis=1).astype(np.float64)
    column = att.raw_column[order]
    raw = att.raw[idx[:, None], np.maximum(column, 0)].astype(np.float64)
    value = np.where(column >= 0, raw, np.nan)
    missing = (order >= att.first_indicator) | ~np.isfinite(value)
    k_f = order.shape[1]
    feature_t = _feature_templates(att)
    relation_t = _relation_templates(att)
    # One column of text per reason slot ("" where a row has no reason there), built slot by
    # slot: list comprehensions over plain lists, no per-row bookkeeping.
    slots: list[list[str]] = []
    weight_text = np.array(_numbers(weights), dtype=object).reshape(m, k_f)
    value_text = np.array(_numbers(np.where(missing, np.nan, value)), dtype=object)
    value_text = value_text.reshape(m, k_f)
    for s in range(k_f):
        tids = (2 * order[:, s] + (weights[:, s] > 0)).tolist()
        shown = [
            "missing" if miss else f"{v:g}"
            for v, miss in zip(value[:, s].tolist(), missing[:, s].tolist(), strict=True)
        ]
        flags = ["true" if miss else "false" for miss in missing[:, s].tolist()]
        slots.append(
            [
                feature_t[tid] % (sh, wt, vt, fl) if keep else ""
                for tid, keep, sh, wt, vt, fl in zip(
                    tids,
                    (weights[:, s] != 0.0).tolist(),
                    shown,
                    weight_text[:, s].tolist(),
                    value_text[:, s].tolist(),
                    flags,
                    strict=True,
                )
            ]
        )

    n_rel = len(att.relations)
    neighbours = att.neighbours[idx]
    has = neighbours > 0
    for t, table in enumerate((att.fraud_relations, att.social_relations)):
        w = table[idx]
        key = np.where(has, -np.abs(w), np.inf)
        top = np.argsort(key, axis=1, kind="stable")[:, :top_relations]
        tw = np.take_along_axis(w, top, axis=1)
        tids_all = 2 * (t * n_rel + top) + (tw > 0)
        present = np.take_along_axis(has, top, axis=1)
        counts = np.take_along_axis(neighbours, top, axis=1)
        wts = np.array(_numbers(tw), dtype=object).reshape(top.shape)
        for s in range(top.shape[1]):
            slots.append(
                [
                    relation_t[tid] % (c, wt, c) if h else ""
                    for tid, h, wt, c in zip(
                        tids_all[:, s].tolist(),
                        present[:, s].tolist(),
                        wts[:, s].tolist(),
                        counts[:, s].tolist(),
                        strict=True,
                    )
                ]
            )
    slots.append(["" if a else _NO_RELATIONSHIPS for a in np.any(has, axis=1).tolist()])
    return ["[" + ",".join(filter(None, parts)) + "]" for parts in zip(*slots, strict=True)]

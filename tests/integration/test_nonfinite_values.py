"""Non-finite feature values (NaN, inf, an overflowing 1e999) are refused by file and line on
every backend; before, they turned the whole feature column into text properties."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.errors import ValidationFailed
from creditgraph.services.ingest import import_file
from creditgraph.store.base import GraphStore


@pytest.mark.parametrize(
    ("value", "shown"),
    [("inf", "'inf'"), ("NaN", "'NaN'"), ("-Infinity", "'-Infinity'"), ("1e999", "'1e999'")],
)
def test_a_non_finite_feature_is_refused_with_its_line(
    store: GraphStore, tmp_path: Path, value: str, shown: str
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(f"account_id,age,income\nA,31,1200\nB,40,{value}\nC,22,900\n")
    with pytest.raises(ValidationFailed) as e:
        import_file(store, "accounts", path)
    assert str(e.value) == f"{path}:3: column 'income': not a finite number: {shown}"
    assert store.counts().accounts == 0


def test_finite_features_stay_numbers(store: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("account_id,age,income,city\nA,31,1.5e3,Berlin\nB,40,,Paris\n")
    import_file(store, "accounts", path)
    a = store.get_account("A")
    assert a.features == {"age": 31.0, "income": 1500.0}
    assert a.properties == {"city": "Berlin"}
    assert store.get_account("B").features == {"age": 40.0}

from pathlib import Path

import pytest
import yaml

from deephash.training.reference import Reference, load_reference


def test_reference_from_a_mapping_and_a_file(tmp_path: Path) -> None:
    d = {
        "source": "Table 1 of X",
        "note": "rows partly known",
        "quoted": {"knn": [0.5726, 0.8506]},
        "rows": {"a": {"map": 0.5, "knn": None}, "b": None},
    }
    ref = load_reference(d)
    assert ref == Reference(
        source="Table 1 of X",
        note="rows partly known",
        quoted={"knn": [0.5726, 0.8506]},
        rows={"a": {"map": 0.5, "knn": None}, "b": {"map": None, "knn": None}},
    )
    assert ref.value("a", "map") == 0.5 and ref.value("a", "knn") is None
    assert ref.value("unlisted", "map") is None
    note = ref.footnote()
    assert "Table 1 of X" in note and "kNN 0.5726 … 0.8506" in note and "not given" in note
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ref.yaml").write_text(yaml.safe_dump(d))
    assert load_reference("sub/ref.yaml", base=tmp_path) == ref


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"rows": {}}, "needs `source:`"),
        ({"source": "x", "extra": 1}, "unknown reference keys"),
        ({"source": "x", "rows": {"a": {"map": "0.5"}}}, "number or null"),
        ({"source": "x", "rows": {"a": {"mAP": 0.5}}}, "must map"),
        ({"source": "x", "quoted": {"map": 0.5}}, "lists of numbers"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_references(d: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_reference(d)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        load_reference("no/such/file.yaml")

"""The shared name registry (src/deephash/_registry.py) and the registries built on it."""

from typing import Any

import pytest

from deephash._registry import Catalog, Registry
from deephash.losses import create_loss, list_losses


class Thing:
    def __init__(self, *, size: int = 1, name: str = "x") -> None:
        self.size, self.name = size, name


class Loose:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def test_register_list_create_and_options() -> None:
    reg: Registry[Any] = Registry("widget")
    assert reg.register("thing")(Thing) is Thing
    reg.register("loose")(Loose)
    reg.register("thing-2")(Thing)
    assert reg.names() == ["loose", "thing", "thing-2"]
    assert reg.names("thing*") == ["thing", "thing-2"]
    assert "thing" in reg and "nope" not in reg
    made = reg.create("thing", size=3)
    assert isinstance(made, Thing) and (made.size, made.name) == (3, "x")
    assert {k: p.default for k, p in reg.options("thing").items()} == {"size": 1, "name": "x"}
    assert reg.create("loose", anything=2).kwargs == {"anything": 2}  # **kwargs takes any option


def test_errors_name_the_family_and_list_what_exists() -> None:
    reg: Registry[Any] = Registry("widget")
    reg.register("thing")(Thing)
    with pytest.raises(ValueError, match="widget 'thing' is registered twice"):
        reg.register("thing")(Thing)
    with pytest.raises(ValueError, match="unknown widget 'thin'; available: thing"):
        reg.create("thin")
    with pytest.raises(
        ValueError, match=r"widget 'thing' does not take option\(s\) colour; it takes: size, name"
    ):
        reg.create("thing", colour="red")


def test_losses_reject_unknown_options_by_name() -> None:
    assert "batch-hard" in list_losses()
    with pytest.raises(
        ValueError, match=r"loss 'batch-hard' does not take option\(s\) margn; it takes: .*margin"
    ):
        create_loss("batch-hard", margn=0.2)


def test_catalog_keeps_entries_metadata_and_registration_order() -> None:
    cat: Catalog[str] = Catalog("colour")
    assert cat.add("red", "#f00", warm=True) == "#f00"
    cat.add("blue", "#00f")
    assert list(cat) == ["red", "blue"] and len(cat) == 2  # registration order
    assert cat.names() == ["blue", "red"]  # sorted
    assert cat.get("blue") == "#00f"
    assert cat.meta("red") == {"warm": True} and cat.meta("blue") == {}
    with pytest.raises(ValueError, match="colour 'red' is registered twice"):
        cat.add("red", "#e00")
    with pytest.raises(ValueError, match="unknown colour 'green'; available: blue, red"):
        cat.meta("green")


def test_register_keeps_metadata_beside_the_class() -> None:
    reg: Registry[Any] = Registry("widget")
    reg.register("thing", size_hint=3)(Thing)
    assert reg.meta("thing") == {"size_hint": 3}
    assert reg.get("thing") is Thing and isinstance(reg.create("thing"), Thing)

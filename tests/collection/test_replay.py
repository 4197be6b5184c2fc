"""The log's add record: what the collection writes, replay reads back; replaying is idempotent
by id."""

from pathlib import Path

import numpy as np
import pytest

from deephash.collection.descriptor_layout import DescriptorLayout
from deephash.collection.items import Item, new_items
from deephash.collection.replay import ReplayState, add_record, replay_record


def test_an_add_record_replays_to_the_same_item_once() -> None:
    item = Item(4, "cat", "a/cat.png", "4.png", 12.5)
    code = np.array([0xAB, 0x0F], np.uint8)
    desc = np.array([0.5, -0.25, 1.0], np.float32)  # exact in float16
    record = {"op": "add", "items": [add_record(item, code, desc, b"png bytes")]}
    state = ReplayState()
    for _ in range(2):  # the second time (a crash inside a compaction) changes nothing
        replay_record(state, record, 2, Path("log.bin"), DescriptorLayout("stages", 3, False))
    assert state.items == {4: item}
    assert state.codes == {4: b"\xab\x0f"}
    assert state.images == {4: b"png bytes"}
    np.testing.assert_array_equal(state.descriptors[4], desc)
    assert state.next_id == 5
    replay_record(state, {"op": "remove", "ids": [4]}, 2, Path("log.bin"))
    assert not state.items and not state.codes and not state.images and not state.descriptors


def test_new_items_pairs_each_code_with_its_image() -> None:
    codes = np.array([[1, 2], [3, 4]], np.uint8)
    desc = np.array([[1.0], [2.0]], np.float32)
    new = new_items(codes, desc, [b"a", None], [".png", ".jpg"], ["x", ""], [None, "b.jpg"])
    assert [(n.image_bytes, n.suffix, n.label, n.path) for n in new] == [
        (b"a", ".png", "x", None),
        (None, ".jpg", None, "b.jpg"),
    ]
    assert [n.code.tolist() for n in new] == [[1, 2], [3, 4]]
    assert [None if n.descriptor is None else n.descriptor.tolist() for n in new] == [[1.0], [2.0]]
    assert all(
        n.descriptor is None
        for n in new_items(codes, None, [None] * 2, [""] * 2, [None] * 2, [None] * 2)
    )


def test_an_add_record_carries_packed_bits_as_they_are() -> None:
    item = Item(7, None, None, None, 1.0)
    bits = np.array([0x00, 0xFF, 0x5A], np.uint8)  # a 24-bit binary descriptor
    record = {"op": "add", "items": [add_record(item, np.array([1], np.uint8), bits, None)]}
    state = ReplayState()
    replay_record(state, record, 1, Path("log.bin"), DescriptorLayout("instance", 24, True))
    assert state.descriptors[7].dtype == np.uint8
    assert state.descriptors[7].tobytes() == b"\x00\xff\x5a"
    with pytest.raises(ValueError, match="item 7"):  # read as 32 bits: a wrong size
        replay_record(ReplayState(), record, 1, Path("log.bin"), DescriptorLayout("i", 32, True))

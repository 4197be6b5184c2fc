"""The local backing: a small change goes to the delta (main kept), a large one rebuilds main,
and the published view searches like brute force over its ids either way."""

from dataclasses import replace

import numpy as np
from _brute_hits import pairs

from deephash.codes import hamming_distance_matrix
from deephash.collection.items import Item
from deephash.collection.local_backing import LocalBacking
from deephash.collection.view import Query, View


def brute(view: View, q: np.ndarray, k: int) -> list[tuple[int, int]]:
    d = hamming_distance_matrix(q[None, :], view.codes)[0]
    order = np.lexsort((view.ids, d))[:k]
    return [(int(view.ids[i]), int(d[i])) for i in order]


def add(backing: LocalBacking, view: View, codes: np.ndarray) -> View:
    """The view ``backing`` publishes after adding ``codes`` as new items to ``view``."""
    ids = np.arange(view.next_id, view.next_id + len(codes), dtype=np.int64)
    view.items.update({int(i): Item(int(i), None, None, None, 0.0) for i in ids})
    out = replace(
        view,
        ids=np.concatenate([view.ids, ids]),
        codes=np.concatenate([view.codes, codes]),
        next_id=int(ids[-1]) + 1,
    )
    return backing.with_additions(out, ids, codes)


def test_small_changes_use_the_delta_and_large_ones_rebuild_main() -> None:
    rng = np.random.default_rng(0)
    backing = LocalBacking("mih", 16)
    backing.rebuild_min = 8
    empty = View(np.zeros(0, np.int64), np.zeros((0, 2), np.uint8), {}, 0)
    view = backing.start(empty, lambda: empty, lambda change: None)
    assert view.main is None
    view = add(backing, view, rng.integers(0, 256, (100, 2), dtype=np.uint8))
    main = view.main
    assert main is not None and main.ntotal == 100 and view.delta is None  # rebuilt: no main yet
    view = add(backing, view, rng.integers(0, 256, (5, 2), dtype=np.uint8))
    assert view.main is main and view.delta is not None and view.delta.ntotal == 5
    gone = np.array([3, 102], np.int64)  # one from main, one from the delta
    keep = ~np.isin(view.ids, gone)
    view = backing.with_removals(replace(view, ids=view.ids[keep], codes=view.codes[keep]), gone)
    assert view.main is main and view.removed == {3}
    assert view.delta is not None and sorted(view.delta.ids.tolist()) == [100, 101, 103, 104]
    searched = 0
    for q in rng.integers(0, 256, (5, 2), dtype=np.uint8):
        hits = backing.search(view, Query(q[None, :], 10))[0]
        assert pairs(hits) == brute(view, q, 10)
        searched += 1
    assert searched == 5
    view = add(backing, view, rng.integers(0, 256, (9, 2), dtype=np.uint8))
    assert view.main is not main and view.delta is None and view.removed == frozenset()
    assert view.main is not None and view.main.ntotal == len(view.ids) == 112
    q = view.codes[7]
    assert pairs(backing.search(view, Query(q[None, :], 12))[0]) == brute(view, q, 12)

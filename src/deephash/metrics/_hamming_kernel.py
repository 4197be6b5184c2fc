"""Numba kernel: exact Hamming ranking statistics by a counting sort per query.

Hamming distances between ``bits``-bit codes are integers in ``0..bits``, so ranking the database
by ``(distance, database index)`` is a stable counting sort. One pass over the database in index
order histograms the distances; at the moment item ``j`` is counted, its bucket's count so far is
exactly its offset inside its distance bucket (the items before it in that bucket are the earlier
ones). After a prefix sum over the buckets, an item's 1-based ranking position is
``start[d] + offset + 1`` and, for a relevant item, its rank among the relevant items is
``relevant_start[d] + relevant_offset + 1``. AP, precision at cut-offs and Hamming-radius counts
need nothing else, so the kernel is O(n) per query with no argsort, and only the relevant items
are visited a second time. kNN needs the ids of the first few ranked items, which a cheap scan
over the stored distances of the few nearest buckets provides.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from deephash._numba import njit, popcount64
from deephash.metrics._accumulate import add_relevant, reset_query


# The counting pass comes in three loops so that each stays branch-free: one 64-bit word (codes
# up to 64 bits, the common case), several words, and multi-label relevance.
@njit
def _count_one_word(  # pragma: no cover - compiled
    qv: np.uint64,
    db_words: np.ndarray,
    ql: np.int64,
    db_lab: np.ndarray,
    dist: np.ndarray,
    h: np.ndarray,
    rh: np.ndarray,
    rel_d: np.ndarray,
    rel_off: np.ndarray,
    rel_roff: np.ndarray,
) -> int:
    m = 0
    for j in range(db_words.shape[0]):
        d = popcount64(qv ^ db_words[j, 0])
        r = 1 if ql == db_lab[j] else 0
        dist[j] = d
        # Branch-free append of (bucket, offset in bucket, offset among relevant in bucket);
        # the slot is overwritten by the next item unless this one is relevant.
        rel_d[m] = d
        rel_off[m] = h[d]
        rel_roff[m] = rh[d]
        h[d] += 1
        rh[d] += r
        m += r
    return m


@njit
def _count_words(  # pragma: no cover - compiled
    qv: np.ndarray,
    db_words: np.ndarray,
    ql: np.int64,
    db_lab: np.ndarray,
    dist: np.ndarray,
    h: np.ndarray,
    rh: np.ndarray,
    rel_d: np.ndarray,
    rel_off: np.ndarray,
    rel_roff: np.ndarray,
) -> int:
    nw = qv.shape[0]
    m = 0
    for j in range(db_words.shape[0]):
        d = 0
        for w in range(nw):
            d += popcount64(qv[w] ^ db_words[j, w])
        r = 1 if ql == db_lab[j] else 0
        dist[j] = d
        # Branch-free append of (bucket, offset in bucket, offset among relevant in bucket);
        # the slot is overwritten by the next item unless this one is relevant.
        rel_d[m] = d
        rel_off[m] = h[d]
        rel_roff[m] = rh[d]
        h[d] += 1
        rh[d] += r
        m += r
    return m


@njit
def _count_multilabel(  # pragma: no cover - compiled
    qv: np.ndarray,
    db_words: np.ndarray,
    qm: np.ndarray,
    db_mask: np.ndarray,
    dist: np.ndarray,
    h: np.ndarray,
    rh: np.ndarray,
    rel_d: np.ndarray,
    rel_off: np.ndarray,
    rel_roff: np.ndarray,
) -> int:
    nw = qv.shape[0]
    nm = qm.shape[0]
    m = 0
    for j in range(db_words.shape[0]):
        d = 0
        for w in range(nw):
            d += popcount64(qv[w] ^ db_words[j, w])
        r = 0
        for w in range(nm):
            if qm[w] & db_mask[j, w]:
                r = 1
                break
        dist[j] = d
        # Branch-free append of (bucket, offset in bucket, offset among relevant in bucket);
        # the slot is overwritten by the next item unless this one is relevant.
        rel_d[m] = d
        rel_off[m] = h[d]
        rel_roff[m] = rh[d]
        h[d] += 1
        rh[d] += r
        m += r
    return m


# Distance marking the left-out item: the kernel refuses codes with max distance >= 65535, so no
# real bucket reaches it.
_NOT_RANKED = np.uint16(np.iinfo(np.uint16).max)


@njit(parallel=True)
def hamming_rank_stats(  # pragma: no cover - compiled
    q_words: np.ndarray,
    db_words: np.ndarray,
    exclude: np.ndarray,
    q_lab: np.ndarray,
    db_lab: np.ndarray,
    q_mask: np.ndarray,
    db_mask: np.ndarray,
    multilabel: bool,
    ap_ks: np.ndarray,
    cutoffs: np.ndarray,
    ap_sum: np.ndarray,
    ap_hits: np.ndarray,
    n_relevant: np.ndarray,
    cut_hits: np.ndarray,
    topk: np.ndarray,
    hist: np.ndarray,
    relhist: np.ndarray,
    num_blocks: int,
) -> None:
    """Fill the per-query outputs for a chunk of queries.

    q_words uint64 (c, w), db_words uint64 (n, w): packed codes as words.
    exclude: int64 (c,) the database index left out of each query's ranking (-1: none). The
        count runs over the items before it and then the items after it, so every other item's
        offsets are those of the database without it.
    q_lab/db_lab: int64 (c,)/(n,) class ids (relevant = same id), used unless ``multilabel``;
    q_mask/db_mask: uint64 (c, L)/(n, L) label-set bit masks (relevant = the masks share a bit),
        used when ``multilabel``. Both pairs are always passed (one of them dummy) so that one
        compiled specialisation serves both cases.
    ap_ks int64 (a,) ascending, each in 1..n; cutoffs int64 (m,) ascending, each in 1..n.
    Outputs: ap_sum float64 (c, a) = sum over relevant items ranked within the top k of
    (rank among relevant / position), i.e. of the precision at each relevant item;
    ap_hits int64 (c, a) relevant items within the top k;
    n_relevant int64 (c,); cut_hits int64 (c, m) relevant items within each cutoff; topk int64
    (c, t) ids of the first t ranked items; hist/relhist int64 (c, D) items / relevant items at
    each distance, D = 8 * bytes + 1 >= max distance + 1.
    """
    nq = q_words.shape[0]
    n = db_words.shape[0]
    nw = q_words.shape[1]
    nd = hist.shape[1]
    t_top = topk.shape[1]
    for b in prange(num_blocks):
        lo = b * nq // num_blocks
        hi = (b + 1) * nq // num_blocks
        dist = np.empty(n, dtype=np.uint16)
        start = np.empty(nd, dtype=np.int64)
        rstart = np.empty(nd, dtype=np.int64)
        # n + 1 slots: the branch-free append writes one slot past the last relevant item.
        rel_d = np.empty(n + 1, dtype=np.int64)
        rel_off = np.empty(n + 1, dtype=np.int64)
        rel_roff = np.empty(n + 1, dtype=np.int64)
        for q in range(lo, hi):
            h = hist[q]
            rh = relhist[q]
            h[:] = 0
            rh[:] = 0
            ex = exclude[q]
            # [0, n) in one piece, or the pieces [0, ex) and (ex, n) around the left-out item;
            # the histograms carry over, so offsets continue across the gap.
            m = 0
            for piece in range(1 if ex < 0 else 2):
                j0 = 0 if piece == 0 else ex + 1
                j1 = n if ex < 0 else (ex if piece == 0 else n)
                if multilabel:
                    m += _count_multilabel(
                        q_words[q],
                        db_words[j0:j1],
                        q_mask[q],
                        db_mask[j0:j1],
                        dist[j0:j1],
                        h,
                        rh,
                        rel_d[m:],
                        rel_off[m:],
                        rel_roff[m:],
                    )
                elif nw == 1:
                    m += _count_one_word(
                        q_words[q, 0],
                        db_words[j0:j1],
                        q_lab[q],
                        db_lab[j0:j1],
                        dist[j0:j1],
                        h,
                        rh,
                        rel_d[m:],
                        rel_off[m:],
                        rel_roff[m:],
                    )
                else:
                    m += _count_words(
                        q_words[q],
                        db_words[j0:j1],
                        q_lab[q],
                        db_lab[j0:j1],
                        dist[j0:j1],
                        h,
                        rh,
                        rel_d[m:],
                        rel_off[m:],
                        rel_roff[m:],
                    )
            if ex >= 0:
                dist[ex] = _NOT_RANKED  # above every bucket the top-t scan looks at
            # Bucket starts: 0-based positions in the ranking / among the relevant items.
            acc = 0
            racc = 0
            for d in range(nd):
                start[d] = acc
                rstart[d] = racc
                acc += h[d]
                racc += rh[d]
            n_relevant[q] = m
            reset_query(q, ap_sum, ap_hits, cut_hits)
            for i in range(m):
                d = rel_d[i]
                pos = start[d] + rel_off[i] + 1
                prec = (rstart[d] + rel_roff[i] + 1) / pos
                add_relevant(q, pos, prec, ap_ks, cutoffs, ap_sum, ap_hits, cut_hits)
            if t_top > 0:
                # Ids of the first t_top ranked items: only buckets up to the one holding
                # position t_top matter; hand out positions inside them in database order.
                dmax = 0
                while start[dmax] + h[dmax] < t_top:
                    dmax += 1
                for j in range(n):
                    d = dist[j]
                    if d <= dmax:
                        p = start[d]
                        start[d] = p + 1
                        if p < t_top:
                            topk[q, p] = j

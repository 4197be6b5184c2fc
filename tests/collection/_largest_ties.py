"""An engine that orders ties as Milvus may (the largest ids kept at the cut), and the
brute-force reference of merged engine candidates, shared by the engine-search tests."""

import numpy as np

from deephash.index import HammingIndex


class LargestTiesEngine(HammingIndex):
    """Exact distances, but the last tied distance filled with the largest ids."""

    index_type = "BIN_FLAT"

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        d = np.bitwise_count(queries[:, None, :] ^ self.codes[None, :, :]).sum(-1)
        out_d = np.full((len(queries), k), -1, np.int32)
        out_i = np.full((len(queries), k), -1, np.int64)
        for r, row in enumerate(d):
            order = np.lexsort((-self.ids, row))[:k]
            out_d[r, : len(order)], out_i[r, : len(order)] = row[order], self.ids[order]
        return out_d, out_i


def brute(ids: np.ndarray, codes: np.ndarray, q: np.ndarray, k: int) -> list[tuple[int, int]]:
    d = np.bitwise_count(codes ^ q).sum(1)
    order = np.lexsort((ids, d))[:k]
    return [(int(ids[i]), int(d[i])) for i in order]

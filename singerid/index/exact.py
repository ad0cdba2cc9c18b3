"""Exact inner-product k-NN in float64, block by block: the yardstick for every approximate index.

Like ``faiss.contrib.exhaustive_search.knn_ground_truth``: the database is read in blocks (it
may be a memory map or any (n, d) row source), so memory is bounded by query_batch x
database_batch doubles. Used by tests, scripts/bench_index.py and scripts/bench_scale.py.
"""

from __future__ import annotations

import numpy as np

from singerid.errors import ParameterError

FIRST_BLOCK_ROWS = 2048  # rows of the first database block (sets the k-th-best threshold early)
CANDIDATES_PER_ROW = 64  # above k x this many candidates per row, pre-select by argpartition


def exact_search(queries: np.ndarray, database: np.ndarray, k: int, *, ids: np.ndarray | None = None,
                 query_batch: int = 256, database_batch: int = 32_768) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product k-NN in float64, block by block (ground truth for approximate indexes).

    queries float (nq, d), database float (n, d) (may be a memory map). Memory is bounded by
    query_batch x database_batch doubles. Returns similarities float32 (nq, k) and int64 (nq, k)
    ids (``ids[position]`` if given, else database positions), best first, ties by lower position;
    -1 (similarity -inf) where n < k. After the first database block only values above each row's
    current k-th best are merged, so the cost is one GEMM plus one comparison per pair.
    """
    q = np.asarray(queries, dtype=np.float64)
    if q.ndim != 2 or np.ndim(database) != 2 or database.shape[1] != q.shape[1]:
        raise ParameterError(f"queries {q.shape} and database {np.shape(database)} must be (n, d) with equal d")
    if k < 1:
        raise ParameterError(f"k must be a positive integer, got {k!r}")
    out_sims = np.empty((len(q), k), dtype=np.float32)
    out_pos = np.empty((len(q), k), dtype=np.int64)
    for qs in range(0, len(q), query_batch):
        qb = q[qs:qs + query_batch]
        best_s = np.full((len(qb), k), -np.inf)  # unordered k best so far, -inf / -1 = none yet
        best_p = np.full((len(qb), k), -1, dtype=np.int64)
        for ds, de in _database_blocks(len(database), database_batch):
            sims = qb @ np.asarray(database[ds:de], dtype=np.float64).T  # (batch, block)
            mask = sims > best_s.min(axis=1, keepdims=True)  # could enter the top k
            if mask.sum() > CANDIDATES_PER_ROW * k * len(qb):  # no useful threshold yet: pre-select
                cols = np.argpartition(-sims, min(k, sims.shape[1]) - 1, axis=1)[:, :k]
                rows = np.repeat(np.arange(len(qb)), cols.shape[1])
                cols = cols.ravel()
            else:
                rows, cols = np.nonzero(mask)
            best_s, best_p = _merge_top(best_s, best_p, rows, sims[rows, cols], cols + ds, k)
        order = np.lexsort((best_p, -best_s), axis=-1)
        out_sims[qs:qs + len(qb)] = np.take_along_axis(best_s, order, axis=1)
        out_pos[qs:qs + len(qb)] = np.take_along_axis(best_p, order, axis=1)
    if ids is not None:
        mapped = np.asarray(ids, dtype=np.int64)[np.maximum(out_pos, 0)]
        out_pos = np.where(out_pos >= 0, mapped, -1)
    return out_sims, out_pos


def _database_blocks(n: int, block: int) -> list[tuple[int, int]]:
    """[start, stop) blocks; the first is small so that a k-th-best threshold exists early."""
    first = min(n, FIRST_BLOCK_ROWS, block)
    return [(0, first)] + [(s, min(n, s + block)) for s in range(first, n, block)] if n else []


def _merge_top(best_s: np.ndarray, best_p: np.ndarray, rows: np.ndarray, sims: np.ndarray, pos: np.ndarray,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep, per row, the k best of the current (m, k) entries and the new (row, sim, pos) candidates."""
    m = len(best_s)
    all_r = np.concatenate([np.repeat(np.arange(m), k), rows])
    all_s = np.concatenate([best_s.ravel(), sims])
    all_p = np.concatenate([best_p.ravel(), pos])
    # rank within each row: similarity descending, then the real (lower) position before placeholders
    order = np.lexsort((np.where(all_p < 0, np.iinfo(np.int64).max, all_p), -all_s, all_r))
    starts = np.concatenate([[0], np.cumsum(k + np.bincount(rows, minlength=m))[:-1]])
    take = order[starts[:, None] + np.arange(k)]
    return all_s[take], all_p[take]

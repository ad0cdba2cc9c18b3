"""A matrix of stored block embeddings that is read from the shards only when rows are asked for.

``ShardRows`` looks like a read-only float32 (n, d) array to the code that builds an index
(``VectorIndex.build``), fits the back end (``fit_backend``) and calibrates the unknown-singer
threshold (``calibrate``): ``len``, ``shape``, slices and integer row arrays. Each access gathers
just those rows from the memory-mapped shards (and applies the back end's projection when one
is attached), so a build holds one chunk at a time, never all n x d floats.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from singerid.errors import ParameterError
from singerid.index.shards import ShardSet

Transform = Callable[[np.ndarray], np.ndarray]  # float32 (m, d_in) -> float32 (m, d_out)


class ShardRows:
    """Rows ``(shards[i], rows[i])`` of ``shard_set`` as a lazy float32 (n, dim) matrix.

    ``transform`` (e.g. ``Backend.apply``) maps each gathered chunk to ``dim_out`` columns.
    Indexing takes a slice with step 1, or a 1-D integer array (any order, repeats allowed);
    the result is a new float32 C-contiguous array. Raises ArtefactError (from the shards) for a
    location beyond its shard's end.
    """

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, shard_set: ShardSet, shards: np.ndarray, rows: np.ndarray, *,
                 transform: Transform | None = None, dim_out: int | None = None) -> None:
        self.shard_set = shard_set
        self.shards = np.asarray(shards, dtype=np.int64)
        self.rows = np.asarray(rows, dtype=np.int64)
        if self.shards.shape != self.rows.shape or self.shards.ndim != 1:
            raise ParameterError(f"shards and rows must be equal-length 1-D arrays, got {self.shards.shape}, "
                                 f"{self.rows.shape}")
        if (transform is None) != (dim_out is None):
            raise ParameterError("give transform and dim_out together")
        self.transform = transform
        self.dim = int(dim_out if dim_out is not None else shard_set.dim)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.dim)

    def __len__(self) -> int:
        return len(self.rows)

    def mapped(self, transform: Transform, dim_out: int) -> ShardRows:
        """The same rows seen through ``transform`` (applied after any transform already attached)."""
        inner = self.transform
        combined = transform if inner is None else (lambda x: transform(inner(x)))
        return ShardRows(self.shard_set, self.shards, self.rows, transform=combined, dim_out=dim_out)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self.rows))
            if step != 1:
                raise ParameterError(f"ShardRows takes slices with step 1, got step {step}")
            shards, rows = self.shards[start:stop], self.rows[start:stop]
        else:
            picked = np.asarray(key)
            if picked.ndim != 1 or (picked.size and not np.issubdtype(picked.dtype, np.integer)):
                raise ParameterError(f"ShardRows takes a slice or a 1-D integer array, got {picked.dtype} "
                                     f"{picked.shape}")
            shards, rows = self.shards[picked], self.rows[picked]
        out = self.shard_set.gather(shards, rows)  # (m, d_in) float32
        if self.transform is not None:
            out = np.ascontiguousarray(self.transform(out), dtype=np.float32)
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """All rows at once (what ``np.asarray`` asks for): only for small sets."""
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype, copy=False)

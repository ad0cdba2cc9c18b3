"""FAISS index of reference block embeddings: build, add, remove, search, save, load. No SQL here.

Every index is inner product (cosine on unit vectors) and answers with the block ids of the
metadata store. Types: ``flat`` (IndexFlatIP, exact: the paper's dense KNN layer), ``flat-fp16``
(IndexScalarQuantizer fp16), ``hnsw`` (IndexHNSWFlat) - these three inside an IndexIDMap -
and ``ivf-flat`` / ``ivf-pq`` (IndexIVFFlat / IndexIVFPQ, which keep the ids in their inverted
lists: 8 bytes per vector less than an id map; older ivf-pq files with an id map still load).
IVF lists may live on disk (``singerid.index.ondisk``). Vectors enter in chunks from any (n, d)
row source (an array, a memory map, ``singerid.index.rows.ShardRows``); searches run in query
batches that FAISS tiles against the database, so no query x reference matrix is held in full.
``exact_search`` (singerid.index.exact) is the blockwise float64 yardstick.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from threadpoolctl import ThreadpoolController

from singerid.errors import ArtefactError, ParameterError
from singerid.index import ondisk
from singerid.index.choice import IVF_TYPES, IndexSpec, training_points
from singerid.index.exact import exact_search  # noqa: F401  (re-exported: the yardstick lives beside the index)
from singerid.index.files import atomic_write_with

log = logging.getLogger(__name__)

SEARCH_BATCH_ROWS = 4096  # query rows per FAISS call (bounds the result buffers)
ADD_CHUNK_ROWS = 65_536  # rows read from the row source per add call
NORM_TOLERANCE = 1e-3  # |norm - 1| allowed for "unit" vectors entering the index
# Queries per FAISS call from which exhaustive search (flat search, k-means, IVF assignment) uses
# BLAS. faiss-cpu 1.15.1 ships 128,000, which sends a song's ~240 query blocks to the scalar SIMD
# path that streams the whole database per query: 14-20x slower against 1M references (d=32/128)
# and PQ training 7x slower; up to 100k references the SIMD path is 5-15 % faster (bench_index.py).
# 20 is FAISS's long-standing default. Set only around our own calls and restored after.
BLAS_QUERY_THRESHOLD = 20
# Exact search against SHARD_MIN_ROWS or more references runs one single-threaded search per
# thread over its own database shard (VectorIndex._search_shards), each with sgemm tiles of
# BLAS_DATABASE_ROWS rows: bench_index.py measured 240 queries vs 1M x 32 at 42 % of the GEMM
# peak with FAISS's own threading (1,024-row tiles) and 73 % this way, on 2 cores.
SHARD_MIN_ROWS = 65_536
SHARDS_PER_THREAD = 4  # shards are taken in turn, so a core slowed by another process holds up less
BLAS_DATABASE_ROWS = 4096
GPU_INDEX_TYPES = ("flat", "ivf-flat", "ivf-pq")  # types faiss-gpu builds and converts back to the same CPU type

RowSource = Any  # float32 (n, d) rows: np.ndarray, np.memmap or rows.ShardRows (len, shape, slices, int arrays)


def check_vectors(vectors: np.ndarray, dim: int, *, unit: bool = True, what: str = "vectors") -> np.ndarray:
    """Validate float (n, dim) finite rows (L2 norm 1 when ``unit``); return float32 C-contiguous."""
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ParameterError(f"{what} must have shape (n, {dim}), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ParameterError(f"{what} row {row} is not finite")
    if unit and len(arr):
        norms = np.linalg.norm(arr, axis=1)
        bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
        if bad.size:
            raise ParameterError(f"{what} must be L2-normalised; row {int(bad[0])} has norm {norms[bad[0]]:.4f}")
    return arr


def check_ids(ids: np.ndarray, n_rows: int) -> np.ndarray:
    """Validate ``n_rows`` distinct non-negative integer ids; return int64 (n_rows,)."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or len(arr) != n_rows:
        raise ParameterError(f"ids must have shape ({n_rows},), got {arr.shape}")
    if len(arr) and not np.issubdtype(arr.dtype, np.integer):
        raise ParameterError(f"ids must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if len(arr) and arr.min() < 0:
        raise ParameterError(f"ids must be >= 0 (FAISS uses -1 for 'no result'), got {int(arr.min())}")
    if len(np.unique(arr)) != len(arr):
        raise ParameterError("ids must be distinct; the batch repeats an id")
    return arr


class VectorIndex:
    """An inner-product FAISS index answering with block ids, and the IndexSpec it was built from."""

    def __init__(self, index: faiss.Index, spec: IndexSpec) -> None:
        self._index = index  # IndexIDMap (flat, flat-fp16, hnsw, old ivf-pq) or IndexIVF (ivf-*)
        self.spec = spec
        self._scratch: Path | None = None  # on-disk lists rewritten by add/remove, not yet saved
        self.set_search_params(nprobe=spec.nprobe, ef_search=spec.ef_search)

    # --- construction ---
    @classmethod
    def build(cls, spec: IndexSpec, vectors: RowSource, ids: np.ndarray, *, gpu: bool = False,
              gpu_device: int = 0, seed: int = 0, chunk_rows: int = ADD_CHUNK_ROWS,
              data_path: Path | None = None, part_rows: int | None = None,
              on_rows: Callable[[int], None] | None = None) -> VectorIndex:
        """Train (ivf-*) and fill an index with ``vectors`` float32 (n, d) unit rows under ``ids`` int64 (n,).

        ``vectors`` is read ``chunk_rows`` rows at a time (a training sample first for IVF), so it
        may be a memory map or a ShardRows. On-disk specs write their lists to ``data_path``
        (``ondisk.data_path_for`` the index file), filling parts of ``part_rows`` rows in RAM
        first. ``on_rows(m)`` is called as every m rows are added. With ``gpu`` the index is trained
        and filled on GPU ``gpu_device`` (faiss-gpu) and returned in CPU form. Raises ParameterError
        for bad input, an untrainable size, or ``gpu`` without a usable GPU.
        """
        n = len(vectors)
        ids = check_ids(ids, n)
        if len(vectors.shape) != 2 or vectors.shape[1] != spec.dim:
            raise ParameterError(f"vectors must have shape (n, {spec.dim}), got {tuple(vectors.shape)}")
        if spec.on_disk and (data_path is None or gpu or n == 0):
            raise ParameterError("an on-disk index needs a data_path, at least one vector and no --gpu")
        index = _empty_index(spec)
        work, resources = index, None
        if gpu:
            resources = _gpu_resources(spec, gpu_device)
            work = faiss.index_cpu_to_gpu(resources, gpu_device, index)
        with blas_threshold():
            if not work.is_trained:
                work.train(_training_sample(spec, vectors, seed))
            if spec.on_disk:
                _fill_on_disk(index, vectors, ids, Path(data_path), part_rows or n, chunk_rows, on_rows)
            else:
                _reserve(index, n)
                for start, chunk in _chunks(vectors, spec.dim, chunk_rows):
                    work.add_with_ids(chunk, ids[start:start + len(chunk)])
                    if on_rows is not None:
                        on_rows(len(chunk))
        if gpu:
            index = faiss.downcast_index(faiss.index_gpu_to_cpu(work))
        log.info("built %s index (%s) of %d vectors%s", spec.label, spec.factory_key, index.ntotal,
                 " on the GPU" if gpu else "")
        return cls(index, spec)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index file written by ``save`` (mapping its ``.ivfdata`` lists read-only, if any).

        Raises ArtefactError if missing, corrupt or foreign, or if its on-disk lists are missing.
        """
        path = Path(path)
        if not path.is_file():
            raise ArtefactError(f"index file {path} does not exist")
        data = ondisk.data_path_for(path)
        on_disk = data.is_file()  # IO_FLAG_SKIP_IVF_DATA: the lists are mapped below, from this file
        flags = faiss.IO_FLAG_SKIP_IVF_DATA | faiss.IO_FLAG_READ_ONLY if on_disk else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            if "could not open" in str(exc) and "ivfdata" in str(exc):
                raise ArtefactError(f"the inverted lists {data} of index {path} are missing; rebuild the index") \
                    from exc
            raise ArtefactError(f"cannot read index file {path}: {_faiss_message(exc)}") from exc
        # read_index returns the concrete class (faiss's SWIG typemap downcasts) and owns it
        if index.metric_type != faiss.METRIC_INNER_PRODUCT or not isinstance(index, (faiss.IndexIDMap, faiss.IndexIVF)):
            raise ArtefactError(f"{path} is not an id-mapped inner-product index ({type(index).__name__})")
        if on_disk != ondisk.is_on_disk(index):
            raise ArtefactError(f"index {path} and the file {data} do not belong together; rebuild the index")
        if on_disk:
            ondisk.open_lists(index, data, source=path)
        return cls(index, _spec_of(index, path))

    def save(self, path: Path) -> str:
        """Write the index to ``path`` atomically (temporary file + os.replace); returns its SHA-256.

        On-disk lists are first written compactly to ``ondisk.data_path_for(path)`` unless they
        already live there (a fresh build), so ``path`` and its ``.ivfdata`` always go together.
        """
        path = Path(path)
        if self.spec.on_disk:
            target = ondisk.data_path_for(path)
            if self._scratch is not None:  # changed since loaded: the rewritten lists move beside path
                ondisk.rename_lists(self._index, target)
                self._scratch = None
            elif ondisk.mapped_file(self._index).resolve() != target.resolve():
                ondisk.rewrite_lists(self._index, target)  # a compact copy

        def write(tmp: Path) -> None:
            try:
                faiss.write_index(self._index, str(tmp))
            except RuntimeError as exc:
                raise ArtefactError(f"cannot write {path}: {_faiss_message(exc)}") from exc

        return atomic_write_with(path, write)

    def __del__(self) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:  # changed but never saved: drop the copy (after unmapping it)
            self._index = None
            try:
                scratch.unlink(missing_ok=True)
            except OSError:
                pass

    # --- contents ---
    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def ids(self) -> np.ndarray:
        """int64 (n,) sorted ids held by the index (a copy; 8 bytes per vector)."""
        if isinstance(self._index, faiss.IndexIDMap):
            return np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False))
        return np.sort(_list_ids(self._index))

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add unit rows float32 (n, d) under new ``ids`` int64 (n,), without retraining.

        Raises ParameterError if an id is already in the index or the vectors are not unit rows.
        """
        ids = check_ids(ids, len(vectors))
        vectors = check_vectors(vectors, self.dim)
        if len(self):
            clash = ids[np.isin(ids, self.ids())]
            if clash.size:
                raise ParameterError(f"id {int(clash[0])} is already in the index ({clash.size} clashing ids)")
        with blas_threshold():
            if self.spec.on_disk:
                self._rewrite(extra=ondisk.encode_lists(self._index, vectors, ids))
            else:
                self._index.add_with_ids(vectors, ids)

    def remove_ids(self, ids: np.ndarray) -> int:
        """Remove the vectors of ``ids`` (absent ids are ignored); returns how many were removed.

        HNSW graphs cannot delete nodes, so an hnsw index is rebuilt from its remaining vectors.
        """
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if ids.size == 0 or len(self) == 0:
            return 0
        if self.spec.index_type == "hnsw":
            return self._rebuild_without(ids)
        if self.spec.on_disk:
            before = len(self)
            self._rewrite(drop=ids)
            return before - len(self)
        return int(self._index.remove_ids(ids))

    def _rewrite(self, **change: Any) -> None:
        """Apply a change to on-disk lists by writing them anew to a scratch file (see ondisk.rewrite_lists)."""
        previous = self._scratch
        self._scratch = ondisk.scratch_path(ondisk.mapped_file(self._index).parent)
        ondisk.rewrite_lists(self._index, self._scratch, **change)
        if previous is not None:  # unmapped once the new lists replaced it
            previous.unlink(missing_ok=True)

    def _rebuild_without(self, ids: np.ndarray) -> int:
        held = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        keep = ~np.isin(held, ids)
        removed = int((~keep).sum())
        if removed:
            log.info("rebuilding the hnsw graph without %d vectors (HNSW cannot delete)", removed)
            vectors = faiss.downcast_index(self._index.index).reconstruct_n(0, len(held))[keep]
            fresh = VectorIndex.build(self.spec, vectors, held[keep])
            self._index = fresh._index
        return removed

    # --- search ---
    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Set IVF cells visited (ivf-*) or HNSW breadth (hnsw), the index's default (and its spec's); other types ignore them."""
        inner = _inner(self._index)
        if nprobe is not None and isinstance(inner, faiss.IndexIVF):
            inner.nprobe = int(min(nprobe, inner.nlist))
            self.spec = dataclasses.replace(self.spec, nprobe=int(inner.nprobe))
        if ef_search is not None and isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = int(ef_search)
            self.spec = dataclasses.replace(self.spec, ef_search=int(ef_search))

    def search(self, queries: np.ndarray, k: int, *, batch_size: int = SEARCH_BATCH_ROWS, nprobe: int | None = None,
               ef_search: int | None = None, exclude_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar reference blocks of each query row, best first.

        queries: float (n, d), finite (normally unit rows). ``nprobe`` (ivf-*) / ``ef_search``
        (hnsw) override the index's setting for this call only (safe while other threads search).
        Returns similarities float32 (n, k) (inner products, in [-1, 1] for unit vectors) and
        block ids int64 (n, k); where fewer than k neighbours exist (small or approximate index)
        the id is -1. ``exclude_ids``: block ids no answer may be (a FAISS IDSelector; used to tune
        the search on held-out songs, ``singerid.index.tuning``).
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ParameterError(f"k must be a positive integer, got {k!r}")
        if batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
        queries = check_vectors(queries, self.dim, unit=False, what="queries")
        selector = None if exclude_ids is None else _not_in(np.ascontiguousarray(exclude_ids, dtype=np.int64))
        params = self._search_params(nprobe, ef_search, selector)
        sims = np.empty((len(queries), k), dtype=np.float32)
        ids = np.empty((len(queries), k), dtype=np.int64)
        sharded = 0 if selector is not None else self._flat_shards()
        with blas_threshold():
            for start in range(0, len(queries), batch_size):
                stop = start + batch_size
                if sharded and stop - start >= BLAS_QUERY_THRESHOLD:
                    sims[start:stop], ids[start:stop] = self._search_shards(queries[start:stop], int(k))
                else:
                    sims[start:stop], ids[start:stop] = self._index.search(queries[start:stop], int(k), params=params)
        return sims, ids

    def _flat_shards(self) -> int:
        """Threads of the sharded exact search (0: search as one FAISS call)."""
        threads = faiss.omp_get_max_threads()
        inner = _inner(self._index)
        if (threads < 2 or not isinstance(inner, faiss.IndexFlat) or not isinstance(self._index, faiss.IndexIDMap)
                or inner.ntotal < SHARD_MIN_ROWS):
            return 0
        return threads

    def _search_shards(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search as one single-threaded FAISS knn per database shard, run side by side, then merged.

        FAISS's own flat search alternates a multi-threaded sgemm over 1,024 database rows with a
        parallel heap update, and at ~240 queries x d=32 the synchronisation costs about half the
        time. Here each thread runs its own sgemm tiles (BLAS_DATABASE_ROWS rows) and heaps over
        a contiguous shard: scripts/bench_index.py measures the gain. Same similarities as the
        plain search; neighbours tied in float32 may come in another order.
        """
        inner = _inner(self._index)
        n, d, threads = inner.ntotal, inner.d, self._flat_shards()
        base = faiss.rev_swig_ptr(inner.get_xb(), n * d).reshape(n, d)  # the index's storage, not a copy
        shards = max(threads, min(SHARDS_PER_THREAD * threads, n // SHARD_MIN_ROWS))  # spares balance a busy core
        bounds = np.linspace(0, n, shards + 1).astype(np.int64)

        def one(part: int) -> tuple[np.ndarray, np.ndarray]:
            faiss.omp_set_num_threads(1)  # this thread's FAISS and (OpenMP) BLAS
            return faiss.knn(queries, base[bounds[part]:bounds[part + 1]], k, metric=faiss.METRIC_INNER_PRODUCT)

        with _SHARDED_SEARCH, _one_blas_thread():  # one sharded search at a time: the settings are global
            before = faiss.cvar.distance_compute_blas_database_bs
            faiss.cvar.distance_compute_blas_database_bs = BLAS_DATABASE_ROWS
            try:
                with ThreadPoolExecutor(threads) as pool:
                    parts = list(pool.map(one, range(shards)))
            finally:
                faiss.cvar.distance_compute_blas_database_bs = before
        heap = faiss.ResultHeap(len(queries), k, keep_max=True)
        for (sims, positions), first in zip(parts, bounds):
            heap.add_result(sims, np.where(positions >= 0, positions + first, -1))
        heap.finalize()
        id_map = faiss.rev_swig_ptr(self._index.id_map.data(), n)
        return heap.D, np.where(heap.I >= 0, id_map[np.maximum(heap.I, 0)], -1)

    def _search_params(self, nprobe: int | None, ef_search: int | None,
                       selector: faiss.IDSelector | None = None) -> faiss.SearchParameters | None:
        for name, value in (("nprobe", nprobe), ("ef_search", ef_search)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")
        inner = _inner(self._index)
        if isinstance(inner, faiss.IndexIVF) and (nprobe is not None or selector is not None):
            return faiss.SearchParametersIVF(nprobe=int(min(nprobe or inner.nprobe, inner.nlist)), sel=selector)
        if isinstance(inner, faiss.IndexHNSW) and (ef_search is not None or selector is not None):
            return faiss.SearchParametersHNSW(efSearch=int(ef_search or inner.hnsw.efSearch), sel=selector)
        return None if selector is None else faiss.SearchParameters(sel=selector)


def _not_in(excluded: np.ndarray) -> faiss.IDSelector:
    """A FAISS selector of every id not in ``excluded`` int64 (m,); it holds its own references."""
    batch = faiss.IDSelectorBatch(excluded)
    selector = faiss.IDSelectorNot(batch)
    selector.referenced_objects = [batch, excluded]  # the SWIG objects keep raw pointers to these
    return selector


@contextmanager
def blas_threshold(queries: int = BLAS_QUERY_THRESHOLD) -> Iterator[None]:
    """Within the block, FAISS exhaustive search uses BLAS from ``queries`` queries per call on."""
    before = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = queries
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = before


_SHARDED_SEARCH = threading.Lock()
_BLAS: list[ThreadpoolController] = []  # created on first use, once FAISS's BLAS is loaded


def _one_blas_thread():
    """Within the block, BLAS libraries run single-threaded (each shard's thread is one core's work).

    OpenBLAS keeps its thread count globally, so without this each shard's sgemm would start its
    own threads: 35 % slower at d=128 on 2 cores (bench_index.py).
    """
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def _empty_index(spec: IndexSpec) -> faiss.Index:
    """The untrained, empty index of ``spec``: IVF types bare (ids in their lists), the others id-mapped."""
    made = faiss.index_factory(spec.dim, spec.factory_key, faiss.METRIC_INNER_PRODUCT)
    inner = faiss.downcast_index(made)  # a second view of the same object; ``made`` owns it
    if isinstance(inner, faiss.IndexIVFPQ):
        inner.do_polysemous_training = False  # we never search by Hamming; it costs 85 % of training
    if spec.index_type in IVF_TYPES:
        made.this.disown()
        inner.this.acquire()  # ownership moves to the view we return
        return inner
    index = faiss.IndexIDMap(inner)
    index.own_fields = True
    made.this.disown()  # the id map owns (and frees) the inner index
    return index


def _reserve(index: faiss.Index, n: int) -> None:
    """Allocate flat storage for ``n`` vectors once, so chunked adds never copy it to grow it.

    IndexFlatCodes.add resizes its byte vector per call; sized up front (and shrunk by the first
    add, which keeps the capacity) the chunks land in place: peak = final size, not up to 3x.
    """
    storage = _inner(index)
    if isinstance(storage, faiss.IndexHNSW):
        storage = faiss.downcast_index(storage.storage)
    if isinstance(storage, faiss.IndexFlatCodes) and storage.ntotal == 0 and n > 0:
        storage.codes.resize(n * storage.code_size)


def _chunks(vectors: RowSource, dim: int, chunk_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, len(vectors), chunk_rows):
        yield start, check_vectors(vectors[start:start + chunk_rows], dim)


def _fill_on_disk(index: faiss.IndexIVF, vectors: RowSource, ids: np.ndarray, data_path: Path, part_rows: int,
                  chunk_rows: int, on_rows: Callable[[int], None] | None) -> None:
    """Fill parts of ``part_rows`` rows in RAM, write each, merge their lists into ``data_path``."""
    parts: list[Path] = []
    try:
        for first in range(0, len(ids), part_rows):
            part = faiss.clone_index(index)
            for start, chunk in _chunks(_Window(vectors, first, first + part_rows), index.d, chunk_rows):
                part.add_with_ids(chunk, ids[first + start:first + start + len(chunk)])
                if on_rows is not None:
                    on_rows(len(chunk))
            parts.append(data_path.with_name(f".{data_path.name}.part{len(parts)}.tmp-{os.getpid()}"))
            faiss.write_index(part, str(parts[-1]))
            del part
        ondisk.merge_parts(index, parts, data_path)
    finally:
        for path in parts:
            path.unlink(missing_ok=True)


class _Window:
    """Rows [first, stop) of a row source, as a row source."""

    def __init__(self, source: RowSource, first: int, stop: int) -> None:
        self.source, self.first, self.stop = source, first, min(stop, len(source))

    def __len__(self) -> int:
        return self.stop - self.first

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, _ = key.indices(len(self))
        return self.source[self.first + start:self.first + stop]


def _inner(index: faiss.Index) -> faiss.Index:
    return faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index


def _list_ids(ivf: faiss.IndexIVF) -> np.ndarray:
    """int64 (ntotal,) ids stored in the inverted lists, list by list."""
    lists = ivf.invlists
    out = np.empty(ivf.ntotal, dtype=np.int64)
    filled = 0
    for list_no in range(ivf.nlist):
        size = lists.list_size(list_no)
        if size:
            pointer = lists.get_ids(list_no)
            out[filled:filled + size] = faiss.rev_swig_ptr(pointer, size)
            lists.release_ids(list_no, pointer)
            filled += size
    return out[:filled]


def _faiss_message(exc: RuntimeError) -> str:
    """The useful tail of a FAISS C++ error ("Error in ... at io.cpp:103: Error: '...' failed: <this>")."""
    text = " ".join(str(exc).split())
    return text.rsplit("failed: ", 1)[-1] if "failed: " in text else text


def _training_sample(spec: IndexSpec, vectors: RowSource, seed: int) -> np.ndarray:
    """float32 (m, d) rows drawn without replacement (sorted, for the shards' sake) to train IVF / PQ."""
    n = len(vectors)
    needed = max(spec.nlist or 1, 2 ** (spec.pq_nbits or 8) if spec.index_type == "ivf-pq" else 1)
    if n < needed:
        raise ParameterError(f"{spec.factory_key} needs at least {needed} vectors to train, got {n}; "
                             "use --type flat or a smaller --nlist")
    size = max(needed, training_points(spec, n))
    rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return check_vectors(vectors[rows], spec.dim)


def _gpu_resources(spec: IndexSpec, device: int):
    if not hasattr(faiss, "StandardGpuResources"):
        raise ParameterError(f"--gpu needs faiss with GPU support, but the installed faiss {faiss.__version__} "
                             "is CPU-only; install faiss-gpu or drop --gpu")
    n_gpus = faiss.get_num_gpus()
    if n_gpus == 0:
        raise ParameterError("--gpu: faiss sees no CUDA GPU (faiss.get_num_gpus() == 0); drop --gpu")
    if not 0 <= device < n_gpus:
        raise ParameterError(f"--gpu device {device} does not exist; faiss sees {n_gpus} GPU(s)")
    if spec.index_type not in GPU_INDEX_TYPES:
        raise ParameterError(f"--gpu builds {', '.join(GPU_INDEX_TYPES)} indexes; {spec.index_type!r} "
                             "has no GPU builder in faiss, build it without --gpu")
    if spec.index_type == "ivf-pq" and spec.pq_nbits != 8:
        raise ParameterError(f"--gpu ivf-pq needs 8-bit codes, got pq_nbits={spec.pq_nbits} (too few vectors)")
    return faiss.StandardGpuResources()


def _spec_of(index: faiss.Index, path: Path) -> IndexSpec:
    inner, d = _inner(index), int(index.d)
    if isinstance(inner, faiss.IndexFlat):
        return IndexSpec("flat", d)
    if isinstance(inner, faiss.IndexScalarQuantizer) and inner.sq.qtype == faiss.ScalarQuantizer.QT_fp16:
        return IndexSpec("flat-fp16", d)
    on_disk = ondisk.is_on_disk(inner)
    if isinstance(inner, faiss.IndexIVFFlat):
        return IndexSpec("ivf-flat", d, nlist=int(inner.nlist), nprobe=int(inner.nprobe), on_disk=on_disk)
    if isinstance(inner, faiss.IndexIVFPQ):
        return IndexSpec("ivf-pq", d, nlist=int(inner.nlist), pq_m=int(inner.pq.M), pq_nbits=int(inner.pq.nbits),
                         nprobe=int(inner.nprobe), on_disk=on_disk)
    if isinstance(inner, faiss.IndexHNSWFlat):
        return IndexSpec("hnsw", d, hnsw_m=int(inner.hnsw.nb_neighbors(1)),
                         ef_construction=int(inner.hnsw.efConstruction), ef_search=int(inner.hnsw.efSearch))
    raise ArtefactError(f"{path} holds an unsupported index type {type(inner).__name__}")

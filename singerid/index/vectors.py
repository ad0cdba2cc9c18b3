"""FAISS index of reference block embeddings: build, add, remove, search, save, load. No SQL here.

Every index is inner product (cosine on unit vectors) and ID-mapped: the ids FAISS returns are the
block ids of the metadata store. Types: ``flat`` (IndexFlatIP, exact: the paper's dense KNN layer),
``flat-fp16`` (IndexScalarQuantizer fp16), ``ivf-pq`` (IndexIVFPQ), ``hnsw`` (IndexHNSWFlat).
Searches run in query batches; FAISS tiles each batch against the database internally, so no
query x reference matrix is ever held in full. ``exact_search`` is the blockwise numpy yardstick
(like faiss.contrib.exhaustive_search) used by tests and scripts/bench_index.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from singerid.errors import ArtefactError, ParameterError
from singerid.index.choice import IndexSpec
from singerid.index.files import atomic_write_with

log = logging.getLogger(__name__)

SEARCH_BATCH_ROWS = 4096  # query rows per FAISS call (bounds the result buffers)
ADD_CHUNK_ROWS = 65_536  # rows copied out of (memory-mapped) input per add call
NORM_TOLERANCE = 1e-3  # |norm - 1| allowed for "unit" vectors entering the index
TRAIN_POINTS_PER_CELL = 64  # ivf-pq training sample: 64 points per IVF cell ...
TRAIN_POINTS_PER_CODE = 64  # ... and at least 64 per PQ centroid (FAISS warns below 39)
FIRST_BLOCK_ROWS = 2048  # exact_search: rows of the first database block (sets the threshold)
CANDIDATES_PER_ROW = 64  # exact_search: above k x this many candidates per row, pre-select by argpartition
# Queries per FAISS call from which exhaustive search (flat search, k-means, IVF assignment) uses
# BLAS. faiss-cpu 1.15.1 ships 128,000, which sends a song's ~240 query blocks to the scalar SIMD
# path that streams the whole database per query: 14-20x slower against 1M references (d=32/128)
# and PQ training 7x slower; up to 100k references the SIMD path is 5-15 % faster (bench_index.py).
# 20 is FAISS's long-standing default. Set only around our own calls and restored after.
BLAS_QUERY_THRESHOLD = 20
GPU_INDEX_TYPES = ("flat", "ivf-pq")  # types faiss-gpu builds and converts back to the same CPU type


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
    """An ID-mapped inner-product FAISS index and the IndexSpec it was built from."""

    def __init__(self, index: faiss.IndexIDMap, spec: IndexSpec) -> None:
        self._index = index
        self.spec = spec
        self.set_search_params(nprobe=spec.nprobe, ef_search=spec.ef_search)

    # --- construction ---
    @classmethod
    def build(cls, spec: IndexSpec, vectors: np.ndarray, ids: np.ndarray, *, gpu: bool = False,
              gpu_device: int = 0, seed: int = 0, chunk_rows: int = ADD_CHUNK_ROWS) -> VectorIndex:
        """Train (ivf-pq) and fill an index with ``vectors`` float32 (n, d) unit rows under ``ids`` int64 (n,).

        ``vectors`` may be a memory map: it is read in ``chunk_rows`` slices. With ``gpu`` the
        index is trained and filled on GPU ``gpu_device`` (faiss-gpu) and returned in CPU form.
        Raises ParameterError for bad input, an untrainable size, or ``gpu`` without a usable GPU.
        """
        if not isinstance(vectors, np.ndarray):
            vectors = np.asarray(vectors, dtype=np.float32)
        ids = check_ids(ids, len(vectors))
        if vectors.ndim != 2 or vectors.shape[1] != spec.dim:
            raise ParameterError(f"vectors must have shape (n, {spec.dim}), got {np.shape(vectors)}")
        inner = faiss.index_factory(spec.dim, spec.factory_key, faiss.METRIC_INNER_PRODUCT)
        if isinstance(ivf := faiss.downcast_index(inner), faiss.IndexIVFPQ):
            ivf.do_polysemous_training = False  # we never search by Hamming; it costs 85 % of training
        index = faiss.IndexIDMap(inner)  # keeps a reference to inner
        work, resources = index, None
        if gpu:
            resources = _gpu_resources(spec, gpu_device)
            work = faiss.index_cpu_to_gpu(resources, gpu_device, index)
        with blas_threshold():
            if not work.is_trained:
                work.train(_training_sample(spec, vectors, seed))
            for start in range(0, len(ids), chunk_rows):
                stop = start + chunk_rows
                work.add_with_ids(check_vectors(vectors[start:stop], spec.dim), ids[start:stop])
        if gpu:
            index = faiss.downcast_index(faiss.index_gpu_to_cpu(work))
        log.info("built %s index (%s) of %d vectors%s", spec.index_type, spec.factory_key, index.ntotal,
                 " on the GPU" if gpu else "")
        return cls(index, spec)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index file written by ``save``. Raises ArtefactError if missing, corrupt or foreign."""
        path = Path(path)
        if not path.is_file():
            raise ArtefactError(f"index file {path} does not exist")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ArtefactError(f"cannot read index file {path}: {_faiss_message(exc)}") from exc
        if not isinstance(index, faiss.IndexIDMap) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ArtefactError(f"{path} is not an id-mapped inner-product index ({type(index).__name__})")
        return cls(index, _spec_of(index, path))

    def save(self, path: Path) -> str:
        """Write the index to ``path`` atomically (temporary file + os.replace); returns its SHA-256."""
        def write(tmp: Path) -> None:
            try:
                faiss.write_index(self._index, str(tmp))
            except RuntimeError as exc:
                raise ArtefactError(f"cannot write {path}: {_faiss_message(exc)}") from exc

        return atomic_write_with(Path(path), write)

    # --- contents ---
    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def ids(self) -> np.ndarray:
        """int64 (n,) sorted ids held by the index (a copy; 8 bytes per vector)."""
        return np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False))

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add unit rows float32 (n, d) under new ``ids`` int64 (n,), without retraining.

        Raises ParameterError if an id is already in the index or the vectors are not unit rows.
        """
        ids = check_ids(ids, len(vectors))
        vectors = check_vectors(vectors, self.dim)
        if len(self):
            clash = ids[np.isin(ids, faiss.vector_to_array(self._index.id_map))]
            if clash.size:
                raise ParameterError(f"id {int(clash[0])} is already in the index ({clash.size} clashing ids)")
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
        return int(self._index.remove_ids(ids))

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
        """Set IVF cells visited (ivf-pq) or HNSW breadth (hnsw); other types ignore them."""
        inner = faiss.downcast_index(self._index.index)
        if nprobe is not None and isinstance(inner, faiss.IndexIVF):
            inner.nprobe = int(nprobe)
        if ef_search is not None and isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = int(ef_search)

    def search(self, queries: np.ndarray, k: int, *, batch_size: int = SEARCH_BATCH_ROWS
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar reference blocks of each query row, best first.

        queries: float (n, d), finite (normally unit rows). Returns similarities float32 (n, k)
        (inner products, in [-1, 1] for unit vectors) and block ids int64 (n, k); where fewer
        than k neighbours exist (small or approximate index) the id is -1.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ParameterError(f"k must be a positive integer, got {k!r}")
        if batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
        queries = check_vectors(queries, self.dim, unit=False, what="queries")
        sims = np.empty((len(queries), k), dtype=np.float32)
        ids = np.empty((len(queries), k), dtype=np.int64)
        with blas_threshold():
            for start in range(0, len(queries), batch_size):
                stop = start + batch_size
                sims[start:stop], ids[start:stop] = self._index.search(queries[start:stop], int(k))
        return sims, ids


@contextmanager
def blas_threshold(queries: int = BLAS_QUERY_THRESHOLD) -> Iterator[None]:
    """Within the block, FAISS exhaustive search uses BLAS from ``queries`` queries per call on."""
    before = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = queries
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = before


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


def _faiss_message(exc: RuntimeError) -> str:
    """The useful tail of a FAISS C++ error ("Error in ... at io.cpp:103: Error: '...' failed: <this>")."""
    text = " ".join(str(exc).split())
    return text.rsplit("failed: ", 1)[-1] if "failed: " in text else text


def _training_sample(spec: IndexSpec, vectors: np.ndarray, seed: int) -> np.ndarray:
    n = len(vectors)
    want = max(TRAIN_POINTS_PER_CELL * (spec.nlist or 1), TRAIN_POINTS_PER_CODE * 2 ** (spec.pq_nbits or 8))
    needed = max(spec.nlist or 1, 2 ** (spec.pq_nbits or 8))
    if n < needed:
        raise ParameterError(f"{spec.factory_key} needs at least {needed} vectors to train, got {n}; "
                             "use --type flat or a smaller --nlist")
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, want), replace=False))
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
        raise ParameterError(f"--gpu builds {' and '.join(GPU_INDEX_TYPES)} indexes; {spec.index_type!r} "
                             "has no GPU builder in faiss, build it without --gpu")
    if spec.index_type == "ivf-pq" and spec.pq_nbits != 8:
        raise ParameterError(f"--gpu ivf-pq needs 8-bit codes, got pq_nbits={spec.pq_nbits} (too few vectors)")
    return faiss.StandardGpuResources()


def _spec_of(index: faiss.IndexIDMap, path: Path) -> IndexSpec:
    inner, d = faiss.downcast_index(index.index), int(index.d)
    if isinstance(inner, faiss.IndexFlat):
        return IndexSpec("flat", d)
    if isinstance(inner, faiss.IndexScalarQuantizer) and inner.sq.qtype == faiss.ScalarQuantizer.QT_fp16:
        return IndexSpec("flat-fp16", d)
    if isinstance(inner, faiss.IndexIVFPQ):
        return IndexSpec("ivf-pq", d, nlist=int(inner.nlist), pq_m=int(inner.pq.M), pq_nbits=int(inner.pq.nbits),
                         nprobe=int(inner.nprobe))
    if isinstance(inner, faiss.IndexHNSWFlat):
        return IndexSpec("hnsw", d, hnsw_m=int(inner.hnsw.nb_neighbors(1)),
                         ef_construction=int(inner.hnsw.efConstruction), ef_search=int(inner.hnsw.efSearch))
    raise ArtefactError(f"{path} holds an unsupported index type {type(inner).__name__}")

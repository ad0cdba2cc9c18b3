"""Which FAISS index to build: the index spec, its memory estimate, and the ``auto`` choice.

Pure arithmetic, no FAISS import (autofaiss's idea: estimate memory before spending it).
Every index is inner-product over L2-normalised block embeddings and answers with the store's
block ids (flat/hnsw through an id map, IVF types keep the ids in their inverted lists). Sizes
are in bytes; ``n_vectors`` counts reference blocks, ``dim`` is d of the indexed vectors.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from singerid.config import IndexConfig
from singerid.errors import ParameterError

INDEX_TYPES = ("flat", "flat-fp16", "ivf-flat", "ivf-pq", "hnsw")
IVF_TYPES = ("ivf-flat", "ivf-pq")  # the types whose inverted lists may live on disk

# --- thresholds of choose_index_key (ours; measured by scripts/bench_index.py and scripts/bench_scale.py) ---
# Exact search scans n x d floats per query block. After the roofline work bench_index.py measured
# 60-75 GFLOP/s for 240 query blocks on 2 cores, so a 4-minute song (240 blocks) takes
# 240 x 2 x n x d / 65e9 s: 0.47 s at n x d = 64M (2M blocks of d=32, 500k of d=128), half of
# the 1-s end-to-end query. Above it IVF answers the same songs (bench_scale.py) far sooner.
FLAT_MAX_SCAN_FLOATS = 64_000_000
# HNSW is chosen nowhere by auto, although it searches fastest at equal song agreement
# (bench_scale.py, d=32: 0.07 s per song at 99.5 % vs IVF-Flat 0.36 s at 99 % at 1M; 0.65 s vs
# 1.36 s at 95.5 % at 10M): it builds 17-24x slower (21 min at 10M on 2 cores), takes 3x the
# bytes per vector, and cannot delete, so every `remove` rebuilds the whole graph. For
# collections that rarely lose songs, `--type hnsw` is the fast choice; auto keeps this band empty.
HNSW_AUTO_MIN_VECTORS = 0
HNSW_AUTO_MAX_VECTORS = -1
MIN_POINTS_PER_CENTROID = 39  # FAISS k-means warns below 39 training points per centroid
TRAIN_POINTS_PER_CENTROID = 64  # ours, inside FAISS's 39-256 rule of thumb
PQ_NBITS = 8  # 256 centroids per sub-quantiser
IVF_PQ_MIN_VECTORS = MIN_POINTS_PER_CENTROID * 2**PQ_NBITS  # 9,984: enough to train 8-bit PQ codebooks
MAX_NLIST = 65_536
MAX_TRAIN_BYTES = 512 * 1024**2  # ours: cap of the k-means training sample (never below 39 per centroid)

# --- defaults of the approximate types (ours, after FAISS's guidelines) ---
HNSW_M = 32  # graph links per node (FAISS's usual choice)
HNSW_EF_CONSTRUCTION = 40  # FAISS default
# pq_m = dim / PQ_DIMS_PER_CODE one-byte codes: 32 for d=32 (4x smaller than float32). With 2 dims
# per code (16 bytes) recall@11 on singer-like data stops at 0.74 even visiting every cell, with 1
# at 0.94 (200k x 32, scripts/bench_scale.py data), and song decisions need recall near 0.97.
PQ_DIMS_PER_CODE = 1
# IVF cells visited per query block before build-index tunes it (singerid.index.tuning measures
# the cheapest setting whose song decisions agree with exact search on held-out songs, and stores
# it in the index). These are only the values of an index too small to tune (< 200 songs) or
# built with tuning off. No constant can be right for every collection: on bench_scale.py's
# synthetic catalogues >= 99 % song agreement needed nprobe 256 of 1,024 cells at 1M blocks and
# 1,024 of 4,096 at 10M, on well-separated singers a handful.
DEFAULT_NPROBE = 32
DEFAULT_EF_SEARCH = 64  # HNSW search breadth before tuning (as DEFAULT_NPROBE)

# --- per-vector and fixed overheads used by the estimates ---
ID_BYTES = 8  # int64 id in the id map (flat, hnsw) or in each inverted list (IVF)
HNSW_LINK_BYTES = 4  # int32 neighbour id; level 0 holds 2 * M links, upper levels ~M / (M - 1) more
ONDISK_LIST_BYTES = 24  # per inverted list kept in RAM by OnDiskInvertedLists (size, capacity, offset)
SEARCH_HEADROOM = 1.1  # 10 % for allocator slack and search buffers
PART_GROWTH = 2.0  # FAISS's in-RAM inverted lists grow by doubling: up to 2x their content while filled
MIN_PART_ROWS = 65_536  # ours: an on-disk build merges parts of at least this many rows


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """Everything needed to rebuild one index: type, dimension and the type's parameters.

    Parameters that do not apply to ``index_type`` are None. ``nprobe`` (ivf-*) and
    ``ef_search`` (hnsw) are search-time knobs and may be changed after building; ``on_disk``
    (ivf-*) keeps the inverted lists in a memory-mapped ``.ivfdata`` file beside the index.
    """

    index_type: str  # one of INDEX_TYPES
    dim: int  # embedding size d
    nlist: int | None = None  # ivf-*: inverted lists (coarse cells)
    pq_m: int | None = None  # ivf-pq: sub-quantisers (bytes per code at 8 bits)
    pq_nbits: int | None = None  # ivf-pq: bits per sub-quantiser code
    nprobe: int | None = None  # ivf-*: cells visited per query
    hnsw_m: int | None = None  # hnsw: links per node
    ef_construction: int | None = None  # hnsw: build-time breadth
    ef_search: int | None = None  # hnsw: search-time breadth
    on_disk: bool = False  # ivf-*: inverted lists on disk (FAISS OnDiskInvertedLists), not in RAM

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ParameterError(f"index type must be one of {', '.join(INDEX_TYPES)}, got {self.index_type!r}")
        if not isinstance(self.dim, int) or self.dim <= 0:
            raise ParameterError(f"index dimension must be a positive integer, got {self.dim!r}")
        needed = {"ivf-flat": ("nlist", "nprobe"), "ivf-pq": ("nlist", "pq_m", "pq_nbits", "nprobe"),
                  "hnsw": ("hnsw_m", "ef_construction", "ef_search")}.get(self.index_type, ())
        for name in needed:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ParameterError(f"{self.index_type} needs a positive integer {name}, got {value!r}")
        if self.on_disk and self.index_type not in IVF_TYPES:
            raise ParameterError(f"only {' and '.join(IVF_TYPES)} keep their lists on disk, not {self.index_type}")
        if self.index_type == "ivf-pq":
            if self.dim % self.pq_m:  # type: ignore[operator]
                raise ParameterError(f"pq_m={self.pq_m} must divide the dimension {self.dim}")
            if not 1 <= self.pq_nbits <= 16:  # type: ignore[operator]
                raise ParameterError(f"pq_nbits must be in 1..16, got {self.pq_nbits}")

    @property
    def factory_key(self) -> str:
        """The FAISS ``index_factory`` string of the index, e.g. ``"IVF1024,PQ16x8"``."""
        if self.index_type == "flat":
            return "Flat"
        if self.index_type == "flat-fp16":
            return "SQfp16"
        if self.index_type == "ivf-flat":
            return f"IVF{self.nlist},Flat"
        if self.index_type == "ivf-pq":
            return f"IVF{self.nlist},PQ{self.pq_m}x{self.pq_nbits}"
        return f"HNSW{self.hnsw_m}"

    @property
    def label(self) -> str:
        """The type as people read it: ``ivf-pq``, or ``ivf-pq (on disk)``."""
        return f"{self.index_type} (on disk)" if self.on_disk else self.index_type

    @property
    def is_exact(self) -> bool:
        return self.index_type == "flat"

    @property
    def code_bytes(self) -> int:
        """Bytes of one stored vector (without its id)."""
        if self.index_type == "flat-fp16":
            return 2 * self.dim
        if self.index_type == "ivf-pq":
            return math.ceil((self.pq_m or 1) * (self.pq_nbits or PQ_NBITS) / 8)
        return 4 * self.dim

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParameterError(f"IndexSpec: unknown field(s) {unknown}")
        return cls(**data)


def choose_nlist(n_vectors: int) -> int:
    """IVF cells for ``n_vectors``: the power of two nearest sqrt(n), with >= 39 points per cell."""
    if n_vectors < 2 * MIN_POINTS_PER_CENTROID:
        return 1
    target = 2 ** round(math.log2(math.sqrt(n_vectors)))
    most = 2 ** int(math.log2(n_vectors // MIN_POINTS_PER_CENTROID))
    return int(max(1, min(target, most, MAX_NLIST)))


def choose_pq_nbits(n_vectors: int) -> int:
    """Bits per PQ code: 8, fewer when there are too few vectors to train 256 centroids."""
    if n_vectors >= IVF_PQ_MIN_VECTORS:
        return PQ_NBITS
    return int(max(1, min(PQ_NBITS, math.floor(math.log2(max(2, n_vectors // MIN_POINTS_PER_CENTROID))))))


def default_pq_m(dim: int) -> int:
    """Sub-quantisers for ``dim``: dim / 2 when that divides, else the largest divisor <= dim / 2."""
    target = max(1, dim // PQ_DIMS_PER_CODE)
    return next(m for m in range(target, 0, -1) if dim % m == 0)


def training_points(spec: IndexSpec, n_vectors: int) -> int:
    """Rows of the k-means training sample for an IVF spec (0 for types that need no training).

    FAISS's rule of thumb: 39-256 points per centroid (it warns below, subsamples above). We take
    TRAIN_POINTS_PER_CENTROID per IVF cell and per PQ centroid, capped at MAX_TRAIN_BYTES but never below 39 per IVF cell, and at
    most all ``n_vectors``.
    """
    if spec.index_type not in IVF_TYPES:
        return 0
    cells = spec.nlist or 1
    centroids = max(cells, 2 ** (spec.pq_nbits or PQ_NBITS) if spec.index_type == "ivf-pq" else 0)
    want = min(TRAIN_POINTS_PER_CENTROID * centroids, MAX_TRAIN_BYTES // (4 * spec.dim))
    return int(min(n_vectors, max(MIN_POINTS_PER_CENTROID * cells, want)))


def make_spec(index_type: str, *, dim: int, n_vectors: int, nlist: int | None = None, m: int | None = None,
              nprobe: int | None = None, ef_search: int | None = None, on_disk: bool = False) -> IndexSpec:
    """Fill in the parameters of a concrete ``index_type`` (not ``auto``) for ``n_vectors``.

    ``m`` is the PQ sub-quantiser count for ivf-pq and the link count for hnsw, as in IndexConfig;
    None picks the defaults above. Raises ParameterError for an unknown type or parameters that
    do not fit.
    """
    nprobe = DEFAULT_NPROBE if nprobe is None else nprobe
    if index_type in IVF_TYPES:
        cells = nlist if nlist is not None else choose_nlist(n_vectors)
        if index_type == "ivf-flat":
            return IndexSpec("ivf-flat", dim, nlist=cells, nprobe=min(nprobe, cells), on_disk=on_disk)
        return IndexSpec("ivf-pq", dim, nlist=cells, pq_m=m if m is not None else default_pq_m(dim),
                         pq_nbits=choose_pq_nbits(n_vectors), nprobe=min(nprobe, cells), on_disk=on_disk)
    if on_disk:
        raise ParameterError(f"only {' and '.join(IVF_TYPES)} keep their lists on disk, not {index_type}")
    if index_type == "hnsw":
        return IndexSpec("hnsw", dim, hnsw_m=m if m is not None else HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION,
                         ef_search=DEFAULT_EF_SEARCH if ef_search is None else ef_search)
    return IndexSpec(index_type, dim)


def spec_from_config(cfg: IndexConfig, *, n_vectors: int, dim: int) -> IndexSpec:
    """Resolve an IndexConfig (possibly ``auto``) into a concrete IndexSpec for ``n_vectors``.

    A concrete type goes on disk when ``cfg.on_disk`` says so; ``auto`` decides by the budget.
    """
    if cfg.index_type == "auto":
        if cfg.on_disk:
            raise ParameterError("on-disk lists are for --type ivf-flat or ivf-pq; --type auto puts them on disk "
                                 "itself when the index does not fit --memory-budget")
        chosen = choose_index_key(n_vectors, dim, cfg.memory_budget_bytes)
        return make_spec(chosen.index_type, dim=dim, n_vectors=n_vectors, nlist=cfg.nlist, m=cfg.m,
                         nprobe=cfg.nprobe, ef_search=cfg.ef_search, on_disk=chosen.on_disk)
    return make_spec(cfg.index_type, dim=dim, n_vectors=n_vectors, nlist=cfg.nlist, m=cfg.m,
                     nprobe=cfg.nprobe, ef_search=cfg.ef_search, on_disk=cfg.on_disk)


def estimate_index_bytes(spec: IndexSpec, n_vectors: int) -> int:
    """Memory (bytes) the index of ``n_vectors`` keeps in RAM to answer queries, headroom included.

    For on-disk lists this is the resident part only (coarse centroids, PQ codebooks, the list
    directory); the lists themselves are in the page cache, see ``estimate_disk_bytes``.
    """
    d = spec.dim
    if spec.index_type in ("flat", "flat-fp16"):
        per_vector, fixed = spec.code_bytes + ID_BYTES, 0
    elif spec.index_type == "hnsw":
        m = spec.hnsw_m or HNSW_M
        links = 2 * m + m / (m - 1) * m if m > 1 else 2 * m  # level 0 plus the expected upper levels
        per_vector, fixed = 4 * d + ID_BYTES + links * HNSW_LINK_BYTES + 8, 0
    else:
        cells = spec.nlist or 1
        fixed = 4 * d * cells + (4 * d * 2 ** (spec.pq_nbits or PQ_NBITS) if spec.index_type == "ivf-pq" else 0)
        per_vector = spec.code_bytes + ID_BYTES
        if spec.on_disk:
            per_vector, fixed = 0, fixed + ONDISK_LIST_BYTES * cells
    return int(math.ceil((per_vector * n_vectors + fixed) * SEARCH_HEADROOM))


def estimate_disk_bytes(spec: IndexSpec, n_vectors: int) -> int:
    """Bytes of the ``.ivfdata`` file of an on-disk IVF spec (0 otherwise): codes and ids, no slack."""
    return (spec.code_bytes + ID_BYTES) * n_vectors if spec.on_disk else 0


def part_rows(spec: IndexSpec, budget_bytes: int, *, min_rows: int = MIN_PART_ROWS) -> int:
    """Rows of each in-RAM part that an on-disk build fills before merging it into the ``.ivfdata`` file.

    What the budget leaves after the resident part, over the bytes a vector takes in FAISS's
    growing in-RAM lists (PART_GROWTH x code and id); at least ``min_rows``.
    """
    free = budget_bytes - estimate_index_bytes(spec, 0)
    return int(max(min_rows, free // (PART_GROWTH * (spec.code_bytes + ID_BYTES))))


def choose_index_key(n_vectors: int, dim: int, budget_bytes: int) -> IndexSpec:
    """Pick the index for ``n_vectors`` vectors of ``dim`` within ``budget_bytes`` of RAM.

    Branches, in order (one test each):
      1. flat (exact) when n x d <= FLAT_MAX_SCAN_FLOATS (fast enough) and it fits the budget;
      2. hnsw when HNSW_AUTO_MIN_VECTORS <= n <= HNSW_AUTO_MAX_VECTORS (where it measured better
         than IVF: an empty band today, see bench_scale.py) and the graph fits;
      3. ivf-flat when it fits (exact similarities inside the nprobe visited cells);
      4. ivf-pq when n >= IVF_PQ_MIN_VECTORS and its codes fit;
      5. on disk: ivf-pq's lists (ivf-flat's below IVF_PQ_MIN_VECTORS) in a memory-mapped file,
         when what stays in RAM (centroids, codebooks, list directory) fits;
      6. otherwise ParameterError naming the smallest budget that would do.
    Returns the chosen IndexSpec with default parameters.
    """
    if n_vectors < 0 or dim <= 0 or budget_bytes <= 0:
        raise ParameterError(f"choose_index_key needs n >= 0, dim > 0, budget > 0; "
                             f"got {n_vectors}, {dim}, {budget_bytes}")
    candidates: list[tuple[str, bool]] = []
    if n_vectors * dim <= FLAT_MAX_SCAN_FLOATS:
        candidates.append(("flat", False))
    if HNSW_AUTO_MIN_VECTORS <= n_vectors <= HNSW_AUTO_MAX_VECTORS:
        candidates.append(("hnsw", False))
    candidates.append(("ivf-flat", False))
    pq_trainable = n_vectors >= IVF_PQ_MIN_VECTORS
    if pq_trainable:
        candidates.append(("ivf-pq", False))
    candidates.append(("ivf-pq" if pq_trainable else "ivf-flat", True))
    needs = []
    for index_type, on_disk in candidates:
        spec = make_spec(index_type, dim=dim, n_vectors=n_vectors, on_disk=on_disk)
        need = estimate_index_bytes(spec, n_vectors)
        if need <= budget_bytes:
            return spec
        needs.append(need)
    raise ParameterError(
        f"memory budget {budget_bytes:,} bytes is too small for {n_vectors:,} vectors of dimension {dim}: "
        f"the smallest suitable index needs about {min(needs):,} bytes; raise --memory-budget"
    )

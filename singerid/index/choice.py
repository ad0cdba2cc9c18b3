"""Which FAISS index to build: the index spec, its memory estimate, and the ``auto`` choice.

Pure arithmetic, no FAISS import (autofaiss's idea: estimate memory before spending it).
Every index is inner-product over L2-normalised block embeddings, wrapped in an id map whose
ids are the store's block ids. Sizes are in bytes; ``n_vectors`` counts reference blocks.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from singerid.config import IndexConfig
from singerid.errors import ParameterError

INDEX_TYPES = ("flat", "flat-fp16", "ivf-pq", "hnsw")

# --- thresholds of choose_index_key (ours; see scripts/bench_index.py for the measurements) ---
FLAT_MAX_VECTORS = 2_000_000  # exact search stays interactive up to here: bench_index.py measured 300-700
# query blocks/s against 1M x 32 on 2 busy cores, i.e. under 1 s for a 4-minute song at 1M, ~2 s at 2M
HNSW_MAX_VECTORS = 50_000_000  # beyond this an HNSW graph takes too long to build on a CPU
IVF_MIN_VECTORS = 10_000  # PQ needs about 39 x 256 training points for 8-bit codes

# --- defaults of the approximate types (ours, after FAISS's guidelines) ---
HNSW_M = 32  # graph links per node (FAISS's usual choice)
HNSW_EF_CONSTRUCTION = 40  # FAISS default
PQ_DIMS_PER_CODE = 2  # pq_m = dim / 2: 16 one-byte codes for d=32 (8x smaller than float32)
PQ_NBITS = 8  # 256 centroids per sub-quantiser
MIN_POINTS_PER_CENTROID = 39  # below this FAISS k-means warns; we pick sizes that avoid it
MAX_NLIST = 65_536

# --- per-vector and fixed overheads used by estimate_index_bytes ---
ID_BYTES = 8  # int64 id in the id map
IVF_ID_BYTES = 8  # int64 id kept in each inverted list
HNSW_LINK_BYTES = 4  # int32 neighbour id; level 0 holds 2 * M links, upper levels ~M / (M - 1) more
SEARCH_HEADROOM = 1.1  # 10 % for allocator slack and search buffers


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """Everything needed to rebuild one index: type, dimension and the type's parameters.

    Parameters that do not apply to ``index_type`` are None. ``nprobe`` (ivf-pq) and
    ``ef_search`` (hnsw) are search-time knobs and may be changed after building.
    """

    index_type: str  # one of INDEX_TYPES
    dim: int  # embedding size d
    nlist: int | None = None  # ivf-pq: inverted lists (coarse cells)
    pq_m: int | None = None  # ivf-pq: sub-quantisers (bytes per code at 8 bits)
    pq_nbits: int | None = None  # ivf-pq: bits per sub-quantiser code
    nprobe: int | None = None  # ivf-pq: cells visited per query
    hnsw_m: int | None = None  # hnsw: links per node
    ef_construction: int | None = None  # hnsw: build-time breadth
    ef_search: int | None = None  # hnsw: search-time breadth

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ParameterError(f"index type must be one of {', '.join(INDEX_TYPES)}, got {self.index_type!r}")
        if not isinstance(self.dim, int) or self.dim <= 0:
            raise ParameterError(f"index dimension must be a positive integer, got {self.dim!r}")
        needed = {"ivf-pq": ("nlist", "pq_m", "pq_nbits", "nprobe"),
                  "hnsw": ("hnsw_m", "ef_construction", "ef_search")}.get(self.index_type, ())
        for name in needed:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ParameterError(f"{self.index_type} needs a positive integer {name}, got {value!r}")
        if self.index_type == "ivf-pq":
            if self.dim % self.pq_m:  # type: ignore[operator]
                raise ParameterError(f"pq_m={self.pq_m} must divide the dimension {self.dim}")
            if not 1 <= self.pq_nbits <= 16:  # type: ignore[operator]
                raise ParameterError(f"pq_nbits must be in 1..16, got {self.pq_nbits}")

    @property
    def factory_key(self) -> str:
        """The FAISS ``index_factory`` string of the inner index, e.g. ``"IVF1024,PQ16x8"``."""
        if self.index_type == "flat":
            return "Flat"
        if self.index_type == "flat-fp16":
            return "SQfp16"
        if self.index_type == "ivf-pq":
            return f"IVF{self.nlist},PQ{self.pq_m}x{self.pq_nbits}"
        return f"HNSW{self.hnsw_m}"

    @property
    def is_exact(self) -> bool:
        return self.index_type == "flat"

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
    if n_vectors < MIN_POINTS_PER_CENTROID:
        return 1
    target = 2 ** round(math.log2(math.sqrt(n_vectors)))
    most = 2 ** int(math.log2(n_vectors // MIN_POINTS_PER_CENTROID))
    return int(max(1, min(target, most, MAX_NLIST)))


def choose_pq_nbits(n_vectors: int) -> int:
    """Bits per PQ code: 8, fewer when there are too few vectors to train 256 centroids."""
    if n_vectors >= MIN_POINTS_PER_CENTROID * 2**PQ_NBITS:
        return PQ_NBITS
    return int(max(1, min(PQ_NBITS, math.floor(math.log2(max(2, n_vectors // MIN_POINTS_PER_CENTROID))))))


def default_pq_m(dim: int) -> int:
    """Sub-quantisers for ``dim``: dim / 2 when that divides, else the largest divisor <= dim / 2."""
    target = max(1, dim // PQ_DIMS_PER_CODE)
    return next(m for m in range(target, 0, -1) if dim % m == 0)


def make_spec(index_type: str, *, dim: int, n_vectors: int, nlist: int | None = None, m: int | None = None,
              nprobe: int = 16, ef_search: int = 64) -> IndexSpec:
    """Fill in the parameters of a concrete ``index_type`` (not ``auto``) for ``n_vectors``.

    ``m`` is the PQ sub-quantiser count for ivf-pq and the link count for hnsw, as in IndexConfig.
    Raises ParameterError for an unknown type or parameters that do not fit.
    """
    if index_type == "ivf-pq":
        cells = nlist if nlist is not None else choose_nlist(n_vectors)
        return IndexSpec("ivf-pq", dim, nlist=cells, pq_m=m if m is not None else default_pq_m(dim),
                         pq_nbits=choose_pq_nbits(n_vectors), nprobe=min(nprobe, cells))
    if index_type == "hnsw":
        return IndexSpec("hnsw", dim, hnsw_m=m if m is not None else HNSW_M,
                         ef_construction=HNSW_EF_CONSTRUCTION, ef_search=ef_search)
    return IndexSpec(index_type, dim)


def spec_from_config(cfg: IndexConfig, *, n_vectors: int, dim: int) -> IndexSpec:
    """Resolve an IndexConfig (possibly ``auto``) into a concrete IndexSpec for ``n_vectors``."""
    if cfg.index_type == "auto":
        chosen = choose_index_key(n_vectors, dim, cfg.memory_budget_bytes)
        return make_spec(chosen.index_type, dim=dim, n_vectors=n_vectors, nlist=cfg.nlist, m=cfg.m,
                         nprobe=cfg.nprobe, ef_search=cfg.ef_search)
    return make_spec(cfg.index_type, dim=dim, n_vectors=n_vectors, nlist=cfg.nlist, m=cfg.m,
                     nprobe=cfg.nprobe, ef_search=cfg.ef_search)


def estimate_index_bytes(spec: IndexSpec, n_vectors: int) -> int:
    """Memory (bytes) the index of ``n_vectors`` needs in RAM, id map and search headroom included."""
    d = spec.dim
    if spec.index_type == "flat":
        per_vector, fixed = 4 * d + ID_BYTES, 0
    elif spec.index_type == "flat-fp16":
        per_vector, fixed = 2 * d + ID_BYTES, 0
    elif spec.index_type == "hnsw":
        m = spec.hnsw_m or HNSW_M
        links = 2 * m + m / (m - 1) * m if m > 1 else 2 * m  # level 0 plus the expected upper levels
        per_vector, fixed = 4 * d + ID_BYTES + links * HNSW_LINK_BYTES + 8, 0
    else:
        code_bytes = math.ceil((spec.pq_m or 1) * (spec.pq_nbits or PQ_NBITS) / 8)
        per_vector = code_bytes + IVF_ID_BYTES + ID_BYTES
        fixed = 4 * d * (spec.nlist or 1) + 4 * d * 2 ** (spec.pq_nbits or PQ_NBITS)
    return int(math.ceil((per_vector * n_vectors + fixed) * SEARCH_HEADROOM))


def choose_index_key(n_vectors: int, dim: int, budget_bytes: int) -> IndexSpec:
    """Pick the index for ``n_vectors`` vectors of ``dim`` within ``budget_bytes`` of RAM.

    Branches, in order (one test each):
      1. flat (exact) when n <= FLAT_MAX_VECTORS and it fits the budget;
      2. flat-fp16 (exact up to fp16 rounding, half the memory, but no BLAS: ~6x slower search than
         flat at 800k vectors in bench_index.py) when n <= FLAT_MAX_VECTORS and it fits;
      3. hnsw when FLAT_MAX_VECTORS < n <= HNSW_MAX_VECTORS and the graph fits;
      4. ivf-pq when n >= IVF_MIN_VECTORS and the codes fit;
      5. otherwise ParameterError naming the smallest budget that would do.
    Returns the chosen IndexSpec with default parameters.
    """
    if n_vectors < 0 or dim <= 0 or budget_bytes <= 0:
        raise ParameterError(f"choose_index_key needs n >= 0, dim > 0, budget > 0; "
                             f"got {n_vectors}, {dim}, {budget_bytes}")
    candidates: list[str] = []
    if n_vectors <= FLAT_MAX_VECTORS:
        candidates += ["flat", "flat-fp16"]
    elif n_vectors <= HNSW_MAX_VECTORS:
        candidates.append("hnsw")
    if n_vectors >= IVF_MIN_VECTORS:
        candidates.append("ivf-pq")
    needs = []
    for index_type in candidates:
        spec = make_spec(index_type, dim=dim, n_vectors=n_vectors)
        need = estimate_index_bytes(spec, n_vectors)
        if need <= budget_bytes:
            return spec
        needs.append(need)
    smallest = min(needs) if needs else estimate_index_bytes(IndexSpec("flat-fp16", dim), n_vectors)
    raise ParameterError(
        f"memory budget {budget_bytes:,} bytes is too small for {n_vectors:,} vectors of dimension {dim}: "
        f"the smallest suitable index needs about {smallest:,} bytes; raise --memory-budget"
    )

"""The embedding back end: centring, LDA and WCCN with singers as classes, before L2 normalisation.

The speaker-verification back end (Dehak et al., "Front-end factor analysis for speaker
verification", 2011: LDA then WCCN, then cosine scoring), fitted on the reference set (the
embeddings of the training blocks) and applied to reference and query blocks alike. LDA keeps
the directions along which singers differ most relative to how much each singer varies
(album, song, accompaniment), WCCN then scales the kept space so that the remaining
within-singer variation is the same in every direction. Numpy and scipy only; no torch, no FAISS.

Fitting, with x the embeddings, mu the mean, mu_c the class means, n the count:

    S_w = sum_c sum_{i in c} (x_i - mu_c)(x_i - mu_c)^T / n      within-class scatter (d, d)
    S_b = sum_c n_c (mu_c - mu)(mu_c - mu)^T / n                 between-class scatter (d, d)
    S_r = (1 - a) S_w + a tr(S_w)/d I                            shrunk towards a scaled identity
    S_b v = lambda S_r v                                         LDA: top ``dim`` eigenvectors V (d, dim)
    W = V^T S_w V = L L^T                                        within-class covariance in LDA space, Cholesky
    T = V L^{-T}                                                 so that T^T S_w T = I (WCCN)

and ``apply`` returns normalise((x - mu) T). scipy's ``eigh(S_b, S_r)`` scales V so that
V^T S_r V = I; WCCN whitens the unshrunk S_w on top, so within-singer scatter of the
reference set is exactly the identity. Cosine scores are unchanged by the rotation that
distinguishes L^{-T} from the symmetric inverse square root.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg

from singerid.errors import ArtefactError, ParameterError
from singerid.index.files import atomic_write_bytes

BACKEND_KINDS = ("none", "lda-wccn")
SHRINKAGE = 1e-2  # ours: 1 % of the mean within-class variance added to every direction of S_w
WCCN_RIDGE = 1e-6  # ours: relative ridge that keeps the Cholesky factorisation defined
FIT_CHUNK_BYTES = 256 * 1024**2  # ours: float64 rows per fitting chunk (1,048,576 rows at d=32)
FORMAT_VERSION = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: equal back ends give byte-equal files


@dataclass(frozen=True, slots=True, eq=False)
class Backend:
    """A fitted back end: ``apply(x) = normalise((x - mean) @ transform)``.

    mean: float32 (d,); transform: float32 (d, d_out); kind: one of BACKEND_KINDS ("none" has
    a zero mean and the identity, i.e. L2 normalisation only). Arrays are read-only.
    """

    mean: np.ndarray
    transform: np.ndarray
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in BACKEND_KINDS:
            raise ParameterError(f"back end kind must be one of {', '.join(BACKEND_KINDS)}, got {self.kind!r}")
        mean = np.array(self.mean, dtype=np.float32)
        transform = np.array(self.transform, dtype=np.float32, order="C")
        if mean.ndim != 1 or transform.ndim != 2 or transform.shape[0] != mean.shape[0] or 0 in transform.shape:
            raise ParameterError(f"back end needs mean (d,) and transform (d, d_out) with d, d_out >= 1, got "
                                 f"{mean.shape} and {transform.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(transform).all()):
            raise ParameterError("back end mean and transform must be finite")
        for arr in (mean, transform):
            arr.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "transform", transform)

    @property
    def dim_in(self) -> int:
        return int(self.mean.shape[0])

    @property
    def dim_out(self) -> int:
        """d_out: the dimension of the index built on ``apply``'s output."""
        return int(self.transform.shape[1])

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 (n, d) raw embeddings -> float32 (n, d_out), C-contiguous, L2-normalised.

        A row that maps to zero stays zero. Raises ParameterError for a wrong shape or
        non-finite values.
        """
        x = _check_embeddings(embeddings, dim=self.dim_in)
        y = (x.astype(np.float64) - self.mean) @ self.transform.astype(np.float64)  # (n, d_out)
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        return np.ascontiguousarray(y / np.maximum(norms, np.finfo(np.float64).tiny), dtype=np.float32)

    def to_bytes(self) -> bytes:
        """The .npz file content (deterministic: equal back ends give equal bytes)."""
        members = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64), "kind": np.array(self.kind),
                   "mean": self.mean, "transform": self.transform}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, arr in members.items():
                with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE), "w") as fh:
                    np.lib.format.write_array(fh, np.asarray(arr, order="C"), allow_pickle=False)
        return buffer.getvalue()

    def sha256(self) -> str:
        """Hex SHA-256 of ``to_bytes()``, i.e. of the file ``save`` writes."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def save(self, path: Path) -> str:
        """Write the back end to ``path`` (.npz, atomically); returns the file's hex SHA-256 to pin."""
        data = self.to_bytes()
        atomic_write_bytes(Path(path), data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(cls, path: Path, *, sha256: str | None = None) -> Backend:
        """Read a back end written by ``Backend.save``; with ``sha256``, check the file against it first.

        Raises ArtefactError for a missing, unreadable, malformed or mismatched file.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtefactError(f"cannot read back end {path}: {exc.strerror or exc}") from exc
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ArtefactError(f"{path}: SHA-256 {hashlib.sha256(data).hexdigest()[:12]}... does not match the pinned "
                                f"{sha256[:12]}...; refit the back end or rebuild the index")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                version, kind = int(npz["format_version"]), str(npz["kind"])
                mean, transform = npz["mean"], npz["transform"]
        except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as exc:
            raise ArtefactError(f"{path} is not a back end file: {exc}") from exc
        if version != FORMAT_VERSION:
            raise ArtefactError(f"{path}: back end format {version}, this singerid reads format {FORMAT_VERSION}")
        try:
            return cls(mean, transform, kind)
        except ParameterError as exc:
            raise ArtefactError(f"{path}: {exc}") from exc


def identity_backend(dim: int) -> Backend:
    """The "none" back end for d = ``dim``: L2 normalisation only."""
    if dim < 1:
        raise ParameterError(f"embedding dimension must be >= 1, got {dim}")
    return Backend(np.zeros(dim, np.float32), np.eye(dim, dtype=np.float32), "none")


def fit_backend(embeddings: np.ndarray, labels: np.ndarray, *, kind: str = "lda-wccn", dim: int | None = None,
                shrinkage: float = SHRINKAGE, chunk_rows: int | None = None) -> Backend:
    """Fit the back end on the reference set.

    embeddings: float32 (n, d) raw (not normalised) block embeddings; labels: int (n,) singer
    of each block. kind "none" returns ``identity_backend(d)``. dim: LDA output size, default
    and maximum min(d, n_classes - 1) (S_b has rank n_classes - 1 at most). shrinkage: a in
    [0, 1), weight of the scaled identity in the regularised S_w. Raises ParameterError (one
    line) for mismatched shapes, non-finite values, fewer than 2 classes, a bad dim, kind or
    shrinkage, or a zero within-class scatter (every class a single point). ``embeddings`` may
    be any (n, d) row source with slices (a memory map, singerid.index.rows.ShardRows): it is
    read twice in chunks of ``chunk_rows`` rows (default: FIT_CHUNK_BYTES of float64 each).
    """
    if kind not in BACKEND_KINDS:
        raise ParameterError(f"back end kind must be one of {', '.join(BACKEND_KINDS)}, got {kind!r}")
    if not hasattr(embeddings, "shape"):
        embeddings = np.asarray(embeddings)
    shape = tuple(embeddings.shape)
    if len(shape) != 2 or shape[0] == 0:
        raise ParameterError(f"embeddings must be (n, d) with n >= 1, got shape {shape}")
    n, d = shape
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ParameterError(f"labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}")
    chunk_rows = chunk_rows or max(1, FIT_CHUNK_BYTES // (8 * d))
    starts = range(0, n, chunk_rows)
    if kind == "none":
        for start in starts:
            _check_embeddings(embeddings[start:start + chunk_rows], dim=d)
        return identity_backend(d)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if classes.size < 2:
        raise ParameterError(f"LDA needs at least 2 singers in the reference set, got {classes.size}")
    max_dim = min(d, classes.size - 1)
    dim = max_dim if dim is None else dim
    if not 1 <= dim <= max_dim:
        raise ParameterError(f"LDA dim must be in [1, {max_dim}] (min(d, n_classes - 1)), got {dim}")
    if not 0.0 <= shrinkage < 1.0:
        raise ParameterError(f"shrinkage must be in [0, 1), got {shrinkage!r}")

    # Two passes over row chunks, so the n x d embeddings are never all in RAM (they may be a
    # ShardRows). With one chunk (n <= chunk_rows) every operation is the one-array formula's,
    # bit for bit; with more, the sums below only add in another order (float64, ~1e-16 relative).
    total = None
    class_means = np.zeros((classes.size, d))
    for start in starts:  # pass 1: the mean and the class means
        x = _check_embeddings(embeddings[start:start + chunk_rows], dim=d).astype(np.float64)  # (m, d)
        part = x.sum(axis=0)
        total = part if total is None else total + part
        np.add.at(class_means, inverse[start:start + len(x)], x)  # sequential: the same sums in any chunking
    mean = total / n  # (d,), as x.mean(axis=0)
    class_means /= counts[:, None]  # (n_classes, d)
    s_w = None
    for start in starts:  # pass 2: the within-class scatter
        x = np.asarray(embeddings[start:start + chunk_rows]).astype(np.float64)
        within = x - class_means[inverse[start:start + len(x)]]  # (m, d)
        part = within.T @ within
        s_w = part if s_w is None else s_w + part
    s_w = s_w / n  # (d, d)
    between = (class_means - mean) * np.sqrt(counts / n)[:, None]
    s_b = between.T @ between  # (d, d)
    scale = np.trace(s_w) / d
    if not scale > 0:
        raise ParameterError("within-singer scatter is zero (every singer a single point); LDA needs "
                             "several blocks per singer")
    s_r = (1.0 - shrinkage) * s_w + shrinkage * scale * np.eye(d)
    try:
        _, vectors = scipy.linalg.eigh(s_b, s_r)  # ascending eigenvalues, V^T S_r V = I
    except np.linalg.LinAlgError as exc:
        raise ParameterError(f"within-singer scatter is singular ({exc}); raise shrinkage above {shrinkage}") from exc
    lda = vectors[:, ::-1][:, :dim]  # (d, dim), most discriminant first
    wccn = lda.T @ s_w @ lda  # (dim, dim) within-class covariance in LDA space
    wccn += WCCN_RIDGE * np.trace(wccn) / dim * np.eye(dim)
    chol = scipy.linalg.cholesky(wccn, lower=True)  # W = L L^T
    transform = scipy.linalg.solve_triangular(chol, lda.T, lower=True).T  # (d, dim) = V L^{-T}
    return Backend(mean, transform, "lda-wccn")


def _check_embeddings(embeddings: np.ndarray, *, dim: int | None) -> np.ndarray:
    """The embeddings as an array, after checking shape (n, d) (n >= 1 when fitting) and finiteness."""
    x = np.asarray(embeddings)
    if x.ndim != 2 or (dim is None and x.shape[0] == 0) or (dim is not None and x.shape[1] != dim):
        want = f"(n, {dim})" if dim is not None else "(n, d) with n >= 1"
        raise ParameterError(f"embeddings must be {want}, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ParameterError(f"embeddings must be floating point, got dtype {x.dtype}")
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise ParameterError(f"embeddings contain {bad} non-finite value(s) (NaN or inf)")
    return x

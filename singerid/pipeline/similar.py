"""Similar singers and the timbre map, from singer centroids in the index's space.

How it is computed (ours, not the paper's): every indexed reference block is embedded by the
frozen embedder and projected by the index's back end (LDA/WCCN or none), exactly as the KNN
vote sees it. A singer's **centroid** is the L2-normalised mean of their blocks' unit vectors;
a song's centroid is the same over the song's blocks. Similarity between singers (or between a
song and a singer) is the cosine of their centroids, in [-1, 1]. The **timbre map** places the
centroids in 2-D by PCA of the centroids (so the axes are the directions in which singers
differ most); a song is placed with the same projection.

Vectors are read from the embedding shards in chunks, so memory stays bounded by the chunk
size and the number of singers, not by the number of blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from singerid.errors import DatasetError, ParameterError
from singerid.index.shards import ShardSet
from singerid.index.store_records import BlockLabels, BlockLocations

CHUNK_ROWS = 65_536  # blocks read from the shards at a time


@dataclass(frozen=True, slots=True)
class Centroids:
    """singers: names, sorted; vectors: float32 (n_singers, d), unit rows; n_blocks: int64 (n_singers,)."""

    singers: tuple[str, ...]
    vectors: np.ndarray
    n_blocks: np.ndarray

    def index_of(self, singer: str) -> int:
        try:
            return self.singers.index(singer)
        except ValueError:
            raise DatasetError(f"no singer {singer!r} in the index; `singerid info` lists the singers") from None


@dataclass(frozen=True, slots=True)
class SimilarSinger:
    """A singer and the cosine similarity of their centroid to the one asked about."""

    singer: str
    similarity: float
    n_blocks: int

    def to_dict(self) -> dict[str, object]:
        return {"singer": self.singer, "similarity": round(self.similarity, 4), "n_blocks": self.n_blocks}


@dataclass(frozen=True, slots=True)
class TimbreMap:
    """Singers on a plane: PCA of their centroids.

    mean: float32 (d,), axes: float32 (2, d); points: float32 (n_singers, 2) in ``singers`` order;
    explained: fraction of the centroids' variance along each axis.
    """

    singers: tuple[str, ...]
    mean: np.ndarray
    axes: np.ndarray
    points: np.ndarray
    explained: tuple[float, float]

    def place(self, vector: np.ndarray) -> tuple[float, float]:
        """(x, y) of a unit vector float32 (d,) (e.g. a song's centroid) on this map."""
        x, y = (np.asarray(vector, dtype=np.float32) - self.mean) @ self.axes.T
        return float(x), float(y)

    def to_dict(self) -> dict[str, object]:
        return {"method": "PCA of singer centroids", "explained_variance": [round(e, 4) for e in self.explained],
                "singers": [{"singer": s, "x": round(float(p[0]), 5), "y": round(float(p[1]), 5)}
                            for s, p in zip(self.singers, self.points)]}


def singer_centroids(labels: BlockLabels, locations: BlockLocations, shards: ShardSet,
                     project: Callable[[np.ndarray], np.ndarray]) -> Centroids:
    """Centroids of the blocks in ``locations`` (ids ascending, as ``labels``), in the projected space."""
    if len(locations) == 0:
        raise DatasetError("the index holds no blocks; embed songs and build the index first")
    if not np.array_equal(locations.ids, labels.ids):
        raise ParameterError("block locations and labels must list the same ids in the same order")
    n_singers = len(labels.singers)
    sums: np.ndarray | None = None
    counts = np.bincount(labels.singer_codes, minlength=n_singers).astype(np.int64)
    for lo in range(0, len(locations), CHUNK_ROWS):
        hi = lo + CHUNK_ROWS
        vectors = project(shards.gather(locations.shards[lo:hi], locations.rows[lo:hi]))  # (n, d) unit rows
        if sums is None:
            sums = np.zeros((n_singers, vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, labels.singer_codes[lo:hi], vectors)
    assert sums is not None
    return Centroids(labels.singers, _unit_rows(sums), counts)


def song_centroid(embeddings: np.ndarray) -> np.ndarray:
    """float32 (d,) unit vector: the normalised mean of float32 (n, d) unit rows."""
    return _unit_rows(np.asarray(embeddings, dtype=np.float64).sum(axis=0, keepdims=True))[0]


def similar_to_singer(centroids: Centroids, singer: str, *, top: int = 5) -> list[SimilarSinger]:
    """The ``top`` singers closest to ``singer`` (itself excluded), most similar first."""
    i = centroids.index_of(singer)
    sims = centroids.vectors @ centroids.vectors[i]  # (n_singers,)
    return _ranked(centroids, sims, top=top, exclude=i)


def similar_to_vector(centroids: Centroids, vector: np.ndarray, *, top: int = 5) -> list[SimilarSinger]:
    """The ``top`` singers whose centroids are closest to ``vector`` (a song's centroid)."""
    return _ranked(centroids, centroids.vectors @ np.asarray(vector, dtype=np.float32), top=top, exclude=None)


def timbre_map(centroids: Centroids) -> TimbreMap:
    """PCA of the singer centroids to 2-D (one singer: the origin; two: a line)."""
    x = centroids.vectors.astype(np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    axes = np.zeros((2, x.shape[1]), dtype=np.float64)
    axes[: min(2, vt.shape[0])] = vt[:2]
    variance = s**2
    total = float(variance.sum()) or 1.0
    explained = tuple(float(variance[i] / total) if i < variance.size else 0.0 for i in range(2))
    points = (x - mean) @ axes.T
    return TimbreMap(centroids.singers, mean.astype(np.float32), axes.astype(np.float32),
                     points.astype(np.float32), explained)  # type: ignore[arg-type]


def _ranked(centroids: Centroids, sims: np.ndarray, *, top: int, exclude: int | None) -> list[SimilarSinger]:
    if top < 0:
        raise ParameterError(f"top must be >= 0, got {top}")
    order = [int(i) for i in np.argsort(-sims, kind="stable") if int(i) != exclude]
    return [SimilarSinger(centroids.singers[i], float(sims[i]), int(centroids.n_blocks[i])) for i in order[:top]]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)

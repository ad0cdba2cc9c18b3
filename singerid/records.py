"""Frozen records that cross module boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True, slots=True)
class Track:
    """One song of a dataset, with its label and split.

    ``song_id`` is unique within the dataset and stable across runs (e.g. the artist20 list
    entry ``aerosmith/Aerosmith/01-Make_It``).
    """

    path: Path
    singer: str
    song_id: str
    split: Split
    album: str | None = None
    dataset: str = "folder"


@dataclass(frozen=True, slots=True)
class Evidence:
    """A reference song whose blocks were among the nearest neighbours of the query's blocks."""

    song: str  # song id (Track.song_id) of the reference song
    path: str
    singer: str
    album: str | None
    n_matches: int  # (query block, neighbour) pairs that point into this song
    best_similarity: float  # cosine similarity of the closest pair
    query_offset_seconds: float  # where in the query the closest pair starts
    reference_offset_seconds: float  # where in the reference song it starts


@dataclass(frozen=True, slots=True)
class SongDecision:
    """A song-level answer with the evidence behind it."""

    song: str
    singer: str  # predicted singer, or "unknown" when below the acceptance threshold (see ``known``)
    vote_share: float  # fraction of blocks that voted for ``singer``
    n_blocks: int
    runners_up: tuple[tuple[str, float], ...] = ()  # (singer, vote share), best first
    evidence: tuple[Evidence, ...] = ()  # reference songs of the winner nearest to the query
    mean_similarity: float = 0.0  # mean top-1 similarity of the query blocks
    method: str = "knn"  # "knn" (KNN-Net) or "softmax" (the classifier head)
    predicted: str = ""  # the best singer even when ``singer`` is "unknown"
    timings: dict = field(default_factory=dict)  # seconds per stage
    song_vector: Any = field(default=None, compare=False, repr=False)  # float32 (d,) unit: the song's centroid in index space
    known: bool = True  # False: rejected as an unknown singer (``singer`` is then "unknown", even if a singer has that name)

"""Frozen records that the metadata store takes and returns (no SQLAlchemy, no FAISS here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from singerid.errors import ParameterError
from singerid.records import SPLITS

SINGER_KINDS = ("trained", "enrolled")  # the model saw this singer in training / it was added later
MAX_NAME_CHARS = 255  # singers.name is VARCHAR(255)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class NewSong:
    """A song about to be stored (its blocks are passed beside it)."""

    path: str  # absolute path as read
    content_sha256: str  # SHA-256 of the file's bytes: reruns skip songs already stored
    singer: str
    song_key: str  # Track.song_id, unique within the dataset
    split: str  # train / val / test
    duration_seconds: float
    dataset: str = "folder"
    album: str | None = None
    singer_kind: str = "trained"  # one of SINGER_KINDS

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(str(self.content_sha256)):
            raise ParameterError(f"{self.path}: content_sha256 must be 64 lowercase hex digits, "
                                 f"got {self.content_sha256!r}")
        if self.split not in SPLITS:
            raise ParameterError(f"{self.path}: split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.singer_kind not in SINGER_KINDS:
            raise ParameterError(f"singer kind must be one of {', '.join(SINGER_KINDS)}, got {self.singer_kind!r}")
        if not self.singer or len(self.singer) > MAX_NAME_CHARS:
            raise ParameterError(f"{self.path}: singer name must have 1 to {MAX_NAME_CHARS} characters, "
                                 f"got {len(self.singer)}")
        if not self.duration_seconds >= 0:
            raise ParameterError(f"{self.path}: duration_seconds must be >= 0, got {self.duration_seconds!r}")


@dataclass(frozen=True, slots=True)
class SongRecord:
    """A stored song."""

    song_id: int
    path: str
    song_key: str
    singer: str
    singer_kind: str
    content_sha256: str
    duration_seconds: float
    dataset: str
    album: str | None
    split: str
    status: str
    n_blocks: int


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What a neighbour id stands for."""

    block_id: int  # = FAISS id
    song_id: int
    song_key: str
    song_path: str
    singer: str
    album: str | None
    offset_seconds: float  # start of the block within its song


@dataclass(frozen=True, slots=True)
class BlockLocations:
    """Where block embeddings live. ids int64 (n,) ascending; shards int32 (n,); rows int64 (n,)."""

    ids: np.ndarray
    shards: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True, slots=True)
class BlockLabels:
    """ids int64 (n,) ascending with singer codes int32 (n,) into ``singers`` (sorted names)
    and the store's song id int64 (n,) of each block (``None`` where not loaded)."""

    ids: np.ndarray
    singer_codes: np.ndarray
    singers: tuple[str, ...]
    song_ids: np.ndarray | None = None

    def singers_of(self, block_ids: np.ndarray) -> np.ndarray:
        """Singer codes int32 of ``block_ids`` (any shape); -1 for -1 or unknown ids."""
        ids = np.asarray(block_ids, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.ids, ids), 0, max(len(self.ids) - 1, 0))
        if len(self.ids) == 0:
            return np.full(ids.shape, -1, dtype=np.int32)
        hit = self.ids[pos] == ids
        return np.where(hit, self.singer_codes[pos], -1).astype(np.int32)


@dataclass(frozen=True, slots=True)
class SingerCount:
    name: str
    kind: str  # trained / enrolled
    n_songs: int
    n_blocks: int
    per_split: tuple[tuple[str, int, int], ...]  # (split, songs, blocks)


@dataclass(frozen=True, slots=True)
class StoreCounts:
    n_singers: int
    n_songs: int
    n_blocks: int
    singers: tuple[SingerCount, ...]  # by name

    def to_dict(self) -> dict[str, Any]:
        return {"n_singers": self.n_singers, "n_songs": self.n_songs, "n_blocks": self.n_blocks,
                "singers": [{"name": c.name, "kind": c.kind, "n_songs": c.n_songs, "n_blocks": c.n_blocks,
                             "splits": {split: {"n_songs": ns, "n_blocks": nb} for split, ns, nb in c.per_split}}
                            for c in self.singers]}


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One file that could not be embedded (one per path; the latest error)."""

    path: str
    stage: str
    error: str
    created_at: datetime  # first failure
    n_failures: int = 1  # attempts that failed
    size_bytes: int | None = None  # of the file at its latest failure
    mtime_ns: int | None = None
    updated_at: datetime | None = None  # latest failure


@dataclass(frozen=True, slots=True)
class IndexBuildRecord:
    """One row of the index-build history."""

    index_type: str
    params: dict[str, Any]
    n_vectors: int
    dim: int
    model_sha256: str
    file_name: str
    file_sha256: str
    ids_sha256: str
    created_at: datetime | None = None

"""What the public API returns: frozen records with ``to_dict()`` (JSON-ready, stable keys).

The CLI's ``--json``/``--format jsonl|csv`` and the web service print exactly these dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from singerid.pipeline.similar import SimilarSinger
from singerid.records import Evidence, SongDecision

CSV_FIELDS = ("song", "ok", "singer", "known", "predicted", "vote_share", "mean_similarity", "n_blocks", "method",
              "runner_up", "runner_up_share", "evidence_song", "evidence_singer", "evidence_similarity", "error")


@dataclass(frozen=True, slots=True)
class RunnerUp:
    singer: str
    vote_share: float  # fraction of the song's blocks that voted for this singer

    def to_dict(self) -> dict[str, Any]:
        return {"singer": self.singer, "vote_share": round(self.vote_share, 4)}


def evidence_dict(e: Evidence) -> dict[str, Any]:
    return {"song": e.song, "path": e.path, "singer": e.singer, "album": e.album, "n_matches": e.n_matches,
            "similarity": round(e.best_similarity, 4), "query_offset_s": round(e.query_offset_seconds, 2),
            "reference_offset_s": round(e.reference_offset_seconds, 2)}


@dataclass(frozen=True, slots=True)
class Identification:
    """Who sings one song, and why.

    ``singer`` is None when the song was rejected as an unknown singer (below the threshold);
    ``predicted`` is then still the closest singer. ``similarity`` is the mean top-1 cosine
    similarity of the song's blocks (knn) or their mean top probability (softmax).
    """

    song: str
    singer: str | None
    predicted: str
    vote_share: float
    n_blocks: int
    method: str  # "knn" (KNN-Net vote) or "softmax" (the classifier head)
    similarity: float
    runners_up: tuple[RunnerUp, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    similar_singers: tuple[SimilarSinger, ...] = ()  # by centroid cosine, when asked for
    map_point: tuple[float, float] | None = None  # the song on the timbre map, when asked for
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    ok = True

    @property
    def known(self) -> bool:
        return self.singer is not None

    @property
    def similarity_name(self) -> str:
        return "mean top probability" if self.method == "softmax" else "mean similarity"

    @classmethod
    def from_decision(cls, d: SongDecision, *, similar: tuple[SimilarSinger, ...] = (),
                      map_point: tuple[float, float] | None = None) -> Identification:
        return cls(song=d.song, singer=d.singer if d.known else None, predicted=d.predicted, vote_share=d.vote_share,
                   n_blocks=d.n_blocks, method=d.method, similarity=d.mean_similarity,
                   runners_up=tuple(RunnerUp(s, v) for s, v in d.runners_up), evidence=d.evidence,
                   similar_singers=similar, map_point=map_point, timings=dict(d.timings))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "song": self.song, "ok": True, "singer": self.singer, "known": self.known, "predicted": self.predicted,
            "vote_share": round(self.vote_share, 4), "n_blocks": self.n_blocks, "method": self.method,
            "similarity": round(self.similarity, 4), "similarity_kind": self.similarity_name,
            "runners_up": [r.to_dict() for r in self.runners_up],
            "evidence": [evidence_dict(e) for e in self.evidence],
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }
        if self.similar_singers:
            out["similar_singers"] = [s.to_dict() for s in self.similar_singers]
        if self.map_point is not None:
            out["map_point"] = {"x": round(self.map_point[0], 5), "y": round(self.map_point[1], 5)}
        return out

    def csv_row(self) -> dict[str, Any]:
        first = self.runners_up[0] if self.runners_up else None
        ev = self.evidence[0] if self.evidence else None
        return {"song": self.song, "ok": True, "singer": self.singer or "", "known": self.known,
                "predicted": self.predicted, "vote_share": round(self.vote_share, 4),
                "mean_similarity": round(self.similarity, 4), "n_blocks": self.n_blocks, "method": self.method,
                "runner_up": first.singer if first else "", "runner_up_share": round(first.vote_share, 4) if first else "",
                "evidence_song": ev.song if ev else "", "evidence_singer": ev.singer if ev else "",
                "evidence_similarity": round(ev.best_similarity, 4) if ev else "", "error": ""}


@dataclass(frozen=True, slots=True)
class Failure:
    """A song that could not be identified (or stored), and why, in one line."""

    song: str
    error: str
    kind: str = "AudioError"  # the SingeridError subclass

    ok = False

    def to_dict(self) -> dict[str, Any]:
        return {"song": self.song, "ok": False, "error": self.error, "error_kind": self.kind}

    def csv_row(self) -> dict[str, Any]:
        return {key: "" for key in CSV_FIELDS} | {"song": self.song, "ok": False, "error": self.error}


@dataclass(frozen=True, slots=True)
class SingerSummary:
    """A singer the home knows: trained (in the training data) or enrolled later."""

    name: str
    kind: str  # "trained" or "enrolled"
    n_songs: int
    n_blocks: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "n_songs": self.n_songs, "n_blocks": self.n_blocks}


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What enrol or remove changed."""

    action: str  # "enrol" or "remove"
    singer: str | None
    n_songs: int  # songs added or removed
    n_blocks: int
    n_skipped: int = 0  # already stored (same content)
    failures: tuple[Failure, ...] = ()
    index_vectors: int | None = None  # vectors in the index afterwards; None when the home has no index
    unknown_threshold: float | None = None  # the recalibrated unknown-singer threshold (None: not calibrated)
    songs: tuple[str, ...] = ()  # remove: the songs asked for

    def to_dict(self) -> dict[str, Any]:
        out = {"action": self.action, "singer": self.singer, "n_songs": self.n_songs, "n_blocks": self.n_blocks,
               "index_vectors": self.index_vectors, "unknown_threshold": self.unknown_threshold}
        if self.action == "enrol":
            out |= {"n_skipped": self.n_skipped, "failures": [f.to_dict() for f in self.failures]}
        else:
            out["songs"] = list(self.songs)
        return out


@dataclass(frozen=True, slots=True)
class HomeInfo:
    """What a home holds and whether its parts agree (``problems`` empty)."""

    home: str
    n_singers: int
    n_songs: int
    n_blocks: int
    problems: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)  # model, index, calibration, per-singer counts

    @property
    def consistent(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return self.details | {"home": self.home, "n_singers": self.n_singers, "n_songs": self.n_songs,
                               "n_blocks": self.n_blocks, "problems": list(self.problems)}

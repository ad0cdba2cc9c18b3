"""Typed records of an evaluation: the predictions the ``evaluate`` pipeline produces.

The pipeline fills these with plain predictions (true and predicted singer per test block
and per test song, for each dataset, seed and method); ``singerid.evaluation.metrics``
turns them into numbers and the ``report_*`` modules write them out. Nothing here imports
torch or faiss.

Hierarchy: ``EvaluationResults`` -> ``DatasetResult`` (one per dataset key) -> ``RunResult``
(one per method and seed) -> ``Predictions`` (one per level, block and song), and the run's
``SongDetails`` (which song each row is, and how sure the vote was: predictions.csv).
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from singerid.errors import ParameterError
from singerid.records import SPLITS

MethodKey = Literal["crnn", "attcrnn", "attcrnn-knn", "crnn-knn", "mfcc-logreg"]
# The ablation rows: our voice embedder with one lever flipped (recipes of singerid.embedder.recipes).
ABLATION_METHODS: tuple[str, ...] = ("voice-no-separation-knn", "voice-no-remix-knn", "voice-no-gain-tilt-knn",
                                     "voice-softmax-head-knn", "voice-no-backend-knn", "voice-with-adversary-knn")
# Report order: the paper's three Table-1 rows, then our extra rows, then the ablation rows.
DEFAULT_METHODS: tuple[str, ...] = ("crnn", "attcrnn", "attcrnn-knn", "crnn-knn", "voice", "voice-knn", "ge2e-knn",
                                    "mfcc-logreg", "voice-knn-clean", "mfcc-logreg-clean")  # without --ablation
METHODS: tuple[str, ...] = (*DEFAULT_METHODS, *ABLATION_METHODS)
KNN_METHODS: tuple[str, ...] = ("attcrnn-knn", "crnn-knn", "voice-knn", "ge2e-knn", "voice-knn-clean",
                                *ABLATION_METHODS)
SONG_ONLY_METHODS: tuple[str, ...] = ("mfcc-logreg", "mfcc-logreg-clean")  # one prediction per song, no blocks
K_VALUES: tuple[int, ...] = (1, 3, 5, 7, 11, 15, 21, 31, 51)  # issue 5: accuracy-vs-K grid
PAPER_DATASETS: tuple[str, ...] = ("artist20", "singer32", "singer60")  # Table-1 order
_DATASET_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _labels(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise ParameterError(f"{what} must be one-dimensional, got shape {arr.shape}")
    bad = [v for v in arr.tolist() if not isinstance(v, str) or not v]
    if bad:
        raise ParameterError(f"{what} must hold non-empty singer names, got {bad[0]!r}")
    return np.array([str(v) for v in arr.tolist()], dtype=object)  # plain str, not np.str_


@dataclass(frozen=True, slots=True, eq=False)
class Predictions:
    """True and predicted singer of every test item of one level (blocks or songs).

    ``y_true`` and ``y_pred``: object arrays of str, shape (n,), n >= 1, row i = item i.
    """

    y_true: np.ndarray
    y_pred: np.ndarray

    def __post_init__(self) -> None:
        y_true = _labels(self.y_true, "y_true")
        y_pred = _labels(self.y_pred, "y_pred")
        if y_true.shape != y_pred.shape:
            raise ParameterError(f"y_true has {y_true.size} items but y_pred has {y_pred.size}")
        if y_true.size == 0:
            raise ParameterError("predictions must hold at least one item, got 0")
        object.__setattr__(self, "y_true", y_true)
        object.__setattr__(self, "y_pred", y_pred)

    @property
    def n_items(self) -> int:
        return int(self.y_true.size)


@dataclass(frozen=True, slots=True, eq=False)
class SongDetails:
    """What predictions.csv says about each test song of one run; row i = row i of ``RunResult.song``.

    ``song_ids``, ``paths``: str (n,), the dataset's song id and audio file; ``albums``: str or
    None (n,). Per-song numbers, each float64 (n,) or None where the method has no such number:
    ``n_blocks`` (int64) blocks that voted; ``vote_share`` in [0, 1], the share of those blocks
    that named the predicted singer; ``similarity`` (KNN methods) the mean over the song's blocks
    of the cosine similarity to the nearest reference block (``singerid query``'s mean
    similarity); ``probability`` (softmax and MFCC methods) in [0, 1], the mean probability the
    classifier gave the predicted singer over the song's blocks (MFCC: over the whole song).
    """

    song_ids: tuple[str, ...]
    paths: tuple[str, ...]
    albums: tuple[str | None, ...]
    n_blocks: np.ndarray | None = None
    vote_share: np.ndarray | None = None
    similarity: np.ndarray | None = None
    probability: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.song_ids)
        for name in ("song_ids", "paths", "albums"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            if len(getattr(self, name)) != n:
                raise ParameterError(f"song details: {n} song ids but {len(getattr(self, name))} {name}")
        for name, dtype, bounds in (("n_blocks", np.int64, (1, None)), ("vote_share", np.float64, (0.0, 1.0)),
                                    ("similarity", np.float64, (None, None)), ("probability", np.float64, (0.0, 1.0))):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.asarray(value, dtype=dtype)
            lo, hi = bounds
            ok = arr.shape == (n,) and np.isfinite(arr).all()
            ok = ok and (lo is None or (arr >= lo).all()) and (hi is None or (arr <= hi + 1e-9).all())
            if not ok:
                rule = "" if lo is None else f" >= {lo}" if hi is None else f" in [{lo}, {hi}]"
                raise ParameterError(f"song details: {name} must be {n} finite values{rule}, "
                                     f"got {arr.ravel().tolist()[:5]}")
            object.__setattr__(self, name, arr)

    @property
    def n_songs(self) -> int:
        return len(self.song_ids)


@dataclass(frozen=True, slots=True)
class KAccuracy:
    """Accuracy of a KNN method when each block takes its ``k`` nearest reference blocks."""

    k: int
    song_accuracy: float  # fraction of test songs right, in [0, 1]
    block_accuracy: float  # fraction of test blocks right, in [0, 1]

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", _int(self.k, "k"))
        if self.k < 1:
            raise ParameterError(f"k must be a positive integer, got {self.k!r}")
        for name in ("song_accuracy", "block_accuracy"):
            value = _real(getattr(self, name))
            if value is None or not 0.0 <= value <= 1.0:
                raise ParameterError(f"{name} at k={self.k} must be a number in [0, 1], got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True, eq=False)
class RunResult:
    """What one method predicted on the test split of one dataset for one seed.

    ``block`` is None for methods that see whole songs only (``mfcc-logreg``); every other
    method must give it. ``accuracy_vs_k`` is given only for KNN methods (may be empty).
    ``songs``: which song each row of ``song`` is (predictions.csv); None when not known.
    """

    method: str
    seed: int
    song: Predictions
    block: Predictions | None
    accuracy_vs_k: tuple[KAccuracy, ...] = ()
    songs: SongDetails | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ParameterError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        object.__setattr__(self, "seed", _int(self.seed, "seed"))
        if self.method in SONG_ONLY_METHODS and self.block is not None:
            raise ParameterError(f"method {self.method!r} has no block level; pass block=None")
        if self.method not in SONG_ONLY_METHODS and self.block is None:
            raise ParameterError(f"method {self.method!r} needs block-level predictions, got None")
        object.__setattr__(self, "accuracy_vs_k", tuple(self.accuracy_vs_k))
        if self.accuracy_vs_k and self.method not in KNN_METHODS:
            raise ParameterError(f"accuracy_vs_k is only for KNN methods, got it for {self.method!r}")
        ks = [p.k for p in self.accuracy_vs_k]
        if ks != sorted(set(ks)):
            raise ParameterError(f"accuracy_vs_k must have increasing, distinct k, got {ks}")
        if self.songs is not None and self.songs.n_songs != self.song.n_items:
            raise ParameterError(f"{self.method}: {self.songs.n_songs} song details for {self.song.n_items} songs")


@dataclass(frozen=True, slots=True)
class SplitCount:
    """Size of one split of a dataset for one seed."""

    seed: int
    split: str  # "train" | "val" | "test"
    n_songs: int
    n_blocks: int  # 1-s blocks (32 frames); 0 when not computed (e.g. val not embedded)

    def __post_init__(self) -> None:
        for name in ("seed", "n_songs", "n_blocks"):
            object.__setattr__(self, name, _int(getattr(self, name), name))
        if self.split not in SPLITS:
            raise ParameterError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.n_songs < 0 or self.n_blocks < 0:
            raise ParameterError(f"counts must be >= 0, got songs={self.n_songs} blocks={self.n_blocks}")


@dataclass(frozen=True, slots=True)
class StageTiming:
    """Wall-clock time of one stage (e.g. "train attcrnn", "embed train", "search").

    ``reused``: the stage's work was done by an earlier run and reused here (a trained model);
    ``seconds`` is then that run's time (model.json), not time spent now.
    """

    stage: str
    seconds: float
    seed: int | None = None  # None for stages shared by all seeds (e.g. "scan")
    reused: bool = False

    def __post_init__(self) -> None:
        if not self.stage:
            raise ParameterError("stage name must not be empty")
        if self.seed is not None:
            object.__setattr__(self, "seed", _int(self.seed, f"stage {self.stage!r}: seed"))
        seconds = _real(self.seconds)
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            raise ParameterError(f"stage {self.stage!r}: seconds must be finite and >= 0, got {self.seconds!r}")
        object.__setattr__(self, "seconds", seconds)


@dataclass(frozen=True, slots=True, eq=False)
class DatasetResult:
    """Everything evaluated on one dataset, or the error that stopped it.

    ``error`` is None when every run completed. A dataset that failed keeps the runs that
    finished before the failure (possibly none) and the one-line error, so the report can
    show both. ``singers`` is the full label list (order used in tables and confusion
    matrices); every true and predicted label must be in it.
    """

    key: str  # "artist20", "singer32", "singer60", "synthetic", ...
    split_rule: str  # e.g. "album split 4/1/1 per artist (paper §3.1)"
    seeds: tuple[int, ...]
    singers: tuple[str, ...] = ()
    runs: tuple[RunResult, ...] = ()
    counts: tuple[SplitCount, ...] = ()
    timings: tuple[StageTiming, ...] = ()
    error: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _DATASET_KEY.match(self.key):
            raise ParameterError(f"dataset key must be lower-case letters, digits, '-', '_', '.', got {self.key!r}")
        for name in ("seeds", "singers", "runs", "counts", "timings"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "seeds", tuple(_int(s, f"{self.key}: seed") for s in self.seeds))
        object.__setattr__(self, "singers", tuple(_labels(self.singers, f"{self.key}: singers").tolist()))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ParameterError(f"{self.key}: seeds must be non-empty and distinct, got {list(self.seeds)}")
        if len(set(self.singers)) != len(self.singers):
            raise ParameterError(f"{self.key}: singer list has duplicates")
        if self.error is not None and (not isinstance(self.error, str) or not self.error.strip()):
            raise ParameterError(f"{self.key}: error must be a non-empty message or None, got {self.error!r}")
        if self.error is None and not self.runs:
            raise ParameterError(f"{self.key}: no runs and no error; record why the dataset has no results")
        if self.runs and not self.singers:
            raise ParameterError(f"{self.key}: runs given without the singer list")
        for count in self.counts:
            if count.seed not in self.seeds:
                raise ParameterError(f"{self.key}: counts for seed {count.seed}, not in seeds {list(self.seeds)}")
        for timing in self.timings:
            if timing.seed is not None and timing.seed not in self.seeds:
                raise ParameterError(f"{self.key}: stage {timing.stage!r} has seed {timing.seed}, not in seeds {list(self.seeds)}")
        seen: set[tuple[str, int]] = set()
        known = set(self.singers)
        for run in self.runs:
            if run.seed not in self.seeds:
                raise ParameterError(f"{self.key}: run {run.method!r} has seed {run.seed}, not in seeds {list(self.seeds)}")
            if (run.method, run.seed) in seen:
                raise ParameterError(f"{self.key}: two runs of {run.method!r} with seed {run.seed}")
            seen.add((run.method, run.seed))
            for level in (run.song, run.block):
                if level is None:
                    continue
                unknown = sorted((set(level.y_true.tolist()) | set(level.y_pred.tolist())) - known)
                if unknown:
                    raise ParameterError(f"{self.key}/{run.method}: label {unknown[0]!r} is not in the singer list")

    @property
    def methods(self) -> tuple[str, ...]:
        """Methods with at least one run, in report order."""
        present = {run.method for run in self.runs}
        return tuple(m for m in METHODS if m in present)

    def runs_of(self, method: str) -> tuple[RunResult, ...]:
        """Runs of ``method``, in the order of ``seeds``."""
        order = {seed: i for i, seed in enumerate(self.seeds)}
        return tuple(sorted((r for r in self.runs if r.method == method), key=lambda r: order[r.seed]))


@dataclass(frozen=True, slots=True, eq=False)
class EvaluationResults:
    """A whole evaluation: every dataset, the configuration used and when it ran.

    ``config``: plain JSON-able mapping (e.g. ``{"feature": FeatureConfig().to_dict(), ...}``).
    """

    datasets: tuple[DatasetResult, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    generated_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", tuple(self.datasets))
        keys = [d.key for d in self.datasets]
        if not keys:
            raise ParameterError("an evaluation needs at least one dataset")
        if len(set(keys)) != len(keys):
            raise ParameterError(f"dataset keys must be distinct, got {keys}")

    def dataset(self, key: str) -> DatasetResult | None:
        return next((d for d in self.datasets if d.key == key), None)


@dataclass(frozen=True, slots=True, eq=False)
class TimbreSample:
    """Block embeddings of one dataset for the 2-D timbre map (the paper's Figure 2).

    ``embeddings``: float32 (n, d), one row per block; ``singers``: str (n,), its singer.
    The map subsamples to at most ``max_points`` rows (seeded, spread evenly over singers).
    ``split``: which blocks these are ("test": blocks of the test songs, as ``evaluate`` gives);
    ``n_songs``: how many songs they come from (None when not known).
    """

    dataset: str
    embeddings: np.ndarray
    singers: Sequence[str]
    method: str = "attcrnn"  # embedder that produced the vectors
    seed: int = 0
    max_points: int = 3000
    split: str = "test"
    n_songs: int | None = None

    def __post_init__(self) -> None:
        emb = np.asarray(self.embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] < 3 or emb.shape[1] < 2:
            raise ParameterError(f"timbre embeddings must be (n >= 3, d >= 2), got shape {emb.shape}")
        if not np.isfinite(emb).all():
            raise ParameterError("timbre embeddings contain NaN or infinite values")
        singers = _labels(self.singers, "timbre singers")
        if singers.size != emb.shape[0]:
            raise ParameterError(f"{emb.shape[0]} timbre embeddings but {singers.size} singer labels")
        if self.max_points < 3:
            raise ParameterError(f"max_points must be >= 3, got {self.max_points}")
        object.__setattr__(self, "embeddings", emb)
        object.__setattr__(self, "singers", singers)


def _int(value: Any, what: str) -> int:
    """``value`` as a Python int (numpy integers too); ParameterError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _real(value: Any) -> float | None:
    """``value`` as a Python float when it is a real number (numpy scalars too), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)

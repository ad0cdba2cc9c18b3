"""Song-level MFCC-statistics + logistic-regression singer baseline.

The classic "how hard is this corpus" yardstick: each song becomes the mean and standard
deviation of 20 MFCCs and their deltas over the whole song (80 numbers); a StandardScaler +
multinomial LogisticRegression is fitted on the train songs and predicts the test songs.
Used by ``scripts/corpus_baseline.py`` and by ``evaluate``'s ``mfcc-logreg`` row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from singerid import constants as C
from singerid.audio import load_audio
from singerid.errors import DatasetError, ParameterError
from singerid.progress import Progress, ProgressArg
from singerid.records import Track

log = logging.getLogger(__name__)

N_MFCC = 20  # ours: the usual MFCC count of song-level timbre baselines
FEATURE_DIM = 4 * N_MFCC  # mean and std of the MFCCs and of their deltas
REGULARISATION_C = 1.0  # scikit-learn's default inverse regularisation strength
MAX_ITER = 5000  # lbfgs iterations; enough to converge on standardised features


@dataclass(frozen=True, slots=True)
class SongPrediction:
    """The baseline's answer for one song."""

    song_id: str
    singer: str  # true singer
    predicted: str  # predicted singer
    probability: float  # the classifier's probability of ``predicted``, in [0, 1]

    @property
    def correct(self) -> bool:
        return self.singer == self.predicted


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """Song accuracy of the baseline on one split, with chance level beside it."""

    accuracy: float  # fraction of test songs whose singer is predicted right, in [0, 1]
    chance: float  # accuracy of always answering the most common test singer
    n_train: int  # train songs
    n_test: int  # test songs
    n_singers: int  # singers seen in training
    predictions: tuple[SongPrediction, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "chance": self.chance, "n_train": self.n_train,
                "n_test": self.n_test, "n_singers": self.n_singers,
                "predictions": [{"song_id": p.song_id, "singer": p.singer, "predicted": p.predicted,
                                 "probability": p.probability} for p in self.predictions]}


def song_features(path: str, *, sample_rate: int = C.SAMPLE_RATE_HZ, n_mfcc: int = N_MFCC) -> np.ndarray:
    """MFCC statistics of one song: float32 (4 * n_mfcc,) = [mean, std] of [MFCC, delta].

    librosa's MFCC (n_fft 2048, hop 512) on the decoded mono signal. Raises AudioError for
    audio that cannot be used (see ``singerid.audio.load_audio``).
    """
    import librosa

    y = load_audio(path, sample_rate=sample_rate)
    mfcc = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=n_mfcc, n_fft=C.N_FFT_SAMPLES,
                                hop_length=C.HOP_SAMPLES)  # (n_mfcc, frames)
    delta = librosa.feature.delta(mfcc, width=9, mode="nearest")  # librosa's default width
    stats = [mfcc.mean(axis=1), mfcc.std(axis=1), delta.mean(axis=1), delta.std(axis=1)]
    return np.concatenate(stats).astype(np.float32)


def track_features(tracks: Sequence[Track], *, sample_rate: int = C.SAMPLE_RATE_HZ, workers: int = 1,
                   progress: ProgressArg = False) -> np.ndarray:
    """``song_features`` of every track, in order: float32 (n_tracks, FEATURE_DIM).

    ``workers``: processes. ``progress``: a ``singerid.progress`` mode (or the old bool).
    """
    if not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a positive integer, got {workers!r}")
    paths = [str(t.path) for t in tracks]
    rows: list[np.ndarray] = []
    with Progress("mfcc features", total=len(paths), unit="song", progress=progress) as bar:
        if workers == 1 or len(paths) < 2:
            for path in paths:
                rows.append(song_features(path, sample_rate=sample_rate))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for row in pool.map(_features_of, [(p, sample_rate) for p in paths], chunksize=4):
                    rows.append(row)
                    bar.update()
    return np.stack(rows) if rows else np.zeros((0, FEATURE_DIM), np.float32)


class MfccLogReg:
    """StandardScaler + LogisticRegression on song MFCC statistics.

    ``fit(tracks)`` learns from labelled tracks; ``predict(tracks)`` answers per song. The
    ``*_features`` variants take precomputed ``track_features`` rows.
    """

    def __init__(self, *, seed: int = 0, sample_rate: int = C.SAMPLE_RATE_HZ, workers: int = 1,
                 progress: ProgressArg = False) -> None:
        self.seed = seed
        self.sample_rate = sample_rate
        self.workers = workers
        self.progress = progress
        self._model = None

    @property
    def singers(self) -> tuple[str, ...]:
        """Singers the model can answer, sorted. Empty before ``fit``."""
        return tuple(self._model.classes_) if self._model is not None else ()

    def fit(self, tracks: Sequence[Track]) -> MfccLogReg:
        """Fit on ``tracks`` (their ``singer`` is the label). Raises DatasetError for < 2 singers."""
        return self.fit_features(self._features(tracks), [t.singer for t in tracks])

    def fit_features(self, features: np.ndarray, singers: Sequence[str]) -> MfccLogReg:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if len(set(singers)) < 2:
            raise DatasetError(f"the baseline needs songs of at least 2 singers to fit, got {sorted(set(singers))}")
        if features.shape != (len(singers), FEATURE_DIM):
            raise ParameterError(f"features must be ({len(singers)}, {FEATURE_DIM}), got {features.shape}")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=REGULARISATION_C, max_iter=MAX_ITER,
                                                                   random_state=self.seed))
        self._model = model.fit(features, np.asarray(singers))
        return self

    def predict(self, tracks: Sequence[Track]) -> tuple[SongPrediction, ...]:
        """Predict the singer of every track, in order. Raises ParameterError before ``fit``."""
        return self.predict_features(self._features(tracks), tracks)

    def predict_features(self, features: np.ndarray, tracks: Sequence[Track]) -> tuple[SongPrediction, ...]:
        if self._model is None:
            raise ParameterError("MfccLogReg.predict called before fit")
        if len(tracks) == 0:
            return ()
        proba = self._model.predict_proba(features)  # (n_tracks, n_singers)
        best = proba.argmax(axis=1)
        classes = self._model.classes_
        return tuple(SongPrediction(song_id=t.song_id, singer=t.singer, predicted=str(classes[b]),
                                    probability=float(proba[i, b])) for i, (t, b) in enumerate(zip(tracks, best)))

    def _features(self, tracks: Sequence[Track]) -> np.ndarray:
        return track_features(tracks, sample_rate=self.sample_rate, workers=self.workers, progress=self.progress)


def evaluate_baseline(tracks: Sequence[Track], *, train_split: str = "train", test_split: str = "test",
                      seed: int = 0, workers: int = 1, progress: ProgressArg = False) -> BaselineResult:
    """Fit on the ``train_split`` tracks, predict the ``test_split`` tracks, score song accuracy.

    Raises DatasetError if either split has no tracks or training sees fewer than 2 singers.
    """
    train = [t for t in tracks if t.split == train_split]
    test = [t for t in tracks if t.split == test_split]
    for name, part in ((train_split, train), (test_split, test)):
        if not part:
            raise DatasetError(f"no tracks in split {name!r} (of {len(tracks)} tracks)")
    features = track_features(train + test, workers=workers, progress=progress)
    model = MfccLogReg(seed=seed).fit_features(features[: len(train)], [t.singer for t in train])
    predictions = model.predict_features(features[len(train):], test)
    accuracy = float(np.mean([p.correct for p in predictions]))
    _, counts = np.unique([t.singer for t in test], return_counts=True)
    result = BaselineResult(accuracy=accuracy, chance=float(counts.max() / len(test)), n_train=len(train),
                            n_test=len(test), n_singers=len(model.singers), predictions=predictions)
    log.info("mfcc-logreg: %d/%d test songs right (%.1f %%, chance %.1f %%)", sum(p.correct for p in predictions),
             len(test), 100 * accuracy, 100 * result.chance)
    return result


def _features_of(args: tuple[str, int]) -> np.ndarray:
    path, sample_rate = args
    return song_features(path, sample_rate=sample_rate)

"""``evaluate``'s ``mfcc-logreg`` row: the song-level MFCC-statistics + logistic-regression
baseline (``singerid.baseline``) on the same split, with its song features cached.

The baseline decodes every song again (librosa MFCCs, not the log-mel cache), which on a
real dataset costs more than a whole embedding pass; its 80 numbers per song are therefore
kept at ``CACHE/mfcc-<n_mfcc>-<sample_rate>/<content sha256>.npy`` so that a second seed or
a rerun decodes nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from singerid import baseline
from singerid.embedder.cache import content_sha256
from singerid.errors import AudioError, DatasetError
from singerid.evaluation import Predictions, RunResult, SongDetails
from singerid.records import Track

log = logging.getLogger(__name__)


def mfcc_run(seed: int, train: Sequence[Track], test: Sequence[Track], *, cache_dir: Path,
             sample_rate: int, workers: int = 1, progress: bool = False, method: str = "mfcc-logreg") -> RunResult:
    """Fit the baseline on ``train`` songs, predict ``test`` songs; a song-level-only RunResult.

    Songs whose audio cannot be used are logged and left out. Raises DatasetError when no
    test song is left or training sees fewer than 2 singers.
    """
    features = song_features(list(train) + list(test), cache_dir=cache_dir, sample_rate=sample_rate,
                             workers=workers, progress=progress)
    fit = [(t, features[t.path]) for t in train if t.path in features]
    ask = [(t, features[t.path]) for t in test if t.path in features]
    if not ask:
        raise DatasetError(f"mfcc-logreg: none of the {len(test)} test songs could be read")
    model = baseline.MfccLogReg(seed=seed, sample_rate=sample_rate)
    model.fit_features(np.stack([f for _, f in fit]), [t.singer for t, _ in fit])
    asked = [t for t, _ in ask]
    answers = model.predict_features(np.stack([f for _, f in ask]), asked)
    songs = SongDetails(song_ids=tuple(t.song_id for t in asked), paths=tuple(str(t.path) for t in asked),
                        albums=tuple(t.album for t in asked), probability=np.array([a.probability for a in answers]))
    return RunResult(method, seed, block=None, songs=songs,
                     song=Predictions(y_true=np.array([a.singer for a in answers], dtype=object),
                                      y_pred=np.array([a.predicted for a in answers], dtype=object)))


def song_features(tracks: Sequence[Track], *, cache_dir: Path, sample_rate: int, workers: int = 1,
                  progress: bool = False) -> dict[Path, np.ndarray]:
    """{track path: float32 (baseline.FEATURE_DIM,)} for every readable track, cached on disk."""
    folder = Path(cache_dir) / f"mfcc-{baseline.N_MFCC}-{sample_rate}"
    out: dict[Path, np.ndarray] = {}
    missing: list[tuple[Track, Path]] = []
    for t in tracks:
        try:
            entry = folder / f"{content_sha256(t.path)}.npy"
        except OSError as exc:
            log.warning("mfcc-logreg: skipping %s: %s", t.path, exc.strerror or exc)
            continue
        if entry.is_file():
            out[t.path] = np.load(entry)
        else:
            missing.append((t, entry))
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        computed = _compute(missing, sample_rate=sample_rate, workers=workers, progress=progress)
        for (t, entry), row in zip(missing, computed):
            if row is None:
                continue
            tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, row)
            os.replace(tmp, entry)
            out[t.path] = row
    log.info("mfcc-logreg: features of %d songs (%d computed)", len(out), len(missing))
    return out


def _compute(items: list[tuple[Track, Path]], *, sample_rate: int, workers: int,
             progress: bool) -> list[np.ndarray | None]:
    """Features of ``items`` (all at once, in parallel); one bad file falls back to one by one."""
    tracks = [t for t, _ in items]
    try:
        rows = baseline.track_features(tracks, sample_rate=sample_rate, workers=workers, progress=progress)
        return list(rows)
    except AudioError:
        pass
    out: list[np.ndarray | None] = []
    for t in tracks:
        try:
            out.append(baseline.song_features(str(t.path), sample_rate=sample_rate))
        except AudioError as exc:
            log.warning("mfcc-logreg: skipping %s", exc)
            out.append(None)
    return out

"""Calibrate the "unknown singer" answer from the reference set alone.

For a sample of reference songs, each song's blocks are matched against every OTHER reference
block twice: once excluding only the song itself (as a new song of a known singer would be:
"genuine") and once excluding every block of its singer (as a singer the database has never
heard: "impostor"). A song's score is the mean over its blocks of the top-1 cosine similarity
- the same statistic ``singerid query`` reports as ``mean_similarity``. The threshold is where
the false-reject rate of genuine songs equals the false-accept rate of impostors (the equal
error rate). Exact, blockwise numpy: no query x reference matrix is held whole.

build-index writes the threshold beside its index (``HOME/index/<index>.calibration.json``, named
and hashed by the manifest, so a reader gets the threshold of the index it opened) and copies it
to HOME/calibration.json for people; every write that changes the index computes it again
(``singerid.pipeline.index_sync``), so ``query --reject-unknown`` always uses a threshold that
matches the reference set it searches.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from singerid.errors import ArtefactError
from singerid.evaluation.metrics import equal_error_threshold
from singerid.index.files import atomic_write_bytes, sha256_file
from singerid.index.home import CALIBRATION_SUFFIX, Home, IndexEntry

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
MAX_SONGS = 300  # ours: songs sampled for calibration
MAX_BLOCKS_PER_SONG = 30  # ours: blocks sampled per song
REFERENCE_CHUNK = 65_536  # reference rows per matrix product


@dataclass(frozen=True, slots=True)
class Calibration:
    """Threshold on a song's mean top-1 similarity below which the answer is "unknown"."""

    min_similarity: float
    equal_error_rate: float  # false rejects (known singers) = false accepts (unknown singers) at the threshold
    n_songs: int
    model_sha256: str
    genuine_median: float
    impostor_median: float
    backend_sha256: str | None = None  # the back end whose space the similarities are in (None: raw cosine)


def calibrate(vectors: np.ndarray, song_codes: np.ndarray, singer_codes: np.ndarray, *, model_sha256: str,
              seed: int = 0, backend_sha256: str | None = None) -> Calibration | None:
    """Compute the threshold from reference embeddings float32 (n, d) with their song and singer codes.

    Returns None when there are fewer than 2 singers or 4 songs (nothing to calibrate against).
    """
    songs = np.unique(song_codes)
    if len(np.unique(singer_codes)) < 2 or len(songs) < 4:
        return None
    rng = np.random.default_rng(seed)
    picked = rng.choice(songs, size=min(MAX_SONGS, len(songs)), replace=False)
    rows, q_song, q_singer = [], [], []
    for song in picked:
        idx = np.flatnonzero(song_codes == song)
        idx = rng.choice(idx, size=min(MAX_BLOCKS_PER_SONG, len(idx)), replace=False)
        rows.append(idx)
        q_song.append(np.full(len(idx), song))
        q_singer.append(singer_codes[idx])
    rows_all = np.concatenate(rows)
    queries = vectors[rows_all]
    qs, qsi = np.concatenate(q_song), np.concatenate(q_singer)
    genuine_top = np.full(len(queries), -np.inf, dtype=np.float32)
    impostor_top = np.full(len(queries), -np.inf, dtype=np.float32)
    for start in range(0, len(vectors), REFERENCE_CHUNK):
        ref = np.asarray(vectors[start:start + REFERENCE_CHUNK])
        sims = queries @ ref.T  # (q, chunk)
        other_song = song_codes[start:start + len(ref)][None, :] != qs[:, None]
        other_singer = singer_codes[start:start + len(ref)][None, :] != qsi[:, None]
        genuine_top = np.maximum(genuine_top, np.where(other_song, sims, -np.inf).max(axis=1))
        impostor_top = np.maximum(impostor_top, np.where(other_singer, sims, -np.inf).max(axis=1))
    bounds = np.cumsum([0] + [len(r) for r in rows])
    genuine = np.array([genuine_top[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    impostor = np.array([impostor_top[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    ok = np.isfinite(genuine) & np.isfinite(impostor)
    genuine, impostor = genuine[ok], impostor[ok]
    if len(genuine) < 2:
        return None
    threshold, eer = equal_error_threshold(genuine, impostor)
    log.info("unknown-singer threshold %.4f (EER %.1f%% over %d songs)", threshold, 100 * eer, len(genuine))
    return Calibration(min_similarity=float(threshold), equal_error_rate=float(eer), n_songs=int(len(genuine)),
                       model_sha256=model_sha256, genuine_median=float(np.median(genuine)),
                       impostor_median=float(np.median(impostor)), backend_sha256=backend_sha256)


def save_calibration(home_root: Path, calibration: Calibration | None, *, name: str = CALIBRATION_FILE) -> None:
    """Write (or, for None, delete) ``home_root/name`` atomically."""
    path = Path(home_root) / name
    if calibration is None:
        path.unlink(missing_ok=True)
        return
    atomic_write_bytes(path, (json.dumps(asdict(calibration), indent=2) + "\n").encode())


def save_index_calibration(home: Home, index_path: Path, calibration: Calibration | None
                           ) -> tuple[str | None, str | None]:
    """Write the threshold of the index at ``index_path`` beside it: (file name, SHA-256), or (None, None)."""
    if calibration is None:
        return None, None
    name = Path(index_path).stem + CALIBRATION_SUFFIX
    save_calibration(home.index_dir, calibration, name=name)
    return name, sha256_file(home.index_dir / name)


def copy_calibration(home: Home, entry: IndexEntry) -> None:
    """Refresh HOME/calibration.json from the manifest's (a copy for people and older tools)."""
    source = home.calibration_path(entry)
    if source is None:
        (home.root / CALIBRATION_FILE).unlink(missing_ok=True)
    elif source.is_file():
        atomic_write_bytes(home.root / CALIBRATION_FILE, source.read_bytes())


def load_calibration(home_root: Path, model_sha256: str, backend_sha256: str | None = None, *,
                     entry: IndexEntry | None = None) -> Calibration:
    """The home's calibration; ArtefactError naming the repair if missing, changed since the manifest
    recorded it, or made for another model or another back end (its similarities would be in
    another space). ``entry``: the index opened (its own threshold file, checked against its
    SHA-256); None: the manifest's current one, else HOME/calibration.json of older homes."""
    if entry is None:
        entry = Home(Path(home_root)).read_manifest(missing_ok=True).index
    path = Path(home_root) / CALIBRATION_FILE
    if entry is not None and entry.calibration_file is not None:
        path = Home(Path(home_root)).calibration_path(entry)
        if path.is_file() and sha256_file(path) != entry.calibration_sha256:
            raise ArtefactError(f"{path} does not match its SHA-256 in the manifest (changed by hand?); "
                                f"run `singerid build-index --home {home_root}`")
    if not path.is_file():
        raise ArtefactError(f"{path} does not exist (too few singers or songs to calibrate?); "
                            f"run `singerid build-index --home {home_root}` or pass --min-similarity")
    try:
        calibration = Calibration(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ArtefactError(f"cannot read {path}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}; "
                            f"run `singerid build-index --home {home_root}`") from exc
    if calibration.model_sha256 != model_sha256:
        raise ArtefactError(f"{path} was made for another model; run `singerid build-index --home {home_root}`")
    if calibration.backend_sha256 != backend_sha256:
        raise ArtefactError(f"{path} was made for another index back end; "
                            f"run `singerid build-index --home {home_root}`")
    return calibration

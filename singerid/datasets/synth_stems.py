"""Stems of the synthetic corpus: each song's vocals and accompaniment as the mix heard them.

With ``CorpusSpec(stems=True)`` every song ``ROOT/<relpath>`` also gets::

    ROOT/stems/<relpath without extension>.vocals.flac
    ROOT/stems/<relpath without extension>.accompaniment.flac

(16-bit FLAC at the corpus sample rate, exactly as long as the mix), e.g.
``ROOT/stems/mp3s-32k/singer_01_tenor/Album/01-Title.vocals.flac``. The dataset readers look
only in ``ROOT/mp3s-32k/``, so the stems are never taken for songs.

What a stem is. The mix is ``master(voice + accompaniment)`` times the song's final gain.
``master`` (synth_music) is linear except for one scalar: the reverb's wet level is set so
that the wet RMS equals the dry RMS *of its input*. Each stem goes through the same room
(the same impulse response: the song's random stream is replayed) and the same mastering EQ,
with the wet level set from the stem itself, then the mix's final gain. So each stem is its
source as it sounds in the album's production, but ``vocals + accompaniment`` differs from
the mix by the difference in wet level only: measured 31-59 dB below the mix on small
corpora (tests ask for > 20 dB). The mix itself is unchanged by asking for stems (same bytes).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf

from singerid.datasets.synth_music import AlbumStyle, master
from singerid.errors import ParameterError

__all__ = ["STEMS_DIR", "STEM_NAMES", "master_stems", "stem_paths", "write_stem"]

log = logging.getLogger(__name__)

STEMS_DIR = "stems"  # beside mp3s-32k/, which is all the artist20 reader scans
STEM_NAMES = ("vocals", "accompaniment")  # Spleeter's 2-stem names


def stem_paths(root: str | Path, relpath: str | Path) -> tuple[Path, Path]:
    """(vocals, accompaniment) FLAC paths of the song at ``root / relpath``.

    ``relpath`` is the song's path relative to the corpus root, as ``SongRecord.path``
    (``mp3s-32k/<singer>/<album>/<NN-Title>.mp3``). The paths are computed, not checked:
    they exist only in a corpus generated with stems. Raises ParameterError for an absolute
    ``relpath`` or one that climbs out of the root.
    """
    rel = PurePosixPath(Path(relpath).as_posix())
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ParameterError(f"relpath must be a song path inside the corpus root, got {str(relpath)!r}")
    base = Path(root) / STEMS_DIR / rel.parent
    vocals, accompaniment = (base / f"{rel.stem}.{name}.flac" for name in STEM_NAMES)
    return vocals, accompaniment


def master_stems(voice: np.ndarray, accompaniment: np.ndarray, style: AlbumStyle, *, sample_rate: int,
                 rng_before_master: np.random.Generator, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """Master each source as the mix was mastered; float32 (n,) each, times ``gain``.

    ``voice`` and ``accompaniment`` are float64 (n,) at the levels summed into the mix;
    ``rng_before_master`` is a copy of the song's generator taken just before the mix's
    ``master`` call (it is copied again here, never advanced), so both stems get the mix's
    room; ``gain`` is the mix's final gain (linear). See the module docstring for how the
    stems' sum differs from the mix.
    """
    stems = []
    for source in (voice, accompaniment):
        mastered = master(source, style, sample_rate=sample_rate, rng=copy.deepcopy(rng_before_master))
        stems.append((mastered * gain).astype(np.float32))
    return stems[0], stems[1]


def write_stem(path: Path, audio: np.ndarray, sample_rate: int) -> str:
    """Write float32 (n,) as 16-bit FLAC (atomically) and return the file's hex SHA-256.

    Samples beyond full scale are clipped to +-1 (logged): 16-bit PCM cannot hold them, and
    the mix was normalised, not its parts.
    """
    over = int(np.count_nonzero(np.abs(audio) > 1.0))
    if over:
        log.warning("%s: %d sample(s) beyond full scale clipped (peak %.3f)", path, over, float(np.max(np.abs(audio))))
        audio = np.clip(audio, -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    sf.write(str(tmp), audio, sample_rate, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()

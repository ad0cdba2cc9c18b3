"""A tiny, easy corpus for embedder tests: each 'singer' is a harmonic voice with its own formants.

Songs are note sequences (shared pitch range) whose harmonics are shaped by two singer-specific
formant peaks, over a little album-specific coloured noise. Small enough to train in seconds,
separable enough that a few epochs must beat chance by a wide margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from singerid.records import Track

SAMPLE_RATE = 16_000
FORMANTS_HZ = ((300, 2300), (700, 1200), (500, 3000), (900, 1800), (400, 900), (650, 2700))


def write_song(path: Path, *, singer: int, song_seed: int, seconds: float) -> Path:
    """Write one mono 16 kHz WAV song of singer ``singer`` (0-5)."""
    rng = np.random.default_rng(song_seed)
    f1, f2 = FORMANTS_HZ[singer]
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n, dtype=np.float64)
    pos = 0
    while pos < n:
        length = min(n - pos, int(rng.uniform(0.25, 0.5) * SAMPLE_RATE))
        f0 = 140.0 * 2 ** rng.uniform(0, 1.5)  # shared range: pitch alone tells little
        t = np.arange(length) / SAMPLE_RATE
        note = np.zeros(length)
        for h in range(1, int(7000 / f0)):
            fh = f0 * h
            gain = np.exp(-((fh - f1) / 150) ** 2) + np.exp(-((fh - f2) / 250) ** 2) + 0.02
            note += gain * np.sin(2 * np.pi * fh * t + rng.uniform(0, 2 * np.pi))
        out[pos:pos + length] = note * np.hanning(length) ** 0.2
        pos += length
    out = 0.3 * out / np.max(np.abs(out)) + 0.01 * rng.standard_normal(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), out.astype(np.float32), SAMPLE_RATE)
    return path


def make_tracks(root: Path, *, singers: int = 4, train_songs: int = 3, val_songs: int = 1, test_songs: int = 0,
                seconds: float = 5.0) -> list[Track]:
    """Write the corpus under ``root`` and return its tracks (split train / val / test per singer)."""
    tracks = []
    for s in range(singers):
        splits = ["train"] * train_songs + ["val"] * val_songs + ["test"] * test_songs
        for i, split in enumerate(splits):
            name = f"singer{s}"
            path = write_song(root / name / f"song{i}.wav", singer=s, song_seed=1000 * s + i, seconds=seconds)
            tracks.append(Track(path=path, singer=name, song_id=f"{name}/song{i}", split=split, album=f"a{i}"))
    return tracks

"""One song of the synthetic corpus: compose, sing, accompany, mix, master, encode.

``make_song`` is the unit of parallel work: it takes a picklable ``SongJob`` (everything the
song needs, including the (seed, singer, album, song) path of its random stream), writes the
audio file (and, if asked, its two stems: see ``synth_stems``) and returns the ``SongRecord``
that goes into the manifest.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from singerid.datasets.synth_music import AlbumStyle, master, render_accompaniment
from singerid.datasets.synth_score import compose_song
from singerid.datasets.synth_stems import master_stems, stem_paths, write_stem
from singerid.datasets.synth_voice import VoiceParams, render_voice

PEAK = 10.0 ** (-1.0 / 20.0)  # -1 dBFS before the song's own gain
SONG_GAIN_DB = (-6.0, 0.0)  # ours: loudness differs from song to song
MP3_COMPRESSION_LEVEL = 0.85  # libsndfile level giving 32 kbit/s CBR at 16 kHz mono, as artist20
_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SONG_STREAM = 4


@dataclass(frozen=True, slots=True)
class SongJob:
    """Everything needed to make one song, in one picklable record."""

    root: str  # corpus directory
    song_id: str  # "<singer>/<album>/<NN-Title>"
    relpath: str  # audio file relative to root
    singer: str
    album: str
    split: str
    voice: VoiceParams
    style: AlbumStyle
    seconds: float
    sample_rate: int
    audio_format: str  # "mp3" or "flac"
    voice_ratio_db: tuple[float, float]  # range the song's ratio is drawn from
    seed_path: tuple[int, int, int, int]  # (seed, singer index, album index, song index)
    stems: bool = False  # also write the vocals and accompaniment stems (synth_stems.stem_paths)


@dataclass(frozen=True, slots=True)
class SongRecord:
    """How one song was made (one entry of ``corpus.json``)."""

    song_id: str
    path: str  # relative to the corpus root
    singer: str
    album: str
    split: str
    seconds: float
    tempo_bpm: float
    key: str  # e.g. "F# minor"
    progression: tuple[int, ...]  # chord-root scale degrees, one per bar, repeated
    n_notes: int  # sung notes
    sung_fraction: float  # fraction of the song in which the voice sings
    voice_ratio_db: float  # voice / accompaniment RMS while singing (dB)
    gain_db: float  # song level below -1 dBFS peak
    n_bytes: int
    sha256: str
    stems_sha256: tuple[str, ...] = ()  # (vocals, accompaniment) FLAC SHA-256 when the corpus has stems


@dataclass(frozen=True, slots=True)
class RenderedSong:
    """A song in memory: the mix, and its stems when the job asks for them.

    mix: float32 (n,), peak <= 1 (-1 dBFS and the song's gain below it).
    vocals, accompaniment: float32 (n,) at the mix's scale, or None (see ``synth_stems``).
    drawn: what was drawn (tempo, key, progression, ratio, gain, ...), the SongRecord fields.
    """

    mix: np.ndarray
    vocals: np.ndarray | None
    accompaniment: np.ndarray | None
    drawn: dict


def render_song(job: SongJob) -> RenderedSong:
    """The mixed, mastered song at ``job.sample_rate`` (and its stems if ``job.stems``).

    Asking for stems does not change the mix: the stems replay copies of the random stream.
    """
    seed, si, ai, ti = job.seed_path
    rng = np.random.default_rng([seed, _SONG_STREAM, si, ai, ti])
    style, fs = job.style, job.sample_rate
    n = int(round(job.seconds * fs))
    tempo = style.tempo_bpm * rng.uniform(0.94, 1.06)
    key_root = (style.key_root + int(rng.choice([0, 0, 0, 5, 7]))) % 12
    progression = style.progressions[int(rng.integers(len(style.progressions)))]
    score = compose_song(seconds=job.seconds, tempo_bpm=tempo, beats_per_bar=style.beats_per_bar,
                         key_root=key_root, mode=style.mode, progression=progression,
                         low_midi=job.voice.low_midi, high_midi=job.voice.high_midi, rng=rng)
    voice = render_voice(job.voice, score.melody, n_samples=n, sample_rate=fs, rng=rng)
    accompaniment = render_accompaniment(style, score, n_samples=n, sample_rate=fs, rng=rng)
    sung = np.zeros(n, dtype=bool)
    for note in score.melody:
        sung[int(note.start_seconds * fs):int((note.start_seconds + note.duration_seconds) * fs)] = True
    ratio_db = float(rng.uniform(*job.voice_ratio_db))
    if sung.any():
        voice_rms = np.sqrt(np.mean(voice[sung] ** 2))
        acc_rms = max(np.sqrt(np.mean(accompaniment[sung] ** 2)), 1e-12)
        accompaniment *= voice_rms / acc_rms / 10.0 ** (ratio_db / 20.0)
    rng_before_master = copy.deepcopy(rng) if job.stems else None
    mix = master(voice + accompaniment, style, sample_rate=fs, rng=rng)
    gain_db = float(rng.uniform(*SONG_GAIN_DB))
    gain = PEAK * 10.0 ** (gain_db / 20.0) / max(np.max(np.abs(mix)), 1e-12)
    mix *= gain
    vocals = backing = None
    if rng_before_master is not None:
        vocals, backing = master_stems(voice, accompaniment, style, sample_rate=fs,
                                       rng_before_master=rng_before_master, gain=gain)
    drawn = {"tempo_bpm": round(tempo, 3), "key": f"{_NOTE_NAMES[key_root]} {style.mode}",
             "progression": tuple(progression), "n_notes": len(score.melody),
             "sung_fraction": round(float(sung.mean()), 4), "voice_ratio_db": round(ratio_db, 3),
             "gain_db": round(gain_db, 3)}
    return RenderedSong(mix.astype(np.float32), vocals, backing, drawn)


def make_song(job: SongJob) -> SongRecord:
    """Render ``job``, write its audio file (atomically), then its stems if asked, and return
    its record."""
    song = render_song(job)
    audio = song.mix
    path = Path(job.root) / job.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    if job.audio_format == "mp3":
        sf.write(str(tmp), audio, job.sample_rate, format="MP3", subtype="MPEG_LAYER_III",
                 compression_level=MP3_COMPRESSION_LEVEL, bitrate_mode="CONSTANT")
    else:
        sf.write(str(tmp), audio, job.sample_rate, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)
    data = path.read_bytes()
    stems_sha256: tuple[str, ...] = ()
    if song.vocals is not None and song.accompaniment is not None:
        stems_sha256 = tuple(write_stem(p, stem, job.sample_rate) for p, stem in
                             zip(stem_paths(job.root, job.relpath), (song.vocals, song.accompaniment)))
    return SongRecord(song_id=job.song_id, path=job.relpath, singer=job.singer, album=job.album,
                      split=job.split, seconds=job.seconds, n_bytes=len(data),
                      sha256=hashlib.sha256(data).hexdigest(), stems_sha256=stems_sha256, **song.drawn)

"""Songs with known stems for measuring separation: the synthetic corpus's voice and accompaniment.

Renders a song as ``singerid.datasets.synth_song.render_song`` does (compose, sing, accompany,
set the voice-to-accompaniment ratio while singing, master, normalise the peak) but keeps the
voice and the accompaniment apart. The mastering (reverb + EQ) is linear once its impulse
response is drawn, so each stem is mastered with the same impulse response (a copy of the random
stream) and the mix is their sum: ``mix == vocals + accompaniment`` exactly. (``master`` scales
the reverb by the dry/wet energy of its input, so the per-stem reverb level can differ slightly
from a mastered mix; for a yardstick only the exact sum matters.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from singerid.datasets.synth_music import draw_album_style, master, render_accompaniment
from singerid.datasets.synth_score import compose_song
from singerid.datasets.synth_voice import REGISTERS, draw_voice, render_voice

PEAK = 10.0 ** (-1.0 / 20.0)  # -1 dBFS, as the synthetic corpus


@dataclass(frozen=True, slots=True)
class SynthSong:
    """A generated song and its true stems: float32 (n,) each, mix == vocals + accompaniment."""

    mix: np.ndarray
    vocals: np.ndarray
    accompaniment: np.ndarray
    sample_rate: int  # Hz
    voice_ratio_db: float  # voice / accompaniment RMS while singing (dB)


def synth_song_stems(seconds: float = 10.0, *, seed: int = 0, sample_rate: int = 16_000,
                     voice_ratio_db: float = 0.0) -> SynthSong:
    """Render one synthetic song of ``seconds`` with separate stems (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, 7])
    register = list(REGISTERS)[int(rng.integers(len(REGISTERS)))]
    voice = draw_voice(rng, register)
    style = draw_album_style(rng)
    n = int(round(seconds * sample_rate))
    score = compose_song(seconds=seconds, tempo_bpm=style.tempo_bpm, beats_per_bar=style.beats_per_bar,
                         key_root=style.key_root, mode=style.mode, progression=style.progressions[0],
                         low_midi=voice.low_midi, high_midi=voice.high_midi, rng=rng)
    vocals = render_voice(voice, score.melody, n_samples=n, sample_rate=sample_rate, rng=rng)
    accompaniment = render_accompaniment(style, score, n_samples=n, sample_rate=sample_rate, rng=rng)
    sung = np.zeros(n, dtype=bool)
    for note in score.melody:
        start = int(note.start_seconds * sample_rate)
        sung[start:int((note.start_seconds + note.duration_seconds) * sample_rate)] = True
    if sung.any():
        voice_rms = np.sqrt(np.mean(vocals[sung] ** 2))
        acc_rms = max(np.sqrt(np.mean(accompaniment[sung] ** 2)), 1e-12)
        accompaniment *= voice_rms / acc_rms / 10.0 ** (voice_ratio_db / 20.0)
    room = copy.deepcopy(rng)  # the same impulse response for both stems
    vocals = master(vocals, style, sample_rate=sample_rate, rng=rng)
    accompaniment = master(accompaniment, style, sample_rate=sample_rate, rng=room)
    gain = PEAK / max(np.max(np.abs(vocals + accompaniment)), 1e-12)
    vocals = (vocals * gain).astype(np.float32)
    accompaniment = (accompaniment * gain).astype(np.float32)
    return SynthSong(mix=vocals + accompaniment, vocals=vocals, accompaniment=accompaniment,
                     sample_rate=sample_rate, voice_ratio_db=float(voice_ratio_db))

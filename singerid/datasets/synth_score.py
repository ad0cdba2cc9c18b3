"""Song scores for the synthetic corpus: a chord per bar and a sung melody on syllables.

The harmony (key, mode, tempo, chord progression) comes from the album's style and never
from the singer; the melody is written in that key inside the singer's range, in phrases
separated by breaths. Pure Python + numpy, no audio here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)  # semitones above the key root
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor
SCALES = {"major": MAJOR_SCALE, "minor": MINOR_SCALE}
VOWEL_NAMES = ("a", "e", "i", "o", "u", "ae", "uh")  # keys of synth_voice.VOWELS_HZ
CONSONANT_NAMES = ("s", "sh", "f", "t", "k", "p")  # keys of synth_voice.CONSONANTS
PROGRESSIONS = (  # chord roots as scale degrees (0 = tonic), one chord per bar
    (0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 3, 0, 4),
    (0, 0, 3, 4), (5, 4, 3, 4), (0, 4, 3, 3), (0, 2, 3, 4), (3, 4, 0, 0),
)
_STEPS = np.array([-3, -2, -1, 0, 1, 2, 3])  # melodic steps in scale degrees
_STEP_WEIGHTS = np.array([0.04, 0.14, 0.27, 0.10, 0.27, 0.14, 0.04])
_DURATIONS_BEATS = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
_DURATION_WEIGHTS = np.array([0.30, 0.38, 0.12, 0.15, 0.05])


@dataclass(frozen=True, slots=True)
class Note:
    """One note: of the melody (with its syllable) or of an instrument."""

    start_seconds: float
    duration_seconds: float
    midi: float  # MIDI pitch (60 = C4 = 261.6 Hz)
    velocity: float = 1.0  # linear gain, about 0.5..1
    vowel: str = ""  # sung vowel (melody only)
    consonant: str = ""  # consonant before the vowel; "" = none (legato or melisma)


@dataclass(frozen=True, slots=True)
class Score:
    """What one song plays: harmony per bar and the sung melody."""

    seconds: float  # length of the song
    tempo_bpm: float  # beats per minute
    beats_per_bar: int
    key_root: int  # pitch class of the tonic, 0 = C
    mode: str  # "major" or "minor"
    chord_degrees: tuple[int, ...]  # chord root (scale degree) of each bar
    melody: tuple[Note, ...]

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo_bpm

    @property
    def bar_seconds(self) -> float:
        return self.beats_per_bar * self.beat_seconds

    def chord_midi(self, bar: int, *, octave_root: int) -> tuple[int, int, int]:
        """MIDI pitches of the triad of ``bar``, root placed at or above ``octave_root``."""
        return triad_midi(self.key_root, self.mode, self.chord_degrees[bar], octave_root=octave_root)


def triad_midi(key_root: int, mode: str, degree: int, *, octave_root: int) -> tuple[int, int, int]:
    """Root-position triad (root, third, fifth) on scale ``degree``; root is the lowest MIDI
    pitch >= ``octave_root`` with the right pitch class."""
    scale = SCALES[mode]
    pcs = [(key_root + scale[(degree + i) % 7] + 12 * ((degree + i) // 7)) for i in (0, 2, 4)]
    root = octave_root + (pcs[0] - octave_root) % 12
    return (root, root + pcs[1] - pcs[0], root + pcs[2] - pcs[0])


def scale_pitches(key_root: int, mode: str, low_midi: float, high_midi: float) -> np.ndarray:
    """All MIDI pitches of the key between ``low_midi`` and ``high_midi`` (inclusive), int (n,)."""
    pitches = np.arange(int(np.ceil(low_midi)), int(np.floor(high_midi)) + 1)
    in_key = np.isin((pitches - key_root) % 12, SCALES[mode])
    return pitches[in_key]


def compose_song(*, seconds: float, tempo_bpm: float, beats_per_bar: int, key_root: int, mode: str,
                 progression: Sequence[int], low_midi: float, high_midi: float,
                 rng: np.random.Generator) -> Score:
    """Write a song: the progression repeated over the song, and a melody in phrases.

    The melody uses only pitches of the key within [low_midi, high_midi] (the singer's
    range), moves mostly by steps, lands on chord tones on downbeats, and rests 1-2 beats
    (a breath) between phrases of 1.5-3.5 bars. About 75 % of the song is sung.
    """
    beat = 60.0 / tempo_bpm
    bar = beats_per_bar * beat
    n_bars = int(np.ceil(seconds / bar)) + 1
    degrees = tuple(int(progression[i % len(progression)]) for i in range(n_bars))
    pitches = scale_pitches(key_root, mode, low_midi, high_midi)
    index = len(pitches) // 2 + int(rng.integers(-2, 3))
    notes: list[Note] = []
    t_beats = float(rng.choice([0.0, 1.0, 2.0]))  # a short instrumental pickup
    while t_beats * beat < seconds:
        phrase_beats = float(rng.choice([6.0, 8.0, 10.0, 12.0, 14.0]))
        phrase_end = t_beats + phrase_beats
        arch = rng.uniform(0.7, 1.0)
        first = True
        vowel = str(rng.choice(VOWEL_NAMES))
        while t_beats < phrase_end and t_beats * beat < seconds:
            dur = float(rng.choice(_DURATIONS_BEATS, p=_DURATION_WEIGHTS))
            dur = min(dur, phrase_end - t_beats) if phrase_end - t_beats >= 0.5 else 0.5
            index = int(np.clip(index + rng.choice(_STEPS, p=_STEP_WEIGHTS), 0, len(pitches) - 1))
            bar_index = int(t_beats // beats_per_bar)
            if t_beats % beats_per_bar == 0 and bar_index < n_bars:  # downbeat: snap to a chord tone
                index = _nearest_chord_tone(pitches, index, key_root, mode, degrees[bar_index])
            melisma = not first and rng.random() < 0.15
            if not melisma:
                vowel = str(rng.choice(VOWEL_NAMES))
            consonant = ""
            if not melisma and rng.random() < (0.55 if first else 0.35):
                consonant = str(rng.choice(CONSONANT_NAMES))
            progress = (t_beats - (phrase_end - phrase_beats)) / phrase_beats
            velocity = arch * (0.8 + 0.2 * np.sin(np.pi * progress)) * rng.uniform(0.85, 1.0)
            notes.append(Note(start_seconds=t_beats * beat, duration_seconds=dur * beat,
                              midi=float(pitches[index]), velocity=float(velocity),
                              vowel=vowel, consonant=consonant))
            t_beats += dur
            first = False
        t_beats += float(rng.choice([1.0, 1.5, 2.0, 4.0], p=[0.35, 0.25, 0.3, 0.1]))  # breath
    return Score(seconds=seconds, tempo_bpm=tempo_bpm, beats_per_bar=beats_per_bar, key_root=key_root,
                 mode=mode, chord_degrees=degrees, melody=tuple(notes))


def _nearest_chord_tone(pitches: np.ndarray, index: int, key_root: int, mode: str, degree: int) -> int:
    chord_pcs = {p % 12 for p in triad_midi(key_root, mode, degree, octave_root=0)}
    is_tone = np.array([int(p) % 12 in chord_pcs for p in pitches])
    if not is_tone.any():
        return index
    candidates = np.flatnonzero(is_tone)
    return int(candidates[np.argmin(np.abs(candidates - index))])

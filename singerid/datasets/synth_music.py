"""Synthetic accompaniment: one style per album (timbres, tempo, key, progressions, drums, mix).

Album styles are drawn from their own random stream, never from the singer's, so nothing in
the accompaniment tells singers apart. Instruments are additive, FM or plucked (additive with
partial-dependent decay); drums are a pitched-down sine kick, a noise snare and a noise hat.
Note waveforms are cached per (instrument, pitch, length), so a 30-s song costs tens of ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps
from scipy import fft as spfft

from singerid.datasets.synth_score import PROGRESSIONS, Score

DRUM_PATTERNS = {  # hits per bar on a 16th-note grid of a 4/4 bar (scaled for 3/4): kick, snare, hat
    "rock": ((0, 8), (4, 12), tuple(range(0, 16, 2))),
    "disco": ((0, 4, 8, 12), (4, 12), (2, 6, 10, 14)),
    "halftime": ((0,), (8,), tuple(range(0, 16, 4))),
    "shuffle": ((0, 10), (4, 12), (0, 3, 4, 7, 8, 11, 12, 15)),
    "none": ((), (), ()),
}
INSTRUMENT_KINDS = ("additive", "fm", "pluck")


@dataclass(frozen=True, slots=True)
class Instrument:
    """A pitched instrument timbre."""

    kind: str  # "additive", "fm" or "pluck"
    partials: tuple[float, ...]  # relative amplitudes of harmonics 1..n (additive, pluck)
    fm_ratio: float  # modulator / carrier frequency (fm)
    fm_index: float  # peak modulation index (fm)
    attack_seconds: float
    decay_seconds: float  # time constant of the decay towards ``sustain``
    sustain: float  # level held after the decay, 0..1
    damping: float  # extra decay per partial squared (pluck brightness; 1/s)
    detune_cents: float  # a second, detuned copy (chorus)
    level_db: float  # level in the accompaniment mix


@dataclass(frozen=True, slots=True)
class AlbumStyle:
    """How every song of one album is accompanied and produced."""

    tempo_bpm: float  # album tempo; songs vary by +-6 %
    beats_per_bar: int  # 3 or 4
    key_root: int  # pitch class of the album key, 0 = C (songs may move up a 4th or 5th)
    mode: str  # "major" or "minor"
    progressions: tuple[tuple[int, ...], ...]  # chord-root scale degrees, two per album
    chords: Instrument  # sustained chords, 1/2/4 hits per bar
    chord_hits_per_bar: int
    bass: Instrument
    bass_hits_per_bar: int
    arp: Instrument  # arpeggiated chord tones
    arp_notes_per_beat: int  # 0 = no arpeggio
    drums: str  # key of DRUM_PATTERNS
    drum_level_db: float
    hat_brightness_hz: float  # high-pass edge of the hat noise
    reverb_seconds: float  # decay time of the album's room (RT60)
    reverb_mix: float  # wet fraction
    master_tilt_db_per_octave: float  # mastering EQ slope around 1 kHz
    low_cut_hz: float  # mastering high-pass edge
    high_cut_hz: float  # mastering low-pass edge


def draw_instrument(rng: np.random.Generator, *, level_db: float, sustained: bool) -> Instrument:
    kind = str(rng.choice(INSTRUMENT_KINDS))
    n_partials = int(rng.integers(4, 13))
    slope = rng.uniform(0.5, 2.0)
    partials = rng.uniform(0.2, 1.0, n_partials) / np.arange(1, n_partials + 1) ** slope
    return Instrument(
        kind=kind, partials=tuple(float(p) for p in partials / partials[0]),
        fm_ratio=float(rng.choice([0.5, 1.0, 2.0, 3.0, 1.41])), fm_index=float(rng.uniform(0.5, 4.0)),
        attack_seconds=float(rng.uniform(0.05, 0.3) if sustained else rng.uniform(0.002, 0.02)),
        decay_seconds=float(rng.uniform(0.3, 2.0) if sustained else rng.uniform(0.1, 0.6)),
        sustain=float(rng.uniform(0.4, 0.9) if sustained else rng.uniform(0.0, 0.3)),
        damping=float(rng.uniform(0.0, 0.6)), detune_cents=float(rng.uniform(0.0, 12.0)),
        level_db=float(level_db),
    )


def draw_album_style(rng: np.random.Generator) -> AlbumStyle:
    """Draw an album's accompaniment and production."""
    picks = rng.choice(len(PROGRESSIONS), size=2, replace=False)
    return AlbumStyle(
        tempo_bpm=float(rng.uniform(72.0, 150.0)), beats_per_bar=int(rng.choice([3, 4], p=[0.2, 0.8])),
        key_root=int(rng.integers(0, 12)), mode=str(rng.choice(["major", "minor"])),
        progressions=tuple(PROGRESSIONS[int(i)] for i in picks),
        chords=draw_instrument(rng, level_db=rng.uniform(-8.0, 0.0), sustained=True),
        chord_hits_per_bar=int(rng.choice([1, 2, 4])),
        bass=draw_instrument(rng, level_db=rng.uniform(-6.0, 0.0), sustained=False),
        bass_hits_per_bar=int(rng.choice([1, 2, 4])),
        arp=draw_instrument(rng, level_db=rng.uniform(-14.0, -4.0), sustained=False),
        arp_notes_per_beat=int(rng.choice([0, 1, 2], p=[0.3, 0.35, 0.35])),
        drums=str(rng.choice(list(DRUM_PATTERNS), p=[0.35, 0.2, 0.15, 0.15, 0.15])),
        drum_level_db=float(rng.uniform(-8.0, 0.0)), hat_brightness_hz=float(rng.uniform(4000.0, 7000.0)),
        reverb_seconds=float(rng.uniform(0.3, 2.0)), reverb_mix=float(rng.uniform(0.05, 0.35)),
        master_tilt_db_per_octave=float(rng.uniform(-1.0, 1.0)),
        low_cut_hz=float(rng.uniform(30.0, 120.0)), high_cut_hz=float(rng.uniform(5500.0, 7800.0)),
    )


def render_accompaniment(style: AlbumStyle, score: Score, *, n_samples: int, sample_rate: int,
                         rng: np.random.Generator) -> np.ndarray:
    """The accompaniment of ``score`` in ``style``: float64 (n_samples,), RMS 1 (dry, unmastered)."""
    out = np.zeros(n_samples)
    cache: dict[tuple[int, int, int], np.ndarray] = {}
    bar, beat = score.bar_seconds, score.beat_seconds
    n_bars = min(len(score.chord_degrees), int(np.ceil(n_samples / sample_rate / bar)) + 1)
    for b in range(n_bars):
        t_bar = b * bar
        chord = score.chord_midi(b, octave_root=55)
        for h in range(style.chord_hits_per_bar):
            dur = bar / style.chord_hits_per_bar
            for pitch in chord:
                _add(out, _note(style.chords, 0, pitch, dur, sample_rate, cache), t_bar + h * dur, sample_rate,
                     _db(style.chords.level_db) * rng.uniform(0.8, 1.0) / 3.0)
        for h in range(style.bass_hits_per_bar):
            dur = bar / style.bass_hits_per_bar
            pitch = score.chord_midi(b, octave_root=33)[2 if h % 2 and rng.random() < 0.3 else 0]
            _add(out, _note(style.bass, 1, pitch, dur, sample_rate, cache), t_bar + h * dur, sample_rate,
                 _db(style.bass.level_db) * rng.uniform(0.8, 1.0))
        if style.arp_notes_per_beat:
            step = beat / style.arp_notes_per_beat
            arp = score.chord_midi(b, octave_root=67) + (score.chord_midi(b, octave_root=67)[0] + 12,)
            for i in range(score.beats_per_bar * style.arp_notes_per_beat):
                _add(out, _note(style.arp, 2, arp[i % len(arp)], step, sample_rate, cache), t_bar + i * step,
                     sample_rate, _db(style.arp.level_db) * rng.uniform(0.7, 1.0))
    out += _drums(style, score, n_samples=n_samples, sample_rate=sample_rate, rng=rng)
    return out / max(np.sqrt(np.mean(out ** 2)), 1e-12)


def master(x: np.ndarray, style: AlbumStyle, *, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """The album's production on a mix: room reverb, then a mastering EQ (tilt, low/high cut).

    One FFT pass: the reverb (exponentially decaying noise, wet RMS = dry RMS) and the
    zero-phase EQ are both products in the frequency domain. Returns float64 (x.size,).
    """
    n_ir = int(style.reverb_seconds * sample_rate)
    t = np.arange(n_ir) / sample_rate
    ir = rng.standard_normal(n_ir) * 10.0 ** (-3.0 * t / style.reverb_seconds)  # -60 dB at RT60
    n_fft = spfft.next_fast_len(x.size + n_ir, real=True)
    dry, room = spfft.rfft(x, n_fft), spfft.rfft(ir, n_fft)
    wet_scale = np.sqrt(np.sum(np.abs(dry) ** 2) / max(np.sum(np.abs(dry * room) ** 2), 1e-24))
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    gain = 10.0 ** (style.master_tilt_db_per_octave * np.log2(np.maximum(f, 20.0) / 1000.0) / 20.0)
    gain /= np.sqrt(1.0 + (style.low_cut_hz / np.maximum(f, 1e-3)) ** 4)  # 2nd-order-like slopes
    gain /= np.sqrt(1.0 + (f / style.high_cut_hz) ** 8)
    mixed = dry * ((1.0 - style.reverb_mix) + style.reverb_mix * wet_scale * room) * gain
    return spfft.irfft(mixed, n=n_fft)[: x.size]


def _db(level_db: float) -> float:
    return float(10.0 ** (level_db / 20.0))


def _add(out: np.ndarray, wave: np.ndarray, start_seconds: float, sample_rate: int, gain: float) -> None:
    i = int(round(start_seconds * sample_rate))
    if i >= out.size:
        return
    n = min(wave.size, out.size - i)
    out[i:i + n] += gain * wave[:n]


def _note(inst: Instrument, slot: int, midi: int, seconds: float, sample_rate: int,
          cache: dict[tuple[int, int, int], np.ndarray]) -> np.ndarray:
    """One note of ``inst`` (cached per slot, pitch and length): float64 (n,), peak ~1."""
    n = max(1, int(seconds * sample_rate))
    key = (slot, int(midi), n)
    if key not in cache:
        cache[key] = _synth_note(inst, midi, n, sample_rate)
    return cache[key]


def _synth_note(inst: Instrument, midi: int, n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    f0 = 440.0 * 2.0 ** ((midi - 69) / 12.0)
    wave = np.zeros(n)
    for detune, weight in ((0.0, 1.0), (inst.detune_cents, 0.5)):
        f = f0 * 2.0 ** (detune / 1200.0)
        if inst.kind == "fm":
            index = inst.fm_index * np.exp(-t / max(inst.decay_seconds, 1e-3))
            wave += weight * np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * inst.fm_ratio * f * t))
            continue
        k = np.arange(1, len(inst.partials) + 1)
        keep = k * f < 0.45 * sample_rate
        k, amps = k[keep], np.array(inst.partials)[keep]
        if k.size == 0:
            continue
        phases = np.sin((2 * np.pi * f * t[:, None] * k[None, :] + np.pi * k ** 2 / k.size).astype(np.float32))
        if inst.kind == "pluck":
            phases *= np.exp(-t[:, None] * inst.damping * k[None, :] ** 2)
        wave += weight * (phases @ amps.astype(np.float32))
    env = inst.sustain + (1.0 - inst.sustain) * np.exp(-t / max(inst.decay_seconds, 1e-3))
    env *= np.minimum(1.0, t / max(inst.attack_seconds, 1e-3))
    release = min(n, int(0.02 * sample_rate))
    env[n - release:] *= np.linspace(1.0, 0.0, release)
    wave *= env
    return wave / max(np.max(np.abs(wave)), 1e-12)


def _drums(style: AlbumStyle, score: Score, *, n_samples: int, sample_rate: int,
           rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n_samples)
    kicks, snares, hats = DRUM_PATTERNS[style.drums]
    if not (kicks or snares or hats):
        return out
    sixteenth = score.bar_seconds / (4 * score.beats_per_bar)
    grid = 4 * score.beats_per_bar
    t = np.arange(int(0.3 * sample_rate)) / sample_rate
    kick = np.sin(2 * np.pi * np.cumsum(50.0 + 90.0 * np.exp(-t / 0.03)) / sample_rate) * np.exp(-t / 0.12)
    snare_noise = sps.sosfilt(sps.butter(2, [800.0, min(6000.0, 0.45 * sample_rate)], btype="bandpass",
                                         fs=sample_rate, output="sos"), rng.standard_normal(t.size))
    snare = (0.6 * snare_noise / np.max(np.abs(snare_noise)) + 0.4 * np.sin(2 * np.pi * 185.0 * t)) * np.exp(-t / 0.06)
    hat_noise = sps.sosfilt(sps.butter(4, min(style.hat_brightness_hz, 0.45 * sample_rate), btype="highpass",
                                       fs=sample_rate, output="sos"), rng.standard_normal(t.size))
    hat = hat_noise / np.max(np.abs(hat_noise)) * np.exp(-t / 0.015)
    level = _db(style.drum_level_db)
    n_bars = int(np.ceil(n_samples / sample_rate / score.bar_seconds)) + 1
    for b in range(n_bars):
        for wave, hits, gain in ((kick, kicks, 1.0), (snare, snares, 0.8), (hat, hats, 0.35)):
            for h in hits:
                if h < grid:
                    _add(out, wave, (b * grid + h) * sixteenth, sample_rate, level * gain * rng.uniform(0.8, 1.0))
    return out

"""Synthetic singing voices: one fixed source-filter voice per singer, singing a melody on vowels.

Source: Rosenberg glottal pulses (open quotient, speed quotient) driven by an f0 contour with
glides, vibrato, drift and jitter, per-cycle shimmer, rendered at 4x the output rate and
resampled so the pulse corners do not alias; plus aspiration noise pulsed by the glottal flow.
Filter: five vocal-tract formants (vowel targets x the singer's tract-length scale x the
singer's own per-formant offsets), applied frame by frame in the STFT domain, then the
singer's fixed spectral tilt and singer's-formant bump. Consonants are short band-passed
noise bursts. Pure numpy / scipy / soxr; vectorised over samples and frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr
from scipy import fft as spfft
from scipy import signal as sps

from singerid.datasets.synth_score import Note

# Formants F1..F5 in Hz of an adult male (17.5 cm tract): F1-F3 after Peterson & Barney (1952),
# F4 / F5 ours (typical values). A singer's formants are these x tract_scale x formant_offsets.
VOWELS_HZ: dict[str, tuple[float, float, float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0, 3400.0, 4400.0),
    "e": (530.0, 1840.0, 2480.0, 3500.0, 4500.0),
    "i": (270.0, 2290.0, 3010.0, 3700.0, 4600.0),
    "o": (570.0, 840.0, 2410.0, 3300.0, 4300.0),
    "u": (300.0, 870.0, 2240.0, 3300.0, 4300.0),
    "ae": (660.0, 1720.0, 2410.0, 3400.0, 4400.0),
    "uh": (640.0, 1190.0, 2390.0, 3400.0, 4400.0),
}
BANDWIDTHS_HZ = (70.0, 90.0, 130.0, 180.0, 250.0)  # ours: typical formant bandwidths
# Consonant onsets: (band low Hz, band high Hz, duration s, level relative to the vowel RMS); ours.
CONSONANTS: dict[str, tuple[float, float, float, float]] = {
    "s": (4200.0, 7600.0, 0.10, 0.35), "sh": (2200.0, 6000.0, 0.10, 0.35),
    "f": (1200.0, 7000.0, 0.08, 0.12), "t": (3000.0, 7000.0, 0.025, 0.5),
    "k": (1500.0, 4000.0, 0.03, 0.45), "p": (300.0, 2500.0, 0.02, 0.4),
}
INHALE = (500.0, 5000.0, 0.25, 0.05)  # ours: the breath before a phrase, same fields as CONSONANTS
# Registers as MIDI ranges (E2..E4 for bass up to C4..C6 for soprano); neighbours overlap by
# more than an octave, so several singers share every pitch.
REGISTERS: dict[str, tuple[int, int]] = {
    "bass": (40, 64), "baritone": (43, 67), "tenor": (48, 72),
    "alto": (53, 77), "mezzo": (57, 81), "soprano": (60, 84),
}
FEMALE_REGISTERS = frozenset({"alto", "mezzo", "soprano"})
OVERSAMPLE = 4  # glottal source rendered at 4x the output rate, then resampled
CONTROL_HZ = 500.0  # rate of the f0 / amplitude / formant control tracks
STFT_SAMPLES = 1024  # formant filtering frame (64 ms at 16 kHz)
STFT_HOP = 256


@dataclass(frozen=True, slots=True)
class VoiceParams:
    """A singer's voice: fixed for all of the singer's songs. Drawn by ``draw_voice``."""

    register: str  # key of REGISTERS
    low_midi: float  # lowest note the singer sings (MIDI)
    high_midi: float  # highest note (MIDI); range about 1.5 octaves
    tract_scale: float  # formant scale: 1.0 = 17.5 cm adult male tract, ~1.17 adult female
    formant_offsets: tuple[float, ...]  # the singer's own factor on each of F1..F5 (~0.9..1.1)
    bandwidth_scale: float  # factor on BANDWIDTHS_HZ
    open_quotient: float  # fraction of the glottal cycle the glottis is open (0.4..0.8)
    speed_quotient: float  # opening time / closing time of the pulse (1.2..3.5)
    tilt_db_per_octave: float  # extra source slope above 500 Hz (dB/octave, negative)
    singer_formant_db: float  # boost of the singer's formant cluster (dB)
    singer_formant_hz: float  # centre of that cluster (Hz)
    jitter: float  # relative std of the period, cycle to cycle
    shimmer: float  # relative std of the pulse amplitude, cycle to cycle
    breathiness: float  # aspiration noise RMS / voiced source RMS
    vibrato_rate_hz: float  # vibrato frequency (Hz)
    vibrato_depth_semitones: float  # peak vibrato deviation (semitones)
    vibrato_delay_seconds: float  # vibrato starts this long after a note starts
    glide_seconds: float  # portamento time between notes of a phrase
    scoop_semitones: float  # how far below the note a phrase's first note starts


def draw_voice(rng: np.random.Generator, register: str) -> VoiceParams:
    """Draw a singer's voice in ``register`` (key of REGISTERS)."""
    reg_low, reg_high = REGISTERS[register]
    width = rng.uniform(15.0, 20.0)  # semitones of comfortable range
    low = rng.uniform(reg_low - 1.0, reg_high - width + 1.0)
    female = register in FEMALE_REGISTERS
    return VoiceParams(
        register=register,
        low_midi=round(float(low), 2),
        high_midi=round(float(low + width), 2),
        tract_scale=float(rng.normal(1.17 if female else 1.0, 0.05)),
        formant_offsets=tuple(float(v) for v in rng.uniform(0.85, 1.15, size=5)),
        bandwidth_scale=float(rng.uniform(0.7, 1.6)),
        open_quotient=float(rng.uniform(0.4, 0.8)),
        speed_quotient=float(rng.uniform(1.2, 3.5)),
        tilt_db_per_octave=float(rng.uniform(-6.0, 0.0)),
        singer_formant_db=float(rng.uniform(0.0, 10.0)),
        singer_formant_hz=float(rng.uniform(2600.0, 3400.0)),
        jitter=float(rng.uniform(0.002, 0.02)),
        shimmer=float(rng.uniform(0.02, 0.15)),
        breathiness=float(np.exp(rng.uniform(np.log(0.02), np.log(0.5)))),
        vibrato_rate_hz=float(rng.uniform(4.5, 7.0)),
        vibrato_depth_semitones=float(rng.uniform(0.1, 0.8)),
        vibrato_delay_seconds=float(rng.uniform(0.1, 0.4)),
        glide_seconds=float(rng.uniform(0.03, 0.15)),
        scoop_semitones=float(rng.uniform(0.0, 1.0)),
    )


def render_voice(voice: VoiceParams, melody: Sequence[Note], *, n_samples: int, sample_rate: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Sing ``melody`` with ``voice``: float64 (n_samples,), RMS 1 over the sung parts.

    Silent (zeros) between phrases; returns zeros if the melody is empty.
    """
    out = np.zeros(n_samples)
    if not melody:
        return out
    n_ctrl = int(np.ceil(n_samples / sample_rate * CONTROL_HZ)) + 2
    t_ctrl = np.arange(n_ctrl) / CONTROL_HZ
    midi, gate, vowel_idx, onset = _control_tracks(voice, melody, t_ctrl)
    midi = midi + _vibrato(voice, gate, onset, t_ctrl, rng) + _drift(n_ctrl, rng)
    f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0) * (1.0 + voice.jitter * rng.standard_normal(n_ctrl))
    source, flow = _glottal_source(voice, f0, t_ctrl, n_samples=n_samples, sample_rate=sample_rate, rng=rng)
    amp = np.interp(np.arange(n_samples) / sample_rate, t_ctrl, gate)
    voiced = source * amp
    sung_rms = np.sqrt(np.mean(voiced[amp > 0.1] ** 2)) if np.any(amp > 0.1) else 1.0
    noise = rng.standard_normal(n_samples) * (0.3 + flow) * amp
    noise *= voice.breathiness * sung_rms / max(np.sqrt(np.mean(noise[amp > 0.1] ** 2)), 1e-12)
    formants = _formant_tracks(voice, vowel_idx)
    out = _vocal_tract(voice, voiced + noise, formants, t_ctrl, sample_rate)
    active = amp > 0.1
    out /= max(np.sqrt(np.mean(out[active] ** 2)), 1e-12) if np.any(active) else 1.0
    return out + _consonants(voice, melody, n_samples=n_samples, sample_rate=sample_rate, rng=rng)


def _control_tracks(voice: VoiceParams, melody: Sequence[Note],
                    t_ctrl: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pitch (MIDI, glides included), amplitude gate, vowel index and note onset per control tick."""
    n = t_ctrl.size
    midi = np.full(n, np.nan)
    gate = np.zeros(n)
    vowel_idx = np.full(n, -1)
    onset = np.zeros(n)
    names = list(VOWELS_HZ)
    prev_end = -1.0
    for note in melody:
        i0 = int(round(note.start_seconds * CONTROL_HZ))
        i1 = min(n, int(round((note.start_seconds + note.duration_seconds) * CONTROL_HZ)))
        if i1 <= i0:
            continue
        midi[i0:i1] = note.midi
        dip = 0.75 if note.consonant and abs(note.start_seconds - prev_end) < 1e-6 else 1.0
        gate[i0:i1] = note.velocity
        gate[i0:min(i1, i0 + 10)] *= dip  # a short dip where a consonant separates legato notes
        vowel_idx[i0:i1] = names.index(note.vowel) if note.vowel in VOWELS_HZ else 0
        onset[i0:i1] = note.start_seconds
        if abs(note.start_seconds - prev_end) > 1e-6:  # a phrase starts: scoop up into the note
            k = min(i1 - i0, int(0.12 * CONTROL_HZ))
            midi[i0:i0 + k] -= voice.scoop_semitones * np.linspace(1.0, 0.0, k)
        prev_end = note.start_seconds + note.duration_seconds
    midi = _fill_gaps(midi)
    vowel_idx = _fill_gaps(np.where(vowel_idx < 0, np.nan, vowel_idx.astype(float))).astype(int)
    glide = max(1, int(voice.glide_seconds * CONTROL_HZ))
    midi = _smooth(_smooth(midi, glide), glide)
    gate = _smooth(gate, int(0.03 * CONTROL_HZ))
    return midi, gate, vowel_idx, onset


def _vibrato(voice: VoiceParams, gate: np.ndarray, onset: np.ndarray, t_ctrl: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    wobble = _smooth(rng.standard_normal(t_ctrl.size), 250)
    rate = voice.vibrato_rate_hz * (1.0 + 0.03 * wobble / max(np.std(wobble), 1e-12))
    phase = 2 * np.pi * np.cumsum(rate) / CONTROL_HZ
    ramp = np.clip((t_ctrl - onset - voice.vibrato_delay_seconds) / 0.25, 0.0, 1.0) * (gate > 0.05)
    return voice.vibrato_depth_semitones * _smooth(ramp, 25) * np.sin(phase)


def _drift(n: int, rng: np.random.Generator) -> np.ndarray:
    """Slow intonation wander, about +-0.1 semitone."""
    wander = _smooth(rng.standard_normal(n), 200)
    return 0.1 * wander / max(np.std(wander), 1e-12)


def _glottal_source(voice: VoiceParams, f0_ctrl: np.ndarray, t_ctrl: np.ndarray, *, n_samples: int,
                    sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Glottal flow derivative and glottal flow in [0, 1]: float64 (n_samples,) each, before the
    amplitude gate. The phase is integrated at the control rate and interpolated."""
    rate = sample_rate * OVERSAMPLE
    phase_ctrl = np.concatenate([[0.0], np.cumsum(f0_ctrl[:-1]) / CONTROL_HZ])  # cycles at each tick
    phase = np.interp(np.arange(n_samples * OVERSAMPLE, dtype=np.float64), t_ctrl * rate, phase_ctrl)
    cycle = phase.astype(np.int64)
    frac = (phase - cycle).astype(np.float32)
    t_open = voice.open_quotient * voice.speed_quotient / (1.0 + voice.speed_quotient)
    t_close = voice.open_quotient / (1.0 + voice.speed_quotient)
    flow = np.zeros(frac.size, dtype=np.float32)
    opening = frac < t_open
    closing = ~opening & (frac < t_open + t_close)
    flow[opening] = 0.5 - 0.5 * np.cos(np.float32(np.pi / t_open) * frac[opening])
    flow[closing] = np.cos(np.float32(0.5 * np.pi / t_close) * (frac[closing] - np.float32(t_open)))
    amp = np.clip(1.0 + voice.shimmer * rng.standard_normal(int(cycle[-1]) + 2), 0.3, None).astype(np.float32)
    flow *= amp[cycle]
    derivative = np.diff(flow, prepend=np.float32(0.0))
    source = soxr.resample(derivative, rate, sample_rate, quality="HQ")
    source = np.resize(source, n_samples) if source.size != n_samples else source
    return source.astype(np.float64), np.clip(flow[::OVERSAMPLE][:n_samples], 0.0, 1.0).astype(np.float64)


def _formant_tracks(voice: VoiceParams, vowel_idx: np.ndarray) -> np.ndarray:
    """Formant frequencies per control tick: float64 (n_ctrl, 5), Hz, with smooth transitions."""
    table = np.array(list(VOWELS_HZ.values())) * voice.tract_scale * np.array(voice.formant_offsets)
    log_f = np.log(table[vowel_idx])
    width = int(0.05 * CONTROL_HZ)
    return np.exp(np.stack([_smooth(log_f[:, k], width) for k in range(log_f.shape[1])], axis=1))


def _vocal_tract(voice: VoiceParams, x: np.ndarray, formants: np.ndarray, t_ctrl: np.ndarray,
                 sample_rate: int) -> np.ndarray:
    """Filter ``x`` frame by frame with the formants of each frame, tilt and singer's formant."""
    f_bins = np.fft.rfftfreq(STFT_SAMPLES, 1.0 / sample_rate)
    n_frames = x.size // STFT_HOP + 1
    t_frames = np.arange(n_frames) * STFT_HOP / sample_rate  # frame centres
    f_frames = np.stack([np.interp(t_frames, t_ctrl, formants[:, k]) for k in range(formants.shape[1])], axis=1)
    bandwidths = np.array(BANDWIDTHS_HZ) * voice.bandwidth_scale
    f2 = (f_bins ** 2).astype(np.float32)[None, :]
    log_gain = np.zeros((n_frames, f_bins.size), dtype=np.float32)
    for k in range(f_frames.shape[1]):  # all-pole resonator magnitude, 0 dB at DC
        fk2 = (f_frames[:, k] ** 2).astype(np.float32)[:, None]
        log_gain += np.log(fk2) - 0.5 * np.log((fk2 - f2) ** 2 + f2 * np.float32(bandwidths[k] ** 2))
    octaves = np.log2(np.maximum(f_bins, 500.0) / 500.0)
    static_db = voice.tilt_db_per_octave * octaves
    static_db += voice.singer_formant_db * np.exp(-0.5 * ((f_bins - voice.singer_formant_hz) / 350.0) ** 2)
    return filter_frames(x, np.exp(log_gain + static_db * (np.log(10.0) / 20.0)))


def filter_frames(x: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Time-varying filter: Hann frames of STFT_SAMPLES every STFT_HOP samples (frame i centred
    on sample i * STFT_HOP), each multiplied by its row of ``gains`` (n_frames, STFT_SAMPLES // 2 + 1),
    overlap-added back: float64 (x.size,)."""
    n, half = x.size, STFT_SAMPLES // 2
    n_frames = gains.shape[0]
    padded = np.zeros((n_frames - 1) * STFT_HOP + STFT_SAMPLES)
    padded[half:half + n] = x
    window = sps.get_window("hann", STFT_SAMPLES)
    frames = np.lib.stride_tricks.sliding_window_view(padded, STFT_SAMPLES)[::STFT_HOP][:n_frames] * window
    frames = spfft.irfft(spfft.rfft(frames, axis=1) * gains, n=STFT_SAMPLES, axis=1) * window
    out = np.zeros(padded.size)
    norm = np.zeros(padded.size)
    squared = window ** 2
    for i in range(n_frames):  # overlap-add; exact normalisation also at the edges
        out[i * STFT_HOP:i * STFT_HOP + STFT_SAMPLES] += frames[i]
        norm[i * STFT_HOP:i * STFT_HOP + STFT_SAMPLES] += squared
    return out[half:half + n] / np.maximum(norm[half:half + n], 1e-8)


def _consonants(voice: VoiceParams, melody: Sequence[Note], *, n_samples: int, sample_rate: int,
                rng: np.random.Generator) -> np.ndarray:
    """Band-passed noise bursts (vowel RMS = 1): a consonant at the syllables that start with one,
    and an inhalation ending where a phrase starts."""
    out = np.zeros(n_samples)
    nyquist = 0.5 * sample_rate
    filters: dict[str, np.ndarray] = {}
    prev_end = -1.0
    for note in melody:
        bursts = [(note.consonant, CONSONANTS[note.consonant], 0.5)] if note.consonant in CONSONANTS else []
        if note.start_seconds - prev_end > INHALE[2]:  # a rest long enough to breathe in
            bursts.append(("inhale", INHALE, 1.0))
        prev_end = note.start_seconds + note.duration_seconds
        for name, (low, high, seconds, level), before in bursts:
            if name not in filters:
                edges = np.clip(np.array([low, high]) * np.sqrt(voice.tract_scale), 50.0, 0.9 * nyquist)
                filters[name] = sps.butter(4, edges, btype="bandpass", fs=sample_rate, output="sos")
            n = int(seconds * sample_rate)
            start = int(note.start_seconds * sample_rate) - int(before * n)
            if start < 0 or start + n > n_samples:
                continue
            burst = sps.sosfilt(filters[name], rng.standard_normal(n)) * np.hanning(n)
            out[start:start + n] += burst * level * note.velocity / max(np.sqrt(np.mean(burst ** 2)), 1e-12)
    return out


def _fill_gaps(x: np.ndarray) -> np.ndarray:
    """Carry the last defined value over NaN gaps (the first defined value backwards)."""
    valid = ~np.isnan(x)
    if not valid.any():
        return np.zeros_like(x)
    idx = np.where(valid, np.arange(x.size), 0)
    np.maximum.accumulate(idx, out=idx)
    filled = x[idx]
    first = np.argmax(valid)
    filled[:first] = x[first]
    return filled


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` samples, edges held (same length as ``x``)."""
    if width <= 1:
        return x.astype(float)
    padded = np.pad(x.astype(float), (width // 2, width - 1 - width // 2), mode="edge")
    kernel = np.full(width, 1.0 / width)
    return np.convolve(padded, kernel, mode="valid")

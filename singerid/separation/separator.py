"""``Separator``: 16 kHz mono in, vocals and accompaniment out, with the Spleeter 2-stem U-Nets.

Pipeline (one pass per stream, see ``stft.py``): STFT -> magnitude patches (P, 2, T, F), the mono
magnitude on both "stereo" channels -> U-Net(s) -> soft masks -> masked complex STFT -> inverse
STFT. With ``stft="native"`` the STFT runs at the input rate with Spleeter's Hz per bin and
frames per second (n_fft 1486, hop 372 at 16 kHz) instead of resampling to 44.1 kHz: bins 0..743
map onto Spleeter's bins 0..743 and the U-Net's bins above (8 kHz and up, silent at 16 kHz) are
zeros. Magnitudes are scaled by 4096 / n_fft so that levels match the 44.1 kHz STFT.

Masks sum to one in every bin (ratio masks), so ``vocals + accompaniment == mix`` up to float
rounding; bins above the U-Net's height go wholly to the accompaniment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch
import torch.nn.functional as F

from singerid.errors import AudioError, ParameterError
from singerid.separation.checkpoint import load_unet
from singerid.separation.config import (SPLEETER_HOP, SPLEETER_N_FFT, SPLEETER_RATE_HZ, SeparationConfig)
from singerid.separation.stft import StftGeometry, scaled_geometry, stream_stft_process
from singerid.separation.unet import STRIDE_TOTAL, UNet

log = logging.getLogger(__name__)

MASK_EPS = 1e-10  # Spleeter's epsilon in the ratio masks
SAMPLE_RATE_HZ = 16_000  # what the pipeline feeds (singerid.constants.SAMPLE_RATE_HZ)


@dataclass(frozen=True, slots=True)
class Stems:
    """The separated signal: each float32 (n,) mono at the input's rate, n = input length."""

    vocals: np.ndarray
    accompaniment: np.ndarray

    def __len__(self) -> int:
        return int(self.vocals.size)


class Separator:
    """Spleeter 2-stem separation; build with ``Separator.load(cfg)``, then ``separate(wave)``."""

    def __init__(self, cfg: SeparationConfig, nets: dict[str, UNet], *, device: str = "cpu") -> None:
        """``nets``: {"vocals": UNet, "accompaniment": UNet} (the latter for ``cfg.nets == "both"``),
        moved to ``device`` and ``cfg.precision`` in place. Most callers want ``Separator.load``."""
        needed = ("vocals", "accompaniment") if cfg.nets == "both" else ("vocals",)
        missing = [stem for stem in needed if stem not in nets]
        if missing:
            raise ParameterError(f"Separator needs U-Nets for {needed}, missing {missing}")
        self.cfg = cfg
        self.device = torch.device(device)
        dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float32
        self._dtype = dtype
        self._nets = [nets[stem].to(self.device, dtype) for stem in needed]
        self._channels_last = all(getattr(net, "_fused", False) for net in self._nets)
        if cfg.precision == "bf16" and self.device.type == "cpu" and not _cpu_has_bf16():
            log.warning("this CPU has no native bf16 (AMX / AVX512-BF16): separation may be slower than "
                        "with SeparationConfig(precision='fp32')")

    @classmethod
    def load(cls, cfg: SeparationConfig | None = None, *, device: str = "cpu", fuse: bool = True) -> Separator:
        """Load the pinned checkpoints for ``cfg`` (default ``SeparationConfig()``).

        ``fuse`` folds the batch norms and uses channels_last (same output to float rounding).
        Raises ArtefactError if the weights are missing or do not match the config's SHA-256s.
        """
        cfg = cfg or SeparationConfig()
        nets = {"vocals": load_unet("vocals", expected_sha256=cfg.vocals_sha256)}
        if cfg.nets == "both":
            nets["accompaniment"] = load_unet("accompaniment", expected_sha256=cfg.accompaniment_sha256)
        if fuse:
            nets = {stem: net.fuse() for stem, net in nets.items()}
        return cls(cfg, nets, device=device)

    # --- public API ----------------------------------------------------------------------------

    def separate(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE_HZ) -> Stems:
        """Separate one whole signal: float32 (n,) mono -> Stems of two float32 (n,) arrays.

        Raises AudioError for an empty or non-finite signal, ParameterError for a wrong shape,
        dtype or sample rate.
        """
        check_wave(wave, sample_rate)
        parts = list(self.iter_separate([wave], sample_rate=sample_rate))
        return Stems(vocals=np.concatenate([p.vocals for p in parts]),
                     accompaniment=np.concatenate([p.accompaniment for p in parts]))

    def iter_separate(self, chunks: Iterable[np.ndarray], sample_rate: int = SAMPLE_RATE_HZ) -> Iterator[Stems]:
        """Separate a signal given as consecutive chunks, in bounded memory.

        Yields Stems pieces whose concatenation has the total input length. Chunk boundaries
        change nothing: the STFT is computed on the global frame grid and the U-Net patches
        are aligned to it, so the result equals ``separate`` on the whole signal up to float
        rounding. Memory holds about ``cfg.chunk_seconds`` of audio plus one input chunk.
        """
        geom = self._geometry(sample_rate)
        frames_per_second = geom.sample_rate / geom.hop_samples
        patches = max(1, round(self.cfg.chunk_seconds * frames_per_second / self.cfg.patch_frames))
        seen = [0]  # input samples so far

        def checked() -> Iterator[np.ndarray]:
            for chunk in chunks:
                seen[0] += check_wave(chunk, sample_rate, allow_empty=True).size
                yield chunk

        segment_frames = patches * self.cfg.patch_frames
        if self.cfg.stft == "native":
            outs = stream_stft_process(checked(), geom, segment_frames=segment_frames, n_outputs=2,
                                       process=self._masked_spectra)
            yield from (Stems(vocals=v, accompaniment=a) for v, a in outs)
            return
        outs = stream_stft_process(_resampled(checked(), sample_rate, geom.sample_rate), geom,
                                   segment_frames=segment_frames, n_outputs=2, process=self._masked_spectra)
        yield from _exact_length(_resampled_back(outs, geom.sample_rate, sample_rate), seen)

    def separate_file(self, path: str | Path, *, chunk_seconds: float | None = None) -> Stems:
        """Decode ``path`` to 16 kHz mono in chunks and separate it (see ``iter_separate_file``)."""
        parts = list(self.iter_separate_file(path, chunk_seconds=chunk_seconds))
        return Stems(vocals=np.concatenate([p.vocals for p in parts]),
                     accompaniment=np.concatenate([p.accompaniment for p in parts]))

    def iter_separate_file(self, path: str | Path, *, chunk_seconds: float | None = None) -> Iterator[Stems]:
        """Stream ``path``: decoded with ``singerid.audio.iter_audio`` at 16 kHz, separated piece by piece.

        Raises AudioError for unreadable, corrupt, non-finite or silent audio.
        """
        from singerid.audio import iter_audio

        chunks = iter_audio(path, sample_rate=SAMPLE_RATE_HZ, chunk_seconds=chunk_seconds or self.cfg.chunk_seconds)
        yield from self.iter_separate(chunks, sample_rate=SAMPLE_RATE_HZ)

    # --- internals -----------------------------------------------------------------------------

    def _geometry(self, sample_rate: int) -> StftGeometry:
        rate = self.cfg.work_rate or sample_rate
        return scaled_geometry(rate, ref_rate=SPLEETER_RATE_HZ, ref_n_fft=SPLEETER_N_FFT, ref_hop=SPLEETER_HOP)

    def _masked_spectra(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, bins) complex64 -> (vocals, accompaniment) masked spectra, same shape."""
        n_frames, n_bins = spec.shape
        n_fft = 2 * (n_bins - 1)
        height = min(n_bins, self.cfg.freq_bins)
        level = SPLEETER_N_FFT / n_fft * 10.0 ** (self.cfg.input_gain_db / 20.0)
        mag = spec[:, :height].abs() * level  # (K, height), at the 44.1 kHz STFT's level
        mag = F.pad(mag, (0, self.cfg.freq_bins - height))  # (K, F)
        mask_v = self._vocal_mask(mag)[:n_frames, :height]  # (K, height) in [0, 1]
        mask_v = F.pad(mask_v, (0, n_bins - height))  # vocals get nothing above the net's bins
        vocals = spec * mask_v
        return vocals, spec - vocals

    @torch.inference_mode()
    def _vocal_mask(self, mag: torch.Tensor) -> torch.Tensor:
        """(K, F) float32 magnitudes -> vocal ratio mask (K', F), K' >= K (patch padding)."""
        cfg = self.cfg
        t = cfg.patch_frames
        n_full, rest = divmod(mag.shape[0], t)
        pieces = [mag[: n_full * t].reshape(n_full, t, cfg.freq_bins)] if n_full else []  # (P, T, F)
        if rest:
            width = -(-rest // STRIDE_TOTAL) * STRIDE_TOTAL if cfg.trim_last_patch else t
            pieces.append(F.pad(mag[n_full * t:], (0, 0, 0, width - rest))[None])  # (1, width, F)
        masks = []
        for group in pieces:
            for start in range(0, group.shape[0], cfg.batch_patches):
                masks.append(self._patch_mask(group[start:start + cfg.batch_patches]))
        return torch.cat([m.reshape(-1, cfg.freq_bins) for m in masks])

    def _patch_mask(self, mag: torch.Tensor) -> torch.Tensor:
        """(B, T, F) magnitudes -> (B, T, F) vocal mask in [0, 1], float32."""
        x = mag[:, None].expand(-1, 2, -1, -1).to(self.device, self._dtype)  # (B, 2 stereo, T, F)
        x = x.contiguous(memory_format=torch.channels_last if self._channels_last else torch.contiguous_format)
        p = self.cfg.mask_exponent
        if self.cfg.nets == "both":
            est_v = self._nets[0](x).float().mean(dim=1)  # (B, T, F) estimated vocal magnitude
            est_a = self._nets[1](x).float().mean(dim=1)
            power_v, power_a = est_v ** p, est_a ** p
            return ((power_v + MASK_EPS / 2) / (power_v + power_a + MASK_EPS)).cpu()
        m_v = self._nets[0].mask(x).float().mean(dim=1)  # (B, T, F) sigmoid mask
        power_v, power_a = m_v ** p, (1.0 - m_v) ** p
        return ((power_v + MASK_EPS / 2) / (power_v + power_a + MASK_EPS)).cpu()


def check_wave(wave: object, sample_rate: int, *, allow_empty: bool = False) -> np.ndarray:
    """Validate a mono float32 signal; returns it. Raises ParameterError / AudioError (one line)."""
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate < 8000:
        raise ParameterError(f"sample_rate must be an integer >= 8000 Hz, got {sample_rate!r}")
    if not isinstance(wave, np.ndarray):
        raise ParameterError(f"expected a numpy float32 array, got {type(wave).__name__}")
    if wave.ndim != 1:
        raise ParameterError(f"expected mono audio of shape (n,), got shape {wave.shape}")
    if wave.dtype != np.float32:
        raise ParameterError(f"expected float32 samples, got {wave.dtype}")
    if wave.size == 0 and not allow_empty:
        raise AudioError("empty signal (0 samples)")
    if not np.isfinite(wave).all():
        raise AudioError("signal contains NaN or infinite samples")
    return wave


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private API; assume the worst
        return False


def _resampled(chunks: Iterable[np.ndarray], rate_in: int, rate_out: int) -> Iterator[np.ndarray]:
    """Stream-resample mono chunks (soxr HQ) from ``rate_in`` to ``rate_out``."""
    stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality="HQ")
    for chunk in chunks:
        yield stream.resample_chunk(chunk)
    yield stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def _resampled_back(outs: Iterable[tuple[np.ndarray, ...]], rate_in: int, rate_out: int) -> Iterator[Stems]:
    """Resample stem pieces back to ``rate_out`` (total length within a sample or two of exact)."""
    streams = [soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality="HQ") for _ in range(2)]
    for v, a in outs:
        yield Stems(*(s.resample_chunk(x) for s, x in zip(streams, (v, a))))
    yield Stems(*(s.resample_chunk(np.zeros(0, dtype=np.float32), last=True) for s in streams))


def _exact_length(pieces: Iterable[Stems], seen: list[int]) -> Iterator[Stems]:
    """Cut or zero-pad resampled pieces so that their total is ``seen[0]``, the input length."""
    done = 0
    for piece in pieces:
        keep = max(0, min(len(piece), seen[0] - done))
        if keep:
            done += keep
            yield Stems(piece.vocals[:keep], piece.accompaniment[:keep])
    if done < seen[0]:
        pad = np.zeros(seen[0] - done, dtype=np.float32)
        yield Stems(pad, pad.copy())

"""Streaming STFT -> spectral processing -> inverse STFT, exact at any chunking.

Equal to ``torch.stft(center=True, pad_mode="constant")`` / ``torch.istft(center=True)`` on the
whole signal: frame ``k`` covers the zero-padded signal ``xp = [0]*half + x + [0]*half`` from
``k * hop`` to ``k * hop + n_fft`` (``L = 1 + n // hop`` frames), and the inverse divides the
overlap-added ``irfft * window`` by the overlap-added squared window. Frames are processed in
segments of ``segment_frames`` on the global frame grid, so a process function that treats
patches of frames independently (the U-Net) gives the same result however the input is chunked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from singerid.errors import ParameterError

# spectrum (frames, bins) complex64 -> one masked spectrum per output stem, same shape
SpectralProcess = Callable[[torch.Tensor], tuple[torch.Tensor, ...]]


@dataclass(frozen=True, slots=True)
class StftGeometry:
    """STFT frame and hop in samples at one sample rate."""

    sample_rate: int  # Hz
    n_fft: int  # samples per frame, even
    hop_samples: int  # samples between frames

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


def scaled_geometry(sample_rate: int, *, ref_rate: int, ref_n_fft: int, ref_hop: int) -> StftGeometry:
    """The STFT at ``sample_rate`` with the reference's Hz per bin and frames per second.

    At 16 kHz against Spleeter's 44.1 kHz 4096/1024: n_fft = 1486 (10.77 Hz/bin, as 4096 at
    44.1 kHz), hop = 372 (43.0 frames/s against 43.07). n_fft is rounded to an even number.
    """
    n_fft = 2 * round(ref_n_fft * sample_rate / ref_rate / 2)
    hop = round(ref_hop * sample_rate / ref_rate)
    if n_fft < 4 or hop < 1 or hop > n_fft // 2:
        raise ParameterError(f"sample rate {sample_rate} Hz is too low for the STFT (n_fft={n_fft}, hop={hop})")
    return StftGeometry(sample_rate=sample_rate, n_fft=n_fft, hop_samples=hop)


def stream_stft_process(chunks: Iterable[np.ndarray], geom: StftGeometry, *, segment_frames: int,
                        n_outputs: int, process: SpectralProcess) -> Iterator[tuple[np.ndarray, ...]]:
    """Apply ``process`` to the STFT of a streamed signal and stream the inverse STFTs back.

    chunks: float32 (m,) pieces of one signal, any sizes. Yields tuples of ``n_outputs`` float32
    arrays of equal length; concatenated, each output has exactly the input's total length.
    Memory is bounded by about ``segment_frames * hop_samples`` samples plus the largest chunk.
    """
    n_fft, hop, half = geom.n_fft, geom.hop_samples, geom.n_fft // 2
    window = torch.hann_window(n_fft, dtype=torch.float64).float()
    buf = np.zeros(half, dtype=np.float32)  # xp samples from xp index f0 * hop
    f0 = 0  # first frame not yet processed
    n_in = 0  # input samples seen
    n_out = 0  # samples yielded (x coordinates)
    ola = torch.zeros(n_outputs + 1, 0)  # per output + the squared window; from xp index f0 * hop
    need = (segment_frames - 1) * hop + n_fft  # xp samples a full segment reads

    def run(n_frames: int, xp: np.ndarray) -> None:
        nonlocal ola
        frames = torch.from_numpy(xp[: (n_frames - 1) * hop + n_fft]).unfold(0, n_fft, hop)  # (K, n_fft)
        spec = torch.fft.rfft(frames * window)  # (K, bins) complex64
        outs = process(spec)
        stacked = torch.stack([torch.fft.irfft(o, n=n_fft) * window for o in outs]
                              + [(window * window).expand(n_frames, n_fft)])  # (n_outputs + 1, K, n_fft)
        span = (n_frames - 1) * hop + n_fft
        added = _overlap_add(stacked, hop)[:, :span]  # (n_outputs + 1, span)
        if ola.shape[1] < span:
            ola = F.pad(ola, (0, span - ola.shape[1]))
        ola[:, :span] += added

    def emit(upto_xp: int) -> tuple[np.ndarray, ...]:
        """Yieldable samples from n_out up to xp index ``upto_xp`` (final), dropping them from ola."""
        nonlocal ola, n_out
        start_xp = n_out + half  # xp index of the next sample to yield
        lo, hi = start_xp - f0 * hop, upto_xp - f0 * hop
        piece = ola[:, lo:hi]
        out = piece[:-1] / piece[-1].clamp_min(1e-11)
        n_out += hi - lo
        return tuple(o.numpy().astype(np.float32, copy=False) for o in out)

    for chunk in chunks:
        n_in += chunk.size
        buf = np.concatenate([buf, chunk.astype(np.float32, copy=False)])
        while buf.size >= need:
            run(segment_frames, buf)
            done_xp = (f0 + segment_frames) * hop
            yield emit(done_xp)
            buf = buf[segment_frames * hop:]
            ola = ola[:, segment_frames * hop:]
            f0 += segment_frames
    n_frames_total = 1 + n_in // hop
    remaining = n_frames_total - f0
    if remaining > 0:
        tail = (remaining - 1) * hop + n_fft
        buf = np.concatenate([buf, np.zeros(max(0, tail - buf.size), dtype=np.float32)])
        run(remaining, buf)
    if n_in > n_out:
        yield emit(n_in + half)


def _overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Overlap-add (S, K, n) frames at ``hop``: (S, (K + m - 1) * hop) with m = ceil(n / hop).

    Frames are cut into m hop-long pieces; piece j of frame k lands on hop-slot k + j, so the sum
    is m vectorised slot additions (``F.fold`` does the same but is several times slower).
    """
    s, k, n = frames.shape
    m = -(-n // hop)
    pieces = F.pad(frames, (0, m * hop - n)).reshape(s, k, m, hop)
    out = torch.zeros(s, k + m - 1, hop, dtype=frames.dtype)
    for j in range(m):
        out[:, j:j + k] += pieces[:, :, j]
    return out.reshape(s, -1)

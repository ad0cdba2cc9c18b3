"""Log-mel spectrogram, whole-signal or streamed, identical either way. No torch here.

The definition is librosa's (``melspectrogram(center=True, pad_mode="constant")`` then
``power_to_db(ref=1.0, amin=1e-10, top_db=None)``), the CRNN baseline's front end, computed
with scipy's FFT so that it can be streamed: frame ``t`` covers samples
``[t*hop - n_fft/2, t*hop + n_fft/2)`` of the zero-padded signal, and a signal of ``n``
samples gives ``1 + n // hop`` frames. ``top_db`` is off because its clipping is relative to
the loudest frame of whatever was passed in, which would make features depend on chunking.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import librosa
import numpy as np
import scipy.fft

from singerid import constants as C
from singerid.config import FeatureConfig


class LogMel:
    """Callable log-mel front end for one ``FeatureConfig``.

    ``logmel(signal)`` takes mono float32 (n,) at ``cfg.sample_rate`` and returns float32
    (n_mels, 1 + n // hop) in dB (10 log10 of mel power, floored at -100 dB).
    """

    def __init__(self, cfg: FeatureConfig, *, fft_workers: int = 1) -> None:
        self.cfg = cfg
        self.fft_workers = fft_workers
        self._filters = librosa.filters.mel(
            sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin_hz, fmax=cfg.fmax_hz
        ).astype(np.float32)  # (n_mels, 1 + n_fft // 2)
        self._window = np.hanning(cfg.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann (librosa's "hann")

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        return np.concatenate(list(self.stream([signal])), axis=1)

    def stream(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield float32 (n_mels, frames) pieces for consecutive signal chunks.

        Concatenated along axis 1 they equal ``self(np.concatenate(chunks))`` exactly.
        """
        half = self.cfg.n_fft // 2
        buf = np.zeros(half, dtype=np.float32)  # left padding of center=True
        for chunk in chunks:
            buf = np.concatenate([buf, np.asarray(chunk, dtype=np.float32)])
            frames, buf = self._frames(buf)
            if frames.shape[1]:
                yield frames
        buf = np.concatenate([buf, np.zeros(half, dtype=np.float32)])  # right padding
        frames, _ = self._frames(buf)
        if frames.shape[1]:
            yield frames

    def _frames(self, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (log-mel of every whole frame in ``buf``, the samples still needed later)."""
        n_fft, hop = self.cfg.n_fft, self.cfg.hop_samples
        n_frames = 0 if buf.size < n_fft else 1 + (buf.size - n_fft) // hop
        if n_frames == 0:
            return np.zeros((self.cfg.n_mels, 0), dtype=np.float32), buf
        windows = np.lib.stride_tricks.sliding_window_view(buf, n_fft)[::hop][:n_frames]  # (frames, n_fft)
        spectrum = scipy.fft.rfft(windows * self._window, axis=1, workers=self.fft_workers)  # (frames, bins)
        power = spectrum.real**2 + spectrum.imag**2
        mel = self._filters @ power.T  # (n_mels, frames)
        logmel = 10.0 * np.log10(np.maximum(mel, C.AMIN_POWER, dtype=np.float32))
        return logmel.astype(np.float32, copy=False), buf[n_frames * hop:].copy()

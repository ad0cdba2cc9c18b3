"""Resemblyzer's pretrained GE2E speaker encoder, as an off-the-shelf block embedder.

Wan, Wang, Papir & Lopez Moreno (2018), "Generalized End-to-End Loss for Speaker
Verification" (ICASSP): a 3-layer LSTM over 40 mel bands whose last hidden state, through a
linear layer and a ReLU, is the L2-normalised speaker embedding. The weights are those that
ship in the resemblyzer 0.1.4 wheel (``resemblyzer/pretrained.pt``, trained by Resemble AI on
speech: LibriSpeech, VoxCeleb 1 and 2). We define the network ourselves and never import the
resemblyzer package (its audio module needs webrtcvad); the weight file is pinned by SHA-256.

Front end as resemblyzer's ``audio.py``: 16 kHz, volume raised (never lowered) to -30 dBFS,
power mel (not log) from librosa with a 25 ms window (400 samples) and a 10 ms hop (160), 40
bands, float32. Two deliberate differences, so that rows line up with our log-mel blocks
(``singerid.audio.blocks``): no VAD silence trimming, and each 1-s block (32 frames x 512 hop
= 16384 samples, 103 mel frames) is embedded as one partial utterance, volume-normalised on
its own, instead of 160-frame partials averaged over an utterance.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from singerid import constants as C
from singerid.audio.blocks import block_starts
from singerid.devices import check_device
from singerid.errors import ArtefactError, AudioError, ParameterError

__all__ = ["EMBEDDING_DIM", "GE2E_SAMPLE_RATE_HZ", "Ge2eEncoder", "Ge2eNetwork", "find_weights", "load_state"]

log = logging.getLogger(__name__)

RESEMBLYZER_VERSION = "0.1.4"  # the wheel whose weights are pinned below
WEIGHTS_MEMBER = "resemblyzer/pretrained.pt"  # inside the installed wheel
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"  # of that file
INSTALL_HINT = f"pip install --no-deps resemblyzer=={RESEMBLYZER_VERSION}"
IGNORED_KEYS = ("similarity_weight", "similarity_bias")  # GE2E loss scale / bias, training only

GE2E_SAMPLE_RATE_HZ = 16_000  # resemblyzer hparams.sampling_rate
WINDOW_SAMPLES = 400  # resemblyzer: mel_window_length 25 ms at 16 kHz (n_fft)
HOP_SAMPLES = 160  # resemblyzer: mel_window_step 10 ms at 16 kHz
N_MELS = 40  # resemblyzer: mel_n_channels
TARGET_DBFS = -30.0  # resemblyzer: audio_norm_target_dBFS, increase only
HIDDEN_SIZE = 256  # resemblyzer: model_hidden_size
N_LAYERS = 3  # resemblyzer: model_num_layers
EMBEDDING_DIM = 256  # resemblyzer: model_embedding_size
BLOCK_SAMPLES = C.BLOCK_FRAMES * C.HOP_SAMPLES  # ours: one block, 32 frames x 512 = 16384 samples (1.02 s)
BATCH_BLOCKS = 64  # ours: blocks per forward pass (about 1 MB of mel input)


class Ge2eNetwork(nn.Module):
    """The GE2E encoder: mel frames -> float32 (batch, 256) L2-normalised (non-negative) embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN_SIZE, N_LAYERS, batch_first=True)  # (batch, frames, 40) -> 256
        self.linear = nn.Linear(HIDDEN_SIZE, EMBEDDING_DIM)  # 256 -> 256

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """float32 (batch, frames, 40) power mel -> float32 (batch, 256), unit L2 norm."""
        _, (hidden, _) = self.lstm(mels)  # hidden: (layers, batch, 256)
        raw = torch.relu(self.linear(hidden[-1]))  # (batch, 256), >= 0
        return nn.functional.normalize(raw, p=2.0, dim=1)  # a row of zeros stays zeros (never seen)


def find_weights() -> Path:
    """Path of ``pretrained.pt`` inside the installed resemblyzer wheel.

    Raises ArtefactError (saying how to install it) when resemblyzer is not installed or
    the file is missing from it.
    """
    try:
        dist = importlib.metadata.distribution("resemblyzer")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ArtefactError(f"the GE2E encoder needs the weights of resemblyzer {RESEMBLYZER_VERSION}, which is "
                            f"not installed; run `{INSTALL_HINT}`") from exc
    path = Path(str(dist.locate_file(WEIGHTS_MEMBER)))
    if not path.is_file():
        raise ArtefactError(f"{path}: missing from the installed resemblyzer {dist.version}; run `{INSTALL_HINT}`")
    return path


def load_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The encoder's tensors (``lstm.*``, ``linear.*``) from ``path`` (default: ``find_weights()``).

    The file must have the pinned SHA-256; it is unpickled with ``weights_only=True`` from
    the very bytes that were hashed. Raises ArtefactError for a missing, tampered or
    unreadable file.
    """
    path = find_weights() if path is None else Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtefactError(f"{path}: cannot read the GE2E weights ({exc.strerror or exc}); "
                            f"run `{INSTALL_HINT}`") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ArtefactError(f"{path}: SHA-256 {digest[:12]}... is not that of resemblyzer {RESEMBLYZER_VERSION}'s "
                            f"pretrained.pt ({WEIGHTS_SHA256[:12]}...); the file is altered, reinstall with "
                            f"`{INSTALL_HINT}`")
    try:
        checkpoint = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        state = checkpoint["model_state"]
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ArtefactError(f"{path}: not a resemblyzer checkpoint ({type(exc).__name__}: {exc})") from exc
    return {k: v for k, v in state.items() if k not in IGNORED_KEYS}


class Ge2eEncoder:
    """The loaded GE2E encoder on one device. Build it with ``Ge2eEncoder.load``.

    Attributes: ``weights_sha256`` (hex, of pretrained.pt), ``device``, ``embedding_dim`` (256),
    ``sample_rate`` (16000 Hz).
    """

    embedding_dim = EMBEDDING_DIM
    sample_rate = GE2E_SAMPLE_RATE_HZ

    def __init__(self, network: Ge2eNetwork, *, device: str) -> None:
        self.device = device
        self.weights_sha256 = WEIGHTS_SHA256
        self._network = network

    @classmethod
    def load(cls, device: str = "cpu", *, weights: str | Path | None = None) -> Ge2eEncoder:
        """Load the pinned weights (``weights``: an explicit pretrained.pt, default the installed
        wheel's) strictly into our network, in eval mode on ``device`` ("cpu", "cuda", "cuda:1").

        Raises ArtefactError for missing, tampered or ill-fitting weights, ParameterError for an
        unavailable device.
        """
        dev = check_device(device)
        state = load_state(weights)
        network = Ge2eNetwork()
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ArtefactError(f"GE2E weights do not fit the encoder ({first}); "
                                f"reinstall with `{INSTALL_HINT}`") from exc
        network.to(dev).eval()
        log.info("loaded the GE2E encoder (resemblyzer %s weights) on %s", RESEMBLYZER_VERSION, dev)
        return cls(network, device=dev)

    def embed_waveform_blocks(self, blocks: np.ndarray, *, batch_size: int = BATCH_BLOCKS) -> np.ndarray:
        """Embed 16-kHz waveform blocks, each as one partial utterance.

        blocks: float32 (n, block_samples), block_samples >= 400 (one mel window), finite.
        Returns float32 (n, 256), C-contiguous, unit L2 norm, non-negative. Each block is
        raised to -30 dBFS if quieter (digital silence is left as it is), then turned into a
        (1 + block_samples // 160, 40) power mel. Raises ParameterError for a bad shape, dtype
        or batch_size, AudioError for NaN or infinite samples.
        """
        x = _check_blocks(blocks)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
        out = np.empty((x.shape[0], EMBEDDING_DIM), dtype=np.float32)
        with torch.inference_mode():
            for lo in range(0, x.shape[0], batch_size):
                mels = power_mel(normalise_volume(x[lo:lo + batch_size]))  # (batch, frames, 40)
                emb = self._network(torch.from_numpy(mels).to(self.device))  # (batch, 256)
                out[lo:lo + mels.shape[0]] = emb.float().cpu().numpy()
        return out

    def embed_waveform(self, wave: np.ndarray, sample_rate: int = GE2E_SAMPLE_RATE_HZ, *,
                       block_samples: int = BLOCK_SAMPLES, hop_samples: int = BLOCK_SAMPLES,
                       batch_size: int = BATCH_BLOCKS) -> tuple[np.ndarray, np.ndarray]:
        """Embed a whole mono wave block by block, on the same blocks as our log-mel pipeline.

        wave: float32 (n,) at ``sample_rate`` Hz (resampled to 16 kHz first, as ``load_audio``
        does, if different). ``block_samples`` / ``hop_samples`` are the block length and the
        distance between block starts at 16 kHz, multiples of the log-mel hop (512); the
        defaults are the paper's non-overlapping 32-frame blocks. Block i starts at sample
        ``hop_samples * i``; there are as many blocks as ``singerid.audio.n_blocks`` finds in
        the wave's log-mel (1 + n // 512 frames), so row i is our log-mel block i and the
        offsets are equal. The last block may reach up to 512 samples past the end (zero-filled,
        as the log-mel's centred frames are). No block is dropped for silence.

        Returns (float32 (n_blocks, 256) unit-norm embeddings, float64 (n_blocks,) block start
        times in seconds). Raises ParameterError for bad arguments, AudioError for a non-finite
        wave or one shorter than a block.
        """
        frame_hop = C.HOP_SAMPLES
        for name, value in (("block_samples", block_samples), ("hop_samples", hop_samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % frame_hop:
                raise ParameterError(f"{name} must be a positive multiple of the log-mel hop ({frame_hop} samples), "
                                     f"got {value!r}")
        if hop_samples > block_samples:
            raise ParameterError(f"hop_samples={hop_samples} must not exceed block_samples={block_samples}")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ParameterError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        y = _check_wave(wave)
        if sample_rate != GE2E_SAMPLE_RATE_HZ:
            import soxr

            y = soxr.resample(y, sample_rate, GE2E_SAMPLE_RATE_HZ, quality="HQ").astype(np.float32, copy=False)
        starts = block_starts(1 + y.size // frame_hop, block_frames=block_samples // frame_hop,
                              block_hop_frames=hop_samples // frame_hop) * frame_hop  # int64 (n_blocks,) samples
        if starts.size == 0:
            raise AudioError(f"{y.size / GE2E_SAMPLE_RATE_HZ:.2f} s of audio is shorter than one block "
                             f"({block_samples / GE2E_SAMPLE_RATE_HZ:.2f} s)")
        end = int(starts[-1]) + block_samples
        if end > y.size:
            y = np.concatenate([y, np.zeros(end - y.size, dtype=np.float32)])
        blocks = np.lib.stride_tricks.sliding_window_view(y, block_samples)[starts]  # (n_blocks, block_samples)
        embeddings = self.embed_waveform_blocks(np.ascontiguousarray(blocks), batch_size=batch_size)
        return embeddings, starts / GE2E_SAMPLE_RATE_HZ


def normalise_volume(blocks: np.ndarray) -> np.ndarray:
    """Raise each row of float32 (n, samples) to -30 dBFS RMS if quieter; float32 (n, samples).

    As resemblyzer's ``normalize_volume(increase_only=True)``, per block; an all-zero row is
    left as it is (resemblyzer would divide by zero).
    """
    rms = np.sqrt(np.mean(np.square(blocks, dtype=np.float64), axis=1))  # (n,)
    target = 10.0 ** (TARGET_DBFS / 20.0)
    gain = np.where((rms > 0) & (rms < target), target / np.maximum(rms, 1e-300), 1.0)  # (n,)
    return (blocks * gain[:, None]).astype(np.float32)


def power_mel(blocks: np.ndarray) -> np.ndarray:
    """float32 (n, samples) at 16 kHz -> float32 (n, 1 + samples // 160, 40) power mel, as
    resemblyzer's ``wav_to_mel_spectrogram`` (librosa defaults: centred frames, Hann window,
    Slaney mel filters)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=blocks, sr=GE2E_SAMPLE_RATE_HZ, n_fft=WINDOW_SAMPLES,
                                         hop_length=HOP_SAMPLES, n_mels=N_MELS)  # (n, 40, frames)
    return np.ascontiguousarray(mel.transpose(0, 2, 1), dtype=np.float32)


def _check_blocks(blocks: np.ndarray) -> np.ndarray:
    if not isinstance(blocks, np.ndarray) or blocks.ndim != 2 or blocks.shape[1] < WINDOW_SAMPLES:
        shape = getattr(blocks, "shape", type(blocks).__name__)
        raise ParameterError(f"blocks must be an array (n, block_samples) with block_samples >= {WINDOW_SAMPLES}, "
                             f"got {shape}")
    if blocks.dtype != np.float32:
        raise ParameterError(f"blocks must be float32 samples, got dtype {blocks.dtype}")
    if not np.isfinite(blocks).all():
        bad = int(np.count_nonzero(~np.isfinite(blocks).all(axis=1)))
        raise AudioError(f"blocks contain NaN or infinite samples ({bad} of {len(blocks)} blocks)")
    return blocks


def _check_wave(wave: np.ndarray) -> np.ndarray:
    if not isinstance(wave, np.ndarray) or wave.ndim != 1:
        shape = getattr(wave, "shape", type(wave).__name__)
        raise ParameterError(f"wave must be a mono array (n,), got {shape}")
    if wave.dtype != np.float32:
        raise ParameterError(f"wave must be float32 samples, got dtype {wave.dtype}")
    if not np.isfinite(wave).all():
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise AudioError(f"wave contains NaN or infinite samples ({bad} of {wave.size})")
    return wave

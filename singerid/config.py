"""Frozen, typed configuration of every stage. Defaults come from ``singerid.constants``.

Each config round-trips through ``to_dict`` / ``from_dict`` so that it can be stored beside
the artefact it produced (checkpoint sidecar, index info, manifest) and compared on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from singerid import constants as C
from singerid.errors import ParameterError

T = TypeVar("T")

ModelKind = Literal["crnn", "attcrnn"]
HEADS = ("softmax", "aam")  # stage-1 classifier: linear softmax (paper) or additive angular margin (ours)
BACKENDS = ("none", "lda-wccn", "auto")  # projection fitted on the reference set at build-index (ours);
# "auto" = the back end recorded with the model by its training recipe
IndexType = Literal["flat", "flat-fp16", "ivf-flat", "ivf-pq", "hnsw", "auto"]


class _Serialisable:
    """Mixin: dict/JSON round trip, strict about unknown keys, and a stable content hash."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ParameterError(f"{cls.__name__}: unknown field(s) {unknown}")
        kwargs = {}
        for key, value in data.items():
            if isinstance(value, list):  # JSON has no tuples
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[key] = value
        return cls(**kwargs)

    def fingerprint(self) -> str:
        """SHA-256 (hex, first 16 chars) of the canonical JSON form; equal configs, equal hash."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class FeatureConfig(_Serialisable):
    """Log-mel front end and block segmentation. Saved with every artefact, checked on load."""

    sample_rate: int = C.SAMPLE_RATE_HZ  # Hz; audio is mixed to mono and resampled to this
    n_fft: int = C.N_FFT_SAMPLES  # samples per STFT frame (CRNN baseline)
    hop_samples: int = C.HOP_SAMPLES  # samples between frames (CRNN baseline)
    n_mels: int = C.N_MELS  # mel bands (CRNN baseline)
    fmin_hz: float = C.FMIN_HZ  # lowest mel edge
    fmax_hz: float | None = None  # highest mel edge; None = sample_rate / 2
    block_frames: int = C.BLOCK_FRAMES  # frames per block (paper §3.3: 32 frames = 1 s)
    block_hop_frames: int = C.BLOCK_HOP_FRAMES  # frames between block starts (ours: no overlap)
    silence_db: float | None = None  # drop blocks whose mean mel power is below this (dB); off

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_samples", "n_mels", "block_frames", "block_hop_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ParameterError(f"FeatureConfig.{name} must be a positive integer, got {value!r}")
        if self.hop_samples > self.n_fft:
            raise ParameterError(f"hop_samples={self.hop_samples} must not exceed n_fft={self.n_fft}")
        if self.block_hop_frames > self.block_frames:
            raise ParameterError(
                f"block_hop_frames={self.block_hop_frames} must not exceed block_frames={self.block_frames}"
            )

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_samples

    @property
    def block_seconds(self) -> float:
        """Duration of one block in seconds (32 x 512 / 16000 = 1.024 s by default)."""
        return self.block_frames * self.hop_samples / self.sample_rate

    @property
    def block_hop_seconds(self) -> float:
        return self.block_hop_frames * self.hop_samples / self.sample_rate


@dataclass(frozen=True, slots=True)
class ModelConfig(_Serialisable):
    """Architecture of the CRNN / Attention-CRNN embedder (stage 1 of the paper)."""

    kind: ModelKind = "attcrnn"  # "crnn" = baseline (Table 1 row 1); "attcrnn" = with attention
    n_classes: int = 0  # singers in the softmax head; set from the training data
    n_mels: int = C.N_MELS  # input height; must equal FeatureConfig.n_mels
    block_frames: int = C.BLOCK_FRAMES  # input width; must equal FeatureConfig.block_frames
    conv_filters: tuple[int, ...] = C.CONV_FILTERS  # CRNN baseline
    pool_sizes: tuple[tuple[int, int], ...] = C.POOL_SIZES  # CRNN baseline (freq, time)
    conv_dropout: float = C.CONV_DROPOUT  # CRNN baseline
    gru_units: int = C.GRU_UNITS  # CRNN baseline; also the embedding size d
    gru_layers: int = C.GRU_LAYERS  # CRNN baseline
    gru_dropout: float = C.GRU_DROPOUT  # CRNN baseline
    head: str = "softmax"  # "softmax" = the paper; "aam" = additive angular margin softmax (ours, ECAPA-style)

    def __post_init__(self) -> None:
        if self.kind not in ("crnn", "attcrnn"):
            raise ParameterError(f"model kind must be 'crnn' or 'attcrnn', got {self.kind!r}")
        if self.head not in HEADS:
            raise ParameterError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if len(self.conv_filters) != len(self.pool_sizes):
            raise ParameterError("conv_filters and pool_sizes must have the same length")

    @property
    def embedding_dim(self) -> int:
        """d of the block embedding: the GRU width (last state for CRNN, context for attention)."""
        return self.gru_units


@dataclass(frozen=True, slots=True)
class TrainConfig(_Serialisable):
    """Stage-1 training. Defaults are the CRNN baseline's (the KNN-Net paper gives none)."""

    epochs: int = C.MAX_EPOCHS  # CRNN baseline: up to 200 epochs
    batch_size: int = C.BATCH_SIZE  # CRNN baseline: 16
    lr: float = C.LEARNING_RATE  # CRNN baseline: Adam 1e-3
    patience: int = C.PATIENCE_EPOCHS  # CRNN baseline: early stopping patience 10
    seed: int = 0  # CRNN baseline seeds are 0, 21, 42
    workers: int = 0  # data-loader processes; 0 = load in the main process
    remix: bool = False  # ours: shuffle-and-remix separated vocals over other albums' accompaniment (Hsieh 2020)
    gain_tilt: bool = False  # ours: random gain and spectral tilt (EQ) per block
    album_adversary: float = 0.0  # ours: weight of an album classifier behind gradient reversal; 0 = off

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ParameterError("epochs, batch_size and patience must be >= 1")
        if not self.album_adversary >= 0:
            raise ParameterError(f"album_adversary must be >= 0, got {self.album_adversary!r}")
        if not self.lr > 0:
            raise ParameterError(f"lr must be > 0, got {self.lr!r}")


@dataclass(frozen=True, slots=True)
class IndexConfig(_Serialisable):
    """FAISS index of the reference block embeddings (stage 2)."""

    index_type: IndexType = "flat"  # exact inner product = the paper's dense KNN layer
    nlist: int | None = None  # IVF cells; None = chosen from the vector count
    m: int | None = None  # PQ sub-quantisers (ivf-pq) or HNSW links; None = chosen from d
    nprobe: int | None = None  # IVF cells visited per query; None = tuned by build-index (index.tuning)
    ef_search: int | None = None  # HNSW search breadth; None = tuned by build-index (index.tuning)
    search_agreement: float | None = C.SEARCH_AGREEMENT  # tuning target (song decisions as exact); None = no tuning
    memory_budget_bytes: int = 8 * 1024**3  # RAM the index may use: "auto" chooses by it (ours)
    on_disk: bool = False  # ivf-*: inverted lists in a memory-mapped file ("auto" decides this itself)
    k: int = C.K_NEIGHBOURS  # neighbours per query block (paper §3.3)
    gpu: bool = False
    backend: str = "auto"  # "none" = the paper (raw cosine); "lda-wccn" = ours; "auto" = the model recipe's

    def __post_init__(self) -> None:
        for name in ("nlist", "m", "nprobe", "ef_search"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ParameterError(f"IndexConfig.{name} must be a positive integer or None, got {value!r}")
        if self.search_agreement is not None and not 0 < self.search_agreement <= 1:
            raise ParameterError(f"search agreement must be in (0, 1], got {self.search_agreement!r}")
        if not isinstance(self.memory_budget_bytes, int) or self.memory_budget_bytes < 1:
            raise ParameterError(f"memory budget must be a positive number of bytes, got {self.memory_budget_bytes!r}")
        if self.backend not in BACKENDS:
            raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

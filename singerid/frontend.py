"""What a model hears: the mixed song (the paper) or the voice separated from it (ours).

A ``FrontEndConfig`` is stored in every model's model.json and in the home's manifest; every
step that turns audio into blocks for that model (training, embed-corpus, enrol, query,
evaluate) builds a ``FrontEnd`` from it, so a model never sees audio prepared another way.

``input="mix"``: decode -> log-mel -> blocks, the KNN-Net paper's front end.
``input="vocals"``: decode -> Spleeter 2-stem voice separation (``singerid.separation``) ->
log-mel of the separated voice -> blocks. Separation runs per decoded chunk (about 60 s), the
same in the streamed query path and in the feature cache, so both give the same blocks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from singerid.audio import BlockBatch, LogMel, Source, compute_logmel, iter_song_blocks
from singerid.config import FeatureConfig
from singerid.errors import ParameterError

INPUTS = ("mix", "vocals")  # what the embedder hears
STEMS = ("mix", "vocals", "accompaniment")  # what the feature cache can hold


def _default_separation() -> Any:
    from singerid.separation.config import SeparationConfig

    return SeparationConfig()


@dataclass(frozen=True, slots=True)
class FrontEndConfig:
    """The model's input. ``separation`` matters only when ``input`` is "vocals"."""

    input: str = "mix"  # "mix" = the paper (Table 1 rows); "vocals" = separated voice (ours)
    separation: Any = field(default_factory=_default_separation)  # SeparationConfig

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ParameterError(f"front end input must be one of {', '.join(INPUTS)}, got {self.input!r}")

    @property
    def key(self) -> str:
        """Short identity recorded in the manifest: "mix" or "vocals@<separation fingerprint>"."""
        return "mix" if self.input == "mix" else f"vocals@{self.separation.fingerprint()}"

    def describe(self) -> str:
        return "mix" if self.input == "mix" else f"separated vocals ({self.separation.model})"

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "separation": self.separation.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FrontEndConfig:
        """Parse; ``None`` (a model.json written before front ends existed) is the mix."""
        from singerid.separation.config import SeparationConfig

        if data is None:
            return cls()
        if not isinstance(data, dict) or set(data) - {"input", "separation"}:
            raise ParameterError(f"not a front end config: {data!r}")
        sep = data.get("separation")
        return cls(input=str(data.get("input", "mix")),
                   separation=SeparationConfig.from_dict(sep) if sep else SeparationConfig())


class FrontEnd:
    """Audio file -> log-mel blocks as a model's ``FrontEndConfig`` says.

    The separator loads on first use (a "mix" front end never loads torch weights for it).
    """

    def __init__(self, features: FeatureConfig, cfg: FrontEndConfig = FrontEndConfig(), *,
                 device: str = "cpu") -> None:
        self.features = features
        self.cfg = cfg
        self.device = device
        self._logmel = LogMel(features)
        self._separator: Any = None
        self.separation_seconds = 0.0  # wall time spent separating, summed over every call (for stage timings)

    def stem_transform(self, stem: str):  # noqa: ANN201 - ChunkTransform | None
        """The per-chunk transform giving ``stem`` ("mix", "vocals" or "accompaniment") of a song."""
        if stem not in STEMS:
            raise ParameterError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
        if stem == "mix":
            return None
        separator = self.separator()
        sample_rate = self.features.sample_rate

        def separate(chunk: np.ndarray) -> np.ndarray:
            started = time.perf_counter()
            out = getattr(separator.separate(chunk, sample_rate=sample_rate), stem)
            self.separation_seconds += time.perf_counter() - started
            return out

        return separate

    def separator(self):  # noqa: ANN201 - singerid.separation.Separator
        if self._separator is None:
            from singerid.separation import Separator

            self._separator = Separator.load(self.cfg.separation, device=self.device)
        return self._separator

    def iter_blocks(self, path: Source) -> Iterator[BlockBatch]:
        """Stream the model-input blocks of one file (bounded memory). Raises AudioError."""
        return iter_song_blocks(path, self.features, logmel=self._logmel, transform=self.stem_transform(self.cfg.input))

    def logmel(self, path: Source, stem: str | None = None) -> np.ndarray:
        """Whole-file log-mel float32 (n_mels, frames) of ``stem`` (default: the model's input)."""
        return compute_logmel(path, self.features, logmel=self._logmel,
                              transform=self.stem_transform(stem or self.cfg.input))

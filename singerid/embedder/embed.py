"""The trained embedder at inference: blocks in, L2-normalised embeddings (and logits) out.

``Embedder.load(model_dir)`` reads model.json, checks the SHA-256 of model.safetensors,
rebuilds the network from the stored ``ModelConfig`` and puts it in eval mode. The same
blocks always give bitwise the same embeddings on one machine and batch size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from singerid.audio import BlockBatch, Source
from singerid.config import FeatureConfig, ModelConfig
from singerid.devices import check_device
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.model import build_model
from singerid.errors import ArtefactError, ParameterError
from singerid.frontend import FrontEnd, FrontEndConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Output:
    embeddings: np.ndarray  # float32 (n, d), L2-normalised
    logits: np.ndarray  # float32 (n, n_classes)


class Embedder:
    """A loaded, checked stage-1 network. Build it with ``Embedder.load``.

    Attributes: ``feature_config`` and ``model_config`` it was trained with, ``singers``
    (label i of ``logits`` is ``singers[i]``), ``weights_sha256`` (hex, of model.safetensors),
    ``card`` (the whole sidecar), ``device``.
    """

    def __init__(self, model: torch.nn.Module, card: ckpt.ModelCard, *, device: str, compiled: bool = False) -> None:
        self.card = card
        self.feature_config: FeatureConfig = card.feature_config
        self.model_config: ModelConfig = card.model_config
        self.singers: tuple[str, ...] = card.singers
        self.weights_sha256: str = card.weights_sha256
        self.front_end_config: FrontEndConfig = card.front_end
        self.device = device
        self.compiled = compiled
        self.front_end = FrontEnd(card.feature_config, card.front_end, device=device)
        self._model = model
        # The head costs little (d x n_classes), so every call runs embed_and_logits: one graph to compile.
        self._forward = torch.compile(model.embed_and_logits, dynamic=True) if compiled else model.embed_and_logits

    @classmethod
    def load(cls, model_dir: Path, *, device: str = "cpu", compile: bool = False) -> Embedder:  # noqa: A002
        """Load ``model_dir`` (model.json + model.safetensors) onto ``device`` ("cpu", "cuda", "cuda:1").

        ``compile=True`` wraps the network in ``torch.compile`` (faster after a warm-up of
        tens of seconds). Raises ArtefactError for a missing, tampered or incompatible model,
        ParameterError for an unavailable device.
        """
        model_dir = Path(model_dir)
        dev = check_device(device)
        card = ckpt.read_card(model_dir)
        if card.model_config.n_classes != len(card.singers):
            raise ArtefactError(f"{model_dir / ckpt.SIDECAR_FILE}: n_classes={card.model_config.n_classes} but "
                                f"{len(card.singers)} singers are listed; retrain with `singerid train`")
        state = ckpt.load_weights(model_dir, card, device=dev)
        model = build_model(card.model_config).to(dev)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ArtefactError(f"{model_dir / ckpt.WEIGHTS_FILE}: weights do not fit the {card.model_config.kind} "
                                f"architecture in {ckpt.SIDECAR_FILE} ({first})") from exc
        model.eval()
        log.info("loaded %s embedder (%d singers, d=%d) from %s on %s", card.model_config.kind, len(card.singers),
                 card.model_config.embedding_dim, model_dir, dev)
        return cls(model, card, device=dev, compiled=compile)

    @property
    def embedding_dim(self) -> int:
        return self.model_config.embedding_dim

    def iter_blocks(self, path: Source) -> Iterator[BlockBatch]:
        """The model-input blocks of one file, prepared by the model's own front end (mix or vocals)."""
        return self.front_end.iter_blocks(path)

    def check_features(self, cfg: FeatureConfig) -> None:
        """Raise ArtefactError unless ``cfg`` equals the feature config the model was trained on."""
        ours, theirs = self.feature_config.to_dict(), cfg.to_dict()
        diff = [f"{k}={theirs[k]!r} (model: {ours[k]!r})" for k in ours if ours[k] != theirs.get(k)]
        if diff:
            raise ArtefactError(f"feature config does not match the model's: {', '.join(diff)}; "
                                "compute features with the model's config or retrain")

    def embed(self, blocks: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Embed blocks: float32 (n, n_mels, block_frames) log-mel dB -> float32 (n, d), C-contiguous, unit L2 norm."""
        return self._run(blocks, batch_size=batch_size, want_logits=False).embeddings

    def logits(self, blocks: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Softmax-head scores: float32 (n, n_classes); column i is ``singers[i]``."""
        return self._run(blocks, batch_size=batch_size, want_logits=True).logits

    def embed_and_logits(self, blocks: np.ndarray, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Both outputs of one forward pass: (float32 (n, d) unit-norm, float32 (n, n_classes))."""
        out = self._run(blocks, batch_size=batch_size, want_logits=True)
        return out.embeddings, out.logits

    def _run(self, blocks: np.ndarray, *, batch_size: int, want_logits: bool) -> _Output:
        x = self._check_blocks(blocks)
        if batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
        n, d, c = x.shape[0], self.embedding_dim, self.model_config.n_classes
        embeddings = np.empty((n, d), dtype=np.float32)
        logits = np.empty((n, c), dtype=np.float32) if want_logits else np.empty((0, c), dtype=np.float32)
        with torch.inference_mode():
            for lo in range(0, n, batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(x[lo:lo + batch_size])).to(self.device)
                emb, out = self._forward(batch)  # (batch, d), (batch, n_classes)
                emb = torch.nn.functional.normalize(emb.float(), p=2.0, dim=1)  # (batch, d), unit norm
                embeddings[lo:lo + batch.shape[0]] = emb.cpu().numpy()
                if want_logits:
                    logits[lo:lo + batch.shape[0]] = out.float().cpu().numpy()
        return _Output(embeddings, logits)

    def _check_blocks(self, blocks: np.ndarray) -> np.ndarray:
        cfg = self.model_config
        if not isinstance(blocks, np.ndarray) or blocks.ndim != 3 or blocks.shape[1:] != (cfg.n_mels, cfg.block_frames):
            shape = getattr(blocks, "shape", type(blocks).__name__)
            raise ParameterError(f"blocks must be an array (n, {cfg.n_mels}, {cfg.block_frames}), got {shape}")
        if blocks.dtype != np.float32:
            raise ParameterError(f"blocks must be float32 log-mel, got dtype {blocks.dtype}")
        if not np.isfinite(blocks).all():
            bad = int(np.count_nonzero(~np.isfinite(blocks).all(axis=(1, 2))))
            raise ParameterError(f"blocks contain NaN or infinite values ({bad} of {len(blocks)} blocks)")
        return blocks

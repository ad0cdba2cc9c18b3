"""Model directories on disk: safetensors weights, a JSON sidecar, resumable training state.

Layout of ``HOME/models/<kind>/`` (the vector database reads the first two)::

    model.safetensors   weights (safetensors: tensors only, nothing is unpickled)
    model.json          the sidecar, a ``ModelCard``: model config, feature config, singer
                        list, train config, training metadata, validation metrics, the
                        SHA-256 of model.safetensors and the format version
    train_log.json      per-epoch loss, train / val accuracy and seconds (written by train.py)
    last.pt             resumable state while training runs (weights, optimizer, history;
                        plain tensors and dicts, loaded with weights_only=True); deleted when
                        training completes

Every file is written to a temporary name and renamed, so a killed process never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from singerid.config import FeatureConfig, ModelConfig, TrainConfig
from singerid.embedder.cache import content_sha256
from singerid.errors import ArtefactError, ParameterError
from singerid.frontend import FrontEndConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the sidecar or the weight names change meaning
WEIGHTS_FILE = "model.safetensors"
SIDECAR_FILE = "model.json"
LOG_FILE = "train_log.json"
STATE_FILE = "last.pt"


@dataclass(frozen=True, slots=True)
class ModelCard:
    """Everything needed to rebuild and trust a trained embedder (the content of model.json)."""

    model_config: ModelConfig
    feature_config: FeatureConfig
    singers: tuple[str, ...]  # label i of the softmax head is singers[i]
    weights_sha256: str  # hex SHA-256 of model.safetensors
    train_config: TrainConfig | None = None
    training: dict[str, Any] = field(default_factory=dict)  # best epoch, epochs run, blocks, seconds...
    metrics: dict[str, float] = field(default_factory=dict)  # validation metrics of the kept weights
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)  # what the model hears: mix or vocals
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model_config": self.model_config.to_dict(),
            "feature_config": self.feature_config.to_dict(),
            "front_end": self.front_end.to_dict(),
            "singers": list(self.singers),
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": self.weights_sha256,
            "train_config": self.train_config.to_dict() if self.train_config else None,
            "training": self.training,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: Path) -> ModelCard:
        """Parse a sidecar; ArtefactError naming ``source`` if it is not one this version reads."""
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtefactError(f"{source}: model format version {version!r}, this singerid reads "
                                f"{FORMAT_VERSION}; retrain with `singerid train`")
        try:
            train = data.get("train_config")
            return cls(
                model_config=ModelConfig.from_dict(data["model_config"]),
                feature_config=FeatureConfig.from_dict(data["feature_config"]),
                singers=tuple(str(s) for s in data["singers"]),
                weights_sha256=str(data["weights_sha256"]),
                train_config=TrainConfig.from_dict(train) if train else None,
                training=dict(data.get("training") or {}),
                metrics=dict(data.get("metrics") or {}),
                front_end=FrontEndConfig.from_dict(data.get("front_end")),
            )
        except (KeyError, TypeError, ParameterError) as exc:
            raise ArtefactError(f"{source}: not a valid model sidecar ({type(exc).__name__}: {exc})") from exc


def save_model(model_dir: Path, state_dict: Mapping[str, torch.Tensor], card: ModelCard) -> ModelCard:
    """Write model.safetensors then model.json into ``model_dir``; return the card with the hash.

    ``card.weights_sha256`` is ignored and replaced by the hash of the file just written.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    weights = model_dir / WEIGHTS_FILE
    tmp = weights.with_name(weights.name + ".tmp")
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}
    save_file(tensors, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    os.replace(tmp, weights)
    card = ModelCard(model_config=card.model_config, feature_config=card.feature_config, singers=card.singers,
                     weights_sha256=content_sha256(weights), train_config=card.train_config,
                     training=card.training, metrics=card.metrics, front_end=card.front_end)
    write_json(model_dir / SIDECAR_FILE, card.to_dict())
    log.info("saved %s (sha256 %s)", weights, card.weights_sha256[:12])
    return card


def read_card(model_dir: Path) -> ModelCard:
    """Read and validate ``model_dir/model.json``. Raises ArtefactError if missing or invalid."""
    sidecar = model_dir / SIDECAR_FILE
    if not sidecar.is_file():
        raise ArtefactError(f"no trained model in {model_dir} ({SIDECAR_FILE} is missing); "
                            "run `singerid train DATA --home HOME` first")
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # or nested too deeply
        raise ArtefactError(f"{sidecar}: unreadable model sidecar ({exc}); retrain with `singerid train`") from exc
    if not isinstance(data, dict):
        raise ArtefactError(f"{sidecar}: not a valid model sidecar (top level is {type(data).__name__})")
    return ModelCard.from_dict(data, source=sidecar)


def load_weights(model_dir: Path, card: ModelCard, *, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load model.safetensors onto ``device`` after checking its SHA-256 against the sidecar.

    Raises ArtefactError if the file is missing, modified or not a safetensors file.
    """
    weights = model_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtefactError(f"{weights}: weights file is missing; retrain with `singerid train`")
    actual = content_sha256(weights)
    if actual != card.weights_sha256:
        raise ArtefactError(
            f"{weights}: SHA-256 {actual[:16]}... does not match {SIDECAR_FILE} ({card.weights_sha256[:16]}...); "
            "the file was modified or corrupted: restore it from a backup or retrain with `singerid train`"
        )
    try:
        return load_file(str(weights), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtefactError(f"{weights}: cannot read the weights ({exc}); retrain with `singerid train`") from exc


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write resumable training state (tensors, dicts, lists, numbers, strings) atomically."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(state), tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, Any] | None:
    """Read state written by ``save_state`` (weights_only: no arbitrary unpickling); None if absent.

    A corrupt state file is logged and treated as absent: training then starts afresh.
    """
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file; we only start over
        log.warning("%s: unreadable training state (%s); starting training from scratch", path, exc)
        return None
    return state if isinstance(state, dict) else None


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (temporary file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)

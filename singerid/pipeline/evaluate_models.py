"""``evaluate``'s stage 1: a trained CRNN / Attention-CRNN per dataset and seed, reused when it matches.

A run home (``OUT/runs/<dataset>/seed-<seed>/<kind>/``) holds one model under
``models/<kind>/`` plus the vector store of that model's reference blocks. A model already
there, or one in ``--reuse-home``, is reused when its model.json records the same model kind and
architecture, feature config, training settings (epochs, batch size, lr, patience, seed) and
training-data fingerprint (which cached feature files carried which label); otherwise it is
trained (an interrupted training resumes from its last epoch). When the model changes, the
home's stored vectors and index belong to the old model and are deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from singerid.config import FeatureConfig, ModelConfig, TrainConfig
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.cache import content_sha256
from singerid.embedder.recipes import Recipe
from singerid.embedder.train import data_fingerprint, train_embedder
from singerid.errors import ArtefactError
from singerid.index.home import Home
from singerid.progress import ProgressArg
from singerid.records import Track

log = logging.getLogger(__name__)

IGNORED_TRAIN_FIELDS = ("workers",)  # settings that do not change the trained weights


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """Where the model of one (dataset, seed, kind) came from."""

    kind: str  # the recipe's name: "crnn", "attcrnn", "voice", "voice-no-remix"...
    model_dir: Path  # HOME/models/<network kind> of the run home
    source: str  # "trained", "reused" (already in the run home) or "copied" (from --reuse-home)
    seconds: float  # wall time spent here (training, or checking and copying)
    train_seconds: float | None = None  # the epochs' time recorded in model.json (None: not recorded)


def ensure_model(recipe: Recipe, tracks: Sequence[Track], *, home: Home, feature_cfg: FeatureConfig,
                 train_cfg: TrainConfig, cache_dir: Path, precision: str = "fp32", reuse_home: Path | None = None,
                 progress: ProgressArg = False, device: str = "cpu") -> ModelOutcome:
    """Make sure ``home.model_dir(recipe.kind)`` holds a model trained on ``tracks`` by ``recipe``.

    ``train_cfg``: epochs, batch size, lr, seed...; the recipe adds its levers, head and front end.
    ``tracks``: the dataset's tracks (its "train" split is fitted, "val" stops early).
    ``precision``: of the training pass ("fp32" or "bf16"), also compared on reuse.
    ``reuse_home``: another home whose ``models/<kind>`` is copied when it matches.
    ``device``: where torch trains ("cpu", "cuda"); not part of the match (a model is a model).
    Raises what ``train_embedder`` raises (DatasetError, AudioError...), ArtefactError for a
    model directory that cannot be replaced.
    """
    started = time.perf_counter()
    kind = recipe.kind
    train_cfg = recipe.train_config(train_cfg)
    fingerprint = data_fingerprint(tracks, feature_cfg=feature_cfg, cache_dir=cache_dir)
    target = home.model_dir(kind)
    wanted = {"model_cfg": recipe.model_config(), "feature_cfg": feature_cfg, "train_cfg": train_cfg,
              "fingerprint": fingerprint, "precision": precision, "front_end": recipe.front_end().key}
    reason = mismatch(target, **wanted)
    if reason is None:
        log.info("reusing the %s model in %s", recipe.name, target)
        return ModelOutcome(recipe.name, target, "reused", time.perf_counter() - started, _train_seconds(target))
    log.info("%s: %s", target, reason)
    if reuse_home is not None:
        source = Home(Path(reuse_home)).model_dir(kind)
        other = mismatch(source, **wanted)
        if other is None:
            _replace_model(home, kind, source)
            log.info("copied the matching %s model from %s", recipe.name, source)
            return ModelOutcome(recipe.name, target, "copied", time.perf_counter() - started, _train_seconds(target))
        log.info("not reusing %s: %s", source, other)
    _clear_vectors(home)
    train_embedder(tracks, feature_cfg=feature_cfg, model_cfg=recipe.model_config(), train_cfg=train_cfg,
                   out_dir=target, cache_dir=cache_dir, progress=progress, precision=precision,
                   front_end=recipe.front_end(), recipe=recipe.name, backend=recipe.backend, device=device)
    return ModelOutcome(recipe.name, target, "trained", time.perf_counter() - started, _train_seconds(target))


def _train_seconds(model_dir: Path) -> float | None:
    """The training time model.json records (sum of the epochs, across resumed runs), or None."""
    seconds = ckpt.read_card(model_dir).training.get("seconds")
    return float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else None


def mismatch(model_dir: Path, *, model_cfg: ModelConfig, feature_cfg: FeatureConfig, train_cfg: TrainConfig,
             fingerprint: str, precision: str = "fp32", front_end: str = "mix") -> str | None:
    """Why the model in ``model_dir`` cannot stand for the requested one (None = it can).

    A missing, unreadable or tampered-with model is a reason, not an error.
    """
    if not (model_dir / ckpt.SIDECAR_FILE).is_file():
        return "no trained model yet"
    try:
        card = ckpt.read_card(model_dir)
        if content_sha256(model_dir / ckpt.WEIGHTS_FILE) != card.weights_sha256:
            return "weights do not match their SHA-256 in model.json"
    except (ArtefactError, OSError) as exc:
        return f"unusable model ({exc})"
    wanted_model = dataclasses.replace(model_cfg, n_classes=card.model_config.n_classes)
    if card.model_config != wanted_model:
        return f"model config {card.model_config.to_dict()} differs from {wanted_model.to_dict()}"
    if card.feature_config != feature_cfg:
        return "feature config differs"
    if card.front_end.key != front_end:
        return f"trained on front end {card.front_end.key!r}, {front_end!r} requested"
    ours, theirs = _train_settings(train_cfg), _train_settings(card.train_config)
    if ours != theirs:
        return f"training settings {theirs} differ from {ours}"
    trained_precision = card.training.get("precision", "fp32")  # models from before bf16 existed are fp32
    if trained_precision != precision:
        return f"trained with {trained_precision} precision, {precision} requested"
    recorded = card.training.get("data_fingerprint")
    if recorded != fingerprint:
        return f"trained on other data (fingerprint {recorded!r}, this split {fingerprint!r})"
    return None


def _train_settings(cfg: TrainConfig | None) -> dict | None:
    if cfg is None:
        return None
    return {k: v for k, v in cfg.to_dict().items() if k not in IGNORED_TRAIN_FIELDS}


def _replace_model(home: Home, kind: str, source: Path) -> None:
    """Copy ``source`` (a model directory) to the home's ``models/<kind>``, dropping old vectors."""
    target = home.model_dir(kind)
    _clear_vectors(home)
    tmp = target.with_name(f".{target.name}.copy")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(ckpt.STATE_FILE, "*.tmp"))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except OSError as exc:
        raise ArtefactError(f"cannot copy the model {str(source)!r} to {str(target)!r}: {exc}") from exc


def _clear_vectors(home: Home) -> None:
    """Delete the home's store, shards, index and manifest (they belong to a previous model)."""
    root = home.root
    doomed = [home.manifest_path, home.shards_dir, home.index_dir, *root.glob(home.db_path.name + "*")]
    for path in doomed:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if any(p.exists() for p in doomed):
        raise ArtefactError(f"could not clear the old vectors in {root}")

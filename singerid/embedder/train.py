"""Stage-1 training: fit the CRNN / Attention-CRNN softmax classifier on 1-s blocks.

Tracks of split "train" are fitted, tracks of split "val" decide early stopping on
validation block accuracy (the KNN-Net issue; the CRNN baseline stopped on validation loss,
so both are logged; ties in accuracy are broken by the lower loss). The best epoch's
weights are kept. Adam with the baseline's learning rate and batch size by default.

Resumable: after every epoch the model, optimizer, best weights and history go to
``last.pt``; rerunning with the same data and settings continues after the last completed
epoch (``epochs`` and ``patience`` may be raised between runs). Each epoch's shuffle and
dropout are seeded by (seed, epoch), so a resumed run follows the uninterrupted one exactly.
``last.pt`` is deleted once the final model is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from singerid.config import FeatureConfig, ModelConfig, TrainConfig
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.cache import FeatureCache
from singerid.embedder.data import BlockDataset, LabelledFeatures, build_block_table, epoch_batches, make_loader
from singerid.embedder.levers import TrainingLevers, album_codes
from singerid.embedder.model import build_model
from singerid.errors import AudioError, DatasetError, ParameterError
from singerid.frontend import FrontEndConfig
from singerid.progress import Progress, ProgressArg
from singerid.records import Track

log = logging.getLogger(__name__)

VAL_BATCH_SIZE = 256  # ours: evaluation batch, independent of the training batch
LOG_FORMAT_VERSION = 1
PRECISIONS = ("fp32", "bf16")  # training forward pass: float32, or bfloat16 autocast (ours, opt-in)
INPUT_STATS_BLOCKS = 2048  # ours: blocks sampled to start the input normalisation


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """One line of the training log."""

    epoch: int  # 1-based
    train_loss: float  # mean cross-entropy over the epoch's training blocks
    train_accuracy: float  # block accuracy on the training batches (dropout on)
    val_loss: float
    val_accuracy: float  # block accuracy on the validation split: the early-stopping criterion
    seconds: float  # wall time of the epoch, training + validation
    best: bool  # whether this epoch's weights became the kept ones


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What ``train_embedder`` produced."""

    model_dir: Path
    best_epoch: int
    epochs_run: int
    val_block_accuracy: float  # of the kept (best) weights
    history: tuple[EpochRecord, ...]
    seconds: float  # sum of the epochs' wall time (across resumed runs)
    singers: tuple[str, ...] = ()
    n_train_blocks: int = 0
    n_val_blocks: int = 0
    skipped: tuple[str, ...] = ()  # "path: reason" of every track left out as bad audio
    stop_reason: str = ""


@dataclass(slots=True)
class _Progress:
    """Mutable state of a run: what last.pt holds besides the model and optimizer."""

    history: list[EpochRecord]
    best_state: dict[str, torch.Tensor]
    best_epoch: int = 0
    best_accuracy: float = -1.0
    best_loss: float = math.inf
    stale_epochs: int = 0


def train_embedder(tracks: Sequence[Track], *, feature_cfg: FeatureConfig, model_cfg: ModelConfig,
                   train_cfg: TrainConfig, out_dir: Path, cache_dir: Path, progress: ProgressArg = False,
                   precision: str = "fp32", front_end: FrontEndConfig = FrontEndConfig(),
                   recipe: str = "", backend: str = "none", device: str = "cpu") -> TrainResult:
    """Train one embedder on ``tracks`` and write it to ``out_dir`` (see ``checkpoint`` for the layout).

    ``tracks`` must include split "train" (fitted) and "val" (early stopping); others are
    ignored. Bad audio files are logged and skipped. ``model_cfg.n_classes`` is set from the
    training singers. ``precision="bf16"`` runs the training forward pass under bfloat16
    autocast (about 2x faster on CPUs with AMX / AVX512-BF16, slower elsewhere); validation,
    the saved weights and inference stay float32. ``front_end``: what the model hears (the mix,
    or the voice separated from it); it is recorded in model.json and every later step uses it.
    The levers of ``train_cfg`` (remix, gain_tilt, album_adversary) apply to the training
    batches only (``singerid.embedder.levers``). ``recipe`` (its name, if any) and ``backend``
    (the index back end it was designed with, used by ``build-index --backend auto``) are
    recorded in model.json. ``progress`` (a ``singerid.progress`` mode, or the old bool): the
    feature-caching pass and each epoch show a bar, or one line each. ``device`` ("cpu", "cuda",
    "cuda:1"): where the model trains and the first pass separates vocals; the saved weights are
    CPU tensors either way. Raises DatasetError for an empty split or a
    validation singer absent from training, ParameterError for model and feature configs that
    do not fit together, an unknown precision or an unavailable device.
    """
    from singerid.devices import check_device

    _check_fit(feature_cfg, model_cfg)
    dev = torch.device(check_device(device))
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    out_dir = Path(out_dir)
    cache = FeatureCache.for_input(Path(cache_dir), feature_cfg, front_end, device=str(dev))
    train_items, val_items, singers, skipped = _prepare(tracks, cache, progress=progress)
    table = build_block_table(train_items, feature_cfg)
    train_set = BlockDataset(train_items, table, block_frames=feature_cfg.block_frames)
    val_set = BlockDataset(val_items, build_block_table(val_items, feature_cfg), block_frames=feature_cfg.block_frames)
    if len(train_set) == 0 or len(val_set) == 0:
        raise DatasetError(f"no usable blocks: {len(train_set)} training and {len(val_set)} validation blocks")
    model_cfg = dataclasses.replace(model_cfg, n_classes=len(singers))
    log.info("training %s on %d singers: %d train / %d val blocks (cache: %d hits, %d computed, %d skipped)",
             model_cfg.kind, len(singers), len(train_set), len(val_set), cache.hits, cache.misses, len(skipped))

    torch.manual_seed(train_cfg.seed)
    model = build_model(model_cfg).to(dev)
    levers = _levers(train_cfg, feature_cfg, model_cfg, front_end, cache, train_items, train_set, progress=progress)
    if levers.adversary is not None:
        levers.adversary.to(dev)
    optimizer = torch.optim.Adam([*model.parameters(), *levers.parameters()], lr=train_cfg.lr)
    key = {**_run_key(feature_cfg, model_cfg, train_cfg, singers, train_items, val_items), "precision": precision,
           "front_end": front_end.key}
    _init_input_norm(model, train_set, seed=train_cfg.seed)
    state = _resume(out_dir, key, model, optimizer, levers)
    info = {"model": model_cfg.kind, "singers": list(singers), "n_train_blocks": len(train_set),
            "n_val_blocks": len(val_set), "skipped": list(skipped),
            "feature_cache": {"hits": cache.hits, "computed": cache.misses},
            "train_config": train_cfg.to_dict(), "precision": precision, "device": str(dev)}

    stop_reason = _stop_reason(state, train_cfg)
    while not stop_reason:
        record = _run_epoch(len(state.history) + 1, model, optimizer, train_set, val_set, train_cfg,
                            progress=progress, bf16=precision == "bf16", levers=levers)
        better = record.val_accuracy > state.best_accuracy or (
            record.val_accuracy == state.best_accuracy and record.val_loss < state.best_loss)  # ties: lower loss
        record = dataclasses.replace(record, best=better)
        log.info("epoch %d: loss %.4f acc %.3f | val loss %.4f acc %.3f%s (%.1f s)", record.epoch, record.train_loss,
                 record.train_accuracy, record.val_loss, record.val_accuracy, " *" if better else "", record.seconds)
        if better:
            state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            state.best_epoch, state.best_accuracy, state.best_loss = record.epoch, record.val_accuracy, record.val_loss
            state.stale_epochs = 0
        else:
            state.stale_epochs += 1
        state.history.append(record)
        stop_reason = _stop_reason(state, train_cfg)
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt.save_state(out_dir / ckpt.STATE_FILE, _state_dict(key, model, optimizer, state, levers))
        _write_log(out_dir, info, state, stop_reason="")

    model.load_state_dict(state.best_state)
    best = state.history[state.best_epoch - 1]
    seconds = float(sum(r.seconds for r in state.history))
    training = {"best_epoch": state.best_epoch, "epochs_run": len(state.history), "stop_reason": stop_reason,
                "n_train_tracks": len(train_items), "n_val_tracks": len(val_items), "n_train_blocks": len(train_set),
                "n_val_blocks": len(val_set), "skipped_tracks": len(skipped), "seconds": round(seconds, 3),
                "precision": precision, "data_fingerprint": key["data"], "front_end": front_end.key,
                "recipe": recipe, "backend": backend,
                "torch_version": torch.__version__,
                "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    metrics = {"val_block_accuracy": best.val_accuracy, "val_loss": best.val_loss,
               "train_accuracy": best.train_accuracy, "train_loss": best.train_loss}
    card = ckpt.ModelCard(model_config=model_cfg, feature_config=feature_cfg, singers=singers, weights_sha256="",
                          train_config=train_cfg, training=training, metrics=metrics, front_end=front_end)
    ckpt.save_model(out_dir, model.state_dict(), card)
    _write_log(out_dir, info, state, stop_reason=stop_reason)
    (out_dir / ckpt.STATE_FILE).unlink(missing_ok=True)
    log.info("kept epoch %d of %d: val block accuracy %.3f (%s)", state.best_epoch, len(state.history),
             best.val_accuracy, stop_reason)
    return TrainResult(model_dir=out_dir, best_epoch=state.best_epoch, epochs_run=len(state.history),
                       val_block_accuracy=best.val_accuracy, history=tuple(state.history), seconds=seconds,
                       singers=singers, n_train_blocks=len(train_set), n_val_blocks=len(val_set),
                       skipped=skipped, stop_reason=stop_reason)


def _run_epoch(epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, train_set: BlockDataset,
               val_set: BlockDataset, cfg: TrainConfig, *, progress: ProgressArg, bf16: bool,
               levers: TrainingLevers) -> EpochRecord:
    """Train one epoch and validate it; ``best`` is left False for the caller to decide."""
    started = time.perf_counter()
    torch.manual_seed(_epoch_seed(cfg.seed, epoch))  # dropout stream of this epoch
    batches = epoch_batches(len(train_set), batch_size=cfg.batch_size, seed=cfg.seed, epoch=epoch)
    val_batches = epoch_batches(len(val_set), batch_size=VAL_BATCH_SIZE, seed=0, epoch=0, shuffle=False)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    bar = Progress(f"train epoch {epoch}/{cfg.epochs}", total=len(batches), unit="batch", progress=progress)
    with bar:
        loader = (levers.batches(epoch) if levers.active
                  else make_loader(train_set, batches, workers=cfg.workers))
        train_loss, train_acc = _fit_epoch(model, optimizer, loss_fn, loader, bar, bf16=bf16, levers=levers)
        val_loss, val_acc = _evaluate(model, loss_fn, make_loader(val_set, val_batches, workers=cfg.workers))
        bar.close(f"loss {train_loss:.3f}, acc {train_acc:.3f}, val loss {val_loss:.3f}, val acc {val_acc:.3f}")
    return EpochRecord(epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - started, best=False)


def _check_fit(feature_cfg: FeatureConfig, model_cfg: ModelConfig) -> None:
    for name in ("n_mels", "block_frames"):
        if getattr(feature_cfg, name) != getattr(model_cfg, name):
            raise ParameterError(f"ModelConfig.{name}={getattr(model_cfg, name)} does not match "
                                 f"FeatureConfig.{name}={getattr(feature_cfg, name)}")


def _prepare(tracks: Sequence[Track], cache: FeatureCache, *, progress: ProgressArg = False
             ) -> tuple[list[LabelledFeatures], list[LabelledFeatures], tuple[str, ...], tuple[str, ...]]:
    """Cache the features of the train and val tracks; label them; skip (and list) bad audio.

    The first run decodes (and, for a vocals cache, separates) every song: ``progress`` shows it.
    """
    by_split: dict[str, list[Track]] = {"train": [], "val": []}
    for t in tracks:
        if t.split in by_split:
            by_split[t.split].append(t)
    for split, items in by_split.items():
        if not items:
            raise DatasetError(f"no tracks in the {split!r} split ({len(tracks)} tracks given); "
                               "training needs both 'train' and 'val' tracks")
    cached: dict[str, list[tuple[Track, Any]]] = {"train": [], "val": []}
    skipped: list[str] = []
    hits, misses = cache.hits, cache.misses
    label = f"cache {cache.stem} features" if cache.stem != "mix" else "cache features"
    with Progress(label, total=sum(map(len, by_split.values())), unit="song", progress=progress) as bar:
        for split, items in by_split.items():
            for t in items:
                try:
                    cached[split].append((t, cache.ensure(t.path)))
                except AudioError as exc:
                    log.warning("skipping %s track: %s", split, exc)
                    skipped.append(str(exc))
                bar.update(1, computed=cache.misses - misses)
        bar.close(f"{cache.misses - misses:,} computed, {cache.hits - hits:,} from the cache, {len(skipped)} skipped")
    singers = tuple(sorted({t.singer for t, _ in cached["train"]}))
    if len(singers) < 2:
        raise DatasetError(f"training needs at least 2 singers with usable train audio, found {len(singers)}: "
                           f"{list(singers)}")
    unseen = sorted({t.singer for t, _ in cached["val"]} - set(singers))
    if unseen:
        raise DatasetError(f"validation singer(s) {unseen} have no usable training track; "
                           "every val singer must also be in the train split")
    if not cached["val"]:
        raise DatasetError("no usable validation audio: every 'val' track was skipped as bad audio")
    label = {s: i for i, s in enumerate(singers)}
    make = lambda pairs: [LabelledFeatures(c.path, c.n_frames, label[t.singer],  # noqa: E731
                                           f"{t.singer}/{t.album or t.song_id}", t.path) for t, c in pairs]
    return make(cached["train"]), make(cached["val"]), singers, tuple(skipped)


def _levers(train_cfg: TrainConfig, feature_cfg: FeatureConfig, model_cfg: ModelConfig, front_end: FrontEndConfig,
            cache: FeatureCache, train_items: list[LabelledFeatures], train_set: BlockDataset, *,
            progress: ProgressArg = False) -> TrainingLevers:
    """The training levers of ``train_cfg`` over the training blocks (stems cached first when remixing)."""
    albums = album_codes([train_items[t].album for t in train_set.table.track])
    stems: dict[str, BlockDataset] = {}
    if train_cfg.remix:
        vocals = cache if cache.stem == "vocals" else FeatureCache(cache.root, feature_cfg, stem="vocals",
                                                                  separation=front_end.separation)
        for stem, stem_cache in (("vocals", vocals), ("accompaniment", vocals.sibling("accompaniment"))):
            with Progress(f"cache {stem} for remix", total=len(train_items), unit="song", progress=progress) as bar:
                items = []
                for item in train_items:  # one separation per song fills both stems' entries
                    items.append(dataclasses.replace(item, features_path=stem_cache.ensure(item.source).path))
                    bar.update()
            stems[stem] = BlockDataset(items, train_set.table, block_frames=feature_cfg.block_frames)
    return TrainingLevers(train_cfg, feature_cfg, inputs=train_set, albums=albums,
                          embedding_dim=model_cfg.embedding_dim, input_is_vocals=front_end.input == "vocals", **stems)


def _init_input_norm(model: nn.Module, train_set: BlockDataset, *, seed: int) -> None:
    """Start the input batch norm's running mean / variance at the per-band statistics of the training blocks.

    Log-mel dB values sit far from (mean 0, variance 1); with the default start, eval-mode
    outputs stay off for the first hundred batches, which on small data is several epochs of
    useless validation. Ours; it changes where the running averages start, not the model.
    """
    norm = model.cnn.input_norm
    sample = np.random.default_rng(seed).permutation(len(train_set))[:INPUT_STATS_BLOCKS]
    x, _ = train_set[np.sort(sample)]  # (n, n_mels, frames)
    with torch.no_grad():
        norm.running_mean.copy_(x.mean(dim=(0, 2)))
        norm.running_var.copy_(x.var(dim=(0, 2)) if x.numel() > x.shape[1] else torch.ones(x.shape[1]))


def _fit_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module, loader: Any,
               bar: Progress, *, bf16: bool = False, levers: TrainingLevers | None = None) -> tuple[float, float]:
    """One pass over the training batches; returns (mean classification loss, block accuracy).

    ``loader`` yields (x, y) or (x, y, album); the album adversary's loss (when on) is added to
    the objective but not to the reported loss.
    """
    model.train()
    if levers is not None and levers.adversary is not None:
        levers.adversary.train()
    loss_sum, correct, seen = 0.0, 0, 0
    dev = next(model.parameters()).device
    for x, y, *album in loader:  # x: (batch, n_mels, frames) float32; y, album: (batch,) int64
        x, y, album = x.to(dev), y.to(dev), [a.to(dev) for a in album]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            emb, logits = model.embed_and_logits(x, y)  # (batch, d), (batch, n_classes); margin heads use y
        logits = logits.float()
        loss = loss_fn(logits, y)  # summed over the batch
        objective = loss / y.numel()
        extra = levers.extra_loss(emb, album[0], y) if (levers is not None and album) else None
        if extra is not None:
            objective = objective + extra
        objective.backward()
        optimizer.step()
        loss_sum += float(loss.detach())
        correct += int((logits.argmax(1) == y).sum())
        seen += y.numel()
        bar.update(1, loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    return loss_sum / seen, correct / seen


@torch.inference_mode()
def _evaluate(model: nn.Module, loss_fn: nn.Module, loader: Any) -> tuple[float, float]:
    """(mean loss, block accuracy) of ``model`` in eval mode over ``loader``."""
    model.eval()
    dev = next(model.parameters()).device
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(dev), y.to(dev)
        logits = model(x)  # (batch, n_classes)
        loss_sum += float(loss_fn(logits, y))
        correct += int((logits.argmax(1) == y).sum())
        seen += y.numel()
    return loss_sum / seen, correct / seen


def _stop_reason(state: _Progress, cfg: TrainConfig) -> str:
    """Why training is over ("" while it should go on)."""
    if state.history and state.stale_epochs >= cfg.patience:
        return f"early stop: no better validation accuracy in {cfg.patience} epochs"
    if len(state.history) >= cfg.epochs:
        return f"reached {cfg.epochs} epochs"
    return ""


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _run_key(feature_cfg: FeatureConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, singers: tuple[str, ...],
             train_items: list[LabelledFeatures], val_items: list[LabelledFeatures]) -> dict[str, Any]:
    """What must be equal for a saved state to be resumed (epochs and patience may change)."""
    return {"feature_config": feature_cfg.fingerprint(), "model_config": model_cfg.fingerprint(),
            "singers": list(singers), "seed": train_cfg.seed, "batch_size": train_cfg.batch_size,
            "lr": train_cfg.lr, "remix": train_cfg.remix, "gain_tilt": train_cfg.gain_tilt,
            "album_adversary": train_cfg.album_adversary, "data": _data_key(train_items, val_items)}


def _data_key(train_items: list[LabelledFeatures], val_items: list[LabelledFeatures]) -> str:
    """Hash of which cached feature files (content-addressed) carry which label, per split."""
    data = json.dumps([[p.features_path.name, p.label] for p in train_items] + ["val"]
                      + [[p.features_path.name, p.label] for p in val_items])
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def data_fingerprint(tracks: Sequence[Track], *, feature_cfg: FeatureConfig, cache_dir: Path) -> str:
    """The ``training.data_fingerprint`` that ``train_embedder`` records in model.json for ``tracks``.

    Caches the features of the train and val tracks (as training would; bad audio is skipped)
    and hashes which cached file carries which label. Equal fingerprints = the same training
    data, so a saved model can be reused instead of retrained. Raises DatasetError as
    ``train_embedder`` does for an empty split or too few singers.
    """
    train_items, val_items, _, _ = _prepare(tracks, FeatureCache(Path(cache_dir), feature_cfg))
    return _data_key(train_items, val_items)


def _state_dict(key: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, state: _Progress,
                levers: TrainingLevers) -> dict:
    return {"key": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "levers": levers.state_dict(),
            "best_state": state.best_state, "best_epoch": state.best_epoch, "best_accuracy": state.best_accuracy,
            "best_loss": state.best_loss, "stale_epochs": state.stale_epochs,
            "history": [dataclasses.asdict(r) for r in state.history]}


def _resume(out_dir: Path, key: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
            levers: TrainingLevers) -> _Progress:
    """Restore ``model`` and ``optimizer`` from out_dir/last.pt if it belongs to this run."""
    fresh = _Progress(history=[], best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
    saved = ckpt.load_state(out_dir / ckpt.STATE_FILE)
    if saved is None:
        return fresh
    if saved.get("key") != key:
        log.warning("%s belongs to a run with other data or settings; starting from scratch",
                    out_dir / ckpt.STATE_FILE)
        return fresh
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    levers.load_state_dict(saved.get("levers") or {})
    history = [EpochRecord(**r) for r in saved["history"]]
    log.info("resuming after epoch %d from %s", len(history), out_dir / ckpt.STATE_FILE)
    return _Progress(history=history, best_state=saved["best_state"], best_epoch=int(saved["best_epoch"]),
                     best_accuracy=float(saved["best_accuracy"]), best_loss=float(saved["best_loss"]),
                     stale_epochs=int(saved["stale_epochs"]))


def _write_log(out_dir: Path, info: dict[str, Any], state: _Progress, *, stop_reason: str) -> None:
    ckpt.write_json(out_dir / ckpt.LOG_FILE, {
        "format_version": LOG_FORMAT_VERSION, **info, "finished": bool(stop_reason), "stop_reason": stop_reason,
        "best_epoch": state.best_epoch, "epochs": [dataclasses.asdict(r) for r in state.history],
    })

"""`singerid enrol`, `remove` and `info`: change and inspect a home without retraining.

Enrol embeds a new singer's songs with the frozen embedder, stores them and adds their
vectors to the index under their new block ids; a KNN query then finds the singer at once
(the softmax head cannot: it only knows the training singers). Remove deletes a singer or
songs from the store and their ids from the index. Both rewrite the index file atomically and
update the manifest, so store, index and manifest stay in agreement.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from singerid.errors import ParameterError
from singerid.index.consistency import VectorsState, find_problems
from singerid.index.files import ids_sha256
from singerid.index.home import Home
from singerid.index.vectors import VectorIndex
from singerid.pipeline.calibrate import CALIBRATION_FILE
from singerid.pipeline.common import load_backend, load_embedder, open_store, save_index
from singerid.pipeline.embed_corpus import EmbedSummary, embed_tracks
from singerid.records import Track

log = logging.getLogger(__name__)

ENROLLED_DATASET = "enrolled"


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """What enrol or remove changed."""

    n_songs: int
    n_blocks: int
    index_vectors: int | None  # vectors in the index afterwards; None when the home has no index yet
    embed: EmbedSummary | None = None


def enrol(home: Home, singer: str, songs: Sequence[str | Path], *, db_url: str | None = None,
          album: str | None = None, progress: bool = False) -> ChangeSummary:
    """Add ``songs`` of ``singer`` to the store and (if one exists) the index. Raises ParameterError
    for an empty singer name or no songs; bad files are recorded as failures, as in embed-corpus."""
    if not singer.strip():
        raise ParameterError("singer name must not be empty")
    if not songs:
        raise ParameterError("enrol needs at least one song")
    tracks = [Track(path=Path(p), singer=singer, song_id=f"{singer}/{Path(p).stem}", split="train", album=album,
                    dataset=ENROLLED_DATASET) for p in songs]
    manifest = home.read_manifest(missing_ok=True)
    backend = load_backend(home, manifest.index) if manifest.index is not None else None  # checked before any write
    summary = embed_tracks(home, tracks, model_kind=manifest.model.kind if manifest.model else None,
                           db_url=db_url, progress=progress)
    manifest = home.read_manifest(missing_ok=True)
    if manifest.index is None:
        log.warning("no index yet: run `singerid build-index --home %s` to make the enrolled songs searchable",
                    home.root)
        return ChangeSummary(summary.n_added, summary.n_blocks, None, summary)
    index = VectorIndex.load(home.index_path(manifest.index))
    if summary.added:
        ids = np.concatenate([s.block_ids for s in summary.added])
        vectors = np.concatenate([s.embeddings for s in summary.added])
        # the projection fitted at build-index (on the singers indexed then), as queries use it
        index.add(vectors if backend is None else backend.apply(vectors), ids)
        save_index(home, manifest, index)
    return ChangeSummary(summary.n_added, summary.n_blocks, len(index), summary)


def remove(home: Home, *, singer: str | None = None, songs: Sequence[str | Path] = (),
           db_url: str | None = None) -> ChangeSummary:
    """Remove a singer (all their songs) or the given songs from the store and the index."""
    if (singer is None) == (not songs):
        raise ParameterError("give either a singer or songs to remove (not both, not neither)")
    with open_store(home, db_url) as store:
        if singer is not None:
            n_songs = len(store.songs(singer=singer))
            ids = store.remove_singer(singer)
        else:
            paths = [str(Path(p).absolute()) for p in songs]
            n_songs = len(paths)
            ids = store.remove_songs(paths)
        manifest = home.read_manifest(missing_ok=True)
        if manifest.index is None:
            return ChangeSummary(n_songs, len(ids), None)
        index = VectorIndex.load(home.index_path(manifest.index))
        index.remove_ids(ids)
        save_index(home, manifest, index)
    return ChangeSummary(n_songs, len(ids), len(index))


def info(home: Home, *, db_url: str | None = None, check: bool = False) -> dict[str, Any]:
    """Counts per singer and split, model, index, and the problems found (full check with ``check``).

    Returns a JSON-ready dict with at least n_songs, n_blocks, n_singers and problems.
    """
    manifest = home.read_manifest(missing_ok=True)
    out: dict[str, Any] = {"home": str(home.root), "manifest": manifest.to_dict() if manifest.model else None}
    with open_store(home, db_url) as store:
        counts = store.counts()
        out.update(counts.to_dict())
        out["failures"] = len(store.failures())
        model_sha = features = front_end = None
        if manifest.model is not None:
            try:
                embedder = load_embedder(home, manifest.model.kind)
                model_sha, features = embedder.weights_sha256, embedder.feature_config
                front_end = embedder.front_end_config.key
                out["model"] = {"kind": manifest.model.kind, "sha256": model_sha, "embedding_dim": embedder.embedding_dim,
                                "singers_trained": len(embedder.singers), "front_end": front_end,
                                "front_end_description": embedder.front_end_config.describe(),
                                "training": _training_recipe(embedder)}
            except Exception as exc:  # noqa: BLE001 - info reports a broken model instead of failing
                out["model"] = {"kind": manifest.model.kind, "error": str(exc)}
        entry = manifest.index
        out["index"] = None if entry is None else {
            "type": entry.spec.index_type, "factory_key": entry.spec.factory_key, "n_vectors": entry.n_vectors,
            "dim": entry.spec.dim, "size_bytes": entry.size_bytes, "file": entry.file, "built_at": entry.built_at,
            "splits": list(entry.splits) if entry.splits else None, "gpu": entry.gpu, "front_end": entry.front_end,
            "backend": entry.backend}
        calibration = home.root / CALIBRATION_FILE
        out["unknown_calibration"] = json.loads(calibration.read_text()) if calibration.is_file() else None
        store_sha, store_features = store.embedding_source()
        ids = store.block_ids(splits=entry.splits if entry else None)
        index_state = None
        if check and entry is not None and home.index_path(entry).is_file():
            index = VectorIndex.load(home.index_path(entry))
            index_state = VectorsState(len(index), ids_sha256(index.ids()))
        problems = find_problems(home, manifest, store=VectorsState(len(ids), ids_sha256(ids), store_sha, store_features)
                                 if manifest.model else None, index=index_state, model_sha256=model_sha,
                                 feature_config=features, front_end=front_end, verify_checksum=check)
        out["problems"] = problems
    return out


def _training_recipe(embedder: Any) -> dict[str, Any]:
    """The levers a model was trained with (head, augmentation, adversary), as model.json records them."""
    train = embedder.card.train_config
    recipe = {"head": embedder.model_config.head}
    if train is not None:
        recipe.update({k: v for k, v in train.to_dict().items() if k in ("remix", "gain_tilt", "album_adversary")})
    return recipe

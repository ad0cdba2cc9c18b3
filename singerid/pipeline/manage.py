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

from singerid.embedder.checkpoint import SIDECAR_FILE, read_card
from singerid.embedder.embed import Embedder
from singerid.errors import ArtefactError, DatasetError, ParameterError
from singerid.index.consistency import VectorsState, covered_state, find_problems
from singerid.index.files import crash_point, ids_sha256
from singerid.index.home import Home, Manifest
from singerid.index.shards import ShardSet, writer_lock
from singerid.index.store import MetadataStore, db_path
from singerid.index.store_records import StoreCounts
from singerid.index.vectors import VectorIndex
from singerid.pipeline.calibrate import CALIBRATION_FILE, load_calibration
from singerid.pipeline.common import (
    load_backend, load_embedder, open_store, resolve_model_kind,
)
from singerid.pipeline.embed_corpus import EmbedSummary, embed_tracks
from singerid.pipeline.index_sync import sync_index
from singerid.pipeline.query import UNKNOWN
from singerid.progress import ProgressArg
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
    unknown_threshold: float | None = None  # the recalibrated unknown-singer threshold (None: none, or no index)


def enrol(home: Home, singer: str, songs: Sequence[str | Path], *, db_url: str | None = None,
          album: str | None = None, progress: ProgressArg = False, add_to_existing: bool = False,
          device: str = "cpu", retry_failed: bool = False) -> ChangeSummary:
    """Add ``songs`` of ``singer`` to the store and (if one exists) the index, and recalibrate the
    unknown-singer threshold on the new index. Bad files are recorded as failures, as in embed-corpus.

    ``add_to_existing``: add the songs to a singer already in the store (refused otherwise, so that
    a new voice is never merged into another singer by a name clash); a rerun of the same enrol
    (every stored song of the singer among ``songs``) is allowed either way. ``device``: where
    torch embeds ("cpu", "cuda"). ``retry_failed``: try songs that failed before and are unchanged
    (skipped otherwise, as in embed-corpus). Raises ParameterError for an empty or reserved name ("unknown",
    the answer for singers the index does not know) or no songs, DatasetError for a name clash.
    """
    name = singer.strip()
    if not name:
        raise ParameterError("singer name must not be empty")
    if name.casefold() == UNKNOWN:
        raise ParameterError(f"singer name {singer!r} is reserved: {UNKNOWN!r} is the answer for a singer the "
                             "index does not know; enrol under another name")
    if not songs:
        raise ParameterError("enrol needs at least one song")
    _check_new_singer(home, singer, songs, db_url=db_url, add_to_existing=add_to_existing)
    tracks = [Track(path=Path(p), singer=singer, song_id=f"{singer}/{Path(p).stem}", split="train", album=album,
                    dataset=ENROLLED_DATASET) for p in songs]
    manifest = home.read_manifest(missing_ok=True)
    backend = load_backend(home, manifest.index) if manifest.index is not None else None  # checked before any write
    kind = manifest.model.kind if manifest.model is not None else resolve_model_kind(home, None)
    embedder = load_embedder(home, kind, device=device)
    summary = embed_tracks(home, tracks, model_kind=kind, db_url=db_url, progress=progress, embedder=embedder,
                           label="enrol", retry_failed=retry_failed)  # stores the songs, then syncs the index
    manifest = home.read_manifest(missing_ok=True)
    if manifest.index is None:
        log.warning("no index yet: run `singerid build-index --home %s` to make the enrolled songs searchable",
                    home.root)
        return ChangeSummary(summary.n_added, summary.n_blocks, None, summary)
    if manifest.index.splits is not None and "train" not in manifest.index.splits:
        log.warning("enrolled songs are stored in split 'train', which the index (splits %s) leaves out; run "
                    "`singerid build-index --home %s` over the splits to search", ",".join(manifest.index.splits),
                    home.root)
    threshold = summary.unknown_threshold
    if threshold is None and manifest.index.calibration_file is not None:  # unchanged: the current one
        threshold = load_calibration(home.root, manifest.model.sha256, manifest.index.backend_sha256,
                                     entry=manifest.index).min_similarity
    return ChangeSummary(summary.n_added, summary.n_blocks, manifest.index.n_vectors, summary, threshold)


def remove(home: Home, *, singer: str | None = None, songs: Sequence[str | Path] = (),
           db_url: str | None = None) -> ChangeSummary:
    """Remove a singer (all their songs) or the given songs from the store and the index, and
    recalibrate the unknown-singer threshold on what is left.

    Raises ParameterError for neither or both of singer and songs, DatasetError for a singer or
    song the store does not hold.
    """
    if (singer is None) == (not songs):
        raise ParameterError("give either a singer or songs to remove (not both, not neither)")
    if db_url is None and not home.db_path.is_file():
        what = (f"singer named {singer!r}" if singer is not None
                else f"song with path {str(Path(songs[0]).absolute())!r}")
        raise DatasetError(f"no {what}: {home.root} holds no store yet")
    with open_store(home, db_url) as store, writer_lock(home.shards_dir):
        home.clean_leftovers()
        manifest = home.read_manifest(missing_ok=True)
        if manifest.index is not None:
            load_backend(home, manifest.index)  # checked before any write
        paths = [str(Path(p).absolute()) for p in songs]
        try:
            gone = _ids_to_remove(store, singer, paths)
        except ParameterError as exc:  # the store's "no such singer/song": a data error (exit 1)
            raise DatasetError(str(exc)) from exc
        # the index drops the blocks first, so it never holds a block the store no longer has
        synced = sync_index(home, store, manifest=manifest, drop_ids=gone) if manifest.index is not None else None
        crash_point("index swapped, rows not yet deleted")
        try:
            if singer is not None:
                n_songs = len(store.songs(singer=singer))
                ids = store.remove_singer(singer)
            else:
                n_songs = len(paths)
                ids = store.remove_songs(paths)
        except ParameterError as exc:  # the store's "no such singer/song": a data error (exit 1)
            raise DatasetError(str(exc)) from exc
    if synced is None:
        return ChangeSummary(n_songs, len(ids), None)
    return ChangeSummary(n_songs, len(ids), synced.n_vectors, unknown_threshold=synced.unknown_threshold)


def _ids_to_remove(store: MetadataStore, singer: str | None, paths: list[str]) -> np.ndarray:
    """int64 block ids of ``singer``'s songs or of the songs at ``paths``, read before anything is deleted.

    Raises the store's ParameterError (nothing deleted) when the singer or a song is not stored.
    """
    if singer is not None:
        stored = store.songs(singer=singer)
        if not stored:
            store.remove_singer(singer)  # raises "no singer named ..." and deletes nothing
    else:
        wanted = {db_path(p) for p in paths}
        stored = [song for song in store.songs() if song.path in wanted]
        if len({song.path for song in stored}) < len(wanted):
            store.remove_songs(paths)  # raises "no song with path ..." and deletes nothing
    labels = store.block_labels()
    return labels.ids[np.isin(labels.song_ids, [song.song_id for song in stored])]


def _check_new_singer(home: Home, singer: str, songs: Sequence[str | Path], *, db_url: str | None,
                      add_to_existing: bool) -> None:
    """DatasetError if ``singer`` is already stored with other songs and ``add_to_existing`` is off."""
    if add_to_existing or (db_url is None and not home.db_path.is_file()):
        return
    with open_store(home, db_url) as store:
        stored = store.songs(singer=singer)
    given = {str(Path(p).absolute()) for p in songs}
    if stored and not {s.path for s in stored} <= given:  # a rerun of the same enrol is no clash
        raise DatasetError(f"singer {singer!r} is already in the store ({len(stored)} song(s), "
                           f"{stored[0].singer_kind}); to add these songs to that singer pass --add-to-existing "
                           "(add_to_existing=True), or enrol the new voice under another name")


def info(home: Home, *, db_url: str | None = None, check: bool = False) -> dict[str, Any]:
    """Counts per singer and split, model, index, and the problems found (full check with ``check``).

    Returns a JSON-ready dict with at least n_songs, n_blocks, n_singers, problems (each line
    names its repair; see ``find_problems``) and next_steps (the commands still needed before
    the home answers queries; None when it does). Creates nothing: a home without a store reads
    as empty.
    """
    manifest = home.read_manifest(missing_ok=True)
    out: dict[str, Any] = {"home": str(home.root), "manifest": manifest.to_dict() if manifest.model else None}
    has_store = db_url is not None or home.db_path.is_file()
    store = MetadataStore(home.db_url(db_url)) if has_store else None
    try:
        counts = store.counts() if store is not None else StoreCounts(0, 0, 0, ())
        out.update(counts.to_dict())
        out["failures"] = len(store.failures()) if store is not None else 0
        store_sha, store_features = store.embedding_source() if store is not None else (None, None)
        entry = manifest.index
        ids = store.block_ids(splits=entry.splits if entry else None) if store is not None else np.zeros(0, np.int64)
        damage = _damage(home, store, manifest) if check and store is not None else []
    finally:
        if store is not None:
            store.close()
    kind = _model_kind(home, manifest, store_sha)
    model_sha = features = front_end = model_error = None
    out["model"] = None
    if kind is not None:
        model_dir = home.model_dir(kind)
        try:
            if not (model_dir / SIDECAR_FILE).is_file():
                raise ArtefactError(f"no {SIDECAR_FILE}")
            embedder = Embedder.load(model_dir)
            model_sha, features = embedder.weights_sha256, embedder.feature_config
            front_end = embedder.front_end_config.key
            out["model"] = {"kind": kind, "sha256": model_sha, "embedding_dim": embedder.embedding_dim,
                            "singers_trained": len(embedder.singers), "front_end": front_end,
                            "front_end_description": embedder.front_end_config.describe(),
                            "training": _training_recipe(embedder)}
        except ArtefactError as exc:  # info reports a missing or broken model instead of failing
            model_error = str(exc).split(";")[0]  # the reason; its repair comes with the problem below
            out["model"] = {"kind": kind, "error": model_error}
    out["index"] = None if entry is None else {
        "type": entry.spec.index_type, "factory_key": entry.spec.factory_key, "n_vectors": entry.n_vectors,
        "dim": entry.spec.dim, "size_bytes": entry.size_bytes, "file": entry.file, "built_at": entry.built_at,
        "splits": list(entry.splits) if entry.splits else None, "gpu": entry.gpu, "front_end": entry.front_end,
        "backend": entry.backend, "on_disk": entry.spec.on_disk, "nprobe": entry.spec.nprobe,
        "ef_search": entry.spec.ef_search}
    calibration = (home.calibration_path(entry) if entry is not None and entry.calibration_file
                   else home.root / CALIBRATION_FILE)
    try:
        out["unknown_calibration"] = json.loads(calibration.read_text()) if calibration.is_file() else None
    except (OSError, ValueError, RecursionError) as exc:  # garbage or nested too deeply: say so, do not crash
        out["unknown_calibration"] = {"error": f"cannot read {calibration}: {type(exc).__name__}"}
    index_state = None
    store_state = VectorsState(len(ids), ids_sha256(ids), store_sha, store_features) if has_store else None
    out["pending_blocks"] = 0  # stored, not yet in the index (a writer's next sync brings them in)
    data = home.data_path(entry) if entry is not None else None
    if entry is not None and home.index_path(entry).is_file() and (data is None or data.is_file()) \
            and home.index_path(entry).stat().st_size == entry.size_bytes:
        try:
            index_ids = VectorIndex.load(home.index_path(entry)).ids()
        except ArtefactError as exc:  # unreadable: find_problems below names the repair
            damage.append(str(exc))
            index_ids = None
        if index_ids is not None:
            index_state = VectorsState(len(index_ids), ids_sha256(index_ids))
            if has_store:
                store_state = covered_state(ids, index_ids, model_sha256=store_sha, feature_config=store_features)
                out["pending_blocks"] = len(ids) - store_state.n_vectors
    out["problems"] = find_problems(home, manifest, store=store_state, index=index_state, model_sha256=model_sha,
                                    feature_config=features, front_end=front_end, verify_checksum=check,
                                    model_kind=kind, model_error=model_error, verify_data=check) + damage
    out["next_steps"] = None
    if not out["problems"] and entry is None:
        out["next_steps"] = home.next_steps(kind=kind, embedded=store_sha is not None)
    return out


def _damage(home: Home, store: MetadataStore, manifest: Manifest) -> list[str]:
    """What ``info --check`` reads in full: the database's own integrity check and every stored row
    against its checksum (what build-index and the index sync would refuse)."""
    problems = store.integrity_check()
    if problems or manifest.model is None:
        return problems
    with ShardSet(home.shards_dir, manifest.model.embedding_dim) as shards:
        return shards.verify(store.shard_row_counts())


def _model_kind(home: Home, manifest: Manifest, store_sha: str | None) -> str | None:
    """The kind of model the home's vectors need: the manifest's, else the trained kind that made
    the stored vectors, else the only trained kind (None: no model and nothing to say which)."""
    if manifest.model is not None:
        return manifest.model.kind
    kinds = home.trained_kinds()
    for kind in kinds:
        if store_sha is not None and _card_sha(home, kind) == store_sha:
            return kind
    return kinds[0] if len(kinds) == 1 else None


def _card_sha(home: Home, kind: str) -> str | None:
    try:
        return read_card(home.model_dir(kind)).weights_sha256
    except ArtefactError:
        return None


def _training_recipe(embedder: Any) -> dict[str, Any]:
    """The levers a model was trained with (head, augmentation, adversary), as model.json records them."""
    train = embedder.card.train_config
    recipe = {"head": embedder.model_config.head}
    if train is not None:
        recipe.update({k: v for k, v in train.to_dict().items() if k in ("remix", "gain_tilt", "album_adversary")})
    return recipe
